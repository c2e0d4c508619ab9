/* The field page's offline queue.
 *
 * Inspections and their photos (as Blobs) wait in IndexedDB until the server has them.
 * Each record carries the client UUID it was made with, and the API is idempotent by that
 * UUID: sending a record twice (a lost answer, two tabs, a reload mid-upload) stores it once
 * and answers 200 with the original. So the rule here is simple: keep a record until the
 * server acknowledges it (201 or 200), give up only when the server refuses it (a 4xx,
 * with its reason kept for the inspector), and retry everything else with backoff.
 *
 * Drafts live in the same database: the form being filled ("drafts", one record per form)
 * and its photos ("draft_photos", one Blob per slot), written on every change so that a
 * reload, a killed tab or a flat battery loses nothing. Sending a draft moves it into the
 * queue and deletes it in one transaction.
 *
 * Sent records stay for the page's "Sent" list, with the thumbnail of each sent photo as a
 * Blob ("sent_thumbs", fetched once) so that the list shows with no network; only the
 * newest SENT_KEPT sent records of each user are kept.
 *
 * No strings shown to people live here: the page translates the states and reasons (the
 * errors of this file carry a `code` for that: "storage_missing", "storage_aborted").
 *
 * Every request of a sync says whose records it carries (the X-Anju-Field-User header): a
 * server whose session is another user's refuses with 409 and the code "field_user_mismatch"
 * (inspections/api.py), and the sending stops as when the page learns its user has gone.
 */
(function (global) {
  "use strict";

  var DB_NAME = "anju-field";
  // 1: inspections, photos. 2: drafts, draft_photos. 3: sent_thumbs. Each upgrade only adds
  // stores: what waits in the queue is kept as it is.
  var DB_VERSION = 3;
  var SENT_KEPT = 200;
  var BACKOFF_BASE_MS = 5000;
  var BACKOFF_MAX_MS = 5 * 60 * 1000;
  var dbPromise = null;
  var USER_HEADER = "X-Anju-Field-User";
  var USER_MISMATCH = "field_user_mismatch";

  /* An error of this file: English for a developer, a code for the page to translate. */
  function coded(message, code) {
    var error = new Error(message);
    error.code = code;
    return error;
  }

  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        if (!global.indexedDB) {
          reject(coded("IndexedDB is not available", "storage_missing"));
          return;
        }
        var request = global.indexedDB.open(DB_NAME, DB_VERSION);
        request.onupgradeneeded = function (event) {
          var db = request.result;
          var from = event.oldVersion || 0;
          if (from < 1) {
            db.createObjectStore("inspections", { keyPath: "client_uuid" });
            var photos = db.createObjectStore("photos", { keyPath: "client_uuid" });
            photos.createIndex("inspection", "inspection");
          }
          if (from < 2) {
            db.createObjectStore("drafts", { keyPath: "id" });
            var draftPhotos = db.createObjectStore("draft_photos", { keyPath: "id" });
            draftPhotos.createIndex("draft", "draft");
          }
          if (from < 3) {
            var thumbs = db.createObjectStore("sent_thumbs", { keyPath: "photo" });
            thumbs.createIndex("inspection", "inspection");
          }
        };
        request.onsuccess = function () {
          var db = request.result;
          // A newer page in another tab wants to upgrade: let it, this tab reopens on demand.
          db.onversionchange = function () {
            db.close();
            dbPromise = null;
          };
          resolve(db);
        };
        request.onerror = function () { reject(request.error); };
      });
      dbPromise.catch(function () { dbPromise = null; });
    }
    return dbPromise;
  }

  // One transaction; `work` issues its requests synchronously and returns a value (or a
  // function giving it) that is resolved once the transaction has committed.
  function transaction(stores, mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(stores, mode);
        var result = work(tx);
        tx.oncomplete = function () { resolve(typeof result === "function" ? result() : result); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error || coded("transaction aborted", "storage_aborted")); };
      });
    });
  }

  function getAll(tx, store) {
    var request = tx.objectStore(store).getAll();
    return function () { return request.result; };
  }

  /* Delete a draft and its photos inside an open transaction. */
  function deleteDraftIn(tx, draftId) {
    tx.objectStore("drafts").delete(draftId);
    var store = tx.objectStore("draft_photos");
    var keys = store.index("draft").getAllKeys(draftId);
    keys.onsuccess = function () {
      keys.result.forEach(function (key) { store.delete(key); });
    };
  }

  /* Save an inspection and its photos in one transaction: all or nothing. With a draft id,
   * the draft goes in the same transaction: a record is either a draft or queued, never
   * both, never neither. */
  function add(inspection, photos, draftId) {
    var stores = draftId ? ["inspections", "photos", "drafts", "draft_photos"] : ["inspections", "photos"];
    return transaction(stores, "readwrite", function (tx) {
      tx.objectStore("inspections").put(inspection);
      photos.forEach(function (photo) { tx.objectStore("photos").put(photo); });
      if (draftId) deleteDraftIn(tx, draftId);
      return inspection;
    });
  }

  /* ---- drafts ---- */

  /* Write a draft with photo records ({id, draft, key, blob, ...}: one, a list or none), all
   * in one transaction. */
  function saveDraft(draft, photos) {
    photos = photos ? [].concat(photos) : [];
    var stores = photos.length ? ["drafts", "draft_photos"] : ["drafts"];
    return transaction(stores, "readwrite", function (tx) {
      tx.objectStore("drafts").put(draft);
      photos.forEach(function (photo) { tx.objectStore("draft_photos").put(photo); });
      return draft;
    });
  }

  /* The phone (or the browser's share of it) is full: a write was refused for space. */
  function isQuotaError(error) {
    if (!error) return false;
    return error.name === "QuotaExceededError" || error.name === "NS_ERROR_DOM_QUOTA_REACHED" ||
      (error.inner && isQuotaError(error.inner));
  }

  /* One draft with its photos, or null. */
  function getDraft(draftId) {
    return transaction(["drafts", "draft_photos"], "readonly", function (tx) {
      var draft = tx.objectStore("drafts").get(draftId);
      var photos = tx.objectStore("draft_photos").index("draft").getAll(draftId);
      return function () {
        return draft.result ? { draft: draft.result, photos: photos.result } : null;
      };
    });
  }

  /* A user's drafts (without their photos), the most recently changed first. */
  function drafts(userId) {
    return transaction(["drafts"], "readonly", function (tx) {
      var list = getAll(tx, "drafts");
      return function () {
        return list().filter(function (d) { return d.user_id === userId; })
          .sort(function (a, b) { return a.updated_at < b.updated_at ? 1 : -1; });
      };
    });
  }

  function removeDraft(draftId) {
    return transaction(["drafts", "draft_photos"], "readwrite", function (tx) {
      deleteDraftIn(tx, draftId);
    });
  }

  function all() {
    return transaction(["inspections", "photos"], "readonly", function (tx) {
      var inspections = getAll(tx, "inspections");
      var photos = getAll(tx, "photos");
      return function () {
        var list = inspections().sort(function (a, b) { return a.created_at < b.created_at ? 1 : -1; });
        return { inspections: list, photos: photos() };
      };
    });
  }

  function put(store, record) {
    return transaction([store], "readwrite", function (tx) {
      tx.objectStore(store).put(record);
      return record;
    });
  }

  /* Delete records, their photos and the photos' kept thumbnails inside an open transaction. */
  function forgetIn(tx, clientUuids, photos) {
    var gone = {};
    clientUuids.forEach(function (uuid) {
      gone[uuid] = true;
      tx.objectStore("inspections").delete(uuid);
      var thumbs = tx.objectStore("sent_thumbs");
      var keys = thumbs.index("inspection").getAllKeys(uuid);
      keys.onsuccess = function () {
        keys.result.forEach(function (key) { thumbs.delete(key); });
      };
    });
    photos.forEach(function (photo) {
      if (gone[photo.inspection]) tx.objectStore("photos").delete(photo.client_uuid);
    });
  }

  /* Forget a record and its photos (the inspector removes a refused one). */
  function remove(clientUuid) {
    return all().then(function (state) {
      return transaction(["inspections", "photos", "sent_thumbs"], "readwrite", function (tx) {
        forgetIn(tx, [clientUuid], state.photos);
      });
    });
  }

  /* The thumbnails kept of sent photos: [{photo, inspection, user_id, blob, kept_at}]. */
  function thumbs() {
    return transaction(["sent_thumbs"], "readonly", function (tx) {
      return getAll(tx, "sent_thumbs");
    });
  }

  /* Keep a sent photo's thumbnail, unless its record has gone meanwhile (pruned, removed). */
  function putThumb(thumb) {
    return transaction(["inspections", "sent_thumbs"], "readwrite", function (tx) {
      var parent = tx.objectStore("inspections").get(thumb.inspection);
      parent.onsuccess = function () {
        if (parent.result) tx.objectStore("sent_thumbs").put(thumb);
      };
      return thumb;
    });
  }

  /* Sent records (and their photos and thumbnails) beyond the newest `limit` of each user
   * go. Only a record that is done goes: sent, with no photo still to send. Resolves with the
   * client UUIDs dropped. */
  function pruneSent(limit) {
    limit = limit === undefined ? SENT_KEPT : limit;
    return all().then(function (state) {
      var unsettled = {};
      state.photos.forEach(function (photo) {
        if (photo.status !== "sent" && photo.status !== "failed") unsettled[photo.inspection] = true;
      });
      var perUser = {};
      var drop = [];
      // all() lists the newest first.
      state.inspections.forEach(function (record) {
        if (record.status !== "sent" || unsettled[record.client_uuid]) return;
        perUser[record.user_id] = (perUser[record.user_id] || 0) + 1;
        if (perUser[record.user_id] > limit) drop.push(record.client_uuid);
      });
      if (!drop.length) return [];
      return transaction(["inspections", "photos", "sent_thumbs"], "readwrite", function (tx) {
        forgetIn(tx, drop, state.photos);
        return drop;
      });
    });
  }

  /* DRF's error body, flattened: {"detail": "..."} or {"field": ["..."], "appraisal": {...}}. */
  function reasonFrom(body, fallback) {
    if (!body || typeof body !== "object") return fallback;
    if (typeof body.detail === "string") return body.detail;
    var parts = [];
    (function walk(value, path) {
      if (Array.isArray(value)) {
        value.forEach(function (item) { walk(item, path); });
      } else if (value && typeof value === "object") {
        Object.keys(value).forEach(function (key) { walk(value[key], path ? path + "." + key : key); });
      } else if (value !== null && value !== undefined) {
        parts.push(path && path !== "non_field_errors" ? path + ": " + value : String(value));
      }
    })(body, "");
    return parts.length ? parts.join("; ") : fallback;
  }

  /* What a response means for the record: sent, refused for good, blocked on login, retry. */
  function outcome(response) {
    return response.text().then(function (text) {
      var body = null;
      try { body = text ? JSON.parse(text) : null; } catch (error) { body = null; }
      var status = response.status;
      var reason = reasonFrom(body, response.statusText || String(status));
      if ((status === 200 || status === 201) && !response.redirected) {
        return { result: "sent", body: body };
      }
      // The session is another user's: nothing was stored, the record is fine and stays
      // as it was, and nothing more is sent (the page reloads for whoever is logged in).
      if (status === 409 && body && body.code === USER_MISMATCH) {
        return { result: "gone", status: status, reason: reason };
      }
      // Not logged in any more, or the page's CSRF token is stale: the record is fine,
      // the session is not. Keep it until the inspector logs in again.
      if (status === 401 || response.redirected ||
          (status === 403 && /csrf/i.test(reason))) {
        return { result: "blocked", status: status, reason: reason };
      }
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        return { result: "failed", status: status, reason: reason };
      }
      return { result: "retry", status: status, reason: reason };
    });
  }

  function backoff(attempts) {
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, Math.max(0, attempts - 1)));
    return Date.now() + Math.round(delay * (0.8 + Math.random() * 0.4));
  }

  function csrfFromCookie() {
    var match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(global.document ? global.document.cookie : "");
    return match ? decodeURIComponent(match[1]) : null;
  }

  /* Apply an outcome to a record (inspection or photo) and say whether to go on. */
  function settle(record, result) {
    record.last_try = Date.now();
    record.attempts = (record.attempts || 0) + 1;
    if (result.result === "sent") {
      record.status = "sent";
      record.sent_at = new Date().toISOString();
      record.error = null;
      record.error_status = null;
      record.next_try = null;
    } else if (result.result === "failed") {
      record.status = "failed";
      record.error = result.reason;
      record.error_status = result.status;
      record.next_try = null;
    } else if (result.result === "blocked") {
      record.status = "blocked";
      record.error = result.reason;
      record.error_status = result.status;
      record.next_try = null;
    } else {
      record.status = "waiting";
      record.error = result.reason || null;
      record.error_status = result.status || null;
      record.next_try = backoff(record.attempts);
    }
    return record;
  }

  /*
   * Send whatever is due. options: {userId, urls: {inspections}, csrfToken, force, onChange,
   * current}. Inspections first (oldest first), then the photos of inspections the server has.
   * Stops at the first network or server error: the rest waits for the next try. Only the
   * user's own records are sent, and only while current() (when given) says the user is still
   * the one logged in: the session cookie goes with every request, and after a logout in
   * another tab it may be someone else's. The server checks it too (X-Anju-Field-User): its
   * refusal stops the sending with {stopped: {result: "gone"}}, the record left as it was.
   */
  function sendDue(options) {
    var userHeader = String(options.userId);
    var now = Date.now();
    var onChange = options.onChange || function () {};
    var token = function () { return csrfFromCookie() || options.csrfToken; };
    var current = options.current || function () { return true; };
    var gone = { result: "blocked", status: null, reason: "signed out" };
    var due = function (record) {
      return record.user_id === options.userId &&
        (record.status === "waiting" || (options.force && record.status === "blocked")) &&
        (options.force || !record.next_try || record.next_try <= now);
    };

    function post(url, body, isJson) {
      var headers = { "X-CSRFToken": token(), "Accept": "application/json" };
      headers[USER_HEADER] = userHeader;
      if (isJson) headers["Content-Type"] = "application/json";
      return global.fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: headers,
        body: isJson ? JSON.stringify(body) : body,
      }).then(outcome, function (error) {
        return { result: "retry", status: null, reason: null, network: true, error: String(error) };
      });
    }

    function inspectionBody(record) {
      return {
        client_uuid: record.client_uuid,
        household: record.household,
        kind: record.kind,
        started_at: record.started_at,
        ended_at: record.ended_at,
        location: record.location,
        notes: record.notes,
        appraisal: record.appraisal,
      };
    }

    return all().then(function (state) {
      var inspections = state.inspections.slice().reverse(); // oldest first
      var byUuid = {};
      state.inspections.forEach(function (record) { byUuid[record.client_uuid] = record; });
      var stopped = null;

      var chain = Promise.resolve();
      inspections.filter(due).forEach(function (record) {
        chain = chain.then(function () {
          if (!stopped && !current()) stopped = gone;
          if (stopped) return null;
          var before = record.status;
          record.status = "sending";
          onChange();
          return post(options.urls.inspections, inspectionBody(record), true).then(function (result) {
            if (result.result === "gone") {
              record.status = before;  // never written as "sending": the stored one stands
              stopped = result;
              return onChange();
            }
            settle(record, result);
            if (result.result === "sent" && result.body) {
              record.server = { id: result.body.id, url: result.body.url };
            }
            if (result.result === "retry" || result.result === "blocked") stopped = result;
            return put("inspections", record).then(onChange);
          });
        });
      });

      state.photos.forEach(function (photo) {
        chain = chain.then(function () {
          var parent = byUuid[photo.inspection];
          if (!stopped && !current()) stopped = gone;
          if (stopped || !parent) return null;
          if (parent.status === "failed" && photo.status === "waiting") {
            photo.status = "failed";
            photo.error = null;
            photo.parent_failed = true;
            photo.blob = null;
            return put("photos", photo).then(onChange);
          }
          if (parent.status !== "sent" || !due(photo)) return null;
          var form = new FormData();
          form.append("client_uuid", photo.client_uuid);
          form.append("stage", photo.stage);
          form.append("angle", photo.angle);
          form.append("file", photo.blob, photo.name || "photo.jpg");
          var before = photo.status;
          photo.status = "sending";
          onChange();
          var url = options.urls.inspections + encodeURIComponent(photo.inspection) + "/photos/";
          return post(url, form, false).then(function (result) {
            if (result.result === "gone") {
              photo.status = before;
              stopped = result;
              return onChange();
            }
            settle(photo, result);
            // The server has the bytes: free the phone's storage, keep the record.
            if (result.result === "sent") {
              photo.blob = null;
              if (result.body) photo.server = serverPhoto(result.body);
            }
            if (result.result === "retry" || result.result === "blocked") stopped = result;
            return put("photos", photo).then(onChange);
          });
        });
      });

      return chain.then(function () { return { stopped: stopped }; });
    });
  }

  /* What the page keeps of the server's answer about a photo: its checks and thumbnail. */
  function serverPhoto(body) {
    return {
      id: body.id,
      status: body.status,
      flags: body.flags || [],
      thumbnail_url: body.thumbnail_url || null,
      taken_at: body.taken_at || null,
      checked_at: Date.now(),
    };
  }

  function processed(photo) {
    return photo.server && photo.server.status && photo.server.status !== "pending";
  }

  /*
   * Ask the server how the sent photos fared (processing, evidence flags), one GET per
   * inspection that still has a photo without an answer. options: {userId, urls}.
   * Resolves to {pending: photos still being processed (or not asked about)}.
   */
  function refreshPhotos(options) {
    return all().then(function (state) {
      var waiting = state.photos.filter(function (photo) {
        return photo.user_id === options.userId && photo.status === "sent" && !processed(photo);
      });
      var byInspection = {};
      waiting.forEach(function (photo) {
        (byInspection[photo.inspection] = byInspection[photo.inspection] || []).push(photo);
      });
      var pending = waiting.length;
      var chain = Promise.resolve();
      var stopped = false;
      Object.keys(byInspection).forEach(function (inspection) {
        chain = chain.then(function () {
          if (stopped) return null;
          var url = options.urls.inspections + encodeURIComponent(inspection) + "/photos/";
          var headers = { Accept: "application/json" };
          headers[USER_HEADER] = String(options.userId);
          return global.fetch(url, { credentials: "same-origin", headers: headers })
            .then(function (response) {
              if (!response.ok || response.redirected) {
                stopped = true;
                return null;
              }
              return response.json().then(function (body) {
                var answers = {};
                (Array.isArray(body) ? body : body.results || []).forEach(function (item) {
                  answers[item.client_uuid] = item;
                });
                var changed = byInspection[inspection].filter(function (photo) {
                  var answer = answers[photo.client_uuid];
                  if (!answer) return false;
                  photo.server = serverPhoto(answer);
                  if (processed(photo)) pending -= 1;
                  return true;
                });
                if (!changed.length) return null;
                return transaction(["photos"], "readwrite", function (tx) {
                  changed.forEach(function (photo) { tx.objectStore("photos").put(photo); });
                });
              });
            }, function () { stopped = true; });
        });
      });
      return chain.then(function () { return { pending: pending }; });
    });
  }

  var running = null;
  var again = null;

  /*
   * One sync at a time in this tab; across tabs too where the Web Locks API exists. A call
   * made while one runs (a record saved mid-upload) runs once more afterwards, so that
   * nothing saved waits for the next trigger.
   */
  function sync(options) {
    if (running) {
      again = options;
      return running;
    }
    var run = function () { return sendDue(options); };
    var locked = global.navigator && global.navigator.locks
      ? global.navigator.locks.request("anju-field-sync", run)
      : run();
    running = Promise.resolve(locked).finally(function () {
      running = null;
      if (again) {
        var next = again;
        again = null;
        return sync(next);
      }
      return null;
    });
    return running;
  }

  /* When the next backoff expires (ms since the epoch), or null when nothing waits on one. */
  function nextTry(state, userId) {
    var times = state.inspections.concat(state.photos)
      .filter(function (r) { return r.user_id === userId && r.status === "waiting" && r.next_try; })
      .map(function (r) { return r.next_try; });
    return times.length ? Math.min.apply(null, times) : null;
  }

  global.AnjuQueue = {
    open: openDb,
    add: add,
    all: all,
    put: put,
    remove: remove,
    saveDraft: saveDraft,
    getDraft: getDraft,
    drafts: drafts,
    removeDraft: removeDraft,
    thumbs: thumbs,
    putThumb: putThumb,
    pruneSent: pruneSent,
    isQuotaError: isQuotaError,
    SENT_KEPT: SENT_KEPT,
    refreshPhotos: refreshPhotos,
    sync: sync,
    nextTry: nextTry,
    reasonFrom: reasonFrom,
    USER_HEADER: USER_HEADER,
  };
})(self);
