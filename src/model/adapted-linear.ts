/**
 * A frozen linear layer (weight in NF4 or f32, optional bias) under a stack of LoRA adapters, the
 * building block of every model on the engine: forward with the trainable adapter's X·Aᵀ saved,
 * and backward into the input gradient and the trainable adapter's gradients only.
 */
import type { Engine } from '../engine/engine.ts';
import { hash32 } from '../engine/rng.ts';
import type { Tensor } from '../engine/tensor.ts';
import { loraBackward, loraForward } from '../engine/ops/lora.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { type Nf4Weight, nf4Matmul, nf4MatmulInputGrad, nf4Quantize, releaseNf4 } from '../engine/ops/nf4.ts';
import type { GpuLoraModules } from './lora.ts';

export type BaseQuantization = 'nf4' | 'f32';

export type BaseWeight = { kind: 'f32'; weight: Tensor } | { kind: 'nf4'; weight: Nf4Weight };

export interface Linear {
  /** The module's name, as adapters key it. */
  name: string;
  in: number;
  out: number;
  base: BaseWeight;
  bias: Tensor | null;
}

/** Per-site dropout seeds derived from the step seed, so every mask is distinct and reproducible. */
export function siteSeed(seed: number, site: number): number {
  return hash32((hash32(seed) ^ Math.imul(site + 1, 0x9e3779b1)) >>> 0);
}

/** A linear from its uploaded f32 weight [out, in], which is quantised to NF4 (and released) unless f32 is asked for. */
export async function createLinear(
  engine: Engine,
  name: string,
  weight: Tensor,
  bias: Tensor | null,
  options: { quantization: BaseQuantization; doubleQuant?: boolean },
): Promise<Linear> {
  let base: BaseWeight = { kind: 'f32', weight };
  if (options.quantization === 'nf4') {
    base = { kind: 'nf4', weight: await nf4Quantize(engine, weight, { doubleQuant: options.doubleQuant ?? false }) };
    engine.release(weight);
  }
  return { name, in: weight.shape[1], out: weight.shape[0], base, bias };
}

export function releaseLinear(engine: Engine, lin: Linear): void {
  if (lin.base.kind === 'nf4') releaseNf4(engine, lin.base.weight);
  else engine.release(lin.base.weight);
  engine.release(lin.bias);
}

/** What a linear's forward and backward need of the step: the adapters, training or not, and the LoRA dropout seed. */
export interface AdaptedStep {
  adapters: readonly GpuLoraModules[];
  train: boolean;
  seed: number;
  /** The input's first row in the step's whole batch, so LoRA dropout masks follow the row, not the slice it runs in (default 0). */
  firstRow?: number;
  /** LoRA X·Aᵀ of the trainable adapter, by module name (written by a training forward, read by the backward); null: nothing kept. */
  saved: Map<string, Tensor> | null;
}

/** The trainable adapter's LoRA dropout in this step, masks placed by the input's rows in the whole batch. */
function loraDropout(adapter: GpuLoraModules, lin: Linear, step: AdaptedStep) {
  if (!(adapter.trainable && step.train && adapter.config.dropout > 0)) return null;
  return { p: adapter.config.dropout, seed: step.seed, indexOffset: (step.firstRow ?? 0) * lin.in };
}

/** y [rows, out] = x·Wᵀ + bias + Σ adapters' scale·(x·Aᵀ)·Bᵀ. */
export function linearForward(engine: Engine, lin: Linear, x: Tensor, step: AdaptedStep): Tensor {
  const rows = x.shape[0];
  const y = engine.alloc([rows, lin.out]);
  const bias = lin.bias ?? undefined;
  if (lin.base.kind === 'nf4') nf4Matmul(engine, x, lin.base.weight, y, { bias });
  else matmul(engine, x, lin.base.weight, y, { transB: true, bias });
  for (const adapter of step.adapters) {
    const mod = adapter.modules.get(lin.name);
    if (!mod) continue;
    const xa = engine.alloc([rows, mod.r]);
    loraForward(engine, x, mod.a, mod.b, y, xa, mod.scale, loraDropout(adapter, lin, step));
    if (adapter.trainable && step.train && step.saved) step.saved.set(lin.name, xa);
    else engine.release(xa);
  }
  return y;
}

/** Whether `step`'s trainable adapter adapts `lin`: only then does its backward read the input x (for dA). */
export function trainsLinear(lin: Linear, step: Pick<AdaptedStep, 'adapters'>): boolean {
  return step.adapters.some((adapter) => adapter.trainable && adapter.modules.has(lin.name));
}

/**
 * dIn (if given) (+)= dOut·W + Σ frozen adapters' input grads + the trainable adapter's input grad
 * (the base term overwrites dIn unless `accumulate`); the trainable adapter's dA, dB accumulate.
 * x is read only for the trainable adapter's dA (trainsLinear); null when the linear has none.
 */
export function linearBackward(engine: Engine, lin: Linear, x: Tensor | null, dOut: Tensor, dIn: Tensor | null, accumulate: boolean, step: AdaptedStep): void {
  const rows = dOut.shape[0];
  if (dIn) {
    if (lin.base.kind === 'nf4') nf4MatmulInputGrad(engine, dOut, lin.base.weight, dIn, { accumulate });
    else matmul(engine, dOut, lin.base.weight, dIn, { accumulate });
  }
  for (const adapter of step.adapters) {
    const mod = adapter.modules.get(lin.name);
    if (!mod) continue;
    const scratch = engine.alloc([rows, mod.r]);
    if (adapter.trainable) {
      const grads = adapter.grads.get(lin.name)!;
      const xa = step.saved?.get(lin.name);
      if (!xa) throw new Error(`${lin.name}: the backward needs the forward's saved LoRA activations (a training forward that keeps them)`);
      if (!x) throw new Error(`${lin.name}: the trainable adapter's backward needs the linear's input`);
      loraBackward(engine, x, mod.a, mod.b, xa, dOut, grads.da, grads.db, dIn, mod.scale, loraDropout(adapter, lin, step), scratch);
    } else if (dIn) {
      matmul(engine, dOut, mod.b, scratch); // [rows,out]·[out,r]
      matmul(engine, scratch, mod.a, dIn, { accumulate: true, alpha: mod.scale }); // [rows,r]·[r,in]
    }
    engine.release(scratch);
  }
}
