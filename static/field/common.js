/* What the field page's scripts share (villages.js, field.js), loaded before both:
 * window.AnjuFieldCommon = {$, fmt, fmtNodes, el, haversine, storageReason}.
 *
 * No words live here: storageReason picks them from the strings the server translated
 * (#field-strings), as every other sentence the page shows.
 */
(function (global) {
  "use strict";

  var EARTH_RADIUS_M = 6371008.8;

  function $(id) { return global.document.getElementById(id); }

  /* "%(name)s" placeholders, as in Django's interpolate(). */
  function fmt(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (all, name) {
      return values && values[name] !== undefined ? String(values[name]) : all;
    });
  }

  /* fmt for a sentence with elements in it: the translated text split at its placeholders,
   * each filled with its value (a node, or text), as a list of nodes to append. */
  function fmtNodes(text, values) {
    var nodes = [];
    var last = 0;
    text.replace(/%\((\w+)\)s/g, function (all, name, at) {
      if (at > last) nodes.push(global.document.createTextNode(text.slice(last, at)));
      var value = values ? values[name] : undefined;
      if (value === undefined) value = all;
      nodes.push(typeof value === "object" && value !== null && value.nodeType
        ? value : global.document.createTextNode(String(value)));
      last = at + all.length;
      return all;
    });
    if (last < text.length) nodes.push(global.document.createTextNode(text.slice(last)));
    return nodes;
  }

  function el(tag, attrs, children) {
    var node = global.document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  /* Great-circle distance in metres between two WGS84 points. */
  function haversine(lon1, lat1, lon2, lat2) {
    var rad = Math.PI / 180;
    var a = Math.pow(Math.sin((lat2 - lat1) * rad / 2), 2) +
      Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.pow(Math.sin((lon2 - lon1) * rad / 2), 2);
    return EARTH_RADIUS_M * 2 * Math.atan2(Math.sqrt(a), Math.sqrt(1 - a));
  }

  /* Why the phone's storage refused something, in the inspector's language: the scripts'
   * own failures carry a `code` (queue.js, villages.js), an aborted transaction is named
   * AbortError; anything else says what the browser said. Never empty. */
  function storageReason(error, strings) {
    var code = error && error.code;
    if (code === "storage_missing") return strings.storage_missing;
    if (code === "storage_aborted" || (error && error.name === "AbortError")) {
      return strings.storage_aborted;
    }
    return (error && (error.message || error.name)) || String(error);
  }

  global.AnjuFieldCommon = {
    $: $,
    fmt: fmt,
    fmtNodes: fmtNodes,
    el: el,
    haversine: haversine,
    storageReason: storageReason,
  };
})(self);
