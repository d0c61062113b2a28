/**
 * When is a trained adapter still an adapter? A run can diverge while its loss stays finite (a
 * normalised InfoNCE loss is bounded however large the weights grow), so the loss alone cannot
 * tell. The rule: every value is finite, and for every adapted module the update scale·B·A is no
 * larger than the frozen weight W it is added to (‖scale·B·A‖_F ≤ ‖W‖_F). Fine-tuning moves a
 * weight by a small fraction of its size; an update as large as the weight itself has destroyed it.
 */
import { type HostAdapterTensors, type LoraConfig, loraScale } from '../model/lora.ts';
import type { StateDict } from '../model/state-dict.ts';

/** Largest allowed ‖scale·B·A‖_F / ‖W‖_F. */
export const MAX_UPDATE_RATIO = 1;

export interface AdapterHealth {
  sane: boolean;
  /** Why the adapter is not sane, in words; empty when it is. */
  reason: string;
  /** The largest ‖scale·B·A‖_F / ‖W‖_F over the modules, and where. */
  worstRatio: number;
  worstModule: string;
}

/** Check `adapter` (tensors `${module}.lora_A` / `.lora_B`) against the base `weights` it adapts. */
export function adapterHealth(weights: StateDict, adapter: HostAdapterTensors, lora: Pick<LoraConfig, 'r' | 'alpha' | 'rslora'>): AdapterHealth {
  const scale = loraScale(lora);
  let worstRatio = 0;
  let worstModule = '';
  for (const [name, a] of adapter) {
    if (!name.endsWith('.lora_A')) continue;
    const module = name.slice(0, -'.lora_A'.length);
    const b = adapter.get(`${module}.lora_B`);
    const w = weights.get(`${module}.weight`);
    if (!b || !w) throw new Error(`adapter module ${module} has no lora_B or no base weight`);
    for (const [label, t] of [['lora_A', a], ['lora_B', b]] as const) {
      const bad = t.data.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) return { sane: false, reason: `${module}.${label} holds ${t.data[bad]} at index ${bad}`, worstRatio: Infinity, worstModule: module };
    }
    const ratio = (scale * loraProductNorm(a.data, b.data, a.shape[0])) / frobenius(w.data);
    if (!(ratio <= worstRatio)) {
      worstRatio = ratio;
      worstModule = module;
    }
  }
  const sane = worstRatio <= MAX_UPDATE_RATIO;
  const reason = sane ? '' : `the update of ${worstModule} is ${worstRatio.toPrecision(3)}× the size of the frozen weight (at most ${MAX_UPDATE_RATIO}× is kept)`;
  return { sane, reason, worstRatio, worstModule };
}

/** ‖B·A‖_F without forming B·A: ‖BA‖²_F = Σᵢⱼ (BᵀB)ᵢⱼ (AAᵀ)ᵢⱼ, two r × r Gram matrices. */
function loraProductNorm(a: Float32Array, b: Float32Array, r: number): number {
  const inF = a.length / r;
  const outF = b.length / r;
  let sum = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let aa = 0;
      for (let k = 0; k < inF; k++) aa += a[i * inF + k] * a[j * inF + k];
      let bb = 0;
      for (let o = 0; o < outF; o++) bb += b[o * r + i] * b[o * r + j];
      sum += aa * bb;
    }
  }
  return Math.sqrt(Math.max(0, sum));
}

function frobenius(x: Float32Array): number {
  let sum = 0;
  for (const v of x) sum += v * v;
  return Math.sqrt(sum);
}

export class DivergedError extends Error {
  override name = 'DivergedError';
}

/** Throw a DivergedError when the adapter of `step` fails the rule. */
export function assertAdapterSane(weights: StateDict, adapter: HostAdapterTensors, lora: Pick<LoraConfig, 'r' | 'alpha' | 'rslora'>, step: number): void {
  const health = adapterHealth(weights, adapter, lora);
  if (!health.sane) throw new DivergedError(`Training diverged at step ${step}: ${health.reason}.`);
}
