// qlora-lab's service worker: after the first visit the app works offline. Network first, so an
// online visit always gets the current files; every same-origin file that loads (app code, the
// bundled demo model and data) is kept in the cache and answered from it when the network is gone.
// Hub model files are cross-origin and kept by the app itself (Cache Storage "qlora-lab-hub").
// One cache per build (the page registers `sw.js?build=<id>`): activating a build deletes the
// caches of the builds before it, so old app files never pile up.
const PREFIX = 'qlora-lab-app';
const CACHE = `${PREFIX}-${new URL(self.location.href).searchParams.get('build') ?? 'unversioned'}`;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(dropOtherBuilds().then(() => self.clients.claim())));

async function dropOtherBuilds() {
  const names = await caches.keys();
  await Promise.all(names.filter((name) => name.startsWith(PREFIX) && name !== CACHE).map((name) => caches.delete(name)));
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || request.headers.has('range')) return;
  if (new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(networkFirst(request));
});

// The page sends what it loaded before this worker controlled it (the page itself, its first scripts).
self.addEventListener('message', (event) => {
  if (event.data?.type !== 'cache-urls') return;
  const urls = event.data.urls.filter((url) => new URL(url).origin === self.location.origin);
  event.waitUntil(
    caches.open(CACHE).then((cache) =>
      Promise.all(urls.map((url) => fetch(url).then((response) => (response.ok ? cache.put(url, response) : undefined), () => undefined))),
    ).then(() => event.source?.postMessage({ type: 'cached', count: urls.length })),
  );
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    // Caching is best effort: a full disk must not turn a good response into a failed load.
    if (response.ok && response.type === 'basic') await cache.put(request, response.clone()).catch(() => {});
    return response;
  } catch (error) {
    const cached = await cache.match(request, { ignoreVary: true, ignoreSearch: request.mode === 'navigate' });
    if (cached) return cached;
    throw error;
  }
}
