/**
 * Headless Chromium (Debian's, SwiftShader WebGPU) driving pages served by a Vite dev server:
 * the browser path users run, in tests.
 */
import { type Browser, type Page, chromium } from 'playwright-core';
import { createServer } from 'vite';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export interface BrowserSession {
  /** The server of the pages (a Vite dev server, or a static server of a production build). */
  server: { close(): Promise<void> };
  browser: Browser;
  baseUrl: string;
  newPage(path?: string): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Load a page module (which must set `globalThis.__testResult`, or `__testError` on failure) into a
 * fresh page and return its result. Modules are plain files so Vite serves them untransformed by vitest.
 */
export async function runPageModule<T>(session: BrowserSession, modulePath: string, timeoutMs = 120_000): Promise<T> {
  const page = await session.newPage();
  try {
    await page.addScriptTag({ type: 'module', url: session.baseUrl + modulePath });
    await page.waitForFunction('globalThis.__testResult !== undefined || globalThis.__testError !== undefined', null, {
      timeout: timeoutMs,
    });
    const error = (await page.evaluate('globalThis.__testError')) as string | undefined;
    if (error !== undefined) throw new Error(`${modulePath} failed in the browser: ${error}`);
    return (await page.evaluate('globalThis.__testResult')) as T;
  } finally {
    await page.close();
  }
}

export async function openBrowserSession(): Promise<BrowserSession> {
  const server = await createServer({ configFile: 'vite.config.ts', server: { port: 0, host: '127.0.0.1' }, logLevel: 'error' });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite dev server has no TCP address');
  const baseUrl = `http://127.0.0.1:${address.port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const pages: Page[] = [];
  return {
    server,
    browser,
    baseUrl,
    async newPage(path = '/tests/browser/blank.html') {
      const page = await browser.newPage();
      pages.push(page);
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(baseUrl + path);
      return page;
    },
    async close() {
      await browser.close();
      await server.close();
    },
  };
}
