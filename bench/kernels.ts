// `npm run bench -- kernels [--quick | --autotune-only | --reductions-only] [--runs 3] [--budget-s 90]`
//
// GFLOP/s of the tiled f32 matmul (Y = X·Wᵀ, a Linear's forward) and of the NF4 matmul (same product,
// weight decoded in the loop) at transformer shapes, M = batch·seq ∈ {128, 2048} × (K, N) ∈ the
// BERT-base/large projections, plus the naive one-thread-per-output kernel at M=128, K=768, N=3072.
// Each figure is the median of --runs timed runs (fewer once a shape has used --budget-s, but at
// least one, and all of them at the two shapes the ratios are taken at); a run brackets a batch of repeated dispatches with engine.sync() (enough repeats for ~0.3 s,
// at least one), after one untimed launch that compiles the pipeline and sizes the batch. The kernels of one shape are timed
// in turn within each run, so a load change on a shared machine hits them alike. Beside the wall-clock
// figures, GFLOP per CPU-second of this process (SwiftShader runs in it) is reported: on a machine
// shared with other jobs it moves far less with their load. --quick times only the two shapes the
// ratios need. The last line is one JSON object with every figure.
//
// Before timing, the autotuner (src/engine/autotune.ts, no cache: it always tunes here) chooses the
// f32 and NF4 matmul variants at M=128, K=768, N=3072 (the smaller ratio shape: tuning times every
// candidate there, slow on CPU drivers); that shape is then also timed with its choices
// (f32_autotuned, nf4_autotuned), giving ratio_autotuned_vs_fixed (the fixed kernel is a candidate,
// so it is ≥ 1 up to timing noise). When the tuner keeps the fixed kernel for a product
// (autotuned_variant names the choice), that kernel is timed once and its ratio is 1 by
// construction; otherwise both are timed in alternation. Where the device has shader-f16,
// ratio_f16_vs_f32 is the tuner's fastest f32 candidate time over its fastest f16 one.
// --autotune-only times just the tuned shape's fixed and autotuned f32 and NF4 kernels (the other
// ratios are then null): on a loaded CPU driver the full set takes tens of minutes.
//
// Where the device has `subgroups`, the row reductions (LayerNorm forward and backward, L2
// normalisation, the cosine pair loss) are timed with their subgroup and shared-memory variants at
// BERT-base shape (bench/lib/reductions.ts): `reductions` holds each kernel's median ms and
// ratio_subgroup_vs_plain (plain time over subgroup time). --reductions-only runs just that part;
// --autotune-only leaves it out.
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { type TuneChoice, autotuneMatmuls } from '../src/engine/autotune.ts';
import type { Engine } from '../src/engine/engine.ts';
import { createNodeEngine } from '../src/engine/node-gpu.ts';
import { FIXED, type Product, shapeClass, variantName } from '../src/engine/ops/matmul-variants.ts';
import { matmul, matmulNaive } from '../src/engine/ops/matmul.ts';
import { nf4Matmul, nf4Quantize, releaseNf4 } from '../src/engine/ops/nf4.ts';
import { reductionVariant } from '../src/engine/ops/reductions.ts';
import { Rng } from '../src/data/rng.ts';
import { REDUCTION_SHAPE, timeReductions } from './lib/reductions.ts';
import { median } from './lib/stats.ts';
import { markdownTable } from './lib/table.ts';

const ROWS = [128, 2048];
const PROJECTIONS: Array<[number, number]> = [
  [384, 384],
  [384, 1536],
  [768, 768],
  [768, 3072],
  [1024, 4096],
];
/** Where the ratios are taken (the issue's targets). */
const NAIVE_SHAPE = { M: 128, K: 768, N: 3072 };
const NF4_SHAPE = { M: 2048, K: 768, N: 3072 };
const TUNE_SHAPE = NAIVE_SHAPE;
const TARGET_RUN_MS = 300;
const FIXED_NAME = variantName(FIXED);

type Kernel = 'f32' | 'nf4' | 'nf4_double_quant' | 'naive' | 'f32_autotuned' | 'nf4_autotuned';
const KERNELS: Kernel[] = ['f32', 'nf4', 'nf4_double_quant', 'naive', 'f32_autotuned', 'nf4_autotuned'];
interface Shape {
  M: number;
  K: number;
  N: number;
}
const key = (s: Shape) => `M${s.M}_K${s.K}_N${s.N}`;
const log = (line: string) => process.stderr.write(`${line}\n`);

function randomUpload(engine: Engine, rng: Rng, shape: number[], scale: number) {
  const n = shape.reduce((p, d) => p * d, 1);
  return engine.upload(Float32Array.from({ length: n }, () => rng.normal() * scale), shape);
}

interface Figures {
  /** GFLOP per wall-clock second. */
  wall: number;
  /** GFLOP per CPU-second of this process. */
  cpu: number;
}

/** The products the tuner chooses for: a Linear's forward in f32 (X·Wᵀ) and in NF4. */
const f32Product = ({ M, K, N }: Shape): Product => ({ op: 'matmul', batch: 1, M, N, K, transA: false, transB: true });
const nf4Product = ({ M, K, N }: Shape): Product => ({ op: 'nf4Matmul', batch: 1, M, N, K, transA: false, transB: true });

/** Fastest f32 candidate time over fastest f16 one (null without f16 candidates). */
function f16Ratio(choice: TuneChoice): number | null {
  const best = (f16: boolean) => Math.min(...Object.entries(choice.ms).filter(([name]) => name.endsWith('-f16') === f16).map(([, ms]) => ms));
  const f16 = best(true);
  return Number.isFinite(f16) ? best(false) / f16 : null;
}

/** Median GFLOP/s of each kernel at one shape; kernels alternate within every run. `tuned`: the autotuner's variants. */
async function timeShape(
  engine: Engine,
  shape: Shape,
  kernels: Kernel[],
  runs: { max: number; min: number },
  budgetMs: number,
  tuned: { f32: string; nf4: string },
): Promise<Map<Kernel, Figures>> {
  const { M, K, N } = shape;
  const rng = new Rng(M * 7 + K * 3 + N);
  const x = randomUpload(engine, rng, [M, K], 1);
  const w = randomUpload(engine, rng, [N, K], 1 / Math.sqrt(K));
  const y = engine.alloc([M, N]);
  const q = kernels.includes('nf4') || kernels.includes('nf4_autotuned') ? await nf4Quantize(engine, w) : null;
  const qdq = kernels.includes('nf4_double_quant') ? await nf4Quantize(engine, w, { doubleQuant: true }) : null;
  // The naive kernel computes X·B with B = Wᵀ stored [K, N]: same flops, its natural layout.
  const wt = kernels.includes('naive') ? randomUpload(engine, rng, [K, N], 1 / Math.sqrt(K)) : null;
  // The fixed kernels run with no choice for their class, the autotuned ones with the tuner's.
  const choose = (product: Product, variant: string | null) => {
    if (variant === null) engine.kernelChoices.delete(shapeClass(product));
    else engine.kernelChoices.set(shapeClass(product), variant);
  };
  const launch: Record<Kernel, () => void> = {
    f32: () => {
      choose(f32Product(shape), null);
      matmul(engine, x, w, y, { transB: true });
    },
    nf4: () => {
      choose(nf4Product(shape), null);
      nf4Matmul(engine, x, q!, y);
    },
    nf4_double_quant: () => {
      choose(nf4Product(shape), null);
      nf4Matmul(engine, x, qdq!, y);
    },
    naive: () => matmulNaive(engine, x, wt!, y),
    f32_autotuned: () => {
      choose(f32Product(shape), tuned.f32);
      matmul(engine, x, w, y, { transB: true });
    },
    nf4_autotuned: () => {
      choose(nf4Product(shape), tuned.nf4);
      nf4Matmul(engine, x, q!, y);
    },
  };
  const repeats = new Map<Kernel, number>();
  const started = performance.now();
  for (const k of kernels) {
    // Untimed first launch: compiles the pipeline; its time sizes the batch of repeats.
    const t0 = performance.now();
    launch[k]();
    await engine.sync();
    repeats.set(k, Math.max(1, Math.min(50, Math.round(TARGET_RUN_MS / (performance.now() - t0)))));
  }
  const wall = new Map<Kernel, number[]>(kernels.map((k) => [k, []]));
  const cpu = new Map<Kernel, number[]>(kernels.map((k) => [k, []]));
  for (let r = 0; r < runs.max && (r < runs.min || performance.now() - started < budgetMs); r++) {
    for (const k of kernels) {
      const reps = repeats.get(k)!;
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      for (let i = 0; i < reps; i++) launch[k]();
      await engine.sync();
      const used = process.cpuUsage(c0);
      wall.get(k)!.push((performance.now() - t0) / reps);
      cpu.get(k)!.push((used.user + used.system) / 1000 / reps);
    }
  }
  engine.kernelChoices.clear();
  engine.release(x, w, y, wt);
  if (q) releaseNf4(engine, q);
  if (qdq) releaseNf4(engine, qdq);
  engine.trimPool();
  const gflop = (2 * M * N * K) / 1e9;
  return new Map(kernels.map((k) => [k, { wall: gflop / (median(wall.get(k)!) / 1000), cpu: gflop / (median(cpu.get(k)!) / 1000) }]));
}

export default async function bench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      'autotune-only': { type: 'boolean', default: false },
      'reductions-only': { type: 'boolean', default: false },
      runs: { type: 'string', default: '3' },
      'budget-s': { type: 'string', default: '90' },
    },
  });
  const modes = ['quick', 'autotune-only', 'reductions-only'] as const;
  if (modes.filter((m) => values[m]).length > 1) throw new Error(`--${modes.join(', --')}: give at most one`);
  const positive = (name: string, text: string | undefined): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${text}`);
    return n;
  };
  const runs = positive('runs', values.runs);
  const budgetMs = positive('budget-s', values['budget-s']) * 1000;
  const engine = await createNodeEngine();
  const adapter = engine.adapter;
  log(`adapter: ${adapter.vendor} ${adapter.architecture} ${adapter.device} ${adapter.description}`.trim());

  const autotuneOnly = values['autotune-only'];
  const reductionsOnly = values['reductions-only'];
  const shapes: Shape[] = reductionsOnly
    ? []
    : autotuneOnly
      ? [TUNE_SHAPE]
      : values.quick
        ? [NAIVE_SHAPE, NF4_SHAPE]
        : ROWS.flatMap((M) => PROJECTIONS.map(([K, N]) => ({ M, K, N })));
  const perKernel = () => Object.fromEntries(KERNELS.map((k) => [k, {}])) as Record<Kernel, Record<string, number>>;
  const figures = perKernel();
  const cpuFigures = perKernel();
  const loadBefore = loadavg()[0];
  const rows: (string | number)[][] = [];
  const started = performance.now();
  const tuning = reductionsOnly ? {} : await autotuneMatmuls(engine, [f32Product(TUNE_SHAPE), nf4Product(TUNE_SHAPE)], { runs: 1, targetMs: 1, log });
  engine.kernelChoices.clear();
  const f32Choice: TuneChoice | undefined = tuning[shapeClass(f32Product(TUNE_SHAPE))];
  const nf4Choice: TuneChoice | undefined = tuning[shapeClass(nf4Product(TUNE_SHAPE))];
  const tuned = { f32: f32Choice?.variant ?? FIXED_NAME, nf4: nf4Choice?.variant ?? FIXED_NAME };
  const tuningSeconds = (performance.now() - started) / 1000;
  for (const shape of shapes) {
    const kernels: Kernel[] = ['f32', 'nf4'];
    if (key(shape) === key(NAIVE_SHAPE) && !autotuneOnly) kernels.push('naive');
    if (key(shape) === key(NF4_SHAPE) && !autotuneOnly) kernels.push('nf4_double_quant');
    // An autotuned kernel is timed only when the tuner chose another variant than the fixed one.
    if (key(shape) === key(TUNE_SHAPE)) {
      if (tuned.f32 !== FIXED_NAME) kernels.push('f32_autotuned');
      if (tuned.nf4 !== FIXED_NAME) kernels.push('nf4_autotuned');
    }
    const ratioShape = key(shape) === key(NAIVE_SHAPE) || key(shape) === key(NF4_SHAPE);
    const result = await timeShape(engine, shape, kernels, { max: runs, min: ratioShape ? runs : 1 }, budgetMs, tuned);
    if (key(shape) === key(TUNE_SHAPE)) {
      if (tuned.f32 === FIXED_NAME) result.set('f32_autotuned', result.get('f32')!);
      if (tuned.nf4 === FIXED_NAME) result.set('nf4_autotuned', result.get('nf4')!);
    }
    for (const [k, g] of result) {
      figures[k][key(shape)] = g.wall;
      cpuFigures[k][key(shape)] = g.cpu;
    }
    const cell = (k: Kernel) => (result.has(k) ? `${result.get(k)!.wall.toFixed(3)} (${result.get(k)!.cpu.toFixed(3)})` : '');
    rows.push([shape.M, shape.K, shape.N, cell('f32'), cell('nf4'), cell('nf4_double_quant'), cell('naive')]);
    log(`${key(shape)}: ${[...result].map(([k, g]) => `${k} ${g.wall.toFixed(3)}`).join(', ')} GFLOP/s (${((performance.now() - started) / 1000).toFixed(0)} s, load ${loadavg()[0].toFixed(1)})`);
  }
  const ratios = (f: Record<Kernel, Record<string, number>>) => ({
    tiledVsNaive: f.f32[key(NAIVE_SHAPE)] / f.naive[key(NAIVE_SHAPE)],
    nf4VsF32: f.nf4[key(NF4_SHAPE)] / f.f32[key(NF4_SHAPE)],
    autotunedVsFixed: f.f32_autotuned[key(TUNE_SHAPE)] / f.f32[key(TUNE_SHAPE)],
    autotunedVsFixedNf4: f.nf4_autotuned[key(TUNE_SHAPE)] / f.nf4[key(TUNE_SHAPE)],
  });
  const { tiledVsNaive: ratioTiledVsNaive, nf4VsF32: ratioNf4VsF32 } = ratios(figures);
  const cpuRatios = ratios(cpuFigures);
  // The row reductions' subgroup and shared-memory variants, on a second engine without subgroups.
  let reductions: Awaited<ReturnType<typeof timeReductions>> | null = null;
  if (!autotuneOnly && reductionVariant(engine) === 'subgroup') {
    const plain = await createNodeEngine({ withoutFeatures: ['subgroups'] });
    reductions = await timeReductions(engine, plain, runs);
    plain.destroy();
    for (const [k, t] of Object.entries(reductions)) {
      log(`${k} at ${REDUCTION_SHAPE.rows} × ${REDUCTION_SHAPE.hidden}: subgroup ${t.subgroup_ms.toFixed(3)} ms, plain ${t.plain_ms.toFixed(3)} ms, plain / subgroup ${t.ratio_subgroup_vs_plain.toFixed(3)}`);
    }
  } else if (!autotuneOnly) {
    log('no subgroups feature on this adapter: the reductions have one variant, nothing to compare');
  }
  const wallRatios = ratios(figures);
  if (!reductionsOnly) {
    console.log(`GFLOP/s, wall clock (in parentheses: GFLOP per CPU-second of this process); ${adapter.description}`);
    console.log(markdownTable(['M', 'K', 'N', 'f32 tiled', 'NF4', 'NF4 + double quant', 'naive'], rows));
    console.log(`ratio tiled / naive at ${key(NAIVE_SHAPE)}: ${ratioTiledVsNaive.toFixed(2)} (per CPU-second ${cpuRatios.tiledVsNaive.toFixed(2)}; target ≥ 8)`);
    console.log(`ratio NF4 / f32 at ${key(NF4_SHAPE)}: ${ratioNf4VsF32.toFixed(2)} (per CPU-second ${cpuRatios.nf4VsF32.toFixed(2)}; target ≥ 0.8)`);
    const f16 = (choice: TuneChoice | undefined) => (choice && f16Ratio(choice)?.toFixed(2)) ?? 'no shader-f16';
    console.log(
      `autotuned / fixed at ${key(TUNE_SHAPE)}: f32 ${wallRatios.autotunedVsFixed.toFixed(2)} (${tuned.f32}), NF4 ${wallRatios.autotunedVsFixedNf4.toFixed(2)} (${tuned.nf4}); ` +
        `f16 / f32 (tuner's best of each): f32 matmul ${f16(f32Choice)}, NF4 ${f16(nf4Choice)}`,
    );
  }
  console.log(
    JSON.stringify({
      bench: 'kernels',
      adapter: { vendor: adapter.vendor, architecture: adapter.architecture, device: adapter.device, description: adapter.description },
      runs,
      budget_s: budgetMs / 1000,
      quick: values.quick,
      autotune_only: autotuneOnly,
      reductions_only: reductionsOnly,
      unit: 'GFLOP/s',
      f32: figures.f32,
      nf4: figures.nf4,
      nf4_double_quant: figures.nf4_double_quant,
      naive: figures.naive,
      f32_autotuned: figures.f32_autotuned,
      nf4_autotuned: figures.nf4_autotuned,
      ratio_tiled_vs_naive: ratioTiledVsNaive,
      ratio_nf4_vs_f32: ratioNf4VsF32,
      ratio_autotuned_vs_fixed: wallRatios.autotunedVsFixed,
      ratio_autotuned_vs_fixed_nf4: wallRatios.autotunedVsFixedNf4,
      ratio_f16_vs_f32: f32Choice ? f16Ratio(f32Choice) : null,
      ratio_f16_vs_f32_nf4: nf4Choice ? f16Ratio(nf4Choice) : null,
      autotuned_variant: reductionsOnly ? null : tuned,
      autotune: { seconds: tuningSeconds, f32: f32Choice ?? null, nf4: nf4Choice ?? null },
      reductions: reductions && { rows: REDUCTION_SHAPE.rows, hidden: REDUCTION_SHAPE.hidden, unit: 'ms per launch (median)', ...reductions },
      ratio_subgroup_vs_plain: reductions && Object.fromEntries(Object.entries(reductions).map(([k, t]) => [k, t.ratio_subgroup_vs_plain])),
      cpu: { unit: 'GFLOP per CPU-second', ...cpuFigures, ratio_tiled_vs_naive: cpuRatios.tiledVsNaive, ratio_nf4_vs_f32: cpuRatios.nf4VsF32 },
      load_average: { before: loadBefore, after: loadavg()[0], cpus: availableParallelism() },
      seconds: (performance.now() - started) / 1000,
    }),
  );
  engine.destroy();
}
