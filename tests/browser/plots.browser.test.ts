import { mkdirSync, writeFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSession, openBrowserSession } from '../helpers/browser.ts';

const SHOTS = 'test-output/screenshots';
const HOSTILE_TEXT = '<img src=x onerror="globalThis.__injected = 1">no evidence of <b>stenosis</b>';

let session: BrowserSession;
let page: Page;
let result: { scatterMs: number; metrics: number };

/** Open a page module in a fresh page and wait for its report; the page stays open for probing. */
async function openPageModule<T>(path: string, timeoutMs: number): Promise<{ page: Page; result: T }> {
  const opened = await session.newPage();
  await opened.setViewportSize({ width: 1280, height: 1000 });
  // On a first run Vite discovers three and Observable Plot, optimises them and reloads the page:
  // load the module again after such a reload.
  for (let attempt = 1; ; attempt++) {
    try {
      await opened.addScriptTag({ type: 'module', url: `${session.baseUrl}${path}` });
      break;
    } catch (e) {
      if (attempt === 3 || !/context was destroyed|navigation/i.test(String(e))) throw e;
      await opened.waitForLoadState('load');
    }
  }
  await opened.waitForFunction('globalThis.__testResult !== undefined || globalThis.__testError !== undefined', null, { timeout: timeoutMs });
  const error = await opened.evaluate('globalThis.__testError');
  if (error !== undefined) throw new Error(`${path} failed: ${error}`);
  return { page: opened, result: (await opened.evaluate('globalThis.__testResult')) as T };
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  session = await openBrowserSession();
  ({ page, result } = await openPageModule<typeof result>('/tests/browser/pages/plots-render.page.ts', 120_000));
});
afterAll(async () => session?.close());

/** Luminance variance and distinct colours of a PNG, decoded by the browser. */
async function pixelStats(png: Buffer): Promise<{ variance: number; colours: number }> {
  return page.evaluate(async (base64) => {
    const image = new Image();
    image.src = `data:image/png;base64,${base64}`;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext('2d')!;
    context.drawImage(image, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    let sumSq = 0;
    const colours = new Set<number>();
    for (let p = 0; p < data.length; p += 4) {
      const y = 0.2126 * data[p] + 0.7152 * data[p + 1] + 0.0722 * data[p + 2];
      sum += y;
      sumSq += y * y;
      colours.add((data[p] << 16) | (data[p + 1] << 8) | data[p + 2]);
    }
    const n = data.length / 4;
    return { variance: sumSq / n - (sum / n) ** 2, colours: colours.size };
  }, png.toString('base64'));
}

async function download(click: () => Promise<void>): Promise<{ name: string; body: Buffer }[]> {
  const files: { name: string; body: Buffer }[] = [];
  const seen = new Promise<void>((resolve) => {
    page.on('download', async (d) => {
      const stream = await d.createReadStream();
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      files.push({ name: d.suggestedFilename(), body: Buffer.concat(chunks) });
      resolve();
    });
  });
  await click();
  await seen;
  await page.waitForTimeout(300);
  page.removeAllListeners('download');
  return files;
}

describe('plots in headless Chromium', () => {
  it.each(['scatter', 'scatter3d', 'histogram', 'table', 'curves'])('%s renders (screenshot is not blank)', async (name) => {
    const shot = await page.locator(`[data-plot="${name}"]`).screenshot();
    writeFileSync(`${SHOTS}/plots-${name}.png`, shot);
    const stats = await pixelStats(shot);
    expect(stats.variance, `${name} luminance variance`).toBeGreaterThan(100);
    expect(stats.colours, `${name} distinct colours`).toBeGreaterThan(8);
  });

  it('draws 20,000 points promptly and shows hovered text as text, never markup', async () => {
    expect(result.scatterMs).toBeLessThan(5000);
    await page.locator('[data-plot="scatter"]').scrollIntoViewIfNeeded();
    const point = (await page.evaluate('globalThis.__scatter.pointPosition(0)')) as { x: number; y: number };
    await page.mouse.move(point.x - 20, point.y - 20);
    await page.mouse.move(point.x, point.y);
    const tooltip = page.locator('[data-plot="scatter"] [role="tooltip"]');
    await tooltip.waitFor({ timeout: 10_000 });
    expect(await tooltip.textContent()).toContain(HOSTILE_TEXT);
    expect(await page.locator('[data-plot="scatter"] [role="tooltip"] img, [data-plot="scatter"] [role="tooltip"] b').count()).toBe(0);
    expect(await page.evaluate('globalThis.__injected')).toBeUndefined();
    writeFileSync(`${SHOTS}/plots-scatter-hover.png`, await page.locator('[data-plot="scatter"]').screenshot());
  });

  it('exports SVG, PNG and CSV of a chart', async () => {
    const histogram = page.locator('[data-plot="histogram"]');
    const [svg] = await download(() => histogram.getByRole('button', { name: 'SVG' }).click());
    expect(svg.name).toBe('separation-cardiology.svg');
    expect(svg.body.toString()).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.body.toString()).toContain('cosine similarity');
    const [png] = await download(() => histogram.getByRole('button', { name: 'PNG' }).click());
    expect(png.body.subarray(1, 4).toString()).toBe('PNG');
    expect((await pixelStats(png.body)).variance).toBeGreaterThan(100);
    const [csv] = await download(() => histogram.getByRole('button', { name: 'CSV' }).click());
    expect(csv.body.toString().split('\r\n')[0]).toBe('model,set,group,cosine');
  });

  it('exports the scatter as PNG and the embeddings as Projector TSV files', async () => {
    const scatter = page.locator('[data-plot="scatter"]');
    const [png] = await download(() => scatter.getByRole('button', { name: 'PNG' }).click());
    expect((await pixelStats(png.body)).colours).toBeGreaterThan(6);
    const files = await download(() => scatter.getByRole('button', { name: 'Projector TSV' }).click());
    const byName = Object.fromEntries(files.map((f) => [f.name, f.body.toString()]));
    expect(Object.keys(byName).sort()).toEqual(['metadata.tsv', 'vectors.tsv']);
    expect(byName['vectors.tsv'].trimEnd().split('\n')).toHaveLength(20_000);
    expect(byName['metadata.tsv'].split('\n')[0]).toBe('text\tlabel');
    expect(byName['metadata.tsv'].split('\n')[1]).toBe(`${HOSTILE_TEXT}\tcategory 0`);
  });

  it('the metrics table lists every metric with its formula', async () => {
    const rows = page.locator('[data-plot="table"] tbody tr');
    expect(await rows.count()).toBe(result.metrics);
    await rows.first().locator('summary').click();
    expect(await rows.first().locator('code').textContent()).toBe('mean cos(similar pairs) − mean cos(different pairs)');
  });

  it('runs GPU t-SNE in the browser and draws the map (trustworthiness ≥ 0.9)', async () => {
    const tsne = await openPageModule<{ trust: number; seconds: number; progressCalls: number }>('/tests/browser/pages/plots-tsne.page.ts', 300_000);
    expect(tsne.result.trust).toBeGreaterThanOrEqual(0.9);
    expect(tsne.result.progressCalls).toBe(3);
    const shot = await tsne.page.locator('[data-plot="tsne-browser"]').screenshot();
    writeFileSync(`${SHOTS}/plots-tsne-browser.png`, shot);
    expect((await pixelStats(shot)).variance).toBeGreaterThan(100);
    await tsne.page.close();
  }, 360_000);
});
