/* On the login page: nobody is logged in on this browser now (after a logout, an expired
 * session, or before someone logs in). Whatever the field page kept for its last user goes:
 *
 * - the field page's service worker forgets its copy of the page and the photo slots
 *   (templates/inspections/sw.js), so that the page opened offline never shows that user;
 * - field pages still open in other tabs or in the installed app learn that their user is
 *   gone (a new "anju-field-signed-out" in localStorage) and reload: they do not send their
 *   user's records with whoever logs in next.
 *
 * The records waiting in IndexedDB stay, each with its user: they are evidence not yet sent,
 * and the field page sends only its own user's.
 *
 * When done, <html data-field-forgotten="true"> (or "false" when the worker failed).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var scope = script && script.dataset.scope;
  var MESSAGE = "anju-field-forget";
  var SIGNED_OUT_KEY = "anju-field-signed-out";

  function done(ok) {
    document.documentElement.dataset.fieldForgotten = ok ? "true" : "false";
  }

  try {
    var stamp = Date.now() + "-" + Math.random().toString(36).slice(2);
    localStorage.setItem(SIGNED_OUT_KEY, stamp);
  } catch (error) { /* no storage: no page of this browser keeps anything either */ }

  if (!scope || !("serviceWorker" in navigator)) {
    done(true);
    return;
  }

  // A worker of a version before this file does not answer; see update() below.
  var ANSWER_TIMEOUT_MS = 10000;

  /* Ask one worker to forget; resolves when it says it has (or false when it failed). */
  function ask(worker) {
    return new Promise(function (resolve) {
      var channel = new MessageChannel();
      var timer = setTimeout(function () { resolve(false); }, ANSWER_TIMEOUT_MS);
      channel.port1.onmessage = function (event) {
        clearTimeout(timer);
        resolve(Boolean(event.data && event.data.done));
      };
      worker.postMessage({ type: MESSAGE }, [channel.port2]);
    });
  }

  navigator.serviceWorker.getRegistration(scope).then(function (registration) {
    if (!registration) return [true];
    // A newer worker, if the server has one, installs now rather than at the next visit of
    // the field page (installing with nobody logged in, it keeps no page).
    return registration.update().catch(function () { return null; }).then(function () {
      // A new worker about to take over has kept its own copy of the page: it forgets too.
      var workers = [registration.installing, registration.waiting, registration.active]
        .filter(function (worker) { return worker; });
      return Promise.all(workers.map(ask));
    });
  }).then(function (answers) {
    done(answers.every(function (ok) { return ok; }));
  }, function () { done(false); });
})();
