/**
 * The matmul autotuner: per adapter and shape class, it checks each variant of
 * ops/matmul-variants.ts once against the float64 reference on a small case, times those that pass
 * on the product itself (timestamp queries where the device has them), keeps the fastest, caches the
 * choice (autotune-file-cache.ts in Node, autotune-idb-cache.ts in the browser) and puts it in
 * engine.kernelChoices, which matmul dispatch reads. The fixed kernel is always a candidate, so a
 * tuned product is never slower than the fixed one by more than timing noise.
 */
import activationSource from '../../shaders/activation.wgsl?raw';
import regtileSource from '../../shaders/matmul-regtile.wgsl?raw';
import matmulSource from '../../shaders/matmul.wgsl?raw';
import nf4Source from '../../shaders/nf4.wgsl?raw';
import type { AdapterDescription, Engine } from './engine.ts';
import { counterValues } from './rng.ts';
import type { Tensor } from './tensor.ts';
import { type CheckCase, checkProduct } from './ops/matmul-check.ts';
import { type MatmulVariant, type Product, VARIANTS, nf4Aligned, shapeClass, variantApplies, variantByName, variantName, vec4Aligned } from './ops/matmul-variants.ts';
import { matmul } from './ops/matmul.ts';
import { nf4QuantizeRef } from './ops/nf4.ref.ts';
import { nf4Matmul, nf4MatmulInputGrad, releaseNf4, uploadNf4 } from './ops/nf4.ts';

/** The choice for one shape class, with each passing candidate's median milliseconds per launch. */
export interface TuneChoice {
  variant: string;
  ms: Record<string, number>;
}

/** Choices by shape class, for one adapter key. */
export type TuneTable = Record<string, TuneChoice>;

export interface TuneCache {
  /** The runtime timings belong to besides the adapter: the browser's user agent, or Node's and Dawn's versions. */
  readonly runtime: string;
  load(adapterKey: string): Promise<TuneTable>;
  save(adapterKey: string, table: TuneTable): Promise<void>;
}

/** FNV-1a of the kernels' source: a kernel change invalidates cached choices. */
const KERNELS_VERSION = (() => {
  let h = 0x811c9dc5;
  for (const ch of activationSource + matmulSource + nf4Source + regtileSource + VARIANTS.map(variantName).join()) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
})();

/** Cached choices belong to this key: vendor, architecture, device, description, runtime, kernel version. */
export function adapterKey(adapter: AdapterDescription, runtime: string): string {
  return [adapter.vendor, adapter.architecture, adapter.device, adapter.description, runtime, `kernels ${KERNELS_VERSION}`].join(' | ');
}

/** One candidate of pickFastest. */
export interface TuneCandidate {
  name: string;
  /** Compares with the reference; a candidate that fails or throws is never picked. */
  check(): Promise<boolean>;
  /** Records one launch (dispatches only). */
  launch(): void;
}

export interface TimingOptions {
  /** Timed runs per candidate, interleaved; the median counts (default 3). */
  runs?: number;
  /** Launches per run are chosen to take about this long (default 50 ms, at least one launch). */
  targetMs?: number;
  /** Progress: each candidate's check and first timing. */
  log?: (line: string) => void;
}

/** A later candidate replaces the first only when its median is at least this much faster. */
const INCUMBENT_MARGIN = 0.05;

/** The fastest candidate that passes its check (the first unless beaten by INCUMBENT_MARGIN); throws when none does. */
export async function pickFastest(engine: Engine, candidates: readonly TuneCandidate[], options: TimingOptions = {}): Promise<TuneChoice> {
  const runs = options.runs ?? 3;
  const targetMs = options.targetMs ?? 50;
  const passed: TuneCandidate[] = [];
  for (const c of candidates) {
    const ok = await c.check().catch(() => false);
    options.log?.(`autotune: ${c.name} ${ok ? 'passes' : 'fails'} its check`);
    if (ok) passed.push(c);
  }
  if (passed.length === 0) throw new Error(`autotune: no candidate passed its check (${candidates.map((c) => c.name).join(', ')})`);
  const repeats = new Map<TuneCandidate, number>();
  for (const c of passed) {
    c.launch(); // compiles the pipeline
    await engine.sync();
    const once = await engine.timeDispatches(() => c.launch());
    options.log?.(`autotune: ${c.name} ${once.toFixed(3)} ms per launch`);
    repeats.set(c, Math.max(1, Math.min(64, Math.round(targetMs / Math.max(once, 1e-3)))));
  }
  const times = new Map<TuneCandidate, number[]>(passed.map((c) => [c, []]));
  for (let r = 0; r < runs; r++) {
    for (const c of passed) {
      const n = repeats.get(c)!;
      const ms = await engine.timeDispatches(() => {
        for (let i = 0; i < n; i++) c.launch();
      });
      times.get(c)!.push(ms / n);
    }
  }
  const ms: Record<string, number> = {};
  for (const [c, t] of times) ms[c.name] = t.sort((x, y) => x - y)[Math.floor(t.length / 2)];
  // The first passing candidate (the fixed kernel, in autotuneMatmuls) stays unless another beats it
  // clearly: a single noisy timing on a loaded machine must not trade it for a slower variant.
  const best = passed.reduce((a, b) => (ms[b.name] < ms[a.name] * (a === passed[0] ? 1 - INCUMBENT_MARGIN : 1) ? b : a));
  return { variant: best.name, ms };
}

/** A small product of the same op, transposes and alignment class: where candidates are checked. */
function smallCase(p: Product): CheckCase {
  const sizes = [37, 36, 40];
  for (const M of sizes) {
    for (const N of sizes) {
      for (const K of sizes) {
        const c: CheckCase = { ...p, batch: Math.min(p.batch, 2), M, N, K };
        // No epilogue, as in the timed launches: on drivers that compile slowly (lavapipe) the
        // pipelines are then shared; the epilogue itself is the same code in every variant.
        if (vec4Aligned(c) === vec4Aligned(p) && (p.op === 'matmul' || nf4Aligned(c) === nf4Aligned(p))) return c;
      }
    }
  }
  throw new Error(`autotune: no small case matches ${shapeClass(p)}`);
}

/** Each variant is checked once per engine and small-case class. */
const checks = new WeakMap<Engine, Map<string, Promise<boolean>>>();

function checkOnce(engine: Engine, v: MatmulVariant, p: Product): Promise<boolean> {
  let done = checks.get(engine);
  if (!done) checks.set(engine, (done = new Map()));
  const c = smallCase(p);
  const key = `${variantName(v)} ${shapeClass(c)}`;
  let result = done.get(key);
  if (!result) {
    result = checkProduct(engine, v, c, 7).then((r) => r.worstRatio <= 1);
    done.set(key, result);
  }
  return result;
}

/** Random operands of the product's size and a launcher for them. */
function timingLauncher(engine: Engine, p: Product): { launch: () => void; release: () => void } {
  let stream = p.M * 7 + p.N * 3 + p.K;
  const random = (n: number, scale: number) => counterValues(stream++, n, scale);
  const batchDims = p.batch === 1 ? [] : [p.batch];
  const a = engine.upload(random(p.batch * p.M * p.K, 1), [...batchDims, ...(p.transA ? [p.K, p.M] : [p.M, p.K])]);
  const out = engine.alloc([...batchDims, p.M, p.N]);
  if (p.op === 'matmul') {
    const b = engine.upload(random(p.batch * p.K * p.N, 1 / Math.sqrt(p.K)), [...batchDims, ...(p.transB ? [p.N, p.K] : [p.K, p.N])]);
    return { launch: () => matmul(engine, a, b, out, { transA: p.transA, transB: p.transB }), release: () => engine.release(a, b, out) };
  }
  const forward = p.op === 'nf4Matmul';
  const shape: [number, number] = forward ? [p.N, p.K] : [p.K, p.N];
  const q = uploadNf4(engine, shape, nf4QuantizeRef(random(p.N * p.K, 1 / Math.sqrt(p.K))));
  return {
    launch: () => (forward ? nf4Matmul(engine, a, q, out) : nf4MatmulInputGrad(engine, a, q, out)),
    release: () => {
      engine.release(a, out);
      releaseNf4(engine, q);
    },
  };
}

export interface AutotuneOptions extends TimingOptions {
  /** Where choices persist; without one every call tunes. */
  cache?: TuneCache;
  /** Candidates (default: every variant; those that do not apply on this device are skipped). */
  variants?: readonly MatmulVariant[];
}

/**
 * Choose a variant for each product's shape class (from the cache when it holds one for this
 * adapter, else by tuning) and set them in engine.kernelChoices. Returns the choices by class.
 */
export async function autotuneMatmuls(engine: Engine, products: readonly Product[], options: AutotuneOptions = {}): Promise<TuneTable> {
  const key = adapterKey(engine.adapter, options.cache?.runtime ?? 'unknown runtime');
  const table = options.cache ? await options.cache.load(key) : {};
  const chosen: TuneTable = {};
  let tuned = false;
  for (const p of products) {
    const cls = shapeClass(p);
    const cached = table[cls];
    const variant = cached && variantByName(cached.variant);
    if (!(variant && variantApplies(engine, variant, p))) {
      const timing = timingLauncher(engine, p);
      const candidates = (options.variants ?? VARIANTS)
        .filter((v) => variantApplies(engine, v, p))
        .map((v) => ({
          name: variantName(v),
          check: () => checkOnce(engine, v, p),
          launch: () => {
            engine.kernelChoices.set(cls, variantName(v));
            timing.launch();
          },
        }));
      try {
        table[cls] = await pickFastest(engine, candidates, options);
      } finally {
        engine.kernelChoices.delete(cls);
        timing.release();
      }
      tuned = true;
      options.log?.(`autotune ${cls}: ${table[cls].variant} (${Object.entries(table[cls].ms).map(([n, ms]) => `${n} ${ms.toFixed(3)} ms`).join(', ')})`);
    }
    engine.kernelChoices.set(cls, table[cls].variant);
    chosen[cls] = table[cls];
  }
  if (tuned && options.cache) await options.cache.save(key, table);
  return chosen;
}

