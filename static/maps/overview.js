/* The overview map's household layer: GeoJSON tiles from /maps/tiles/{z}/{x}/{y}.geojson.
 *
 * The page's folium map draws the regions; this adds the houses and the regions' names. Each
 * tile is fetched once per view, drawn as circle markers (single houses) or as count bubbles
 * (cells of several houses, with a ring showing their mix), and removed when it leaves the
 * screen. Colouring by grade or by case stage is switched here, without reloading anything.
 * Plain Leaflet 1.9, no other library, nothing from outside this server.
 *
 * The houses are drawn on the map's own canvas, the one the regions are drawn on (the map
 * prefers canvas: maps/overview.py), and after them: on top, so a click on a house opens the
 * house even where a region under it drills down on a click. A canvas or an SVG of their own
 * would sit under or over the regions' as a whole and take, or lose, every click.
 */
(function () {
  "use strict";

  var configNode = document.getElementById("overview-config");
  if (!configNode) return;
  var config = JSON.parse(configNode.textContent);
  var map = window[config.map];
  if (!map) return;

  var status = document.getElementById("overview-status");
  var legendList = document.getElementById("point-legend");
  var colourMode = config.colour;
  var tiles = {}; // tile key -> {features: [...], layer: L.LayerGroup}
  var pending = 0;
  var failed = 0;

  function categories() {
    return config.legends[colourMode];
  }

  function colourOf(key) {
    var list = categories();
    for (var i = 0; i < list.length; i++) {
      if (list[i].key === key) return list[i].colour;
    }
    return "#8a94a0";
  }

  function setStatus() {
    if (!status) return;
    if (pending > 0) status.textContent = config.text.loading;
    else if (failed > 0) status.textContent = config.text.failed;
    else status.textContent = "";
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // A ring of the cell's mix (conic gradient) around its count.
  function bubble(feature) {
    var p = feature.properties;
    var counts = colourMode === "stage" ? p.s : p.g;
    var list = categories();
    var total = 0;
    var i;
    for (i = 0; i < counts.length; i++) total += counts[i];
    var stops = [];
    var at = 0;
    var lines = [];
    for (i = 0; i < list.length; i++) {
      if (!counts[i]) continue;
      var from = (at / total) * 360;
      at += counts[i];
      var to = (at / total) * 360;
      stops.push(list[i].colour + " " + from.toFixed(1) + "deg " + to.toFixed(1) + "deg");
      lines.push(escapeHtml(config.text.label_value.replace("%(label)s", list[i].label).replace("%(value)s", counts[i])));
    }
    var size = Math.round(22 + Math.min(20, Math.log(p.n) * 4));
    var html =
      '<div class="map-bubble" style="width:' + size + "px;height:" + size + "px;background:conic-gradient(" +
      stops.join(",") + ')"><span>' + p.n + "</span></div>";
    var latlng = L.latLng(feature.geometry.coordinates[1], feature.geometry.coordinates[0]);
    var marker = L.marker(latlng, {
      icon: L.divIcon({ html: html, className: "map-bubble-icon", iconSize: [size, size] }),
      keyboard: false,
    });
    marker.bindTooltip(
      "<strong>" + p.n + " " + escapeHtml(config.text.households) + "</strong><br>" + lines.join("<br>")
    );
    marker.on("click", function () {
      map.setView(latlng, Math.min(map.getZoom() + 2, map.getMaxZoom()));
    });
    return marker;
  }

  function house(feature) {
    var p = feature.properties;
    var latlng = L.latLng(feature.geometry.coordinates[1], feature.geometry.coordinates[0]);
    var marker = L.circleMarker(latlng, {
      radius: 6,
      weight: 1.5,
      color: "#ffffff",
      fillColor: colourOf(colourMode === "stage" ? p.s : p.g),
      fillOpacity: 0.95,
    });
    marker.householdId = p.id;
    marker.on("click", function () {
      openPopup(p.id, latlng);
    });
    return marker;
  }

  function openPopup(id, latlng) {
    var popup = L.popup({ maxWidth: 260 }).setLatLng(latlng).setContent("…").openOn(map);
    fetch(config.popup.replace("{id}", id), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        popup.setContent(html);
      })
      .catch(function () {
        popup.setContent(escapeHtml(config.text.failed));
      });
  }

  function draw(entry) {
    entry.layer.clearLayers();
    entry.features.forEach(function (feature) {
      entry.layer.addLayer(feature.properties.n > 1 ? bubble(feature) : house(feature));
    });
  }

  var HouseTiles = L.GridLayer.extend({
    createTile: function (coords, done) {
      var key = this._tileCoordsToKey(coords);
      var url = config.tiles.replace("{z}", coords.z).replace("{x}", coords.x).replace("{y}", coords.y);
      var tile = document.createElement("div");
      pending += 1;
      setStatus();
      fetch(url, { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.json();
        })
        .then(function (data) {
          var entry = { features: data.features, layer: L.layerGroup().addTo(map) };
          if (tiles[key]) map.removeLayer(tiles[key].layer);
          tiles[key] = entry;
          draw(entry);
          done(null, tile);
        })
        .catch(function (error) {
          failed += 1;
          done(error, tile);
        })
        .finally(function () {
          pending -= 1;
          setStatus();
          if (pending === 0) document.body.dataset.housesLoaded = "true";
        });
      return tile;
    },
  });

  var layer = new HouseTiles({ tileSize: 256, updateWhenIdle: true, keepBuffer: 1 });
  layer.on("tileunload", function (event) {
    var key = layer._tileCoordsToKey(event.coords);
    if (tiles[key]) {
      map.removeLayer(tiles[key].layer);
      delete tiles[key];
    }
  });
  layer.on("loading", function () {
    failed = 0;
    document.body.dataset.housesLoaded = "false";
  });
  layer.addTo(map);

  function redrawLegend() {
    if (!legendList) return;
    legendList.innerHTML = "";
    categories().forEach(function (item) {
      var li = document.createElement("li");
      var dot = document.createElement("span");
      dot.className = "map-legend__dot";
      dot.style.background = item.colour;
      li.appendChild(dot);
      li.appendChild(document.createTextNode(item.label));
      legendList.appendChild(li);
    });
  }

  // Switching the colour redraws what is loaded; the form keeps the choice for the next page.
  var select = document.querySelector("select[name=colour]");
  if (select) {
    select.addEventListener("change", function () {
      colourMode = select.value === "stage" ? "stage" : "grade";
      Object.keys(tiles).forEach(function (key) {
        draw(tiles[key]);
      });
      redrawLegend();
    });
  }
  // Region names, at a point inside each region. A name shows only where its region is wider
  // and taller than the name at this zoom and where it would not overlap a larger region's
  // name: zoomed out, small regions go quiet instead of piling their names up.
  var labels = (config.labels || []).map(function (item) {
    var tooltip = L.tooltip({
      permanent: true,
      direction: "center",
      className: "region-label",
      interactive: false,
      opacity: 1,
    })
      .setLatLng(item.at)
      .setContent(escapeHtml(item.name))
      .addTo(map);
    var element = tooltip.getElement();
    var span = L.latLngBounds(item.box);
    return {
      name: item.name,
      tooltip: tooltip,
      element: element,
      box: span,
      width: element.offsetWidth,
      height: element.offsetHeight,
      size: (span.getNorth() - span.getSouth()) * (span.getEast() - span.getWest()),
    };
  });
  labels.sort(function (a, b) {
    return b.size - a.size;
  });

  function placeLabels() {
    var taken = [];
    labels.forEach(function (label) {
      var sw = map.latLngToContainerPoint(label.box.getSouthWest());
      var ne = map.latLngToContainerPoint(label.box.getNorthEast());
      var at = map.latLngToContainerPoint(label.tooltip.getLatLng());
      var room = {
        left: at.x - label.width / 2 - 4,
        right: at.x + label.width / 2 + 4,
        top: at.y - label.height / 2 - 2,
        bottom: at.y + label.height / 2 + 2,
      };
      var fits = label.width <= ne.x - sw.x && label.height <= sw.y - ne.y;
      var clear =
        fits &&
        taken.every(function (other) {
          return (
            room.right < other.left || room.left > other.right || room.bottom < other.top || room.top > other.bottom
          );
        });
      label.element.classList.toggle("region-label--hidden", !clear);
      label.shown = clear;
      if (clear) taken.push(room);
    });
  }
  map.on("zoomend", placeLabels);
  placeLabels();

  window.anjuOverview = { map: map, layer: layer, tiles: tiles, labels: labels };
})();
