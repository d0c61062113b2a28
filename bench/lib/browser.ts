/**
 * Benchmark pages in headless Chromium: the test rig's session and page protocol
 * (tests/helpers/browser.ts), plus parameters handed to the page and its console echoed as progress.
 */
import { type BrowserSession, runPageModule } from '../../tests/helpers/browser.ts';

/** Run `modulePath` in a fresh page whose `globalThis.__benchParams` is `params`; returns what the page reports. */
export async function runBenchPage<T>(session: BrowserSession, modulePath: string, params: unknown, timeoutMs: number, log: (line: string) => void): Promise<T> {
  const withParams: BrowserSession = {
    ...session,
    async newPage(path?: string) {
      const page = await session.newPage(path);
      page.on('console', (message) => log(`  [chromium] ${message.text()}`));
      await page.evaluate((p) => {
        (globalThis as { __benchParams?: unknown }).__benchParams = p;
      }, params);
      return page;
    },
  };
  return runPageModule<T>(withParams, modulePath, timeoutMs);
}
