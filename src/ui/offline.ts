/**
 * Offline use: register the service worker (public/sw.js). On the first visit the page waits until
 * the worker controls it, so that everything the app loads afterwards (its code, the engine worker,
 * the bundled model) passes through the worker's cache, and asks it to cache what had already
 * loaded (the page and its first scripts).
 */
const CONTROL_TIMEOUT_MS = 5000;

export async function enableOffline(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  try {
    const registration = await navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js?build=${encodeURIComponent(__BUILD_ID__)}`);
    if (!navigator.serviceWorker.controller) await controlled(CONTROL_TIMEOUT_MS);
    const urls = [location.href, ...performance.getEntriesByType('resource').map((e) => e.name)];
    (navigator.serviceWorker.controller ?? registration.active)?.postMessage({ type: 'cache-urls', urls });
  } catch (e) {
    // The app works without it (e.g. a private window that refuses service workers), just not offline.
    console.warn(`offline support is unavailable: ${(e as Error).message}`);
  }
}

function controlled(timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
