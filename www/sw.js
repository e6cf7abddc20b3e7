// Deeply's service worker: after a first visit the app and the datasets it fetched work offline.
// The app's files are network-first (an online visit always gets the newest build, and refreshes
// the copy); data files are cache-first (they never change). Same-origin GETs only: the app
// loads nothing from elsewhere, and the strict Content-Security-Policy travels with each cached
// response's headers.
const APP = 'deeply-app-v2'; // v2: one wasm (the GPU worker's own files are gone)
const DATA = 'deeply-data-v1'; // also filled by the training worker (src/loader.rs)
const SHELL = ['./', 'boot.js', 'deeply-web.js', 'deeply-web_bg.wasm', 'style.css', 'favicon.svg', 'worker_main.js'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(APP).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== APP && n !== DATA).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

async function networkFirst(request) {
  try {
    const response = await fetch(request);
    if (response.ok) (await caches.open(APP)).put(request, response.clone());
    return response;
  } catch (offline) {
    // Any page URL (?lab=…) is the one app page.
    const cached = await caches.match(request, { ignoreSearch: request.mode === 'navigate' });
    if (cached) return cached;
    throw offline;
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request, { ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) (await caches.open(DATA)).put(request, response.clone());
  return response;
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith(url.pathname.includes('/data/') ? cacheFirst(event.request) : networkFirst(event.request));
});
