// `npm run bench -- ingest [--rows N]`: rows/s and peak JS heap of streaming ingest into IndexedDB
// in headless Chromium, for the real CTD_curated_genes_diseases.csv and a generated CTD-format
// .csv.gz of N rows (default 5,000,000; bench/make-ctd-like.ts, cached in the temp dir). Files are
// served over a local HTTP server and fetched by the page; the page's JSHeapUsedSize is sampled
// through CDP every 200 ms. Flat memory: the peak over the first million rows ≈ the peak over all.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { basename } from 'node:path';
import { type DataPage, openDataPage } from '../tests/data/pages.ts';
import { openBrowserSession } from '../tests/helpers/browser.ts';
import { defaultPath, makeCtdLike } from './make-ctd-like.ts';

const CURATED = new URL('../../shared/data/ctd/CTD_curated_genes_diseases.csv', import.meta.url).pathname;

function serve(files: string[]): Promise<{ server: Server; url: (path: string) => string }> {
  const byName = new Map(files.map((f) => [basename(f), f]));
  const server = createServer((req, res) => {
    const path = byName.get(decodeURIComponent((req.url ?? '').slice(1)));
    if (!path) return res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': statSync(path).size, 'Access-Control-Allow-Origin': '*' });
    createReadStream(path).pipe(res);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({ server, url: (path) => `http://127.0.0.1:${port}/${encodeURIComponent(basename(path))}` });
    }),
  );
}

interface Sample {
  rows: number;
  heapMb: number;
}

/** Ingest one served file, sampling the page's heap; returns the result and the samples. */
async function measure(page: DataPage, url: string, size: number, db: string) {
  await page.cdp.send('HeapProfiler.collectGarbage');
  const samples: Sample[] = [];
  let done = false;
  const sampling = (async () => {
    while (!done) {
      const { metrics } = await page.cdp.send('Performance.getMetrics');
      const heap = metrics.find((m) => m.name === 'JSHeapUsedSize')!.value;
      const rows = Number(await page.page.evaluate('globalThis.__rowsRead ?? 0'));
      samples.push({ rows, heapMb: heap / 2 ** 20 });
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    const result = await page.run<{ seconds: number; counts: { rowsRead: number; stored: number; bad: number }; status: string }>(
      '/tests/browser/pages/data-bench.page.ts',
      { url, size, db },
      1_800_000,
    );
    return { result, samples };
  } finally {
    done = true;
    await sampling;
  }
}

const peak = (samples: Sample[], upTo = Infinity) => Math.max(...samples.filter((s) => s.rows <= upTo).map((s) => s.heapMb));

export default async function (args: string[]): Promise<void> {
  const rowsAt = args.indexOf('--rows');
  const rows = rowsAt >= 0 ? Number(args[rowsAt + 1]) : 5_000_000;
  if (!Number.isInteger(rows) || rows < 1_000_000) throw new Error('--rows must be an integer of at least 1,000,000 (the bench compares 1M with N rows)');
  const generated = defaultPath(rows);
  if (!existsSync(generated)) {
    console.log(`generating ${rows} CTD-format rows → ${generated}`);
    await makeCtdLike(generated, rows);
  }
  const { server, url } = await serve([CURATED, generated]);
  const session = await openBrowserSession();
  const page = await openDataPage(session);
  await page.cdp.send('Performance.enable');
  try {
    const curated = await measure(page, url(CURATED), statSync(CURATED).size, 'bench-curated');
    const curatedRate = curated.result.counts.rowsRead / curated.result.seconds;
    console.log(
      `curated CTD (${curated.result.counts.rowsRead} rows, ${(statSync(CURATED).size / 2 ** 20).toFixed(1)} MB): ` +
        `${curated.result.seconds.toFixed(1)} s, ${Math.round(curatedRate)} rows/s, peak JS heap ${peak(curated.samples).toFixed(1)} MB`,
    );
    await page.reload();
    const big = await measure(page, url(generated), statSync(generated).size, 'bench-generated');
    const { counts, seconds } = big.result;
    if (big.result.status !== 'complete' || counts.rowsRead !== rows || counts.stored !== rows) {
      throw new Error(`generated ingest incomplete: ${JSON.stringify(big.result)}`);
    }
    const rate = counts.rowsRead / seconds;
    const peak1m = peak(big.samples, 1_000_000);
    const peakAll = peak(big.samples);
    console.log(
      `generated CTD-format .csv.gz (${rows} rows, ${(statSync(generated).size / 2 ** 20).toFixed(1)} MB gzip): ` +
        `${seconds.toFixed(1)} s, ${Math.round(rate)} rows/s`,
    );
    console.log(`peak JS heap: ${peak1m.toFixed(1)} MB over the first 1M rows, ${peakAll.toFixed(1)} MB over all ${rows} rows (${big.samples.length} samples)`);
    console.log(
      JSON.stringify({
        rows_per_s_curated: Math.round(curatedRate),
        peak_mb_curated: Number(peak(curated.samples).toFixed(1)),
        rows: rows,
        rows_per_s_5m: Math.round(rate),
        peak_mb_1m: Number(peak1m.toFixed(1)),
        peak_mb_5m: Number(peakAll.toFixed(1)),
        seconds_5m: Number(seconds.toFixed(1)),
      }),
    );
  } finally {
    await page.close();
    await session.close();
    server.close();
  }
}
