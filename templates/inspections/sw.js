/* Anju field page service worker, version {{ version }}.
 *
 * Scope {{ scope }}: it keeps the field page, our CSS/JS and the photo-slot configuration so
 * that the page opens with no network. Static files are served cache-first (a new version
 * of any of them is a new worker, with a new cache); the page and the photo slots
 * network-first, falling back to the kept copy. Uploads (POST) are never touched: the page
 * queues them in IndexedDB and sends them itself.
 *
 * The kept page and photo slots are one user's (the page carries their name, id and CSRF
 * token). They are forgotten as soon as nobody is logged in: when the login page says so
 * (static/field/forget.js, on every login page, so after a logout and before any login),
 * and when the server answers them with the login page or a refusal. So the page offline is
 * only ever the last logged-in user's. The records waiting in IndexedDB are not touched:
 * each is its user's, and the page sends only its own user's.
 */
"use strict";

const VERSION = "{{ version }}";
const CACHE = "anju-field-" + VERSION;
const PAGE = "{{ scope }}";
const PHOTO_SLOTS = "{{ photo_slots }}";
const PRECACHE = {{ precache|safe }};
const STATIC = PRECACHE.filter((url) => url !== PAGE);
// On one bar of signal, wait this long for the network before showing the kept page.
const NETWORK_TIMEOUT_MS = 4000;

// What is kept for the logged-in user only.
const PER_USER = [PAGE, PHOTO_SLOTS];
const FORGET_MESSAGE = "anju-field-forget";

/* Forget the user's copies, in this worker's cache and in any older one still there. */
async function forgetUser() {
  const names = (await caches.keys()).filter((name) => name.startsWith("anju-field-"));
  await Promise.all(
    names.map(async (name) => {
      const cache = await caches.open(name);
      await Promise.all(PER_USER.map((url) => cache.delete(url)));
    })
  );
}

/* The server's answer says nobody (or somebody else, who may not use the page) is logged
 * in: the login page (a redirect; "opaqueredirect" for a page load, whose redirects the
 * browser follows itself), or the API's 401/403. */
function signedOut(response) {
  return (
    response.type === "opaqueredirect" ||
    response.redirected ||
    response.status === 401 ||
    response.status === 403
  );
}

/* Keep a good answer under `key`; forget the user's copies on a signed-out one. */
async function remember(cache, key, response) {
  if (response.ok && !response.redirected) {
    await cache.put(key, response.clone());
  } else if (signedOut(response)) {
    await forgetUser();
  }
}

async function keep(cache, url) {
  // The page needs the session cookie; a redirect (to the login page) is never kept as it.
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  await remember(cache, url, response);
  return response;
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(STATIC);
      await Promise.all([keep(cache, PAGE), keep(cache, PHOTO_SLOTS)].map((p) => p.catch(() => null)));
      await self.skipWaiting();
    })()
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(
        names.filter((name) => name.startsWith("anju-field-") && name !== CACHE).map((name) => caches.delete(name))
      );
      await self.clients.claim();
    })()
  );
});

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  const network = fetch(request).then(async (response) => {
    await remember(cache, key, response);
    return response;
  });
  // Answered from the kept copy, a late network failure is nobody's business.
  network.catch(() => null);
  const kept = await cache.match(key);
  if (!kept) {
    return network;
  }
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), NETWORK_TIMEOUT_MS));
  try {
    const response = await Promise.race([network, timeout]);
    return response || kept;
  } catch (error) {
    return kept;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(request, { ignoreSearch: true });
  if (kept) {
    return kept;
  }
  const response = await fetch(request);
  if (response.ok) {
    await cache.put(request, response.clone());
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) {
    return;
  }
  if (url.pathname === PAGE && request.mode === "navigate") {
    event.respondWith(networkFirst(request, PAGE));
  } else if (url.pathname === PHOTO_SLOTS) {
    event.respondWith(networkFirst(request, PHOTO_SLOTS));
  } else if (STATIC.includes(url.pathname)) {
    event.respondWith(cacheFirst(request));
  }
});

// The login page (static/field/forget.js): nobody is logged in, forget the user's copies.
// It waits for the answer on the port it sends, to know the page is gone.
self.addEventListener("message", (event) => {
  if (!event.data || event.data.type !== FORGET_MESSAGE) {
    return;
  }
  const port = event.ports && event.ports[0];
  event.waitUntil(
    forgetUser().then(
      () => port && port.postMessage({ type: FORGET_MESSAGE, done: true }),
      (error) => port && port.postMessage({ type: FORGET_MESSAGE, done: false, error: String(error) })
    )
  );
});

// Background Sync: the browser says the network is back; wake the open field pages to send.
self.addEventListener("sync", (event) => {
  if (event.tag === "anju-field-sync") {
    event.waitUntil(
      self.clients.matchAll({ type: "window" }).then((clients) => {
        clients.forEach((client) => client.postMessage({ type: "anju-field-sync" }));
      })
    );
  }
});
