/**
 * One headless-Chromium page that runs several page modules in turn and keeps its storage between
 * them (and across reloads), for IndexedDB tests: ingest, reload, resume. Files outside the Vite root
 * (the shared CTD file) are served to the page under /__data/<name>.
 */
import type { CDPSession, Page } from 'playwright-core';
import type { BrowserSession } from '../helpers/browser.ts';

export interface DataPage {
  page: Page;
  cdp: CDPSession;
  origin: string;
  /** Run a page module (which calls report()) with query parameters; the page is not closed. */
  run<T>(module: string, params?: Record<string, string | number>, timeoutMs?: number): Promise<T>;
  /** Load the blank page again: whatever the page was doing stops mid-way; its storage stays. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

let runs = 0;

export async function openDataPage(session: BrowserSession, files: Record<string, string> = {}): Promise<DataPage> {
  const context = await session.browser.newContext();
  await context.route('**/__data/*', (route) => {
    const name = decodeURIComponent(new URL(route.request().url()).pathname.split('/').pop()!);
    const path = files[name];
    return path ? route.fulfill({ path, contentType: 'application/octet-stream' }) : route.fulfill({ status: 404, body: `no test file ${name}` });
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const blank = `${session.baseUrl}/tests/browser/blank.html`;
  await page.goto(blank);
  const cdp = await context.newCDPSession(page);
  return {
    page,
    cdp,
    origin: session.baseUrl,
    async run<T>(module: string, params: Record<string, string | number> = {}, timeoutMs = 180_000): Promise<T> {
      // A fresh query string each time: a module URL already imported would not run again.
      const query = new URLSearchParams({ ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])), run: String(++runs) });
      await page.evaluate('delete globalThis.__testResult; delete globalThis.__testError');
      await page.addScriptTag({ type: 'module', url: `${session.baseUrl}${module}?${query}` });
      await page.waitForFunction('globalThis.__testResult !== undefined || globalThis.__testError !== undefined', null, { timeout: timeoutMs });
      const error = (await page.evaluate('globalThis.__testError')) as string | undefined;
      if (error !== undefined) throw new Error(`${module} failed in the browser: ${error}${errors.length ? `\npage errors: ${errors.join('\n')}` : ''}`);
      return (await page.evaluate('globalThis.__testResult')) as T;
    },
    async reload() {
      await page.goto(blank);
    },
    async close() {
      await context.close();
    },
  };
}
