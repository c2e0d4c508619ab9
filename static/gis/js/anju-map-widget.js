/* global ol */
'use strict';
// Offline companions to Django's MapWidget (gis/js/OLMapWidget.js), used by
// templates/gis/anju-openlayers.html. No tile source: nothing is fetched from outside.

// The base layer: the outline embedded in the page by json_script (GeoJSON in WGS84), or
// an empty vector layer when there is none.
function anjuContextLayer(scriptId, mapSrid) {
    const source = new ol.source.Vector();
    const node = document.getElementById(scriptId);
    const geojson = node ? JSON.parse(node.textContent) : null;
    if (geojson) {
        const format = new ol.format.GeoJSON();
        source.addFeatures(format.readFeatures(geojson, {
            dataProjection: 'EPSG:4326',
            featureProjection: 'EPSG:' + mapSrid
        }));
    }
    return new ol.layer.Vector({
        source: source,
        style: new ol.style.Style({
            stroke: new ol.style.Stroke({color: '#4a5d6e', width: 2, lineDash: [8, 6]}),
            fill: new ol.style.Fill({color: 'rgba(74, 93, 110, 0.08)'})
        })
    });
}

// Django's widget centres on the value, or on a fixed default when empty. With an outline
// that is not enough: an empty field should open on the outline, and a lone point, which
// Django zooms to a few hundred metres of blank canvas, should be shown within it.
function anjuFrameMap(widget, contextLayer) {
    const contextExtent = contextLayer.getSource().getExtent();
    if (ol.extent.isEmpty(contextExtent)) {
        return;
    }
    const view = widget.map.getView();
    // The widget's source has no spatial index, so no getExtent(): gather it by hand.
    const valueExtent = ol.extent.createEmpty();
    widget.featureCollection.forEach(function(feature) {
        ol.extent.extend(valueExtent, feature.getGeometry().getExtent());
    });
    const padding = {padding: [24, 24, 24, 24], maxZoom: 18};
    if (ol.extent.isEmpty(valueExtent)) {
        view.fit(contextExtent, padding);
    } else if (ol.extent.getArea(valueExtent) === 0) {
        view.fit(ol.extent.extend(ol.extent.clone(contextExtent), valueExtent), padding);
    }
}

// Django's template starts the widget with an inline script; ours cannot (the
// Content-Security-Policy allows no inline script without the request's nonce), so each
// widget's options travel in data-* attributes and are read here. The widget is kept in a
// global named as Django names it (geodjango_<field>), as in Django's own template.
function anjuStartMapWidgets() {
    document.querySelectorAll('[data-anju-map-widget]').forEach(function(wrapper) {
        const data = wrapper.dataset;
        if (window[data.anjuMapWidget]) {
            return;
        }
        const mapSrid = Number(data.mapSrid);
        const baseLayer = anjuContextLayer(data.contextScriptId, mapSrid);
        const widget = new MapWidget({
            base_layer: baseLayer,
            geom_name: data.geomName,
            id: data.id,
            map_id: data.id + '_map',
            map_srid: mapSrid,
            name: data.name,
            default_lon: Number(data.defaultLon),
            default_lat: Number(data.defaultLat),
            default_zoom: Number(data.defaultZoom)
        });
        window[data.anjuMapWidget] = widget;
        anjuFrameMap(widget, baseLayer);
    });
}

if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', anjuStartMapWidgets);
} else {
    anjuStartMapWidgets();
}
