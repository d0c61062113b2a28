/**
 * Fold LoRA adapters into the base weights (W' = W + scale·B·A, per adapter in order), giving a plain
 * BERT checkpoint that any tool can load without PEFT. Accumulates in float64 before rounding.
 */
import { checkAdapter } from './adapter-check.ts';
import type { BertConfig } from './config.ts';
import { type HostAdapterTensors, type LoraConfig, loraScale, resolveTargets } from './lora.ts';
import type { StateDict } from './state-dict.ts';

/** Each adapter is checked against the base first (`source` names it in the message), so nothing is merged from a bad one. */
export function mergeAdapters(bert: BertConfig, weights: StateDict, adapters: { config: LoraConfig; tensors: HostAdapterTensors; source?: string }[]): StateDict {
  adapters.forEach((adapter, i) => checkAdapter(bert, adapter, adapter.source ?? `adapter ${i + 1} of ${adapters.length}`));
  const merged: StateDict = new Map(weights);
  const pending = new Map<string, Float64Array>();
  for (const { config, tensors } of adapters) {
    const scale = loraScale(config);
    for (const name of resolveTargets(bert, config.targetModules)) {
      const w = weights.get(`${name}.weight`);
      if (!w) throw new Error(`cannot merge ${name}: the base weight is missing`);
      const a = tensors.get(`${name}.lora_A`)!; // checked above
      const b = tensors.get(`${name}.lora_B`)!;
      const [out, inFeatures] = w.shape;
      const r = a.shape[0];
      let acc = pending.get(name);
      if (!acc) pending.set(name, (acc = Float64Array.from(w.data)));
      for (let o = 0; o < out; o++) {
        for (let k = 0; k < r; k++) {
          const bs = scale * b.data[o * r + k];
          if (bs === 0) continue;
          const row = o * inFeatures;
          const arow = k * inFeatures;
          for (let i = 0; i < inFeatures; i++) acc[row + i] += bs * a.data[arow + i];
        }
      }
    }
  }
  for (const [name, acc] of pending) {
    const key = `${name}.weight`;
    merged.set(key, { shape: [...weights.get(key)!.shape], data: Float32Array.from(acc) });
  }
  return merged;
}
