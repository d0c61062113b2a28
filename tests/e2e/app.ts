/**
 * Helpers for the app's end-to-end tests: open the app in a fresh browser context (its own
 * IndexedDB, caches and service worker), watch main-thread long tasks, and take screenshots that
 * are checked not to be blank.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import type { BrowserSession } from '../helpers/browser.ts';

export const SCREENSHOT_DIR = 'test-output/screenshots';

export interface AppPage {
  page: Page;
  context: BrowserContext;
  /** Uncaught page errors and console errors, for failure messages. */
  errors: string[];
}

/** Every main-thread task over 50 ms (PerformanceObserver 'longtask'), with start time and duration. */
const LONG_TASK_OBSERVER = `
  globalThis.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) globalThis.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
`;

export async function openApp(session: BrowserSession, path = '/', context?: BrowserContext): Promise<AppPage> {
  const ctx = context ?? (await session.browser.newContext({ viewport: { width: 1200, height: 900 } }));
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await page.addInitScript(LONG_TASK_OBSERVER);
  await page.goto(session.baseUrl + path);
  return { page, context: ctx, errors };
}

export async function longTasks(page: Page, from: number, to: number): Promise<{ start: number; duration: number }[]> {
  const all = (await page.evaluate('globalThis.__longTasks')) as { start: number; duration: number }[];
  return all.filter((t) => t.start + t.duration >= from && t.start <= to);
}

export async function now(page: Page): Promise<number> {
  return page.evaluate(() => performance.now());
}

/**
 * Save a full-page screenshot as test-output/screenshots/<name>.png and check it is not blank: the
 * image is decoded in the browser and must have many distinct colours and enough non-background pixels.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const png = await page.screenshot({ fullPage: true });
  writeFileSync(`${SCREENSHOT_DIR}/${name}.png`, png);
  // Decoded in a page of its own: the app's page may be busy or navigating.
  const viewer = await page.context().newPage();
  const stats = await viewer.evaluate(async (base64) => {
    const image = new Image();
    image.src = `data:image/png;base64,${base64}`;
    await image.decode();
    const canvas = new OffscreenCanvas(image.naturalWidth, image.naturalHeight);
    const ctx = canvas.getContext('2d')!;
    ctx.drawImage(image, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set<number>();
    let ink = 0;
    for (let i = 0; i < data.length; i += 4) {
      const rgb = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
      colours.add(rgb);
      if (rgb !== ((data[0] << 16) | (data[1] << 8) | data[2])) ink++;
    }
    return { colours: colours.size, inkFraction: ink / (data.length / 4), width: canvas.width, height: canvas.height };
  }, png.toString('base64'));
  await viewer.close();
  expect(stats.colours, `${name}.png has only ${stats.colours} colours`).toBeGreaterThan(16);
  expect(stats.inkFraction, `${name}.png is almost empty`).toBeGreaterThan(0.01);
}
