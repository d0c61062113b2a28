/**
 * Helpers for the app's end-to-end tests: open the app in a fresh browser context (its own
 * IndexedDB, caches and service worker), watch main-thread long tasks, and take screenshots that
 * are checked not to be blank.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { build, createServer, preview } from 'vite';
import { expect } from 'vitest';
import { type BrowserSession, CHROMIUM_ARGS, CHROMIUM_PATH } from '../helpers/browser.ts';

export const SCREENSHOT_DIR = 'test-output/screenshots';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's WCAG 2.x A/AA violations on the page as it is now, one line each (empty when there are none). */
export async function axeViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.addScriptTag({ content: AXE_SOURCE });
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: { id: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } });
    return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.length}×, e.g. ${v.nodes[0]?.target.join(' ')})`);
  });
  return violations;
}

/**
 * What makes the page scroll sideways: empty when it is no wider than its viewport, else the
 * outermost elements that stick out (not inside a scrolling box), described for the failure message.
 */
export async function horizontalOverflow(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const extra = document.documentElement.scrollWidth - width;
    if (extra <= 0) return [];
    const scrolls = (el: Element) => ['auto', 'scroll', 'hidden'].includes(getComputedStyle(el).overflowX);
    const inScrollBox = (el: Element) => {
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) if (scrolls(p)) return true;
      return false;
    };
    const sticksOut = (el: Element) => el.getBoundingClientRect().right > width + 0.5 && !inScrollBox(el);
    const outermost = [...document.querySelectorAll('body *')].filter((el) => sticksOut(el) && !(el.parentElement && el.parentElement !== document.body && sticksOut(el.parentElement)));
    const describe = (el: Element) => `<${el.tagName.toLowerCase()}${el.className ? ` class="${el.className}"` : ''}> ${Math.round(el.getBoundingClientRect().width)} px wide: ${(el.textContent ?? '').replace(/\s+/g, ' ').slice(0, 60)}`;
    return [`the page is ${extra} px wider than its ${width} px viewport`, ...outermost.slice(0, 8).map(describe)];
  });
}

/**
 * Horizontal overflow at the widths the app must fit without sideways scrolling: a 1280 px desktop,
 * the same window at 200% zoom (640 CSS px at device scale 2, as browser zoom lays it out) and a
 * 390 px phone. Returns the problems per width (empty when none); the viewport is restored after.
 */
export async function overflowAtWidths(page: Page): Promise<string[]> {
  const restore = page.viewportSize() ?? { width: 1200, height: 900 };
  const problems: string[] = [];
  const check = async (what: string) => problems.push(...(await horizontalOverflow(page)).map((p) => `${what}: ${p}`));
  await page.setViewportSize({ width: 1280, height: 900 });
  await check('1280 px');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Emulation.setDeviceMetricsOverride', { width: 640, height: 450, deviceScaleFactor: 2, mobile: false });
  await check('200% zoom (640 CSS px at device scale 2)');
  await cdp.send('Emulation.clearDeviceMetricsOverride');
  await cdp.detach();
  await page.setViewportSize({ width: 390, height: 844 });
  await check('390 px');
  await page.setViewportSize(restore);
  return problems;
}

export interface AppPage {
  page: Page;
  context: BrowserContext;
  /** Uncaught page errors and console errors, for failure messages. */
  errors: string[];
}

/**
 * Every main-thread task over 50 ms (PerformanceObserver 'longtask'), with start time and duration;
 * and, to say what ran in them, the long animation frames with their scripts.
 */
const LONG_TASK_OBSERVER = `
  globalThis.__longTasks = [];
  globalThis.__longFrames = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) globalThis.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const scripts = e.scripts.map((s) => s.invoker + ' ' + s.sourceURL.split('/').pop() + ' ' + s.sourceFunctionName + ' ' + Math.round(s.duration) + ' ms');
      globalThis.__longFrames.push({ start: e.startTime, duration: e.duration, scripts });
    }
  }).observe({ type: 'long-animation-frame', buffered: true });
`;

/**
 * A Vite dev server and Chromium for app tests. Unlike the shared helper's server it neither
 * watches files nor pushes updates: an edit elsewhere in the working tree must not reload the app
 * in the middle of a training run.
 */
export async function openAppSession(options: { webgpu?: boolean } = {}): Promise<BrowserSession> {
  const server = await createServer({ configFile: 'vite.config.ts', server: { port: 0, host: '127.0.0.1', hmr: false, watch: null }, logLevel: 'error' });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite dev server has no TCP address');
  // Without WebGPU: Chromium's own switch, as a browser without it (or with it turned off) behaves.
  const args = options.webgpu === false ? [...CHROMIUM_ARGS.filter((a) => !/webgpu/i.test(a)), '--disable-features=WebGPU'] : CHROMIUM_ARGS;
  return browserSession(server, address.port, args);
}

async function browserSession(server: { close(): Promise<void> }, port: number, args: string[]): Promise<BrowserSession> {
  const baseUrl = `http://127.0.0.1:${port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args });
  return {
    server,
    browser,
    baseUrl,
    async newPage(path = '/') {
      const page = await browser.newPage();
      await page.goto(baseUrl + path);
      return page;
    },
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/**
 * The production build (`vite build` into `outDir`) served as a static site, for tests of what users
 * get; `requests` records every path the browser asked the server for.
 */
export async function openBuiltAppSession(outDir: string): Promise<BrowserSession & { requests: string[] }> {
  await build({ configFile: 'vite.config.ts', logLevel: 'error', build: { outDir, emptyOutDir: true } });
  const server = await preview({ configFile: 'vite.config.ts', logLevel: 'error', build: { outDir }, preview: { port: 0, host: '127.0.0.1' } });
  const requests: string[] = [];
  server.httpServer.on('request', (req) => requests.push(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
  const address = server.httpServer.address();
  if (!address || typeof address === 'string') throw new Error('vite preview server has no TCP address');
  return { ...(await browserSession(server, address.port, CHROMIUM_ARGS)), requests };
}

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

export interface LongTask {
  start: number;
  duration: number;
  /** Scripts of the long animation frame the task falls in, when the browser reports one. */
  scripts: string[];
}

/** Long tasks that ran entirely between `from` and `to` (page time). */
export async function longTasks(page: Page, from: number, to: number): Promise<LongTask[]> {
  const tasks = (await page.evaluate('globalThis.__longTasks')) as { start: number; duration: number }[];
  const frames = (await page.evaluate('globalThis.__longFrames')) as { start: number; duration: number; scripts: string[] }[];
  return tasks
    .filter((t) => t.start >= from && t.start + t.duration <= to)
    .map((t) => ({ ...t, scripts: frames.find((f) => f.start <= t.start + 1 && t.start <= f.start + f.duration)?.scripts ?? [] }));
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

/** The run settings the tests use: a handful of small steps, checkpoints often. */
export const QUICK_RUN = { steps: 6, batchSize: 8, checkpointEvery: 2, warmupSteps: 1 };

/** Wait until the demo model is loaded and the demo data is built (what a first visit does by itself). */
export async function waitForDemoReady(page: Page, timeoutMs = 240_000): Promise<void> {
  await page.getByText(/^Loaded demo-bert/).waitFor({ timeout: timeoutMs });
  await page.getByText(/^Training on /).waitFor({ timeout: timeoutMs });
}

/** The labels of the training fields the tests set: the plain name, then the technical term. */
export const FIELD = {
  steps: 'How many training steps — optimizer steps',
  batchSize: 'Examples per step — micro-batch size',
  checkpointEvery: 'Save progress every — checkpoint interval (steps)',
  warmupSteps: 'Gentle start — warmup steps',
  learningRate: 'How big each step is — learning rate',
} as const;

/** Open every "Advanced settings" drawer that is closed, as a user does: by clicking its summary. */
export async function openAdvanced(page: Page): Promise<void> {
  const closed = page.locator('details.advanced:not([open]) > summary');
  while ((await closed.count()) > 0) await closed.first().click();
}

/** Fill labelled number fields (their labels are their accessible names), opening the drawers they are in. */
export async function setFields(page: Page, values: Partial<Record<keyof typeof FIELD, number>>): Promise<void> {
  await openAdvanced(page);
  for (const [field, value] of Object.entries(values)) await page.getByLabel(FIELD[field as keyof typeof FIELD], { exact: true }).fill(String(value));
}

export async function setQuickRun(page: Page): Promise<void> {
  await setFields(page, { steps: QUICK_RUN.steps, batchSize: QUICK_RUN.batchSize, checkpointEvery: QUICK_RUN.checkpointEvery, warmupSteps: QUICK_RUN.warmupSteps });
}

/** A stored run (the run history in IndexedDB), read the way the app stores it. */
export interface StoredRun {
  id: string;
  status: string;
  error: string | null;
  updatedAt: number;
  checkpointStep: number;
  history: { step: number; loss: number }[];
  metrics: Record<string, { before: number; after: number }> | null;
  config: unknown;
}

export async function storedRuns(page: Page): Promise<StoredRun[]> {
  return page.evaluate(
    () =>
      new Promise<StoredRun[]>((resolve, reject) => {
        const open = indexedDB.open('qlora-lab-runs');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const request = open.result.transaction('runs').objectStore('runs').getAll();
          request.onsuccess = () => {
            resolve(request.result.sort((a, b) => b.createdAt - a.createdAt).map((r) => ({ ...r, adapter: undefined })));
            open.result.close();
          };
          request.onerror = () => reject(request.error);
        };
      }),
  );
}

/**
 * Record in the page the time at which the run's state turns 'done' (a MutationObserver, so the
 * test's polling delay does not stretch the measured window). Call before the run can finish.
 */
export async function watchRunDone(page: Page): Promise<void> {
  await page.evaluate(() => {
    const g = globalThis as { __runDoneAt?: number };
    delete g.__runDoneAt;
    const observer = new MutationObserver(() => {
      if (document.querySelector('[data-run-state="done"]')) {
        g.__runDoneAt = performance.now();
        observer.disconnect();
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-run-state'] });
  });
}

/** Wait for the run watched by watchRunDone to finish; returns the page time it did. */
export async function runDoneAt(page: Page, timeoutMs = 300_000): Promise<number> {
  await page.waitForFunction(() => (globalThis as { __runDoneAt?: number }).__runDoneAt !== undefined, null, { timeout: timeoutMs, polling: 250 });
  return (await page.evaluate('globalThis.__runDoneAt')) as number;
}

/**
 * Wait for the run's state (training, paused, recovering, done, cancelled, failed). Polled with a
 * cheap selector at a slow rate: text matching over the whole page every frame would itself load
 * the main thread the tests measure.
 */
export async function waitForRunState(page: Page, state: string, timeoutMs = 300_000): Promise<void> {
  await page.waitForFunction((s) => document.querySelector(`[data-run-state="${s}"]`) !== null, state, { timeout: timeoutMs, polling: 250 });
}

/** Wait until the run's last checkpoint is at least `step`. */
export async function waitForCheckpoint(page: Page, step: number, timeoutMs = 300_000): Promise<void> {
  await page.waitForFunction(
    (n) => Number(/\d+/.exec(document.querySelector('[data-testid="checkpoint"]')?.textContent ?? '')?.[0] ?? -1) >= n,
    step,
    { timeout: timeoutMs, polling: 250 },
  );
}

/** The newest stored run once its evaluation metrics are saved. */
export async function evaluatedRun(page: Page, timeoutMs = 300_000): Promise<StoredRun> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [run] = await storedRuns(page);
    if (run?.metrics) return run;
    if (Date.now() > deadline) throw new Error(`no evaluated run after ${timeoutMs} ms (newest: ${run ? `${run.id}, ${run.status}` : 'none'})`);
    await page.waitForTimeout(500);
  }
}
