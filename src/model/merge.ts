/**
 * Fold LoRA adapters into the base weights (W' = W + scale·B·A, per adapter in order), giving a plain
 * BERT checkpoint that any tool can load without PEFT. Accumulates in float64 before rounding. The
 * pooler's LoRA is folded into the pooler like any other; an adapter without it leaves the pooler as
 * PEFT would (its LoRA at B = 0), and one with it needs a base that has a pooler.
 */
import { checkAdapter } from './adapter-check.ts';
import type { BertConfig } from './config.ts';
import { type HostAdapterTensors, type LoraConfig, POOLER_MODULE, loraScale, resolveTargets } from './lora.ts';
import { type HostTensor, type StateDict, hasPooler } from './state-dict.ts';

/** acc [out·in] += scale·B·A, for A [r, in] and B [out, r], in float64. */
export function foldLora(acc: Float64Array, a: HostTensor, b: HostTensor, scale: number): void {
  const [r, inFeatures] = a.shape;
  const out = b.shape[0];
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

/** Each adapter is checked against the base first (`source` names it in the message), so nothing is merged from a bad one. */
export function mergeAdapters(bert: BertConfig, weights: StateDict, adapters: { config: LoraConfig; tensors: HostAdapterTensors; source?: string }[]): StateDict {
  const base = { pooler: hasPooler(weights) };
  adapters.forEach((adapter, i) => checkAdapter(bert, adapter, adapter.source ?? `adapter ${i + 1} of ${adapters.length}`, base));
  const merged: StateDict = new Map(weights);
  const pending = new Map<string, Float64Array>();
  for (const { config, tensors } of adapters) {
    const scale = loraScale(config);
    // An adapter without the pooler's LoRA leaves the pooler as it is; one with it needs a pooler (checked above).
    for (const name of resolveTargets(bert, config, { pooler: tensors.has(`${POOLER_MODULE}.lora_A`) })) {
      const w = weights.get(`${name}.weight`);
      if (!w) throw new Error(`cannot merge ${name}: the base weight is missing`);
      const a = tensors.get(`${name}.lora_A`)!; // checked above
      const b = tensors.get(`${name}.lora_B`)!;
      let acc = pending.get(name);
      if (!acc) pending.set(name, (acc = Float64Array.from(w.data)));
      foldLora(acc, a, b, scale);
    }
  }
  for (const [name, acc] of pending) {
    const key = `${name}.weight`;
    merged.set(key, { shape: [...weights.get(key)!.shape], data: Float32Array.from(acc) });
  }
  return merged;
}
