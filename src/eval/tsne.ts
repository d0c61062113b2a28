/**
 * Exact t-SNE with the gradient on the GPU.
 *
 * CPU (once): vectors wider than `pcaDims` are reduced by PCA (as van der Maaten's tsne.m does),
 * sparse k-NN affinities are calibrated to the perplexity (tsne-affinities.ts), the map starts from
 * the first principal axes scaled to a standard deviation of 1e-4 (or seeded Gaussian noise).
 * GPU (per iteration, no readbacks): exact O(N²) gradient and the optimiser step of tsne.m —
 * early exaggeration, momentum 0.5 then 0.8, Jacobs gains (+0.2 / ×0.8, floor 0.01).
 */
import type { Engine } from '../engine/engine.ts';
import { Rng } from '../data/rng.ts';
import type { Tensor } from '../engine/tensor.ts';
import {
  type TsneAffinities,
  type TsneAffinityTensors,
  type TsneStep,
  releaseAffinities,
  tsneForces,
  tsneReduce,
  tsneUpdate,
  uploadAffinities,
} from '../engine/ops/tsne.ts';
import { pcaProject } from './pca.ts';
import { tsneAffinities } from './tsne-affinities.ts';

export interface TsneOptions {
  /** Map dimension. Default 2. */
  dims?: 2 | 3;
  /** Effective number of neighbours. Default 30. */
  perplexity?: number;
  /** Gradient steps. Default 1000. */
  iterations?: number;
  /** Step size; default max(N / (4·earlyExaggeration), 50) (Belkina et al. 2019). */
  learningRate?: number;
  /** P multiplier for the first `exaggerationIterations` steps. Default 4 (tsne.m). */
  earlyExaggeration?: number;
  /** Default 100 (tsne.m). */
  exaggerationIterations?: number;
  /** Momentum before and after `momentumSwitchIteration`. Defaults 0.5, 0.8, 250 (tsne.m). */
  initialMomentum?: number;
  finalMomentum?: number;
  momentumSwitchIteration?: number;
  /** Gains never fall below this. Default 0.01. */
  minGain?: number;
  /** Starting map: principal axes (default) or seeded Gaussian noise. */
  init?: 'pca' | 'random';
  /** Seed of the random initialisation. Default 0. */
  seed?: number;
  /** Inputs wider than this are PCA-reduced before the neighbour search. Default 50. */
  pcaDims?: number;
}

/** A perplexity `n` points allow: the usual 30, lowered for small sets (it must stay below (n − 1) / 3). */
export function perplexityFor(n: number): number {
  return Math.min(30, Math.max(2, Math.floor((n - 1) / 3)));
}

export type ResolvedTsneOptions = Required<TsneOptions>;

export function resolveTsneOptions(n: number, options: TsneOptions = {}): ResolvedTsneOptions {
  const earlyExaggeration = options.earlyExaggeration ?? 4;
  const resolved: ResolvedTsneOptions = {
    dims: options.dims ?? 2,
    perplexity: options.perplexity ?? 30,
    iterations: options.iterations ?? 1000,
    learningRate: options.learningRate ?? Math.max(n / (4 * earlyExaggeration), 50),
    earlyExaggeration,
    exaggerationIterations: options.exaggerationIterations ?? 100,
    initialMomentum: options.initialMomentum ?? 0.5,
    finalMomentum: options.finalMomentum ?? 0.8,
    momentumSwitchIteration: options.momentumSwitchIteration ?? 250,
    minGain: options.minGain ?? 0.01,
    init: options.init ?? 'pca',
    seed: options.seed ?? 0,
    pcaDims: options.pcaDims ?? 50,
  };
  if (resolved.dims !== 2 && resolved.dims !== 3) throw new Error(`t-SNE dims must be 2 or 3, got ${resolved.dims}`);
  for (const key of ['iterations', 'exaggerationIterations', 'momentumSwitchIteration', 'pcaDims', 'seed'] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 0) throw new Error(`t-SNE ${key} must be a non-negative integer, got ${resolved[key]}`);
  }
  for (const key of ['learningRate', 'earlyExaggeration', 'minGain'] as const) {
    if (!(resolved[key] > 0) || !Number.isFinite(resolved[key])) throw new Error(`t-SNE ${key} must be a positive number, got ${resolved[key]}`);
  }
  if (resolved.init !== 'pca' && resolved.init !== 'random') throw new Error(`t-SNE init must be 'pca' or 'random', got ${String(resolved.init)}`);
  return resolved;
}

/** What the CPU prepares before the GPU iterations. */
export interface TsnePlan {
  n: number;
  options: ResolvedTsneOptions;
  affinities: TsneAffinities;
  /** [n, dims] starting map. */
  initial: Float32Array;
}

/** PCA reduction, affinities and the starting map. */
export function planTsne(vectors: readonly ArrayLike<number>[], options: TsneOptions = {}): TsnePlan {
  const n = vectors.length;
  const resolved = resolveTsneOptions(n, options);
  if (n < 2) throw new Error(`t-SNE needs at least 2 points, got ${n}`);
  const reduced = pcaProject(vectors, Math.max(resolved.pcaDims, resolved.dims));
  // Below pcaDims the neighbour search uses the (rotated, centred, so distance-preserving) full data.
  const affinities = tsneAffinities(reduced.data, n, reduced.dims, resolved.perplexity);
  const dims = resolved.dims;
  const initial = new Float32Array(n * dims);
  if (resolved.init === 'random') {
    const rng = new Rng(resolved.seed);
    for (let c = 0; c < n * dims; c++) initial[c] = 1e-4 * rng.normal();
  } else {
    // First principal axes, scaled so the first has standard deviation 1e-4 (as sklearn and openTSNE).
    let variance = 0;
    for (let i = 0; i < n; i++) variance += reduced.data[i * reduced.dims] ** 2 / n;
    const scale = variance > 0 ? 1e-4 / Math.sqrt(variance) : 0;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < dims; c++) initial[i * dims + c] = c < reduced.dims ? reduced.data[i * reduced.dims + c] * scale : 0;
    }
  }
  return { n, options: resolved, affinities, initial };
}

/** The step hyperparameters at 0-based iteration `t`. */
export function tsneSchedule(options: ResolvedTsneOptions, t: number): TsneStep {
  return {
    exaggeration: t < options.exaggerationIterations ? options.earlyExaggeration : 1,
    momentum: t < options.momentumSwitchIteration ? options.initialMomentum : options.finalMomentum,
    learningRate: options.learningRate,
    minGain: options.minGain,
  };
}

/** GPU state of one t-SNE run; `step` records iterations, `positions` reads the map back. */
export class GpuTsne {
  readonly n: number;
  readonly dims: number;
  iteration = 0;
  private readonly p: TsneAffinityTensors;
  private readonly y: Tensor;
  private readonly velocity: Tensor;
  private readonly gains: Tensor;
  private readonly attr: Tensor;
  private readonly rep: Tensor;
  private readonly z: Tensor;
  private readonly stats: Tensor;

  constructor(
    private readonly engine: Engine,
    readonly plan: TsnePlan,
  ) {
    const { n } = plan;
    const dims = plan.options.dims;
    this.n = n;
    this.dims = dims;
    this.p = uploadAffinities(engine, plan.affinities);
    this.y = engine.upload(plan.initial, [n, dims]);
    this.velocity = engine.alloc([n, dims], 'f32', true);
    this.gains = engine.upload(new Float32Array(n * dims).fill(1), [n, dims]);
    this.attr = engine.alloc([n, dims]);
    this.rep = engine.alloc([n, dims]);
    this.z = engine.alloc([n]);
    this.stats = engine.alloc([4]);
  }

  /** Record `count` iterations (3 dispatches each) into the engine's batch. */
  step(count: number): void {
    for (let s = 0; s < count; s++) {
      tsneForces(this.engine, this.y, this.p, this.attr, this.rep, this.z);
      tsneReduce(this.engine, this.z, this.y, this.stats);
      tsneUpdate(this.engine, this.y, this.attr, this.rep, this.stats, this.velocity, this.gains, tsneSchedule(this.plan.options, this.iteration));
      this.iteration++;
    }
  }

  /** The current map, [n, dims], centred. */
  async positions(): Promise<Float32Array> {
    const y = await this.engine.readF32(this.y);
    const mean = new Float64Array(this.dims);
    for (let c = 0; c < y.length; c++) mean[c % this.dims] += y[c] / this.n;
    for (let c = 0; c < y.length; c++) y[c] -= mean[c % this.dims];
    return y;
  }

  release(): void {
    releaseAffinities(this.engine, this.p);
    this.engine.release(this.y, this.velocity, this.gains, this.attr, this.rep, this.z, this.stats);
  }
}

export interface TsneRunOptions extends TsneOptions {
  /** Called every `progressEvery` iterations with the current map (a readback each time). */
  onProgress?: (iteration: number, positions: Float32Array) => void;
  progressEvery?: number;
  signal?: AbortSignal;
}

/** Iterations recorded per submission: keeps the queue short so progress and aborts stay responsive. */
const CHUNK = 50;

/** Run t-SNE; resolves to the [n, dims] map. */
export async function runTsne(engine: Engine, vectors: readonly ArrayLike<number>[], options: TsneRunOptions = {}): Promise<Float32Array> {
  const plan = planTsne(vectors, options);
  const run = new GpuTsne(engine, plan);
  try {
    const total = plan.options.iterations;
    const every = options.progressEvery ?? 0;
    while (run.iteration < total) {
      options.signal?.throwIfAborted();
      const next = every > 0 ? Math.min(total, (Math.floor(run.iteration / every) + 1) * every) : total;
      run.step(Math.min(CHUNK, next - run.iteration));
      if (every > 0 && run.iteration % every === 0 && options.onProgress) options.onProgress(run.iteration, await run.positions());
      else await engine.sync();
    }
    return await run.positions();
  } finally {
    run.release();
  }
}
