/* The overview map's household layer: GeoJSON tiles from /maps/tiles/{z}/{x}/{y}.geojson.
 *
 * The page's folium map draws the regions; this adds the houses. Each tile is fetched once
 * per view, drawn as circle markers (single houses, on a canvas) or as count bubbles (cells
 * of several houses, with a ring showing their mix), and removed when it leaves the screen.
 * Colouring by grade or by case stage is switched here, without reloading anything.
 * Plain Leaflet 1.9, no other library, nothing from outside this server.
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
  var renderer = L.canvas({ padding: 0.5 });
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
      lines.push(escapeHtml(list[i].label) + ": " + counts[i]);
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
      renderer: renderer,
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
  window.anjuOverview = { map: map, layer: layer, tiles: tiles };
})();
