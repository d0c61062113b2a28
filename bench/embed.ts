// `npm run bench -- embed [--quick] [--models minilm_l6,bge_small] [--seqs 16,64] [--reps 3] [--budget-s 90] [--profile]`
//
// Embeddings/s (batch 32; forward + mean pooling + embeddings on the host) of random MiniLM-L6- and
// BGE-small-shaped BERTs with peak GPU memory: our engine (NF4 and f32 base) in Node (Dawn) and in
// headless Chromium (navigator.gpu), and in the same Chromium page @huggingface/transformers
// (onnxruntime-web, WebGPU and WASM, fp32) on an ONNX export of the very same weights with the very
// same token ids. Per shape every contestant runs once untimed (warm-up: pipelines, shader
// compilation), then they take turns for up to --reps timed rounds; no new round starts once
// --budget-s per contestant is spent (at least one runs). Figures are medians of the timed runs.
// --profile replays one more run of ours kernel by kernel in Node and prints where the time goes.
import { loadavg } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../src/engine/engine.ts';
import { createNodeEngine } from '../src/engine/node-gpu.ts';
import { loadModelFiles } from '../src/model/checkpoint.ts';
import { localDirSource } from '../src/model/node-files.ts';
import { openBrowserSession } from '../tests/helpers/browser.ts';
import { runBenchPage } from './lib/browser.ts';
import { type ContestShape, type ContestantTiming, runContest } from './lib/contest.ts';
import { type EmbedPageParams, type EmbedPageResult, toPageTokenBatch } from './lib/embed-protocol.ts';
import { type EngineContestant, engineContestant } from './lib/engine-contestant.ts';
import { benchModelName, benchModelsRoot, ensureBenchModel } from './lib/models.ts';
import { parseBenchOptions } from './lib/options.ts';
import { profileFigures, profileTable } from './lib/profile.ts';
import { BGE_SMALL, type BenchShape, benchTokenBatch, forwardFlops } from './lib/shapes.ts';
import { serveFolders } from './lib/static-server.ts';
import { median, processCpuMs } from './lib/stats.ts';
import { markdownTable, mib } from './lib/table.ts';

const BATCH = 32;
const WEIGHT_SEED = 5;
const BASES = ['nf4', 'f32'] as const;
const PEERS = ['webgpu', 'wasm'] as const;
/** The cell of the headline ratio (issue 3: BGE-small shape, seq 16, batch 32), ours with the f32 base: the very same weights. */
const RATIO_SHAPE = BGE_SMALL.key;
const RATIO_SEQ = 16;
const PAGE_TIMEOUT_MS = 4 * 60 * 60_000;

interface Row {
  shape: BenchShape;
  runtime: 'node' | 'chromium';
  contestant: string;
  seq: number;
  timing: ContestantTiming;
}

const log = (line: string) => process.stderr.write(`${line}\n`);
/** JSON-key spelling of a contestant: 'ours f32' → 'ours_f32', 'transformers.js webgpu' → 'transformersjs_webgpu'. */
const slug = (name: string) => name.replace(/\./g, '').replace(/\s+/g, '_');
const key = (r: Row) => `${r.runtime}_${slug(r.contestant)}_${r.shape.key}_seq${r.seq}`;
const perSecond = (r: Row) => BATCH / (median(r.timing.timesMs) / 1000);
/** Model GFLOP/s of the forward (linears + attention products). */
function gflops(r: Row): number {
  const { linear, attention } = forwardFlops(r.shape.config, BATCH, r.seq);
  return (linear + attention) / 1e9 / (median(r.timing.timesMs) / 1000);
}

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`cannot compare embeddings of ${a.length} and ${b.length} values`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function rowsOf(shape: BenchShape, runtime: Row['runtime'], shapes: ContestShape[]): Row[] {
  return shapes.flatMap((s) => Object.entries(s.byContestant).map(([contestant, timing]) => ({ shape, runtime, contestant, seq: s.seq, timing })));
}

export default async function bench(args: string[]): Promise<void> {
  const { shapes, seqs, timing, profile } = parseBenchOptions(args, 90);
  const loadBefore = loadavg()[0];
  const started = performance.now();
  const dirs = new Map<BenchShape, string>();
  for (const shape of shapes) dirs.set(shape, await ensureBenchModel(shape, WEIGHT_SEED, log));
  const batches = (shape: BenchShape) => seqs.map((seq) => benchTokenBatch(BATCH, seq, shape.config.vocab_size, 1000 + seq));
  const rows: Row[] = [];
  const weights: Record<string, number> = {};

  // Our engine in Node (Dawn): one engine per base, so each peak is its own.
  const engines: Engine[] = [];
  for (const _ of BASES) engines.push(await createNodeEngine());
  const nodeAdapter = engines[0].adapter;
  log(`Node GPU: ${nodeAdapter.vendor} ${nodeAdapter.architecture} ${nodeAdapter.description}`);
  for (const shape of shapes) {
    const files = await loadModelFiles(localDirSource(dirs.get(shape)!));
    const contestants: EngineContestant[] = [];
    try {
      for (const [i, base] of BASES.entries()) contestants.push(await engineContestant(engines[i], files, base));
      for (const c of contestants) weights[`${slug(c.name)}_${shape.key}_weight_bytes`] = c.weightBytes;
      rows.push(...rowsOf(shape, 'node', await runContest(contestants, batches(shape), { ...timing, profile, cpuMs: processCpuMs }, (line) => log(`node ${shape.key}: ${line}`))));
    } finally {
      for (const c of contestants) c.dispose();
    }
  }
  for (const engine of engines) engine.destroy();

  // Our engine and transformers.js taking turns in one headless Chromium page per model.
  const ortDist = dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
  const server = await serveFolders({ '/models/': `${benchModelsRoot()}/`, '/ort/': `${ortDist}/` });
  const session = await openBrowserSession();
  let page: EmbedPageResult | null = null;
  const peerInfo: Record<string, unknown> = {};
  try {
    for (const shape of shapes) {
      const name = benchModelName(shape, WEIGHT_SEED);
      const params: EmbedPageParams = {
        modelUrl: `${server.baseUrl}/models/${name}/`,
        peer: { modelsUrl: `${server.baseUrl}/models/`, ortUrl: `${server.baseUrl}/ort/`, model: name },
        bases: [...BASES],
        peers: [...PEERS],
        shapes: batches(shape).map(toPageTokenBatch),
        contest: timing,
      };
      page = await runBenchPage<EmbedPageResult>(session, '/bench/pages/embed.page.ts', params, PAGE_TIMEOUT_MS, (line) => log(`chromium ${shape.key}: ${line}`));
      rows.push(...rowsOf(shape, 'chromium', page.shapes));
      Object.assign(peerInfo, page.peers);
    }
  } finally {
    await session.close();
    await server.close();
  }
  const browserAdapter = page?.adapter ?? null;

  console.log(`Node GPU: ${nodeAdapter.vendor} ${nodeAdapter.architecture} ${nodeAdapter.description}`.trim());
  console.log(`Chromium GPU: ${browserAdapter ? `${browserAdapter.vendor} ${browserAdapter.architecture} ${browserAdapter.description}`.trim() : 'n/a'}`);
  console.log(
    `batch ${BATCH}, full-length random token ids; median of up to ${timing.reps} timed rounds (contestants take turns) after a warm-up run; ` +
      `budget ${timing.budgetMs / 1000} s per contestant and shape. CPU s (Node): CPU time of the Node process per run (Dawn's SwiftShader runs in it), ` +
      'less sensitive than wall time to other load on the machine',
  );
  console.log(
    markdownTable(
      ['model', 'seq', 'runtime', 'implementation', 'embeddings/s', 'median s', 'timed runs', 'warm-up s', 'model GFLOP/s', 'CPU s (Node)', 'peak GPU MiB'],
      rows.map((r) => [
        r.shape.label,
        r.seq,
        r.runtime,
        r.contestant,
        perSecond(r).toFixed(2),
        (median(r.timing.timesMs) / 1000).toFixed(2),
        r.timing.timesMs.length,
        (r.timing.warmupMs / 1000).toFixed(1),
        gflops(r).toFixed(2),
        r.timing.cpuMs ? (median(r.timing.cpuMs) / 1000).toFixed(1) : '—',
        r.timing.peakBytes === null ? '—' : mib(r.timing.peakBytes),
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
    budget_s: timing.budgetMs / 1000,
    ...weights,
  };
  for (const r of rows) {
    result[`${key(r)}_emb_per_s`] = +perSecond(r).toFixed(3);
    result[`${key(r)}_timed_runs`] = r.timing.timesMs.length;
    result[`${key(r)}_gflop_per_s`] = +gflops(r).toFixed(3);
    if (r.timing.cpuMs) result[`${key(r)}_cpu_s`] = +(median(r.timing.cpuMs) / 1000).toFixed(2);
    if (r.timing.peakBytes !== null) result[`${key(r)}_peak_bytes`] = r.timing.peakBytes;
  }
  // Ours ÷ theirs, both in the same Chromium page.
  const find = (contestant: string, shapeKey: string, seq: number) => rows.find((r) => r.runtime === 'chromium' && r.contestant === contestant && r.shape.key === shapeKey && r.seq === seq);
  const ratioLines: string[] = [];
  for (const shape of shapes) {
    for (const seq of seqs) {
      for (const peer of PEERS) {
        const theirs = find(`transformers.js ${peer}`, shape.key, seq);
        if (!theirs) continue;
        for (const base of BASES) {
          const ours = find(`ours ${base}`, shape.key, seq);
          if (!ours) continue;
          const ratio = +(perSecond(ours) / perSecond(theirs)).toFixed(3);
          result[`ratio_${base}_vs_transformersjs_${peer}_${shape.key}_seq${seq}`] = ratio;
          ratioLines.push(`${shape.label}, seq ${seq}: ours (${base} base) ÷ transformers.js ${peer} = ${ratio}`);
          if (shape.key === RATIO_SHAPE && seq === RATIO_SEQ && base === 'f32') result[`ratio_vs_transformersjs_${peer}`] = ratio;
        }
        const same = find('ours f32', shape.key, seq);
        if (same) result[`max_abs_diff_ours_f32_vs_transformersjs_${peer}_${shape.key}_seq${seq}`] = +maxAbsDiff(same.timing.embeddings, theirs.timing.embeddings).toExponential(2);
      }
    }
  }
  if (ratioLines.length > 0) console.log(ratioLines.join('\n'));
  for (const r of rows) {
    if (!r.timing.profile) continue;
    console.log(`\nper-kernel time, ${r.runtime}, ${r.contestant}, ${r.shape.label}, seq ${r.seq}:`);
    console.log(profileTable(r.timing.profile));
    result[`profile_${key(r)}`] = profileFigures(r.timing.profile);
  }
  result.load_average_before = +loadBefore.toFixed(2);
  result.load_average_after = +loadavg()[0].toFixed(2);
  result.wall_s = +((performance.now() - started) / 1000).toFixed(1);
  console.log(JSON.stringify(result));
}
