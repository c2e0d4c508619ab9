/* Anju field page: villages kept on the phone, for search, "near me" and a household's past
 * with no network.
 *
 * "Download" keeps, per chosen village, every household with its last grade, last visit and
 * the thumbnails of its earlier photos, in this phone's IndexedDB (one database per user,
 * so that a shared phone never shows one inspector's households to another). Words come
 * translated from the server (#field-strings), URLs from #field-config, as for field.js.
 *
 * window.AnjuVillages (field.js calls it):
 *   search(q) -> Promise<[Household]>            substring of head_name or archive_no, max 50
 *   near(lon, lat, limit) -> Promise<[Household & {distance_m}]>
 *   context(id) -> Promise<null | {grade, graded_on, last_visit, photos}>
 * Household = {id, archive_no, head_name, village: {code, name}, grade, lon, lat}.
 *
 * What the phone keeps follows the user's regions: each time the server lists the villages
 * it offers, a kept village it no longer offers goes from the phone (its households and
 * thumbnails), and so does one whose update the server answers 404. A network failure
 * removes nothing: offline, the kept villages are the point.
 */
(function () {
  "use strict";

  var configNode = document.getElementById("field-config");
  if (!configNode) return;  // the page refused this user: nothing to keep
  var config = JSON.parse(configNode.textContent);
  var strings = JSON.parse(document.getElementById("field-strings").textContent);
  var urls = config.urls;
  var Common = window.AnjuFieldCommon;
  var $ = Common.$;
  var fmt = Common.fmt;
  var el = Common.el;
  var haversine = Common.haversine;
  var isQuotaError = window.AnjuQueue.isQuotaError;

  var DB_NAME = "anju-villages-" + config.user.id;
  var DB_VERSION = 1;
  var MAX_RESULTS = 50;
  // Thumbnails fetched at once: enough to fill one bar of signal, few enough for a slow phone.
  var PARALLEL = 4;
  var CONTEXT_TIMEOUT_MS = 5000;
  // A thumbnail kept for no village (a download cut short by a killed tab) goes after this.
  var ORPHAN_AFTER_MS = 60 * 60 * 1000;

  function numberFormat(value, digits) {
    try {
      return new Intl.NumberFormat(config.language, { maximumFractionDigits: digits }).format(value);
    } catch (error) {
      return value.toFixed(digits);
    }
  }

  /* Bytes as the panel shows them: KB below a megabyte, MB above (1 KB = 1024 bytes). */
  function formatSize(bytes) {
    if (bytes < 1024 * 1024) {
      return fmt(strings.size_kb, { size: numberFormat(Math.max(1, Math.round(bytes / 1024)), 0) });
    }
    return fmt(strings.size_mb, { size: numberFormat(bytes / (1024 * 1024), 1) });
  }

  function formatWhen(ms) {
    try {
      return new Date(ms).toLocaleString(config.language, { dateStyle: "medium", timeStyle: "short" });
    } catch (error) {
      return new Date(ms).toISOString();
    }
  }

  function villageUrl(code) { return urls.field_villages + encodeURIComponent(code) + "/"; }

  function contextUrl(id) { return urls.field_household_context.replace("{id}", String(id)); }

  /* ---- the database ---- */

  var dbPromise = null;

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise(function (resolve, reject) {
      if (!window.indexedDB) {
        reject(new Error(strings.villages_storage_unavailable));
        return;
      }
      var request;
      try {
        request = indexedDB.open(DB_NAME, DB_VERSION);
      } catch (error) {
        reject(new Error(strings.villages_storage_unavailable));
        return;
      }
      request.onupgradeneeded = function () {
        var db = request.result;
        db.createObjectStore("villages", { keyPath: "code" });
        var households = db.createObjectStore("households", { keyPath: "id" });
        households.createIndex("village", "village_code");
        // Keyed by the thumbnail's URL: it names the photo's storage key, which never names
        // other content, so an update fetches only the photos it does not have.
        var thumbs = db.createObjectStore("thumbs", { keyPath: "url" });
        thumbs.createIndex("village", "village_code");
      };
      request.onsuccess = function () {
        var db = request.result;
        // Another tab upgrading the database: let it, this page reopens on next use.
        db.onversionchange = function () { db.close(); dbPromise = null; };
        resolve(db);
      };
      request.onerror = function () { reject(new Error(strings.villages_storage_unavailable)); };
    });
    dbPromise.catch(function () { dbPromise = null; });
    return dbPromise;
  }

  function done(tx) {
    return new Promise(function (resolve, reject) {
      tx.oncomplete = function () { resolve(); };
      tx.onerror = function () { reject(tx.error); };
      tx.onabort = function () {
        var error = tx.error;
        if (!error) {
          error = new Error("aborted");
          error.code = "storage_aborted";  // Common.storageReason translates it
        }
        reject(error);
      };
    });
  }

  function result(request) {
    return new Promise(function (resolve, reject) {
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function readAll(storeName) {
    return openDb().then(function (db) {
      return result(db.transaction(storeName, "readonly").objectStore(storeName).getAll());
    });
  }

  function readOne(storeName, key) {
    return openDb().then(function (db) {
      return result(db.transaction(storeName, "readonly").objectStore(storeName).get(key));
    });
  }

  function keysOfVillage(store, code) {
    return result(store.index("village").getAllKeys(IDBKeyRange.only(code)));
  }

  /* ---- the network ---- */

  function failure(message, status) {
    var error = new Error(message);
    error.status = status || 0;
    return error;
  }

  /* What to tell the inspector about a failed download or removal: never an empty reason. */
  function reasonOf(error) {
    if (isQuotaError(error)) return strings.villages_storage_full;
    return fmt(strings.villages_download_failed, { reason: Common.storageReason(error, strings) });
  }

  function get(url, accept) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: accept } }).then(
      function (response) {
        if (!response.ok || response.redirected) {
          throw failure(
            response.status === 401 || response.status === 403 || response.redirected
              ? strings.villages_session_expired
              : fmt(strings.villages_server_error, { status: response.status }),
            response.redirected ? 401 : response.status
          );
        }
        return response;
      },
      function () { throw failure(strings.villages_network_error); }
    );
  }

  function getText(url) {
    return get(url, "application/json").then(function (response) { return response.text(); });
  }

  function getThumb(url) {
    return get(url, "image/*").then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("image/") !== 0) throw failure(strings.villages_session_expired, 401);
      return response.blob();
    });
  }

  /* Run `work` over `items`, at most `limit` at a time. The first failure starts no more
   * work, and is thrown only once the work under way has settled: nothing writes after. */
  function eachLimited(items, limit, work) {
    var index = 0;
    var failed = null;
    function next() {
      if (failed || index >= items.length) return Promise.resolve();
      var item = items[index];
      index += 1;
      return work(item).then(next, function (error) { failed = failed || error; });
    }
    var workers = [];
    for (var i = 0; i < Math.min(limit, items.length); i += 1) workers.push(next());
    return Promise.all(workers).then(function () { if (failed) throw failed; });
  }

  /* ---- households as the page sees them ---- */

  function publicHousehold(record) {
    return {
      id: record.id,
      archive_no: record.archive_no,
      head_name: record.head_name,
      village: record.village,
      grade: record.grade,
      lon: record.lon,
      lat: record.lat,
    };
  }

  // The codes of the villages the server last offered (code -> true), null until it has
  // answered: from then on, a household of any other village is not shown, even in the
  // moment before forgetNotOffered() has taken it off the phone.
  var offeredCodes = null;

  function offered(record) {
    return !offeredCodes || offeredCodes[record.village_code] === true;
  }

  function byArchiveNo(a, b) {
    return a.archive_no < b.archive_no ? -1 : (a.archive_no > b.archive_no ? 1 : 0);
  }

  function search(q) {
    var term = String(q || "").trim().toLowerCase();
    if (!term) return Promise.resolve([]);
    return readAll("households").then(function (records) {
      return records.filter(function (record) {
        return offered(record) && record.search.indexOf(term) !== -1;
      })
        .sort(byArchiveNo)
        .slice(0, MAX_RESULTS)
        .map(publicHousehold);
    }).catch(function () { return []; });
  }

  function near(lon, lat, limit) {
    lon = Number(lon);
    lat = Number(lat);
    limit = Math.max(1, Math.min(MAX_RESULTS, Math.floor(Number(limit) || 10)));
    if (!isFinite(lon) || !isFinite(lat)) return Promise.resolve([]);
    return readAll("households").then(function (records) {
      return records.filter(function (record) {
        return offered(record) && typeof record.lon === "number" && typeof record.lat === "number";
      }).map(function (record) {
        var item = publicHousehold(record);
        item.distance_m = Math.round(haversine(lon, lat, record.lon, record.lat) * 10) / 10;
        return item;
      }).sort(function (a, b) {
        return a.distance_m - b.distance_m || a.id - b.id;
      }).slice(0, limit);
    }).catch(function () { return []; });
  }

  // One object URL per stored thumbnail, made when first asked for and kept for the page's
  // life (revoked when its village goes), so that asking again costs nothing.
  var objectUrls = {};

  function revoke(url) {
    if (objectUrls[url]) {
      URL.revokeObjectURL(objectUrls[url]);
      delete objectUrls[url];
    }
  }

  function storedContext(record) {
    if (!record || !offered(record)) return Promise.resolve(null);
    var slots = Object.keys(record.photos || {});
    return openDb().then(function (db) {
      var store = db.transaction("thumbs", "readonly").objectStore("thumbs");
      return Promise.all(slots.map(function (slot) {
        var photo = record.photos[slot];
        return result(store.get(photo.thumb_url)).then(function (thumb) {
          if (thumb && !objectUrls[photo.thumb_url]) {
            objectUrls[photo.thumb_url] = URL.createObjectURL(thumb.blob);
          }
          return [slot, objectUrls[photo.thumb_url] || photo.thumb_url];
        });
      }));
    }).then(function (pairs) {
      var photos = {};
      pairs.forEach(function (pair) {
        var photo = record.photos[pair[0]];
        photos[pair[0]] = {
          url: pair[1],
          taken_at: photo.taken_at,
          stage_label: photo.stage_label,
          angle_label: photo.angle_label,
        };
      });
      return {
        grade: record.grade,
        graded_on: record.graded_on,
        last_visit: record.last_visit,
        photos: photos,
      };
    });
  }

  function onlineContext(body) {
    var photos = {};
    Object.keys(body.photos || {}).forEach(function (slot) {
      var photo = body.photos[slot];
      photos[slot] = {
        url: photo.thumb_url,
        taken_at: photo.taken_at,
        stage_label: photo.stage_label,
        angle_label: photo.angle_label,
      };
    });
    return { grade: body.grade, graded_on: body.graded_on, last_visit: body.last_visit, photos: photos };
  }

  function context(householdId) {
    var id = Number(householdId);
    if (!(id > 0) || Math.floor(id) !== id) return Promise.resolve(null);
    var stored = function () {
      return readOne("households", id).then(storedContext).catch(function () { return null; });
    };
    if (navigator.onLine === false) return stored();
    // On one bar of signal the kept copy beats waiting: give the server a few seconds.
    var timeout = new Promise(function (resolve, reject) {
      setTimeout(function () { reject(failure(strings.villages_network_error)); }, CONTEXT_TIMEOUT_MS);
    });
    return Promise.race([getText(contextUrl(id)), timeout]).then(function (text) {
      return onlineContext(JSON.parse(text));
    }, function (error) {
      // Out of the user's regions (or gone): unknown, whatever an older copy says.
      if (error.status === 404) return null;
      return stored();
    });
  }

  window.AnjuVillages = { search: search, near: near, context: context };

  /* ---- download, update, remove ---- */

  function householdRecord(household, code) {
    var record = {};
    Object.keys(household).forEach(function (key) { record[key] = household[key]; });
    record.village_code = code;
    record.search = (household.head_name + "\n" + household.archive_no).toLowerCase();
    return record;
  }

  /* Fetch a village's bundle and the thumbnails this phone lacks, then replace what was
   * kept of the village in one transaction. Resolves with the village's record. A first
   * download that stops (a full phone, the network) leaves none of its thumbnails behind;
   * an update that stops leaves the village as it was kept, unless the server says the
   * village is not the user's (any more): then nothing of it stays (error.gone). */
  function download(village, progress, keptBefore) {
    return fetchVillage(village, progress).catch(function (error) {
      if (keptBefore && !error.gone) throw error;
      return remove(village.code).then(function () { throw error; }, function () { throw error; });
    });
  }

  function fetchVillage(village, progress) {
    var code = village.code;
    var text, bundle, wanted = {}, failed = 0;
    return getText(villageUrl(code)).catch(function (error) {
      // Out of the user's regions (or no such village): what the phone keeps of it goes.
      error.gone = error.status === 404;
      throw error;
    }).then(function (body) {
      text = body;
      bundle = JSON.parse(body);
      bundle.households.forEach(function (household) {
        Object.keys(household.photos || {}).forEach(function (slot) {
          wanted[household.photos[slot].thumb_url] = household.id;
        });
      });
      return openDb();
    }).then(function (db) {
      var store = db.transaction("thumbs", "readonly").objectStore("thumbs");
      return result(store.getAllKeys());
    }).then(function (have) {
      var haveSet = {};
      have.forEach(function (url) { haveSet[url] = true; });
      var missing = Object.keys(wanted).filter(function (url) { return !haveSet[url]; });
      var fetched = 0;
      progress(0, missing.length);
      return eachLimited(missing, PARALLEL, function (url) {
        return getThumb(url).then(function (blob) {
          return openDb().then(function (db) {
            var tx = db.transaction("thumbs", "readwrite");
            tx.objectStore("thumbs").put({
              url: url, village_code: code, household: wanted[url], blob: blob, size: blob.size,
              kept_at: Date.now(),
            });
            return done(tx);
          });
        }, function (error) {
          // A lost login, the network or a full phone stops the whole download; a single
          // missing photo does not.
          if (error.status === 401 || error.status === 403 || !error.status) throw error;
          failed += 1;
        }).then(function () {
          fetched += 1;
          progress(fetched, missing.length);
        });
      });
    }).then(function () {
      return openDb();
    }).then(function (db) {
      var tx = db.transaction(["villages", "households", "thumbs"], "readwrite");
      var households = tx.objectStore("households");
      var thumbs = tx.objectStore("thumbs");
      var record = {
        code: code,
        name: bundle.name,
        township: bundle.township,
        households: bundle.households.length,
        downloaded_at: Date.now(),
        json_bytes: new Blob([text]).size,
        blob_bytes: 0,
        photos: 0,
        photos_failed: failed,
      };
      var keep = {};
      bundle.households.forEach(function (household) { keep[household.id] = true; });
      keysOfVillage(households, code).then(function (ids) {
        ids.forEach(function (id) { if (!keep[id]) households.delete(id); });
        bundle.households.forEach(function (household) {
          households.put(householdRecord(household, code));
        });
      });
      // Every thumbnail the village now has, whether fetched now or kept from before (a
      // household that moved village takes its photos along); the others go.
      result(thumbs.getAll()).then(function (all) {
        all.forEach(function (thumb) {
          if (wanted[thumb.url] !== undefined) {
            if (thumb.village_code !== code) {
              thumb.village_code = code;
              thumbs.put(thumb);
            }
            record.blob_bytes += thumb.size;
            record.photos += 1;
          } else if (thumb.village_code === code) {
            thumbs.delete(thumb.url);
            revoke(thumb.url);
          }
        });
        tx.objectStore("villages").put(record);
      });
      return done(tx).then(function () { return record; });
    });
  }

  function remove(code) {
    return openDb().then(function (db) {
      var tx = db.transaction(["villages", "households", "thumbs"], "readwrite");
      var households = tx.objectStore("households");
      var thumbs = tx.objectStore("thumbs");
      keysOfVillage(households, code).then(function (ids) {
        ids.forEach(function (id) { households.delete(id); });
      });
      keysOfVillage(thumbs, code).then(function (keys) {
        keys.forEach(function (url) { thumbs.delete(url); revoke(url); });
      });
      tx.objectStore("villages").delete(code);
      return done(tx);
    });
  }

  /* Take off the phone every village the server does not offer (any more), with its
   * households and thumbnails, in one transaction: whatever is kept of a village outside
   * `codes` (a list of the offered codes). Resolves with the codes of the villages gone. */
  function forgetNotOffered(codes) {
    var keep = {};
    codes.forEach(function (code) { keep[code] = true; });
    return openDb().then(function (db) {
      var tx = db.transaction(["villages", "households", "thumbs"], "readwrite");
      var gone = [];
      var villages = tx.objectStore("villages");
      result(villages.getAllKeys()).then(function (kept) {
        kept.forEach(function (code) {
          if (keep[code]) return;
          gone.push(code);
          villages.delete(code);
        });
      });
      // By the stores' own village index, so that nothing is missed that a village record
      // does not list (and no thumbnail's bytes are read to find its village).
      ["households", "thumbs"].forEach(function (name) {
        var store = tx.objectStore(name);
        var cursor = store.index("village").openKeyCursor();
        cursor.onsuccess = function () {
          var at = cursor.result;
          if (!at) return;
          if (!keep[at.key]) {
            store.delete(at.primaryKey);
            if (name === "thumbs") revoke(at.primaryKey);
          }
          at.continue();
        };
      });
      return done(tx).then(function () { return gone; });
    });
  }

  /* Thumbnails of no kept village, left by a download cut short (a killed tab) at least
   * ORPHAN_AFTER_MS ago (a younger one may be another tab's download in progress). */
  function dropOrphans() {
    return openDb().then(function (db) {
      var tx = db.transaction(["villages", "thumbs"], "readwrite");
      var thumbs = tx.objectStore("thumbs");
      var now = Date.now();
      result(tx.objectStore("villages").getAllKeys()).then(function (codes) {
        var kept = {};
        codes.forEach(function (code) { kept[code] = true; });
        return result(thumbs.getAll()).then(function (all) {
          all.forEach(function (thumb) {
            if (!kept[thumb.village_code] && !(now - (thumb.kept_at || 0) < ORPHAN_AFTER_MS)) {
              thumbs.delete(thumb.url);
            }
          });
        });
      });
      return done(tx);
    });
  }

  /* ---- the panel ---- */

  var panel = $("villages");
  if (!panel) return;

  var state = {
    offered: null,  // the villages in the user's regions, from the server; null until known
    kept: {},       // code -> the record of a downloaded village
    chosen: {},     // code -> true for the ticked ones
    busy: false,
  };

  function status(text, warn) {
    var out = $("villages-status");
    out.textContent = text || "";
    out.className = "find-status" + (warn ? " find-status--warn" : "");
  }

  function byCode(a, b) { return a.code < b.code ? -1 : (a.code > b.code ? 1 : 0); }

  /* The villages to list: those offered, and those kept that are not (offline, when the
   * server's list is not known: once it is, a kept village it lacks has gone from the phone),
   * grouped by township in code order. */
  function townships() {
    var villages = state.offered ? state.offered.slice() : [];
    Object.keys(state.kept).forEach(function (code) {
      if (!villages.some(function (v) { return v.code === code; })) villages.push(state.kept[code]);
    });
    villages.sort(byCode);
    var groups = {};
    var order = [];
    villages.forEach(function (village) {
      var township = village.township || { code: "", name: strings.villages_no_township };
      if (!groups[township.code]) {
        groups[township.code] = { code: township.code, name: township.name, villages: [] };
        order.push(township.code);
      }
      groups[township.code].villages.push(village);
    });
    return order.sort().map(function (code) { return groups[code]; });
  }

  function villageItem(village, online) {
    var kept = state.kept[village.code];
    var box = el("input", { type: "checkbox", "data-code": village.code });
    box.checked = !!state.chosen[village.code];
    box.disabled = state.busy || !online;
    box.addEventListener("change", function () {
      if (box.checked) state.chosen[village.code] = true;
      else delete state.chosen[village.code];
      updateChoice();
    });
    var item = el("li", { className: "queue-item village", "data-village": village.code }, [
      el("label", { className: "check" }, [
        box,
        el("span", { className: "queue-item__title", text: village.name }),
      ]),
      el("p", {
        className: "queue-item__detail village__households",
        text: fmt(strings.village_households, { count: numberFormat(village.households, 0) }),
      }),
    ]);
    // What the filter looks in: the village's name and code, and its township's name.
    item.setAttribute("data-search", [
      village.name, village.code, village.township ? village.township.name : "",
    ].join("\n").toLowerCase());
    if (kept) {
      item.appendChild(el("p", {
        className: "queue-item__detail village__kept",
        "data-bytes": String(kept.json_bytes + kept.blob_bytes),
        text: fmt(strings.village_kept, {
          time: formatWhen(kept.downloaded_at),
          count: numberFormat(kept.households, 0),
          size: formatSize(kept.json_bytes + kept.blob_bytes),
        }),
      }));
      if (kept.photos_failed) {
        item.appendChild(el("p", {
          className: "queue-item__error",
          text: fmt(strings.village_photos_failed, { count: numberFormat(kept.photos_failed, 0) }),
        }));
      }
      var update = el("button", {
        type: "button", className: "button button--secondary village__update", text: strings.village_update,
      });
      update.disabled = state.busy || !online;
      update.addEventListener("click", function () { run([village]); });
      var drop = el("button", {
        type: "button", className: "button button--secondary village__remove", text: strings.village_remove,
      });
      drop.disabled = state.busy;
      drop.addEventListener("click", function () { removeVillage(kept); });
      item.appendChild(el("div", { className: "search-row" }, [update, drop]));
    }
    return item;
  }

  function townshipItem(group, online) {
    var all = el("input", { type: "checkbox", className: "township__all" });
    all.disabled = state.busy || !online;
    var villages = el("ul", { className: "queue-list township__villages" });
    group.villages.forEach(function (village) { villages.appendChild(villageItem(village, online)); });
    var item = el("li", { className: "township", "data-township": group.code }, [
      el("div", { className: "township__head" }, [
        el("span", { className: "township__name", text: group.name }),
        el("label", { className: "check township__select" }, [
          all,
          el("span", { className: "township__count" }),
        ]),
      ]),
      villages,
    ]);
    item.setAttribute("data-search", String(group.name || "").toLowerCase());
    // "Select all": every village of the township the filter shows; again: none of them.
    all.addEventListener("change", function () {
      shownBoxes(item).forEach(function (box) {
        box.checked = all.checked;
        if (all.checked) state.chosen[box.getAttribute("data-code")] = true;
        else delete state.chosen[box.getAttribute("data-code")];
      });
      updateChoice();
    });
    return item;
  }

  /* The village boxes of a township that the filter leaves shown. */
  function shownBoxes(township) {
    return Array.prototype.filter.call(
      township.querySelectorAll("li.village input[type=checkbox]"),
      function (box) { return !box.closest("li.village").hidden; }
    );
  }

  /* The filter: a village shows when its name, code or township's name has the text. */
  function applyFilter() {
    var input = $("villages-filter");
    var term = input ? input.value.trim().toLowerCase() : "";
    var any = false;
    Array.prototype.forEach.call($("village-list").querySelectorAll("li.township"), function (township) {
      var whole = !term || township.getAttribute("data-search").indexOf(term) !== -1;
      var shown = 0;
      Array.prototype.forEach.call(township.querySelectorAll("li.village"), function (village) {
        village.hidden = !(whole || village.getAttribute("data-search").indexOf(term) !== -1);
        if (!village.hidden) shown += 1;
      });
      township.hidden = !shown;
      township.querySelector(".township__count").textContent = fmt(strings.villages_select_all, {
        count: numberFormat(shown, 0),
      });
      if (shown) any = true;
    });
    var none = $("villages-no-match");
    if (none) none.hidden = any || !term;
    updateChoice();
  }

  /* Each township's box ticked when all its shown villages are, half when some are; how
   * many are chosen in all; the Download button. */
  function updateChoice() {
    Array.prototype.forEach.call($("village-list").querySelectorAll("li.township"), function (township) {
      var boxes = shownBoxes(township);
      var ticked = boxes.filter(function (box) { return box.checked; }).length;
      var all = township.querySelector(".township__all");
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    });
    var count = Object.keys(state.chosen).length;
    var chosen = $("villages-chosen");
    if (chosen) {
      chosen.textContent = count ? fmt(strings.villages_chosen, { count: numberFormat(count, 0) }) : "";
      chosen.setAttribute("data-count", String(count));
    }
    updateDownloadButton();
  }

  function render() {
    var list = $("village-list");
    list.textContent = "";
    var online = navigator.onLine !== false;
    var groups = townships();
    groups.forEach(function (group) { list.appendChild(townshipItem(group, online)); });
    var filterRow = $("villages-filter-row");
    if (filterRow) filterRow.hidden = !groups.length;
    applyFilter();

    var total = 0;
    Object.keys(state.kept).forEach(function (code) {
      total += state.kept[code].json_bytes + state.kept[code].blob_bytes;
    });
    var totalOut = $("villages-total");
    totalOut.setAttribute("data-bytes", String(total));
    totalOut.textContent = Object.keys(state.kept).length
      ? fmt(strings.villages_total, { size: formatSize(total) })
      : strings.villages_none_kept;
  }

  function updateDownloadButton() {
    var button = $("villages-download");
    button.disabled = state.busy || navigator.onLine === false || !Object.keys(state.chosen).length;
  }

  function loadKept() {
    return readAll("villages").then(function (records) {
      state.kept = {};
      records.forEach(function (record) { state.kept[record.code] = record; });
      return dropOrphans().catch(function () { return null; });
    });
  }

  function loadOffered() {
    if (navigator.onLine === false) {
      status(state.offered ? "" : strings.villages_offline_list, true);
      return Promise.resolve();
    }
    status(strings.villages_loading);
    return getText(urls.field_villages).then(function (text) {
      state.offered = JSON.parse(text);
      status(state.offered.length ? "" : strings.villages_none);
      var codes = state.offered.map(function (village) { return village.code; });
      offeredCodes = {};
      codes.forEach(function (code) { offeredCodes[code] = true; });
      Object.keys(state.chosen).forEach(function (code) {
        if (!offeredCodes[code]) delete state.chosen[code];
      });
      // Out of the user's regions since it was downloaded: it goes from the phone.
      return forgetNotOffered(codes).then(function () {
        Object.keys(state.kept).forEach(function (code) {
          if (!offeredCodes[code]) delete state.kept[code];
        });
      }, function () {
        // The phone's storage failed: what stays is not shown (offeredCodes) nor listed.
        Object.keys(state.kept).forEach(function (code) {
          if (!offeredCodes[code]) delete state.kept[code];
        });
      });
    }, function (error) {
      // Not an answer about the user's regions (no network, a lost login): keep everything.
      status(fmt(strings.villages_load_failed, { reason: error.message }), true);
    });
  }

  function run(villages) {
    if (state.busy || !villages.length) return Promise.resolve();
    state.busy = true;
    render();
    var names = [];
    var gone = [];
    var chain = Promise.resolve();
    villages.forEach(function (village) {
      chain = chain.then(function () {
        status(fmt(strings.villages_downloading, { village: village.name, done: 0, total: 0 }));
        return download(village, function (fetched, total) {
          status(fmt(strings.villages_downloading, { village: village.name, done: fetched, total: total }));
        }, !!state.kept[village.code]).then(function (record) {
          state.kept[record.code] = record;
          delete state.chosen[record.code];
          names.push(record.name);
          render();
        }, function (error) {
          if (!error.gone) throw error;
          // Not the user's any more: download() took it off the phone; the others go on.
          delete state.kept[village.code];
          delete state.chosen[village.code];
          if (state.offered) {
            state.offered = state.offered.filter(function (v) { return v.code !== village.code; });
          }
          if (offeredCodes) delete offeredCodes[village.code];
          gone.push(village.name);
          render();
        });
      });
    });
    return chain.then(function () {
      var said = [];
      if (names.length) {
        said.push(fmt(strings.villages_downloaded, { villages: names.join(strings.villages_separator) }));
      }
      if (gone.length) {
        said.push(fmt(strings.villages_gone, { villages: gone.join(strings.villages_separator) }));
        panel.setAttribute("data-error", "gone");
      }
      status(said.join(" "), gone.length > 0);
    }, function (error) {
      status(reasonOf(error), true);
      panel.setAttribute("data-error", isQuotaError(error) ? "quota" : "failed");
    }).then(function () {
      state.busy = false;
      render();
      panel.setAttribute("data-ready", "true");
    });
  }

  function removeVillage(village) {
    if (state.busy) return;
    state.busy = true;
    render();
    remove(village.code).then(function () {
      delete state.kept[village.code];
      panel.removeAttribute("data-error");
      status(fmt(strings.villages_removed, { village: village.name }));
    }, function (error) {
      status(isQuotaError(error) ? strings.villages_storage_full : Common.storageReason(error, strings), true);
    }).then(function () {
      state.busy = false;
      render();
    });
  }

  $("villages-download").addEventListener("click", function () {
    var pool = (state.offered || []).concat(Object.keys(state.kept).map(function (c) { return state.kept[c]; }));
    var chosen = Object.keys(state.chosen).sort().map(function (code) {
      return pool.filter(function (v) { return v.code === code; })[0];
    }).filter(Boolean);
    panel.removeAttribute("data-error");
    run(chosen);
  });

  if ($("villages-filter")) $("villages-filter").addEventListener("input", applyFilter);
  window.addEventListener("online", function () { loadOffered().then(render); });
  window.addEventListener("offline", function () { status(""); render(); });

  loadKept().catch(function (error) { status(error.message, true); })
    .then(loadOffered)
    .then(function () {
      render();
      panel.setAttribute("data-ready", "true");
    });
})();
