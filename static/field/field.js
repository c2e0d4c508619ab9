/* The field page: find the household, record the inspection, keep it until it is sent.
 *
 * Everything the page shows in words comes translated from the server (#field-strings);
 * the configuration (grade rule, choices, photo slots, URLs) comes in #field-config.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("field-config").textContent);
  var strings = JSON.parse(document.getElementById("field-strings").textContent);
  var Queue = window.AnjuQueue;
  var KNOWN_KEY = "anju-field-households";
  var SLOTS_KEY = "anju-field-slots";
  var KNOWN_MAX = 500;

  var state = {
    household: null,
    startedAt: null,
    position: null,
    photos: {}, // "stage/angle" -> {file, url}
    slots: config.slots,
    retryTimer: null,
  };

  function $(id) { return document.getElementById(id); }

  /* "%(name)s" placeholders, as in Django's interpolate(). */
  function fmt(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (all, name) {
      return values && values[name] !== undefined ? String(values[name]) : all;
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  var numberFormat = function (value, digits) {
    try {
      return new Intl.NumberFormat(config.language, { maximumFractionDigits: digits }).format(value);
    } catch (error) {
      return value.toFixed(digits);
    }
  };

  function formatDistance(metres) {
    if (metres === null || metres === undefined || isNaN(metres)) return "";
    if (metres < 1000) return fmt(strings.distance_m, { distance: numberFormat(Math.round(metres), 0) });
    return fmt(strings.distance_km, { distance: numberFormat(metres / 1000, 1) });
  }

  function formatTime(ms) {
    try {
      return new Date(ms).toLocaleTimeString(config.language, { hour: "2-digit", minute: "2-digit" });
    } catch (error) {
      return new Date(ms).toISOString();
    }
  }

  function uuid() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  /* ---- the grade rule: the same as inspections/grading.py, parameterised the same way ---- */

  var MEMBER_CODES = config.members.map(function (m) { return m.code; });

  function deriveGrade(ratings, siteHazards, rule) {
    if (siteHazards.length && rule.site_hazard_makes_d) return "D";
    var dangerous = MEMBER_CODES.filter(function (code) { return ratings[code] === "dangerous"; });
    if (dangerous.some(function (code) { return rule.d_members.indexOf(code) !== -1; })) return "D";
    if (dangerous.length) return "C";
    if (MEMBER_CODES.some(function (code) { return ratings[code] === "damaged"; })) return "B";
    return "A";
  }

  /* ---- network status, storage, service worker ---- */

  function showNetwork() {
    var online = navigator.onLine;
    var badge = $("net-status");
    badge.textContent = online ? strings.online : strings.offline;
    badge.className = "net-status" + (online ? "" : " net-status--offline");
    $("net-note").textContent = strings.offline_note;
    $("net-note").hidden = online;
  }

  function askForStorage() {
    var out = $("storage-status");
    if (!navigator.storage || !navigator.storage.persist) {
      out.textContent = strings.storage_unknown;
      return;
    }
    navigator.storage.persisted()
      .then(function (already) { return already || navigator.storage.persist(); })
      .then(function (granted) {
        out.textContent = granted ? strings.storage_persisted : strings.storage_not_persisted;
        out.dataset.persisted = granted ? "true" : "false";
      })
      .catch(function () { out.textContent = strings.storage_unknown; });
  }

  function registerWorker() {
    var out = $("sw-status");
    if (!("serviceWorker" in navigator)) {
      out.textContent = strings.sw_unavailable;
      return;
    }
    navigator.serviceWorker.register(config.urls.service_worker, { scope: config.urls.scope })
      .then(function () { return navigator.serviceWorker.ready; })
      .then(function () {
        out.textContent = strings.sw_ready;
        out.dataset.ready = "true";
      })
      .catch(function () { out.textContent = strings.sw_unavailable; });
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "anju-field-sync") sync(false);
    });
  }

  /* Background Sync, where the browser has it: when the network returns, the worker wakes
   * this page to send (the page does the sending: one code path for every trigger). */
  function askForBackgroundSync() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.ready.then(function (registration) {
      if (registration.sync && registration.sync.register) {
        return registration.sync.register("anju-field-sync");
      }
      return null;
    }).catch(function () {});
  }

  /* ---- households: search, near me, and the copies kept for offline use ---- */

  function loadKnown() {
    try { return JSON.parse(localStorage.getItem(KNOWN_KEY)) || {}; } catch (error) { return {}; }
  }

  function remember(households) {
    var known = loadKnown();
    households.forEach(function (h) {
      var old = known[h.id] || {};
      known[h.id] = Object.assign({}, old, h, {
        lon: h.lon !== null && h.lon !== undefined ? h.lon : old.lon,
        lat: h.lat !== null && h.lat !== undefined ? h.lat : old.lat,
        seen: Date.now(),
      });
      delete known[h.id].distance_m;
    });
    var ids = Object.keys(known);
    if (ids.length > KNOWN_MAX) {
      ids.sort(function (a, b) { return known[a].seen - known[b].seen; })
        .slice(0, ids.length - KNOWN_MAX)
        .forEach(function (id) { delete known[id]; });
    }
    try { localStorage.setItem(KNOWN_KEY, JSON.stringify(known)); } catch (error) { /* full: fine */ }
  }

  function fromFeature(feature) {
    var p = feature.properties || {};
    var coords = feature.geometry && feature.geometry.coordinates;
    return {
      id: feature.id,
      archive_no: p.archive_no,
      head_name: p.head_name,
      village: p.village,
      grade: p.current_house ? p.current_house.safety_grade : null,
      url: p.url,
      lon: coords ? coords[0] : null,
      lat: coords ? coords[1] : null,
    };
  }

  function fromNearby(item) {
    return {
      id: item.id,
      archive_no: item.archive_no,
      head_name: item.head_name,
      village: item.village,
      grade: item.grade,
      distance_m: item.distance_m,
      lon: item.location ? item.location[0] : item.lon,
      lat: item.location ? item.location[1] : item.lat,
    };
  }

  function haversine(lon1, lat1, lon2, lat2) {
    var rad = Math.PI / 180;
    var dLat = (lat2 - lat1) * rad;
    var dLon = (lon2 - lon1) * rad;
    var a = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 6371008.8 * 2 * Math.atan2(Math.sqrt(a), Math.sqrt(1 - a));
  }

  function findStatus(text, warn) {
    var out = $("find-status");
    out.textContent = text || "";
    out.className = "find-status" + (warn ? " find-status--warn" : "");
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403 || response.redirected) {
          var expired = new Error(strings.session_expired);
          expired.session = true;
          throw expired;
        }
        return response.json().then(function (body) {
          if (!response.ok) {
            var error = new Error(Queue.reasonFrom(body, String(response.status)));
            error.server = true;
            throw error;
          }
          return body;
        });
      });
  }

  function gradePill(grade) {
    return el("span", {
      className: "grade grade--" + (grade || "none"),
      text: grade || strings.no_grade,
    });
  }

  function showResults(households) {
    var list = $("results");
    list.textContent = "";
    households.forEach(function (h) {
      var village = h.village ? h.village.name : "";
      var button = el("button", { type: "button", className: "result", "data-household": h.id }, [
        el("span", { className: "result__name", text: h.head_name }),
        el("span", { className: "result__side" }, [
          h.distance_m !== undefined && h.distance_m !== null
            ? el("span", { className: "result__distance", text: formatDistance(h.distance_m) })
            : null,
          gradePill(h.grade),
        ]),
        el("span", { className: "result__meta", text: h.archive_no + (village ? " · " + village : "") }),
      ]);
      button.addEventListener("click", function () { chooseHousehold(h); });
      list.appendChild(el("li", {}, [button]));
    });
  }

  function offlineSearch(q) {
    var needle = q.trim().toLowerCase();
    var known = loadKnown();
    return Object.keys(known).map(function (id) { return known[id]; }).filter(function (h) {
      return (h.head_name || "").toLowerCase().indexOf(needle) !== -1 ||
        (h.archive_no || "").toLowerCase().indexOf(needle) !== -1;
    }).slice(0, 20);
  }

  function search(event) {
    event.preventDefault();
    var q = $("search-q").value.trim();
    if (!q) return;
    findStatus(strings.searching);
    var url = config.urls.households + "?page_size=20&q=" + encodeURIComponent(q);
    getJSON(url).then(function (body) {
      var households = (body.features || []).map(fromFeature);
      remember(households);
      showResults(households);
      findStatus(households.length ? "" : strings.no_results);
    }).catch(function (error) {
      if (error.session || error.server) {
        findStatus(error.server ? fmt(strings.search_failed, { reason: error.message }) : error.message, true);
        return;
      }
      var saved = offlineSearch(q);
      showResults(saved);
      findStatus(saved.length ? strings.offline_results : strings.offline_no_results, true);
    });
  }

  function locate(options) {
    return new Promise(function (resolve, reject) {
      if (!navigator.geolocation) {
        reject(new Error(strings.geolocation_unavailable));
        return;
      }
      navigator.geolocation.getCurrentPosition(function (position) {
        state.position = {
          lon: position.coords.longitude,
          lat: position.coords.latitude,
          accuracy: position.coords.accuracy,
          at: Date.now(),
        };
        resolve(state.position);
      }, function (error) {
        reject(new Error(fmt(strings.geolocation_denied, { reason: error.message || error.code })));
      }, Object.assign({ enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 }, options || {}));
    });
  }

  function nearMe() {
    findStatus(strings.locating);
    locate().then(function (here) {
      findStatus(strings.searching);
      var url = config.urls.nearby + "?limit=10&lon=" + here.lon.toFixed(6) + "&lat=" + here.lat.toFixed(6);
      return getJSON(url).then(function (body) {
        var households = (Array.isArray(body) ? body : body.results || []).map(fromNearby);
        remember(households);
        showResults(households);
        findStatus(households.length ? "" : strings.no_nearby);
      }).catch(function (error) {
        if (error.session || error.server) {
          findStatus(error.server ? fmt(strings.search_failed, { reason: error.message }) : error.message, true);
          return;
        }
        var known = loadKnown();
        var saved = Object.keys(known).map(function (id) { return known[id]; })
          .filter(function (h) { return typeof h.lon === "number" && typeof h.lat === "number"; })
          .map(function (h) {
            return Object.assign({}, h, { distance_m: haversine(here.lon, here.lat, h.lon, h.lat) });
          })
          .sort(function (a, b) { return a.distance_m - b.distance_m; })
          .slice(0, 10);
        showResults(saved);
        findStatus(saved.length ? strings.offline_nearby : strings.offline_no_results, true);
      });
    }).catch(function (error) { findStatus(error.message, true); });
  }

  /* ---- the inspection form ---- */

  function currentKind() {
    var checked = document.querySelector("input[name=kind]:checked");
    return checked ? checked.value : null;
  }

  function appraisalIncluded() {
    var need = config.appraisal_kinds[currentKind()];
    if (need === "required") return true;
    if (need === "optional") return $("appraisal-toggle").checked;
    return false;
  }

  function ratings() {
    var out = {};
    MEMBER_CODES.forEach(function (code) {
      var checked = document.querySelector("input[name='member-" + code + "']:checked");
      if (checked) out[code] = checked.value;
    });
    return out;
  }

  function hazards() {
    return Array.prototype.map.call(
      document.querySelectorAll("input[name=site_hazards]:checked"),
      function (input) { return input.value; }
    );
  }

  function setGrade(output, grade) {
    output.textContent = grade || "—";
    output.className = "grade grade--" + (grade || "none");
    output.dataset.grade = grade || "";
  }

  function updateAppraisal() {
    var kind = currentKind();
    var need = config.appraisal_kinds[kind];
    $("appraisal").hidden = !need;
    $("appraisal-toggle-row").hidden = need !== "optional";
    $("appraisal-fields").hidden = !appraisalIncluded();

    var given = ratings();
    var grade = deriveGrade(given, hazards(), config.rule);
    var missing = MEMBER_CODES.length - Object.keys(given).length;
    setGrade($("derived-grade"), grade);
    $("rate-hint").textContent = missing ? fmt(strings.rate_all, { count: missing }) : "";
    $("grade-same").textContent = fmt(strings.grade_same, { grade: grade });
    var override = $("grade-override").value;
    $("override-reason-row").hidden = !override || override === grade;
    setGrade($("bar-grade"), appraisalIncluded() ? (override || grade) : null);
    $("bar-grade").hidden = !appraisalIncluded();
  }

  function slotKey(slot) { return slot.stage + "/" + slot.angle; }

  function slotsForKind(kind) {
    var required = (state.slots[kind] || []).map(function (slot) {
      return Object.assign({ required: true }, slot);
    });
    var stage = required.length ? required[0].stage : "before";
    // Anything worth showing that fits no slot: optional, never counted as missing.
    required.push({
      stage: stage,
      angle: "other",
      stage_label: config.stages[stage],
      angle_label: config.angles.other,
      required: false,
    });
    return required;
  }

  function renderSlots() {
    var list = $("slots");
    var kind = currentKind();
    list.textContent = "";
    var keep = {};
    slotsForKind(kind).forEach(function (slot) {
      var key = slotKey(slot);
      var photo = state.photos[key];
      if (photo) keep[key] = photo;
      var input = el("input", {
        type: "file",
        accept: "image/*",
        capture: "environment",
        "data-stage": slot.stage,
        "data-angle": slot.angle,
      });
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        if (!file) return;
        if (state.photos[key]) URL.revokeObjectURL(state.photos[key].url);
        state.photos[key] = { file: file, url: URL.createObjectURL(file), slot: slot };
        renderSlots();
      });
      var label = (slot.stage_label || config.stages[slot.stage]) + " · " + (slot.angle_label || config.angles[slot.angle]);
      var item = el("li", {
        className: "slot" + (photo ? " slot--taken" : "") + (slot.required ? "" : " slot--optional"),
        "data-slot": key,
      }, [
        el("span", { className: "slot__label", text: label }),
        photo ? el("img", { className: "slot__preview", src: photo.url, alt: label }) : null,
        el("span", {
          className: "slot__status",
          text: photo ? strings.photo_taken : (slot.required ? strings.photo_missing : ""),
        }),
        el("label", { className: "slot__camera", title: label }, [
          el("span", { text: photo ? strings.retake_photo : strings.take_photo }),
          input,
        ]),
      ]);
      input.setAttribute("aria-label", fmt(strings.take_photo_of, { slot: label }));
      list.appendChild(item);
    });
    Object.keys(state.photos).forEach(function (key) {
      if (!keep[key]) {
        URL.revokeObjectURL(state.photos[key].url);
        delete state.photos[key];
      }
    });
    updateMissing();
  }

  function missingSlots() {
    return (state.slots[currentKind()] || []).filter(function (slot) { return !state.photos[slotKey(slot)]; });
  }

  function updateMissing() {
    var missing = missingSlots();
    var out = $("missing-summary");
    if (!missing.length) {
      out.textContent = strings.missing_none;
      out.className = "missing-summary";
    } else {
      var names = missing.map(function (slot) {
        return slot.angle_label || config.angles[slot.angle];
      }).join(strings.list_separator);
      out.textContent = fmt(strings.missing_some, { count: missing.length, slots: names });
      out.className = "missing-summary missing-summary--missing";
    }
    out.dataset.missing = String(missing.length);
  }

  function householdLabel(h) {
    return h.head_name + " · " + h.archive_no;
  }

  function chooseHousehold(h) {
    state.household = h;
    state.startedAt = new Date().toISOString();
    var box = $("chosen-household");
    box.textContent = "";
    box.appendChild(el("strong", { text: h.head_name }));
    box.appendChild(el("div", {
      className: "muted",
      text: h.archive_no + (h.village ? " · " + h.village.name : ""),
    }));
    $("inspection-form").hidden = false;
    $("find").hidden = true;
    $("saved-message").hidden = true;
    $("form-error").textContent = "";
    // Where the inspector stands, fetched now so that submitting does not wait for it.
    locate({ timeout: 15000 }).catch(function () {});
    $("inspection-form").scrollIntoView({ block: "start" });
  }

  function resetForm() {
    var form = $("inspection-form");
    form.reset();
    Object.keys(state.photos).forEach(function (key) { URL.revokeObjectURL(state.photos[key].url); });
    state.photos = {};
    state.household = null;
    state.startedAt = null;
    form.hidden = true;
    $("find").hidden = false;
    renderSlots();
    updateAppraisal();
  }

  function validate() {
    if (!state.household) return strings.choose_household;
    if (!currentKind()) return strings.choose_kind;
    if (appraisalIncluded()) {
      var missing = MEMBER_CODES.length - Object.keys(ratings()).length;
      if (missing) return fmt(strings.rate_all, { count: missing });
      var derived = deriveGrade(ratings(), hazards(), config.rule);
      var override = $("grade-override").value;
      if (override && override !== derived && !$("override-reason").value.trim()) {
        return strings.reason_required;
      }
    }
    return null;
  }

  function currentPosition() {
    // A fresh fix if one comes quickly; else the one taken when the form opened.
    var quick = locate({ timeout: 2500, maximumAge: 30000 }).catch(function () { return state.position; });
    var wait = new Promise(function (resolve) { setTimeout(function () { resolve(state.position); }, 3000); });
    return Promise.race([quick, wait]);
  }

  function submit(event) {
    event.preventDefault();
    var problem = validate();
    var errorBox = $("form-error");
    if (problem) {
      errorBox.textContent = problem;
      return;
    }
    errorBox.textContent = "";
    $("submit").disabled = true;
    var household = state.household;
    var kind = currentKind();
    currentPosition().then(function (position) {
      var clientUuid = uuid();
      var appraisal = null;
      if (appraisalIncluded()) {
        appraisal = Object.assign({ site_hazards: hazards() }, ratings());
        var derived = deriveGrade(ratings(), hazards(), config.rule);
        var override = $("grade-override").value;
        if (override && override !== derived) {
          appraisal.grade = override;
          appraisal.override_reason = $("override-reason").value.trim();
        }
      }
      var inspection = {
        client_uuid: clientUuid,
        user_id: config.user.id,
        user_name: config.user.name,
        household: household.id,
        household_label: householdLabel(household),
        kind: kind,
        started_at: state.startedAt,
        ended_at: new Date().toISOString(),
        location: position
          ? { lon: position.lon, lat: position.lat, accuracy: position.accuracy }
          : null,
        notes: $("notes").value.trim(),
        appraisal: appraisal,
        status: "waiting",
        attempts: 0,
        created_at: new Date().toISOString(),
      };
      var photos = Object.keys(state.photos).map(function (key) {
        var photo = state.photos[key];
        return {
          client_uuid: uuid(),
          inspection: clientUuid,
          user_id: config.user.id,
          stage: photo.slot.stage,
          angle: photo.slot.angle,
          blob: photo.file,
          name: photo.file.name || "photo.jpg",
          status: "waiting",
          attempts: 0,
        };
      });
      return Queue.add(inspection, photos).then(function () {
        askForBackgroundSync();
        resetForm();
        var saved = $("saved-message");
        saved.textContent = fmt(strings.saved_waiting, { household: inspection.household_label });
        saved.hidden = false;
        return renderQueue().then(function () { sync(true); });
      });
    }).catch(function (error) {
      errorBox.textContent = strings.storage_unavailable + " (" + error + ")";
    }).finally(function () {
      $("submit").disabled = false;
    });
  }

  /* ---- the queue: what waits, what was sent, what failed and why ---- */

  function statusLabel(status) {
    return strings["status_" + (status === "sending" ? "sending" : status)] || status;
  }

  function renderQueue() {
    return Queue.all().then(function (data) {
      var list = $("queue-list");
      list.textContent = "";
      var counts = { waiting: 0, sent: 0, failed: 0 };
      data.inspections.forEach(function (record) {
        var photos = data.photos.filter(function (p) { return p.inspection === record.client_uuid; });
        var photosSent = photos.filter(function (p) { return p.status === "sent"; }).length;
        var photosFailed = photos.filter(function (p) { return p.status === "failed"; });
        var status = record.status;
        // A record is sent when it and all its photos are; waiting while any still waits.
        if (status === "sent" && photosSent + photosFailed.length < photos.length) status = "waiting";
        if (status === "sent" && photosFailed.length) status = "failed";
        counts[status === "blocked" ? "waiting" : status] = (counts[status === "blocked" ? "waiting" : status] || 0) + 1;

        var kindLabel = (config.kinds.filter(function (k) { return k.code === record.kind; })[0] || {}).label || record.kind;
        var children = [
          el("div", { className: "queue-item__head" }, [
            el("span", { className: "queue-item__title", text: record.household_label }),
            el("span", { className: "status-pill status-pill--" + status, text: statusLabel(status) }),
          ]),
          el("p", {
            className: "queue-item__detail",
            text: kindLabel + " · " + new Date(record.created_at).toLocaleString(config.language) +
              (record.appraisal ? " · " + fmt(strings.grade_label, {
                grade: record.appraisal.grade || deriveGrade(record.appraisal, record.appraisal.site_hazards || [], config.rule),
              }) : ""),
          }),
          photos.length ? el("p", {
            className: "queue-item__detail queue-item__photos",
            text: fmt(strings.photos_progress, { sent: photosSent, total: photos.length }),
          }) : null,
        ];
        if (record.user_id !== config.user.id && record.status !== "sent") {
          children.push(el("p", { className: "queue-item__detail", text: fmt(strings.other_user, { user: record.user_name }) }));
        }
        if (record.status === "failed") {
          children.push(el("p", {
            className: "queue-item__error",
            text: fmt(strings.refused, { status: record.error_status, reason: record.error }),
          }));
        } else if (record.status === "blocked") {
          children.push(el("p", { className: "queue-item__error", text: strings.session_expired }));
        } else if (record.status === "waiting" && record.attempts) {
          children.push(el("p", {
            className: "queue-item__detail",
            text: (record.error_status ? fmt(strings.server_error, { status: record.error_status }) : strings.network_error) +
              " " + fmt(strings.attempts, { count: record.attempts }) +
              (record.next_try ? " " + fmt(strings.next_try, { time: formatTime(record.next_try) }) : ""),
          }));
        }
        photosFailed.forEach(function (photo) {
          children.push(el("p", {
            className: "queue-item__error",
            text: config.angles[photo.angle] + ": " + (photo.parent_failed
              ? strings.inspection_failed
              : fmt(strings.refused, { status: photo.error_status, reason: photo.error })),
          }));
        });
        if (record.server && record.server.url) {
          children.push(el("a", { href: record.server.url, text: strings.open_file }));
        }
        if (status === "failed") {
          var removeButton = el("button", { type: "button", className: "link-button", text: strings.remove });
          removeButton.addEventListener("click", function () {
            Queue.remove(record.client_uuid).then(renderQueue);
          });
          children.push(removeButton);
        }
        list.appendChild(el("li", {
          className: "queue-item",
          "data-client-uuid": record.client_uuid,
          "data-status": status,
        }, children));
      });
      $("queue-counts").textContent = data.inspections.length
        ? fmt(strings.queue_counts, counts)
        : strings.queue_empty;
      $("queue").dataset.waiting = String(counts.waiting);
      return data;
    });
  }

  function scheduleRetry(data) {
    clearTimeout(state.retryTimer);
    var next = Queue.nextTry(data, config.user.id);
    if (next) {
      state.retryTimer = setTimeout(function () { sync(false); }, Math.max(1000, next - Date.now()));
    }
  }

  function sync(force) {
    if (!navigator.onLine && !force) return Promise.resolve();
    return Queue.sync({
      userId: config.user.id,
      urls: config.urls,
      csrfToken: config.csrf_token,
      force: force,
      onChange: function () { renderQueue(); },
    }).catch(function () { return null; })
      .then(renderQueue)
      .then(function (data) { scheduleRetry(data); return data; });
  }

  /* ---- photo slots: the API's answer when online, the last one kept when not ---- */

  function loadSlots() {
    try {
      var saved = JSON.parse(localStorage.getItem(SLOTS_KEY));
      if (saved) state.slots = saved;
    } catch (error) { /* the page's own copy stands */ }
    return getJSON(config.urls.photo_slots).then(function (slots) {
      if (slots && typeof slots === "object" && !Array.isArray(slots)) {
        state.slots = slots;
        try { localStorage.setItem(SLOTS_KEY, JSON.stringify(slots)); } catch (error) { /* full */ }
        renderSlots();
      }
    }).catch(function () { /* offline: the saved or rendered slots stand */ });
  }

  /* ---- wiring ---- */

  $("search-form").addEventListener("submit", search);
  $("near-me").addEventListener("click", nearMe);
  $("change-household").addEventListener("click", function () {
    $("inspection-form").hidden = true;
    $("find").hidden = false;
  });
  $("inspection-form").addEventListener("submit", submit);
  $("inspection-form").addEventListener("change", function (event) {
    if (event.target.name === "kind") renderSlots();
    $("form-error").textContent = "";
    updateAppraisal();
  });
  $("inspection-form").addEventListener("input", function () {
    $("form-error").textContent = "";
    updateAppraisal();
  });
  $("retry").addEventListener("click", function () { sync(true); });
  window.addEventListener("online", function () { showNetwork(); sync(true); });
  window.addEventListener("offline", showNetwork);

  showNetwork();
  renderSlots();
  updateAppraisal();
  registerWorker();
  askForStorage();
  loadSlots();
  renderQueue().catch(function () {
    $("queue-counts").textContent = strings.storage_unavailable;
  }).then(function () { return sync(true); });

  // For the browser tests, and for anyone debugging on a phone.
  window.AnjuField = { deriveGrade: deriveGrade, sync: sync, renderQueue: renderQueue, formatDistance: formatDistance };
})();
