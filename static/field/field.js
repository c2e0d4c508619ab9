/* The field page: find the household, record the inspection, keep it until it is sent.
 *
 * Everything the page shows in words comes translated from the server (#field-strings);
 * the configuration (grade rule, choices, photo slots, URLs) comes in #field-config.
 *
 * The form is a draft in IndexedDB (queue.js) from the first tap: every change and every
 * photo is written at once, so that a reload or a killed tab loses nothing. The downloaded
 * villages (villages.js, window.AnjuVillages, optional) give offline search and the
 * household's context; without them the page works as before.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("field-config").textContent);
  var strings = JSON.parse(document.getElementById("field-strings").textContent);
  var Queue = window.AnjuQueue;
  var Common = window.AnjuFieldCommon;
  var $ = Common.$;
  var fmt = Common.fmt;
  var el = Common.el;
  var haversine = Common.haversine;
  // Households seen online, kept for offline search: one list per user, so that on a shared
  // phone nobody is offered the households of another's regions. The list of old pages was
  // one for all users: nobody can tell whose it is, so it goes.
  var KNOWN_KEY = "anju-field-households-" + config.user.id;
  var KNOWN_KEY_SHARED = "anju-field-households";
  var SLOTS_KEY = "anju-field-slots";
  var KNOWN_MAX = 500;
  // Written by the login page (forget.js) whenever it shows: this page's user is no longer
  // logged in on this browser, whoever logs in next. Read once, as the page was served.
  var SIGNED_OUT_KEY = "anju-field-signed-out";
  var signedOutAtLoad = readSignedOut();

  var POLL_FIRST_MS = 3000;
  var POLL_MAX_MS = 60000;
  var SENT_SHOWN = 20;
  // Thumbnails of sent photos fetched at once, to keep for the list offline.
  var THUMBS_PARALLEL = 2;

  var state = {
    household: null,
    startedAt: null,
    position: null,
    kind: null, // the kind the slots are laid out for (to ask before setting photos aside)
    draft: null, // the open draft's record (its photos are in `photos`)
    photos: {}, // "stage/angle" -> {file, url, slot, name, taken_at, file_modified, position}
    context: null, // {id, data}: AnjuVillages.context() of the chosen household
    slots: config.slots,
    retryTimer: null,
    pollTimer: null,
    pollDelay: POLL_FIRST_MS,
    saved: null, // {client_uuid, label}: the record the "saved on this phone" notice is about
    writes: Promise.resolve(), // draft writes, one after the other
    pendingWrites: 0,
    unsaved: {}, // "stage/angle" -> the photo not yet written to the draft (a refused write)
    thumbUrls: {}, // photo client_uuid -> object URL of its kept thumbnail
    fetchingThumbs: false,
  };

  function readSignedOut() {
    try { return localStorage.getItem(SIGNED_OUT_KEY); } catch (error) { return null; }
  }

  /* The login page has shown since this page was served: its user has logged out (or their
   * session ended) and someone else may be logged in now. The page must not send its user's
   * records with another's session, nor stay open for them: it reloads, and the server
   * answers with the login page or the new user's page. Records and drafts stay on the
   * phone with their user. */
  function userGone() {
    return readSignedOut() !== signedOutAtLoad;
  }

  function reloadIfUserGone() {
    if (!userGone()) return false;
    window.location.reload();
    return true;
  }

  // Set when the server says its session is another user's (queue.js's "gone"): the login
  // changed without the login page showing here, so localStorage never said so.
  var refusedAsOtherUser = false;
  var MISMATCH_RELOAD_KEY = "anju-field-mismatch-reload";
  // At most one reload a minute for it: on one bar of signal the worker may answer the
  // reload with the page it kept (still this user's), which would be refused again.
  var MISMATCH_RELOAD_MS = 60000;

  function serverSaysUserGone() {
    refusedAsOtherUser = true;
    var last = 0;
    try { last = Number(sessionStorage.getItem(MISMATCH_RELOAD_KEY)) || 0; } catch (error) { last = 0; }
    try {
      if (Date.now() - last >= MISMATCH_RELOAD_MS) {
        sessionStorage.setItem(MISMATCH_RELOAD_KEY, String(Date.now()));
        window.location.reload();
        return;
      }
    } catch (error) { /* no session storage: say so instead of reloading */ }
    var notice = $("saved-message");
    notice.textContent = strings.session_expired;
    notice.dataset.status = "gone";
    notice.hidden = false;
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

  function formatDateTime(value) {
    try {
      return new Date(value).toLocaleString(config.language, {
        year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      });
    } catch (error) {
      return new Date(value).toISOString();
    }
  }

  function kindLabel(code) {
    return (config.kinds.filter(function (k) { return k.code === code; })[0] || {}).label || code || "";
  }

  function slotLabel(slot) {
    return (slot.stage_label || config.stages[slot.stage]) + " · " + (slot.angle_label || config.angles[slot.angle]);
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

  function forgetSharedKnown() {
    try { localStorage.removeItem(KNOWN_KEY_SHARED); } catch (error) { /* no storage: fine */ }
  }

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

  function findStatus(text, warn) {
    var out = $("find-status");
    out.textContent = text || "";
    out.className = "find-status" + (warn ? " find-status--warn" : "");
  }

  // On one bar of signal a request can hang for minutes: give up after this long and fall
  // back to what the phone keeps, as when there is no network at all.
  var LOOKUP_TIMEOUT_MS = 10000;

  function getJSON(url) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, LOOKUP_TIMEOUT_MS) : null;
    var options = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (controller) options.signal = controller.signal;
    return fetch(url, options)
      .finally(function () { if (timer) clearTimeout(timer); })
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

  /* The downloaded villages, when villages.js is on the page; null when it is not. */
  function villages() {
    var api = window.AnjuVillages;
    return api && typeof api === "object" ? api : null;
  }

  /* Ask the villages store; whatever goes wrong there, the answer is "nothing". */
  function askVillages(method, args) {
    var api = villages();
    if (!api || typeof api[method] !== "function") return Promise.resolve(null);
    return Promise.resolve().then(function () { return api[method].apply(api, args); })
      .catch(function () { return null; });
  }

  /* One list from several, the first copy of each household kept. */
  function mergeHouseholds(lists) {
    var seen = {};
    var out = [];
    lists.forEach(function (list) {
      (Array.isArray(list) ? list : []).forEach(function (h) {
        if (!h || h.id === undefined || h.id === null || seen[h.id]) return;
        seen[h.id] = true;
        out.push(h);
      });
    });
    return out;
  }

  function offlineSearch(q) {
    var needle = q.trim().toLowerCase();
    var known = loadKnown();
    var saved = Object.keys(known).map(function (id) { return known[id]; }).filter(function (h) {
      return (h.head_name || "").toLowerCase().indexOf(needle) !== -1 ||
        (h.archive_no || "").toLowerCase().indexOf(needle) !== -1;
    });
    return askVillages("search", [q.trim()]).then(function (downloaded) {
      return mergeHouseholds([saved, downloaded]).slice(0, 20);
    });
  }

  function offlineNear(here) {
    var known = loadKnown();
    var saved = Object.keys(known).map(function (id) { return known[id]; })
      .filter(function (h) { return typeof h.lon === "number" && typeof h.lat === "number"; })
      .map(function (h) {
        return Object.assign({}, h, { distance_m: haversine(here.lon, here.lat, h.lon, h.lat) });
      });
    return askVillages("near", [here.lon, here.lat, 10]).then(function (downloaded) {
      return mergeHouseholds([saved, downloaded])
        .filter(function (h) { return typeof h.distance_m === "number" && !isNaN(h.distance_m); })
        .sort(function (a, b) { return a.distance_m - b.distance_m; })
        .slice(0, 10);
    });
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
      // The server said no (a login, an error): say why, and still offer what the phone has.
      var failure = error.session || error.server
        ? (error.server ? fmt(strings.search_failed, { reason: error.message }) : error.message)
        : null;
      return offlineSearch(q).then(function (saved) {
        showResults(saved);
        findStatus(failure || (saved.length ? strings.offline_results : strings.offline_no_results), true);
      });
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
        var failure = error.session || error.server
          ? (error.server ? fmt(strings.search_failed, { reason: error.message }) : error.message)
          : null;
        return offlineNear(here).then(function (saved) {
          showResults(saved);
          findStatus(failure || (saved.length ? strings.offline_nearby : strings.offline_no_results), true);
        });
      });
    }).catch(function (error) { findStatus(error.message, true); });
  }

  /* ---- the inspection form ---- */

  function currentKind() {
    var checked = document.querySelector("input[name=kind]:checked");
    return checked ? checked.value : null;
  }

  function checkKind(kind) {
    var radio = document.querySelector("input[name=kind][value='" + CSS.escape(kind || "") + "']");
    if (radio) radio.checked = true;
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

  /* A grade pill; with no grade (nothing rated yet) it is empty, and hidden by the CSS. */
  function setGrade(output, grade) {
    output.textContent = grade || "";
    output.className = "grade grade--" + (grade || "none");
    output.dataset.grade = grade || "";
    if (grade) output.removeAttribute("title");
    else output.title = strings.not_rated;
  }

  function updateAppraisal() {
    var kind = currentKind();
    var need = config.appraisal_kinds[kind];
    $("appraisal").hidden = !need;
    $("appraisal-toggle-row").hidden = need !== "optional";
    $("appraisal-fields").hidden = !appraisalIncluded();

    var given = ratings();
    var rated = Object.keys(given).length > 0;
    // Nothing rated is no grade at all (not "A"): the rule only reads what was given.
    var grade = rated ? deriveGrade(given, hazards(), config.rule) : null;
    var missing = MEMBER_CODES.length - Object.keys(given).length;
    setGrade($("derived-grade"), grade);
    $("rate-hint").textContent = !rated ? strings.not_rated : (missing ? fmt(strings.rate_all, { count: missing }) : "");
    $("grade-same").textContent = grade ? fmt(strings.grade_same, { grade: grade }) : strings.grade_same_unrated;
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
    // A retake draft brings its slot, even if the slots have changed since.
    var retake = state.draft && state.draft.retake;
    if (retake && !required.some(function (slot) { return slotKey(slot) === slotKey(retake); })) {
      required.push({
        stage: retake.stage,
        angle: retake.angle,
        stage_label: config.stages[retake.stage],
        angle_label: config.angles[retake.angle],
        required: false,
      });
    }
    return required;
  }

  function slotKeys(kind) {
    var keys = {};
    slotsForKind(kind).forEach(function (slot) { keys[slotKey(slot)] = true; });
    return keys;
  }

  /* The earlier photo of the household to match this slot: the same stage and angle, or
   * else the latest of the same angle (a "before" shot for an "after" one). */
  function earlierPhoto(slot) {
    var photos = state.context && state.context.data && state.context.data.photos;
    if (!photos || typeof photos !== "object") return null;
    if (photos[slotKey(slot)] && photos[slotKey(slot)].url) return photos[slotKey(slot)];
    var best = null;
    Object.keys(photos).forEach(function (key) {
      var photo = photos[key];
      if (!photo || !photo.url || key.split("/")[1] !== slot.angle) return;
      if (!best || (photo.taken_at || "") > (best.taken_at || "")) best = photo;
    });
    return best;
  }

  function takePhoto(slot, file) {
    var key = slotKey(slot);
    if (state.photos[key]) URL.revokeObjectURL(state.photos[key].url);
    state.photos[key] = {
      file: file,
      url: URL.createObjectURL(file),
      slot: { stage: slot.stage, angle: slot.angle, stage_label: slot.stage_label, angle_label: slot.angle_label },
      name: file.name || "photo.jpg",
      taken_at: new Date().toISOString(),
      file_modified: file.lastModified || null,
      position: state.position ? Object.assign({}, state.position) : null,
    };
    renderSlots();
    saveDraft(key);
  }

  function renderSlots() {
    var list = $("slots");
    var kind = currentKind();
    var retake = state.draft && state.draft.retake ? slotKey(state.draft.retake) : null;
    list.textContent = "";
    var shown = {};
    slotsForKind(kind).forEach(function (slot) {
      var key = slotKey(slot);
      shown[key] = true;
      var photo = state.photos[key];
      var input = el("input", {
        type: "file",
        accept: "image/*",
        capture: "environment",
        "data-stage": slot.stage,
        "data-angle": slot.angle,
      });
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        if (file) takePhoto(slot, file);
      });
      var label = slotLabel(slot);
      var earlier = earlierPhoto(slot);
      var status = photo ? strings.photo_taken : (key === retake ? strings.retake_this : (slot.required ? strings.photo_missing : ""));
      var item = el("li", {
        className: "slot" + (photo ? " slot--taken" : "") + (slot.required ? "" : " slot--optional") +
          (key === retake ? " slot--retake" : ""),
        "data-slot": key,
      }, [
        el("span", { className: "slot__label", text: label }),
        photo ? el("img", { className: "slot__preview", src: photo.url, alt: label }) : null,
        earlier ? el("figure", { className: "slot__earlier" }, [
          el("img", { src: earlier.url, alt: fmt(strings.earlier_photo_alt, { slot: label }) }),
          el("figcaption", {
            text: earlier.taken_at
              ? fmt(strings.earlier_photo, { date: String(earlier.taken_at).slice(0, 10) })
              : strings.earlier_photo_undated,
          }),
        ]) : null,
        el("span", { className: "slot__status", text: status }),
        el("label", { className: "slot__camera", title: label }, [
          el("span", { text: photo ? strings.retake_photo : strings.take_photo }),
          input,
        ]),
      ]);
      input.setAttribute("aria-label", fmt(strings.take_photo_of, { slot: label }));
      list.appendChild(item);
    });
    // Photos of slots this kind does not have: kept in the draft, back if the kind is.
    var aside = Object.keys(state.photos).filter(function (key) { return !shown[key]; });
    var box = $("aside-photos");
    box.textContent = "";
    aside.forEach(function (key) {
      var photo = state.photos[key];
      var label = slotLabel(photo.slot);
      box.appendChild(el("li", { className: "aside-photo", "data-slot": key }, [
        el("img", { className: "aside-photo__preview", src: photo.url, alt: label }),
        el("span", { text: label }),
      ]));
    });
    $("aside").hidden = !aside.length;
    $("aside-title").textContent = aside.length ? fmt(strings.aside_title, { count: aside.length }) : "";
    updateMissing();
  }

  /* The photos a kind would set aside: taken, and in no slot of that kind. */
  function photosAside(kind) {
    var keys = slotKeys(kind);
    return Object.keys(state.photos).filter(function (key) { return !keys[key]; });
  }

  /* Another kind: the photos keep their slots where it has them; the others are set aside
   * (kept in the draft) only once the inspector agrees. False: the kind stays as it was. */
  function changeKind(kind) {
    var before = photosAside(state.kind);
    var more = photosAside(kind).filter(function (key) { return before.indexOf(key) === -1; });
    if (more.length && !window.confirm(fmt(strings.kind_change_aside, { count: more.length, kind: kindLabel(kind) }))) {
      checkKind(state.kind);
      return false;
    }
    state.kind = kind;
    renderSlots();
    return true;
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
    return h.archive_no ? h.head_name + " · " + h.archive_no : h.head_name;
  }

  /* ---- the household's context: its grade, last visit and earlier photos ---- */

  function renderContext() {
    var box = $("context");
    var data = state.context && state.context.data;
    box.textContent = "";
    box.hidden = !data;
    if (!data) return;
    // One translated sentence, the grade's pill put where its placeholder is.
    box.appendChild(el("p", { className: "context__grade" }, Common.fmtNodes(
      data.graded_on ? strings.context_grade_on : strings.context_grade,
      { grade: gradePill(data.grade), date: data.graded_on || "" }
    )));
    var visit = data.last_visit;
    box.appendChild(el("p", {
      className: "context__visit",
      text: visit
        ? fmt(strings.context_last_visit, { date: visit.date, kind: visit.kind_label || kindLabel(visit.kind) })
        : strings.context_no_visit,
    }));
  }

  function loadContext(household) {
    state.context = null;
    renderContext();
    if (!household) return;
    var id = household.id;
    askVillages("context", [id]).then(function (data) {
      if (!state.household || state.household.id !== id) return; // another one since
      state.context = data && typeof data === "object" ? { id: id, data: data } : null;
      renderContext();
      renderSlots();
    });
  }

  /* ---- drafts: the form in IndexedDB from the first tap ---- */

  function errorText(error) {
    return Common.storageReason(error, strings);
  }

  /* Whether the draft is kept; a refused write says so and stays said until one succeeds
   * (each write retries the photos refused before), never a silent loss. */
  function showDraftStatus(error) {
    var out = $("draft-status");
    out.dataset.pending = String(state.pendingWrites);
    if (error) {
      var full = Queue.isQuotaError(error);
      out.textContent = full ? strings.draft_storage_full : fmt(strings.draft_failed, { reason: errorText(error) });
      out.className = "field-error";
      out.dataset.error = full ? "quota" : "failed";
    } else if (state.draft && !state.pendingWrites) {
      out.textContent = fmt(strings.draft_saved, { time: formatTime(Date.now()) });
      out.className = "muted";
      delete out.dataset.error;
    }
  }

  /* Draft writes run one after the other, in the order of the changes: the last one wins.
   * `quiet`: the caller says what went wrong (a record handed to the queue). */
  function write(work, quiet) {
    state.pendingWrites += 1;
    showDraftStatus(null);
    var done = state.writes.then(work);
    state.writes = done.then(function () {
      state.pendingWrites -= 1;
      showDraftStatus(null);
    }, function (error) {
      state.pendingWrites -= 1;
      if (quiet) showDraftStatus(null);
      else showDraftStatus(error);
    });
    return done;
  }

  function formSnapshot() {
    return {
      household: state.household,
      started_at: state.startedAt,
      kind: currentKind(),
      appraisal_on: $("appraisal-toggle").checked,
      ratings: ratings(),
      hazards: hazards(),
      override: $("grade-override").value,
      override_reason: $("override-reason").value,
      notes: $("notes").value,
      photos: Object.keys(state.photos),
    };
  }

  function draftPhoto(draft, key, photo) {
    return {
      id: draft.id + "|" + key,
      draft: draft.id,
      key: key,
      stage: photo.slot.stage,
      angle: photo.slot.angle,
      stage_label: photo.slot.stage_label || null,
      angle_label: photo.slot.angle_label || null,
      blob: photo.file,
      name: photo.name,
      type: photo.file.type || "image/jpeg",
      taken_at: photo.taken_at,
      file_modified: photo.file_modified,
      position: photo.position,
    };
  }

  /* Write the open form (and, with a slot key, that slot's photo) to its draft. A photo the
   * phone refused to keep (full) goes again with every later write until one succeeds. */
  function saveDraft(photoKey) {
    var draft = state.draft;
    if (!draft || !state.household) return Promise.resolve(null);
    Object.assign(draft, formSnapshot(), { updated_at: new Date().toISOString() });
    var record = JSON.parse(JSON.stringify(draft));
    if (photoKey && state.photos[photoKey]) state.unsaved[photoKey] = state.photos[photoKey];
    var unsaved = Object.keys(state.unsaved).map(function (key) { return [key, state.unsaved[key]]; });
    var photoRecords = unsaved.map(function (pair) { return draftPhoto(draft, pair[0], pair[1]); });
    return write(function () {
      // Sent or discarded meanwhile: nothing more to keep.
      if (draft.closed) return null;
      return Queue.saveDraft(record, photoRecords).then(function () {
        unsaved.forEach(function (pair) {
          if (state.unsaved[pair[0]] === pair[1]) delete state.unsaved[pair[0]];
        });
      }, function (error) {
        if (!photoRecords.length || !Queue.isQuotaError(error)) throw error;
        // No room for the photos: keep the form without them if it fits (so that, resumed
        // after a killed tab, the draft names the photos it lost), and still say so.
        var fail = function () { throw error; };
        return Queue.saveDraft(record, []).then(fail, fail);
      });
    });
  }

  function newDraft(extra) {
    var now = new Date().toISOString();
    state.startedAt = now;
    state.draft = Object.assign({ id: uuid(), user_id: config.user.id, created_at: now, retake: null }, extra || {});
    return state.draft;
  }

  function renderDrafts() {
    return Queue.drafts(config.user.id).then(function (list) {
      var open = state.draft ? state.draft.id : null;
      var others = list.filter(function (draft) { return draft.id !== open && draft.household; });
      var box = $("drafts-list");
      box.textContent = "";
      others.forEach(function (draft) {
        var count = (draft.photos || []).length;
        var resume = el("button", { type: "button", className: "button draft-resume", text: strings.draft_resume });
        resume.addEventListener("click", function () { resumeDraft(draft.id); });
        var discard = el("button", { type: "button", className: "link-button draft-discard", text: strings.draft_discard });
        discard.addEventListener("click", function () {
          if (!window.confirm(fmt(strings.draft_discard_confirm, { household: householdLabel(draft.household) }))) return;
          write(function () { return Queue.removeDraft(draft.id); }).then(renderDrafts);
        });
        box.appendChild(el("li", { className: "queue-item draft", "data-draft-id": draft.id }, [
          el("div", { className: "queue-item__head" }, [
            el("span", { className: "queue-item__title", text: householdLabel(draft.household) }),
          ]),
          el("p", {
            className: "queue-item__detail draft__detail",
            text: [
              kindLabel(draft.kind),
              fmt(strings.draft_photos, { count: count }),
              fmt(strings.draft_changed, { time: formatDateTime(draft.updated_at) }),
            ].join(" · "),
          }),
          el("div", { className: "draft__actions" }, [resume, discard]),
        ]));
      });
      $("drafts").hidden = !others.length;
      return others;
    }).catch(function () { $("drafts").hidden = true; });
  }

  function showHousehold(h) {
    var box = $("chosen-household");
    box.textContent = "";
    box.appendChild(el("strong", { text: h.head_name }));
    box.appendChild(el("div", {
      className: "muted",
      text: (h.archive_no || "") + (h.village && h.village.name ? " · " + h.village.name : ""),
    }));
  }

  function showForm() {
    $("inspection-form").hidden = false;
    $("find").hidden = true;
    $("form-error").textContent = "";
    $("inspection-form").scrollIntoView({ block: "start" });
  }

  /* Empty the form and forget the open draft (which stays in IndexedDB unless closed). */
  function clearForm() {
    $("inspection-form").reset();
    Object.keys(state.photos).forEach(function (key) { URL.revokeObjectURL(state.photos[key].url); });
    state.photos = {};
    state.household = null;
    state.startedAt = null;
    state.draft = null;
    state.unsaved = {};
    state.context = null;
    state.kind = currentKind();
    $("draft-status").textContent = "";
    delete $("draft-status").dataset.error;
    renderContext();
  }

  function chooseHousehold(h) {
    var changed = !state.household || state.household.id !== h.id;
    state.household = h;
    if (!state.draft) newDraft();
    // Where the inspector stands, and when the visit starts: with the household.
    else if (changed) state.startedAt = new Date().toISOString();
    showHousehold(h);
    $("saved-message").hidden = true;
    showForm();
    if (changed) loadContext(h);
    saveDraft();
    renderDrafts();
    locate({ timeout: 15000 }).catch(function () {});
  }

  /* Open a draft in the form: every field and every photo as they were last written. */
  function resumeDraft(id) {
    return Queue.getDraft(id).then(function (stored) {
      if (!stored) return renderDrafts();
      var draft = stored.draft;
      clearForm();
      state.draft = draft;
      state.household = draft.household;
      state.startedAt = draft.started_at;
      checkKind(draft.kind);
      state.kind = currentKind();
      $("appraisal-toggle").checked = draft.appraisal_on !== false;
      fillAppraisal(draft);
      $("notes").value = draft.notes || "";
      stored.photos.forEach(function (photo) {
        if (!photo.blob) return;
        state.photos[photo.key] = {
          file: photo.blob,
          url: URL.createObjectURL(photo.blob),
          slot: { stage: photo.stage, angle: photo.angle, stage_label: photo.stage_label, angle_label: photo.angle_label },
          name: photo.name,
          taken_at: photo.taken_at,
          file_modified: photo.file_modified,
          position: photo.position,
        };
      });
      showHousehold(draft.household);
      $("saved-message").hidden = true;
      renderSlots();
      updateAppraisal();
      showForm();
      showDraftStatus(null);
      // Photos the form had that the phone could not keep (it was full): say which.
      var lost = (draft.photos || []).filter(function (key) { return !state.photos[key]; });
      if (lost.length) {
        var out = $("draft-status");
        out.textContent = fmt(strings.draft_photos_lost, {
          count: lost.length,
          slots: lost.map(function (key) {
            var parts = key.split("/");
            return slotLabel({ stage: parts[0], angle: parts[1] });
          }).join(strings.list_separator),
        });
        out.className = "field-error";
        out.dataset.error = "lost";
      }
      loadContext(draft.household);
      locate({ timeout: 15000 }).catch(function () {});
      return renderDrafts();
    });
  }

  function fillAppraisal(values) {
    Object.keys(values.ratings || {}).forEach(function (code) {
      var radio = document.querySelector(
        "input[name='member-" + CSS.escape(code) + "'][value='" + CSS.escape(values.ratings[code]) + "']"
      );
      if (radio) radio.checked = true;
    });
    Array.prototype.forEach.call(document.querySelectorAll("input[name=site_hazards]"), function (input) {
      input.checked = (values.hazards || []).indexOf(input.value) !== -1;
    });
    $("grade-override").value = values.override || "";
    $("override-reason").value = values.override_reason || "";
  }

  /* A flagged photo, shot again: a new draft for the same household, kind and slot. */
  function retake(record, photo) {
    var household = record.household_info ||
      { id: record.household, head_name: record.household_label, archive_no: "", village: null };
    clearForm();
    state.household = household;
    newDraft({ retake: { stage: photo.stage, angle: photo.angle, from: photo.client_uuid } });
    checkKind(record.kind);
    state.kind = currentKind();
    if (record.appraisal) {
      $("appraisal-toggle").checked = true;
      var given = {};
      MEMBER_CODES.forEach(function (code) { if (record.appraisal[code]) given[code] = record.appraisal[code]; });
      fillAppraisal({
        ratings: given,
        hazards: record.appraisal.site_hazards || [],
        override: record.appraisal.grade || "",
        override_reason: record.appraisal.override_reason || "",
      });
    }
    showHousehold(household);
    $("saved-message").hidden = true;
    renderSlots();
    updateAppraisal();
    showForm();
    loadContext(household);
    saveDraft();
    renderDrafts();
    locate({ timeout: 15000 }).catch(function () {});
    var slot = document.querySelector("[data-slot='" + CSS.escape(photo.stage + "/" + photo.angle) + "']");
    if (slot) slot.scrollIntoView({ block: "center" });
  }

  function discardOpenDraft() {
    var draft = state.draft;
    if (!draft) return;
    if (!window.confirm(fmt(strings.draft_discard_confirm, { household: householdLabel(state.household) }))) return;
    draft.closed = true;
    write(function () { return Queue.removeDraft(draft.id); }).then(function () {
      resetForm();
      return renderDrafts();
    });
  }

  function resetForm() {
    clearForm();
    $("inspection-form").hidden = true;
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
    // Photos set aside go with the draft: never without the inspector's word.
    var aside = photosAside(currentKind());
    if (aside.length && !window.confirm(fmt(strings.send_without_aside, { count: aside.length }))) return;
    errorBox.textContent = "";
    $("submit").disabled = true;
    var household = state.household;
    var kind = currentKind();
    var draft = state.draft;
    var sendKeys = Object.keys(slotKeys(kind)).filter(function (key) { return state.photos[key]; });
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
        // The household as the page knew it: a retake opens a draft for it again.
        household_info: {
          id: household.id,
          archive_no: household.archive_no || "",
          head_name: household.head_name,
          village: household.village || null,
          grade: household.grade || null,
          lon: household.lon === undefined ? null : household.lon,
          lat: household.lat === undefined ? null : household.lat,
        },
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
      var photos = sendKeys.map(function (key) {
        var photo = state.photos[key];
        return {
          client_uuid: uuid(),
          inspection: clientUuid,
          user_id: config.user.id,
          stage: photo.slot.stage,
          angle: photo.slot.angle,
          blob: photo.file,
          name: photo.name || "photo.jpg",
          taken_at: photo.taken_at || null,
          position: photo.position || null,
          status: "waiting",
          attempts: 0,
        };
      });
      // After the draft's pending writes; the draft goes in the queue's own transaction.
      return write(function () {
        if (draft) draft.closed = true;
        return Queue.add(inspection, photos, draft ? draft.id : null);
      }, true).then(function () {
        askForBackgroundSync();
        resetForm();
        state.saved = { client_uuid: clientUuid, label: inspection.household_label };
        var saved = $("saved-message");
        saved.textContent = fmt(strings.saved_waiting, { household: inspection.household_label });
        saved.dataset.status = "waiting";
        saved.hidden = false;
        renderDrafts();
        return renderQueue().then(function () { sync(true); });
      }, function (error) {
        if (draft) draft.closed = false;
        throw error;
      });
    }).catch(function (error) {
      // Nothing is lost: the form and its draft are as they were.
      errorBox.textContent = Queue.isQuotaError(error)
        ? strings.send_storage_full
        : strings.storage_unavailable + " (" + errorText(error) + ")";
    }).finally(function () {
      $("submit").disabled = false;
    });
  }

  /* ---- the queue: what waits, what was sent, what failed and why ---- */

  function statusLabel(status) {
    return strings["status_" + (status === "sending" ? "sending" : status)] || status;
  }

  function renderQueue() {
    return Promise.all([Queue.all(), keptThumbs()]).then(function (both) {
      var data = both[0];
      var list = $("queue-list");
      list.textContent = "";
      var counts = { waiting: 0, sent: 0, failed: 0 };
      // Another user's records are theirs (sent when they log in on this phone): only how
      // many wait is said, never what they are.
      var othersWaiting = data.inspections.filter(function (record) {
        return record.user_id !== config.user.id && record.status !== "sent";
      }).length;
      data.inspections.filter(function (record) {
        return record.user_id === config.user.id;
      }).forEach(function (record) {
        var photos = data.photos.filter(function (p) { return p.inspection === record.client_uuid; });
        var photosSent = photos.filter(function (p) { return p.status === "sent"; }).length;
        var photosFailed = photos.filter(function (p) { return p.status === "failed"; });
        var status = record.status;
        // A record is sent when it and all its photos are; waiting while any still waits.
        if (status === "sent" && photosSent + photosFailed.length < photos.length) status = "waiting";
        if (status === "sent" && photosFailed.length) status = "failed";
        counts[status === "blocked" ? "waiting" : status] = (counts[status === "blocked" ? "waiting" : status] || 0) + 1;

        if (state.saved && state.saved.client_uuid === record.client_uuid && status === "sent") {
          // The notice said "saved on this phone, waiting": it is on the server now.
          var saved = $("saved-message");
          saved.textContent = fmt(strings.saved_sent, { household: state.saved.label });
          saved.dataset.status = "sent";
          state.saved = null;
        }
        var children = [
          el("div", { className: "queue-item__head" }, [
            el("span", { className: "queue-item__title", text: record.household_label }),
            el("span", { className: "status-pill status-pill--" + status, text: statusLabel(status) }),
          ]),
          el("p", {
            className: "queue-item__detail",
            text: kindLabel(record.kind) + " · " + new Date(record.created_at).toLocaleString(config.language) +
              (record.appraisal ? " · " + fmt(strings.grade_label, {
                grade: record.appraisal.grade || deriveGrade(record.appraisal, record.appraisal.site_hazards || [], config.rule),
              }) : ""),
          }),
          photos.length ? el("p", {
            className: "queue-item__detail queue-item__photos",
            text: fmt(strings.photos_progress, { sent: photosSent, total: photos.length }),
          }) : null,
        ];
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
      var own = counts.waiting + counts.sent + counts.failed;
      $("queue-counts").textContent = own ? fmt(strings.queue_counts, counts) : strings.queue_empty;
      var others = $("queue-others");
      if (others) {
        others.textContent = othersWaiting ? fmt(strings.others_waiting, { count: othersWaiting }) : "";
        others.hidden = !othersWaiting;
      }
      $("queue").dataset.waiting = String(counts.waiting);
      renderSent(data);
      return data;
    });
  }

  /* ---- sent photos: what the server's checks found, and a retake where they found something ---- */

  /* The user's sent records the list shows (the newest first), each with its sent photos. */
  function sentShown(data) {
    var shown = [];
    data.inspections.forEach(function (record) {
      if (record.status !== "sent" || record.user_id !== config.user.id || shown.length >= SENT_SHOWN) return;
      var photos = data.photos.filter(function (p) { return p.inspection === record.client_uuid && p.status === "sent"; });
      if (photos.length) shown.push({ record: record, photos: photos });
    });
    return shown;
  }

  /* Object URLs of the kept thumbnails of sent photos: one per photo for the page's life,
   * revoked once its record has gone from the phone. */
  function keptThumbs() {
    return Queue.thumbs().then(function (list) {
      var present = {};
      list.forEach(function (thumb) {
        if (!thumb.blob) return;
        present[thumb.photo] = true;
        if (!state.thumbUrls[thumb.photo]) state.thumbUrls[thumb.photo] = URL.createObjectURL(thumb.blob);
      });
      Object.keys(state.thumbUrls).forEach(function (photo) {
        if (present[photo]) return;
        URL.revokeObjectURL(state.thumbUrls[photo]);
        delete state.thumbUrls[photo];
      });
    }).catch(function () { return null; });
  }

  /* Fetch, once, the thumbnail of each photo the Sent list shows and keep it as a Blob, so
   * that the list shows offline too. A few at a time; stops at the first network error, a
   * lost login or a full phone (the list then shows the server's copy while online). */
  function keepSentThumbs(data) {
    if (state.fetchingThumbs || navigator.onLine === false) return Promise.resolve(0);
    var wanted = [];
    sentShown(data).forEach(function (item) {
      item.photos.forEach(function (photo) {
        if (photo.server && photo.server.thumbnail_url && !state.thumbUrls[photo.client_uuid]) wanted.push(photo);
      });
    });
    if (!wanted.length) return Promise.resolve(0);
    state.fetchingThumbs = true;
    var kept = 0;
    var stopped = false;
    function next() {
      var photo = wanted.shift();
      if (!photo || stopped) return Promise.resolve();
      return fetch(photo.server.thumbnail_url, { credentials: "same-origin", headers: { Accept: "image/*" } })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          if (!response.ok || response.redirected || type.indexOf("image/") !== 0) {
            if (response.status !== 404) stopped = true; // a 404 is one photo gone, not all
            return null;
          }
          return response.blob().then(function (blob) {
            return Queue.putThumb({
              photo: photo.client_uuid,
              inspection: photo.inspection,
              user_id: photo.user_id,
              blob: blob,
              size: blob.size,
              kept_at: Date.now(),
            });
          }).then(function () { kept += 1; });
        })
        .catch(function () { stopped = true; })
        .then(next);
    }
    var workers = [];
    for (var i = 0; i < THUMBS_PARALLEL; i += 1) workers.push(next());
    return Promise.all(workers).then(function () {
      state.fetchingThumbs = false;
      return kept ? renderQueue().then(function () { return kept; }) : kept;
    });
  }

  function renderSent(data) {
    var list = $("sent-list");
    list.textContent = "";
    var shown = sentShown(data);
    shown.forEach(function (entry) {
      var record = entry.record;
      var items = entry.photos.map(function (photo) {
        var server = photo.server || null;
        var label = slotLabel(photo);
        var flags = server && server.flags ? server.flags : [];
        var checking = !server || server.status === "pending";
        // The kept copy when there is one; the server's only while online.
        var kept = state.thumbUrls[photo.client_uuid];
        var src = kept || (server && server.thumbnail_url && navigator.onLine !== false ? server.thumbnail_url : null);
        var children = [
          src
            ? el("img", { className: "sent-photo__thumb", src: src, alt: label, "data-kept": kept ? "true" : "false" })
            : el("span", { className: "sent-photo__thumb sent-photo__thumb--none" }),
          el("span", { className: "sent-photo__label", text: label }),
        ];
        if (checking) {
          children.push(el("span", { className: "sent-photo__status", text: strings.photo_checking }));
        } else if (!flags.length) {
          children.push(el("span", { className: "sent-photo__status sent-photo__status--ok", text: strings.photo_no_flags }));
        } else {
          children.push(el("ul", { className: "sent-photo__flags" }, flags.map(function (flag) {
            return el("li", {
              className: "sent-photo__flag",
              "data-flag": flag.code,
              text: flag.detail ? fmt(strings.flag_with_detail, { label: flag.label, detail: flag.detail }) : flag.label,
            });
          })));
          var again = el("button", { type: "button", className: "button button--secondary sent-photo__retake", text: strings.retake_flagged });
          again.addEventListener("click", function () { retake(record, photo); });
          children.push(again);
        }
        return el("li", {
          className: "sent-photo" + (flags.length ? " sent-photo--flagged" : ""),
          "data-photo": photo.client_uuid,
          "data-slot": photo.stage + "/" + photo.angle,
          "data-checked": checking ? "false" : "true",
        }, children);
      });
      list.appendChild(el("li", { className: "sent-record", "data-client-uuid": record.client_uuid }, [
        el("p", {
          className: "sent-record__title",
          text: record.household_label + " · " + kindLabel(record.kind),
        }),
        el("ul", { className: "sent-photos" }, items),
      ]));
    });
    $("sent").hidden = !shown.length;
  }

  /* Ask the server about sent photos until every one is processed; only when online. */
  function pollPhotos() {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
    if (!navigator.onLine) return Promise.resolve(null);
    return Queue.refreshPhotos({ userId: config.user.id, urls: config.urls }).then(function (result) {
      return renderQueue().then(keepSentThumbs).then(function () {
        if (result.pending > 0) {
          state.pollTimer = setTimeout(pollPhotos, state.pollDelay);
          state.pollDelay = Math.min(POLL_MAX_MS, Math.round(state.pollDelay * 1.5));
        } else {
          state.pollDelay = POLL_FIRST_MS;
        }
        return result;
      });
    }).catch(function () { return null; });
  }

  function scheduleRetry(data) {
    clearTimeout(state.retryTimer);
    var next = Queue.nextTry(data, config.user.id);
    if (next) {
      state.retryTimer = setTimeout(function () { sync(false); }, Math.max(1000, next - Date.now()));
    }
  }

  function sync(force) {
    if (reloadIfUserGone()) return Promise.resolve();
    // The server said this page's user is not the one logged in: nothing more is sent.
    if (refusedAsOtherUser) return renderQueue();
    if (!navigator.onLine && !force) return Promise.resolve();
    return Queue.sync({
      userId: config.user.id,
      urls: config.urls,
      csrfToken: config.csrf_token,
      force: force,
      // Checked before each request: a logout in another tab stops the sending at once.
      current: function () { return !userGone(); },
      onChange: function () { renderQueue(); },
    }).then(function (result) {
      if (result && result.stopped && result.stopped.result === "gone") serverSaysUserGone();
      return result;
    }).catch(function () { return null; })
      // The oldest sent records beyond the limit go (their thumbnails with them).
      .then(function () { return Queue.pruneSent().catch(function () { return null; }); })
      .then(renderQueue)
      .then(function (data) {
        scheduleRetry(data);
        state.pollDelay = POLL_FIRST_MS;
        pollPhotos();
        return data;
      });
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
  $("discard-draft").addEventListener("click", discardOpenDraft);
  $("inspection-form").addEventListener("submit", submit);
  // Every change goes to the draft at once. Photos write themselves (with their Blob).
  $("inspection-form").addEventListener("change", function (event) {
    if (event.target.type === "file") return;
    if (event.target.name === "kind" && !changeKind(event.target.value)) return;
    $("form-error").textContent = "";
    updateAppraisal();
    saveDraft();
  });
  // Typing: radios and boxes wait for "change" (a kind change may still be refused).
  $("inspection-form").addEventListener("input", function (event) {
    if (event.target.tagName !== "TEXTAREA" && event.target.type !== "text") return;
    $("form-error").textContent = "";
    updateAppraisal();
    saveDraft();
  });
  $("retry").addEventListener("click", function () { sync(true); });
  window.addEventListener("online", function () { showNetwork(); sync(true); });
  window.addEventListener("offline", showNetwork);
  // A logout or a login in another tab (or the installed app's window): this page's user is
  // gone. Checked again when the page comes back into view, in case it slept meanwhile.
  window.addEventListener("storage", function (event) {
    if (event.key === SIGNED_OUT_KEY || event.key === null) reloadIfUserGone();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reloadIfUserGone();
  });
  window.addEventListener("pageshow", reloadIfUserGone);

  showNetwork();
  forgetSharedKnown();
  state.kind = currentKind();
  renderSlots();
  updateAppraisal();
  renderDrafts();
  registerWorker();
  askForStorage();
  loadSlots();
  renderQueue().catch(function () {
    $("queue-counts").textContent = strings.storage_unavailable;
  }).then(function () { return sync(true); });

  // For the browser tests, and for anyone debugging on a phone.
  window.AnjuField = {
    deriveGrade: deriveGrade,
    sync: sync,
    renderQueue: renderQueue,
    renderDrafts: renderDrafts,
    pollPhotos: pollPhotos,
    formatDistance: formatDistance,
  };
})();
