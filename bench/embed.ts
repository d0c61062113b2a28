// `npm run bench -- embed [--quick] [--models minilm_l6,bge_small] [--seqs 16,64] [--reps 3] [--budget-s 60]`
//
// Embeddings/s (batch 32, forward + mean pooling + read-back) of random MiniLM-L6- and BGE-small-
// shaped BERTs, NF4 and f32 base, with peak GPU memory: our engine in Node (Dawn) and in headless
// Chromium (navigator.gpu), and @huggingface/transformers (onnxruntime-web, WebGPU and WASM, fp32)
// on an ONNX export of the very same weights with the very same token ids, in the same Chromium.
// Each figure is the median of up to --reps timed runs after one untimed warm-up run at the same
// shape; a cell stops repeating once --budget-s is spent (at least one timed run).
import { loadavg } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNodeEngine } from '../src/engine/node-gpu.ts';
import { loadModelFiles } from '../src/model/checkpoint.ts';
import { localDirSource } from '../src/model/node-files.ts';
import { openBrowserSession } from '../tests/helpers/browser.ts';
import { runBenchPage } from './lib/browser.ts';
import type { EngineEmbedPageResult, EngineEmbedParams, PeerEmbedParams, PeerEmbedResult, TimedShape } from './lib/embed-types.ts';
import { type EngineEmbedResult, timeEngineEmbedding, toPageTokenBatch } from './lib/embed-workload.ts';
import { benchModelName, benchModelsRoot, ensureBenchModel } from './lib/models.ts';
import { BGE_SMALL, type BenchShape, benchTokenBatch, forwardFlops } from './lib/shapes.ts';
import { type DispatchProfile, profileFigures, profileTable } from './lib/profile.ts';
import { serveFolders } from './lib/static-server.ts';
import { median } from './lib/stats.ts';
import { markdownTable, mib } from './lib/table.ts';
import { parseBenchOptions } from './lib/options.ts';

const BATCH = 32;
const WEIGHT_SEED = 5;
const BASES = ['nf4', 'f32'] as const;
const PEER_DEVICES = ['webgpu', 'wasm'] as const;
/** The cell the headline ratio is taken at (issue 3: BGE-small shape, seq 16, batch 32). */
const RATIO_SHAPE = BGE_SMALL.key;
const RATIO_SEQ = 16;
const PAGE_TIMEOUT_MS = 60 * 60_000;

interface Row {
  shape: BenchShape;
  runtime: string;
  base: string;
  timed: TimedShape;
  peakBytes: number | null;
  profile: DispatchProfile | null;
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const perSecond = (t: TimedShape) => t.batch / (median(t.timesMs) / 1000);
/** Model GFLOP/s of the forward (linears + attention products). */
function gflops(row: Row): number {
  const { linear, attention } = forwardFlops(row.shape.config, row.timed.batch, row.timed.seq);
  return (linear + attention) / 1e9 / (median(row.timed.timesMs) / 1000);
}

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`cannot compare embeddings of ${a.length} and ${b.length} values`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

export default async function bench(args: string[]): Promise<void> {
  const { shapes, seqs, timing, profile } = parseBenchOptions(args, 60);
  const loadBefore = loadavg()[0];
  const started = performance.now();

  const dirs = new Map<BenchShape, string>();
  for (const shape of shapes) dirs.set(shape, await ensureBenchModel(shape, WEIGHT_SEED, log));
  const batches = (shape: BenchShape) => seqs.map((seq) => benchTokenBatch(BATCH, seq, shape.config.vocab_size, 1000 + seq));
  const rows: Row[] = [];
  const engineRows = (runtime: string, shape: BenchShape, results: EngineEmbedResult[]) => {
    for (const r of results) for (const timed of r.shapes) rows.push({ shape, runtime, base: r.base, timed, peakBytes: timed.peakBytes, profile: timed.profile });
  };

  // Our engine in Node (Dawn).
  const engine = await createNodeEngine();
  const nodeAdapter = engine.adapter;
  log(`Node GPU: ${nodeAdapter.vendor} ${nodeAdapter.architecture} ${nodeAdapter.description}`);
  for (const shape of shapes) {
    const files = await loadModelFiles(localDirSource(dirs.get(shape)!));
    const results: EngineEmbedResult[] = [];
    for (const base of BASES) results.push(await timeEngineEmbedding(engine, files, base, batches(shape), { ...timing, profile }, (line) => log(`node ${shape.key}: ${line}`)));
    engineRows('node (Dawn)', shape, results);
  }
  engine.destroy();

  // Our engine and transformers.js in one headless Chromium session.
  const ortDist = dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
  const server = await serveFolders({ '/models/': `${benchModelsRoot()}/`, '/ort/': `${ortDist}/` });
  const session = await openBrowserSession();
  let browserAdapter: EngineEmbedPageResult['adapter'] | null = null;
  const peerInfo: Record<string, Omit<PeerEmbedResult, 'shapes'>> = {};
  try {
    for (const shape of shapes) {
      const name = benchModelName(shape, WEIGHT_SEED);
      const pageShapes = batches(shape).map(toPageTokenBatch);
      const ours = await runBenchPage<EngineEmbedPageResult>(
        session,
        '/bench/pages/embed-engine.page.ts',
        { modelUrl: `${server.baseUrl}/models/${name}/`, bases: [...BASES], shapes: pageShapes, ...timing } satisfies EngineEmbedParams,
        PAGE_TIMEOUT_MS,
        log,
      );
      browserAdapter = ours.adapter;
      engineRows('chromium (ours)', shape, ours.results);
      for (const device of PEER_DEVICES) {
        const peer = await runBenchPage<PeerEmbedResult>(
          session,
          '/bench/pages/embed-transformers.page.ts',
          { modelsUrl: `${server.baseUrl}/models/`, ortUrl: `${server.baseUrl}/ort/`, model: name, device, shapes: pageShapes, ...timing } satisfies PeerEmbedParams,
          PAGE_TIMEOUT_MS,
          log,
        );
        const { shapes: timedShapes, ...info } = peer;
        peerInfo[device] = info;
        for (const timed of timedShapes) rows.push({ shape, runtime: `chromium transformers.js ${device}`, base: 'fp32 (onnx)', timed, peakBytes: null, profile: null });
      }
    }
  } finally {
    await session.close();
    await server.close();
  }

  const key = (row: Row) => {
    const runtime = row.runtime.startsWith('node') ? 'node' : row.runtime === 'chromium (ours)' ? 'chromium' : `tjs_${row.runtime.split(' ').pop()}`;
    return `${runtime}_${row.runtime.includes('transformers') ? '' : `${row.base}_`}${row.shape.key}_seq${row.timed.seq}`;
  };
  const find = (runtime: string, base: string, shapeKey: string, seq: number) =>
    rows.find((r) => r.runtime === runtime && r.base === base && r.shape.key === shapeKey && r.timed.seq === seq);

  console.log(`Node GPU: ${nodeAdapter.vendor} ${nodeAdapter.architecture} ${nodeAdapter.description}`.trim());
  console.log(`Chromium GPU: ${browserAdapter ? `${browserAdapter.vendor} ${browserAdapter.architecture} ${browserAdapter.description}`.trim() : 'n/a'}`);
  console.log(`batch ${BATCH}; full-length random token ids; median of up to ${timing.reps} timed runs after a warm-up run (budget ${timing.budgetMs / 1000} s per cell)`);
  console.log(
    markdownTable(
      ['model', 'seq', 'runtime', 'base', 'embeddings/s', 'median s', 'timed runs', 'warm-up s', 'model GFLOP/s', 'peak GPU MiB'],
      rows.map((r) => [
        r.shape.label,
        r.timed.seq,
        r.runtime,
        r.base,
        perSecond(r.timed).toFixed(2),
        (median(r.timed.timesMs) / 1000).toFixed(2),
        r.timed.timesMs.length,
        (r.timed.warmupMs / 1000).toFixed(1),
        gflops(r).toFixed(2),
        r.peakBytes === null ? '—' : mib(r.peakBytes),
      ]),
    ),
  );

  const result: Record<string, unknown> = {
    name: 'embed',
    batch: BATCH,
    node_adapter: nodeAdapter.description || `${nodeAdapter.vendor} ${nodeAdapter.architecture}`,
    chromium_adapter: browserAdapter ? browserAdapter.description || `${browserAdapter.vendor} ${browserAdapter.architecture}` : null,
    transformersjs: peerInfo,
    reps: timing.reps,
    budget_s_per_cell: timing.budgetMs / 1000,
  };
  for (const row of rows) {
    result[`${key(row)}_emb_per_s`] = +perSecond(row.timed).toFixed(3);
    result[`${key(row)}_timed_runs`] = row.timed.timesMs.length;
    result[`${key(row)}_gflop_per_s`] = +gflops(row).toFixed(3);
    if (row.peakBytes !== null) result[`${key(row)}_peak_bytes`] = row.peakBytes;
  }
  // Ours ÷ theirs, both in Chromium; f32 base is the very same weights, NF4 is what training uses.
  const ratios: string[] = [];
  for (const shape of shapes) {
    for (const seq of seqs) {
      for (const device of PEER_DEVICES) {
        const theirs = find(`chromium transformers.js ${device}`, 'fp32 (onnx)', shape.key, seq);
        for (const base of BASES) {
          const ours = find('chromium (ours)', base, shape.key, seq);
          if (!ours || !theirs) continue;
          const ratio = perSecond(ours.timed) / perSecond(theirs.timed);
          result[`ratio_${base}_vs_transformersjs_${device}_${shape.key}_seq${seq}`] = +ratio.toFixed(3);
          ratios.push(`${shape.label} seq ${seq}: ours ${base} ÷ transformers.js ${device} = ${ratio.toFixed(3)}`);
          if (shape.key === RATIO_SHAPE && seq === RATIO_SEQ && base === 'f32') result[`ratio_vs_transformersjs_${device}`] = +ratio.toFixed(3);
        }
        const oursF32 = find('chromium (ours)', 'f32', shape.key, seq);
        if (oursF32 && theirs) result[`max_abs_diff_f32_vs_transformersjs_${device}_${shape.key}_seq${seq}`] = +maxAbsDiff(oursF32.timed.embeddings, theirs.timed.embeddings).toExponential(2);
      }
    }
  }
  if (ratios.length > 0) console.log(ratios.join('\n'));
  for (const row of rows) {
    if (!row.profile) continue;
    console.log(`\nper-kernel time, ${row.runtime}, ${row.shape.label}, seq ${row.timed.seq}, ${row.base} base:`);
    console.log(profileTable(row.profile));
    result[`profile_${key(row)}`] = profileFigures(row.profile);
  }
  result.load_average_before = +loadBefore.toFixed(2);
  result.load_average_after = +loadavg()[0].toFixed(2);
  result.wall_s = +((performance.now() - started) / 1000).toFixed(1);
  console.log(JSON.stringify(result));
}
