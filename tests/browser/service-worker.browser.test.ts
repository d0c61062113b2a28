/**
 * The service worker's caches: one per build, and a new build deletes the caches of the ones
 * before it when it activates (the app's files never pile up across updates).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BrowserSession, openBrowserSession } from '../helpers/browser.ts';

let session: BrowserSession;
beforeAll(async () => {
  session = await openBrowserSession();
});
afterAll(async () => session?.close());

it('caches into its own build cache and drops older builds on activation', async () => {
  const page = await session.newPage();
  try {
    const install = (build: string) =>
      page.evaluate(async (build) => {
        const registration = await navigator.serviceWorker.register(`/sw.js?build=${build}`);
        const worker = registration.installing ?? registration.waiting ?? registration.active!;
        if (worker.state !== 'activated') await new Promise((resolve) => worker.addEventListener('statechange', () => worker.state === 'activated' && resolve(null)));
        if (!navigator.serviceWorker.controller?.scriptURL.endsWith(`build=${build}`)) {
          await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
        }
        await fetch(`/tests/browser/blank.html?build=${build}`); // passes through the worker, which keeps a copy
        const names = await caches.keys();
        const kept = await Promise.all(names.map(async (name) => [name, (await (await caches.open(name)).keys()).map((r) => new URL(r.url).search)]));
        return Object.fromEntries(kept) as Record<string, string[]>;
      }, build);
    const first = await install('one');
    expect(first).toEqual({ 'qlora-lab-app-one': ['?build=one'] });
    const second = await install('two');
    expect(second).toEqual({ 'qlora-lab-app-two': ['?build=two'] });
  } finally {
    await page.close();
  }
});
