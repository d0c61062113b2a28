/**
 * Benchmark pages in headless Chromium: the test rig's session and page protocol
 * (tests/helpers/browser.ts), plus parameters handed to the page and its console echoed as progress.
 */
import { type BrowserSession, runPageModule } from '../../tests/helpers/browser.ts';

/**
 * Run `modulePath` in a fresh page whose `globalThis.__benchParams` is `params`; returns what the
 * page reports. The page's Vite HMR socket is cut off (mocked, never connected): other people edit
 * this checkout while a benchmark runs for minutes, and a hot reload would silently end the run.
 */
export async function runBenchPage<T>(session: BrowserSession, modulePath: string, params: unknown, timeoutMs: number, log: (line: string) => void): Promise<T> {
  const withParams: BrowserSession = {
    ...session,
    async newPage(path = '/tests/browser/blank.html') {
      const page = await session.browser.newPage();
      await page.routeWebSocket(/./, () => {});
      page.on('console', (message) => log(message.text()));
      page.on('pageerror', (error) => log(`page error: ${error.message}`));
      await page.goto(session.baseUrl + path);
      await page.evaluate((p) => {
        (globalThis as { __benchParams?: unknown }).__benchParams = p;
      }, params);
      return page;
    },
  };
  return runPageModule<T>(withParams, modulePath, timeoutMs);
}
