/**
 * A decoder adapter between the engine's canonical modules and the checkpoint's (PEFT's) ones.
 * They differ only for Phi-3, whose checkpoint fuses q, k, v into qkv_proj and gate, up into
 * gate_up_proj while the engine splits them at load.
 *
 * Fused LoRA is read and written, not refused: LoRA on qkv_proj is y += s·B·(A·x) with B's rows
 * [q; k; v], which is exactly LoRA on q_proj, k_proj and v_proj with the same A and B cut by rows.
 * Writing goes back only where that holds: the parts' A must be equal (an adapter read from PEFT,
 * or one trained with its A tied), and either all parts of a fused module are targeted or none.
 * Gradients go back by the chain rule: the shared A's gradient is the sum of the parts'.
 */
import type { DecoderConfig } from './decoder-config.ts';
import { type DecoderFileModule, decoderFileModules, decoderLinearModules } from './decoder-lora.ts';
import { initLoraPairs, targetsModule } from './lora.ts';
import type { HostTensor } from './state-dict.ts';

type Tensors = ReadonlyMap<string, HostTensor>;

/** `${module}.lora_A|B` of the checkpoint's modules → the canonical modules' (fused B cut by rows, A shared). */
export function canonicalAdapterTensors(config: DecoderConfig, tensors: Tensors): Map<string, HostTensor> {
  const out = new Map(tensors);
  for (const m of fusedModules(config)) {
    const a = tensors.get(`${m.name}.lora_A`);
    const b = tensors.get(`${m.name}.lora_B`);
    if (!a || !b) continue;
    out.delete(`${m.name}.lora_A`);
    out.delete(`${m.name}.lora_B`);
    const r = b.shape[1];
    for (const part of m.parts) {
      out.set(`${part.name}.lora_A`, { shape: [...a.shape], data: a.data.slice() });
      out.set(`${part.name}.lora_B`, { shape: [part.rows[1] - part.rows[0], r], data: b.data.slice(part.rows[0] * r, part.rows[1] * r) });
    }
  }
  return out;
}

/**
 * Canonical `${module}.lora_A|B` → the checkpoint's modules. `a`: 'shared' requires the parts' A to
 * be equal (adapter weights), 'sum' adds them (gradients of the shared A).
 */
export function fileAdapterTensors(config: DecoderConfig, tensors: Tensors, a: 'shared' | 'sum'): Map<string, HostTensor> {
  const out = new Map(tensors);
  for (const m of fusedModules(config)) {
    const present = m.parts.filter((p) => tensors.has(`${p.name}.lora_A`) || tensors.has(`${p.name}.lora_B`));
    if (present.length === 0) continue;
    const names = m.parts.map((p) => p.name.slice(p.name.lastIndexOf('.') + 1)).join(', ');
    if (present.length < m.parts.length) {
      throw new Error(`${present.map((p) => p.name).join(', ')}: this checkpoint holds ${names} in one ${m.name}, so LoRA on only some of them cannot be written as a PEFT adapter for it; target all of them`);
    }
    const as = m.parts.map((p) => half(tensors, p.name, 'A'));
    const bs = m.parts.map((p) => half(tensors, p.name, 'B'));
    const joinedA = as[0].data.slice();
    for (let k = 1; k < as.length; k++) {
      const other = as[k].data;
      if (other.length !== joinedA.length) throw new Error(`${m.parts[k].name}.lora_A: shape [${as[k].shape.join(', ')}] differs from ${m.parts[0].name}.lora_A's`);
      for (let i = 0; i < joinedA.length; i++) {
        if (a === 'sum') joinedA[i] += other[i];
        else if (other[i] !== as[0].data[i]) {
          throw new Error(`${m.parts[k].name}.lora_A differs from ${m.parts[0].name}.lora_A (at ${i}): PEFT's ${m.name} LoRA has one A for ${names}, so this adapter cannot be written for this checkpoint`);
        }
      }
      out.delete(`${m.parts[k].name}.lora_A`);
    }
    const r = bs[0].shape[1];
    const joinedB = new Float32Array(bs.reduce((n, b) => n + b.data.length, 0));
    let at = 0;
    for (const b of bs) {
      joinedB.set(b.data, at);
      at += b.data.length;
    }
    for (const p of m.parts) {
      out.delete(`${p.name}.lora_A`);
      out.delete(`${p.name}.lora_B`);
    }
    out.set(`${m.name}.lora_A`, { shape: [...as[0].shape], data: joinedA });
    out.set(`${m.name}.lora_B`, { shape: [joinedB.length / r, r], data: joinedB });
  }
  return out;
}

/** PEFT's target_modules (matched on the checkpoint's modules) → targets selecting the same canonical modules. */
export function canonicalDecoderTargets(config: DecoderConfig, targets: string[] | string): string[] | string {
  if (!config.fusedProjections) return targets;
  const selected = decoderFileModules(config).filter((m) => targetsModule({ targetModules: targets }, m.name));
  if (selected.length === 0) return targets; // the check names them
  const canonical = new Set(selected.flatMap((m) => (m.parts ? m.parts.map((p) => p.name) : [m.name])));
  return expressTargets(decoderLinearModules(config), canonical);
}

/** Canonical targets → the checkpoint's names PEFT needs (the inverse of canonicalDecoderTargets). */
export function fileDecoderTargets(config: DecoderConfig, targets: string[] | string): string[] | string {
  if (!config.fusedProjections) return targets;
  const canonical = new Set(decoderLinearModules(config).filter((m) => targetsModule({ targetModules: targets }, m.name)).map((m) => m.name));
  const modules = decoderFileModules(config);
  const selected = new Set<string>();
  for (const m of modules) {
    const parts = m.parts?.map((p) => p.name) ?? [m.name];
    const covered = parts.filter((p) => canonical.has(p));
    if (covered.length === parts.length) selected.add(m.name);
    else if (covered.length > 0) throw new Error(`target_modules ${JSON.stringify(targets)} select ${covered.join(', ')} but not all of ${m.name}'s parts, which this checkpoint holds in one module: target all of them`);
  }
  return selected.size === 0 ? targets : expressTargets(modules, selected);
}

/** The shortest list naming exactly `selected`: a linear's own name where every layer's is selected, else full module names. */
function expressTargets(modules: readonly { name: string }[], selected: ReadonlySet<string>): string[] {
  const byLinear = new Map<string, string[]>();
  for (const { name } of modules) {
    const linear = name.slice(name.lastIndexOf('.') + 1);
    byLinear.set(linear, [...(byLinear.get(linear) ?? []), name]);
  }
  const targets: string[] = [];
  for (const [linear, names] of byLinear) {
    const chosen = names.filter((n) => selected.has(n));
    if (chosen.length === names.length) targets.push(linear);
    else targets.push(...chosen);
  }
  return targets;
}

function fusedModules(config: DecoderConfig): (DecoderFileModule & { parts: NonNullable<DecoderFileModule['parts']> })[] {
  return config.fusedProjections ? decoderFileModules(config).filter((m): m is DecoderFileModule & { parts: NonNullable<DecoderFileModule['parts']> } => m.parts !== null) : [];
}

function half(tensors: Tensors, module: string, which: 'A' | 'B'): HostTensor {
  const t = tensors.get(`${module}.lora_${which}`);
  if (!t) throw new Error(`${module}: has lora_${which === 'A' ? 'B' : 'A'} but no lora_${which}`);
  return t;
}

/**
 * A new adapter on the modules `targets` (PEFT's names on the checkpoint: Phi-3's fused ones) select,
 * initialised as PEFT does (A Kaiming-uniform, bound 1/√in; B zero; seeded), in canonical modules
 * with canonical targets: a fused module's parts share its A, and training keeps them equal (tiedLoraGroups).
 */
export function initDecoderLora(config: DecoderConfig, r: number, targets: string[], seed: number): { targetModules: string[] | string; tensors: Map<string, HostTensor> } {
  const modules = decoderFileModules(config);
  const unmatched = targets.filter((t) => !modules.some((m) => targetsModule({ targetModules: [t] }, m.name)));
  if (unmatched.length > 0) {
    const linears = [...new Set(modules.map((m) => m.name.slice(m.name.lastIndexOf('.') + 1)))].join(', ');
    throw new Error(`LoRA target modules not found in this ${config.family} decoder: ${unmatched.join(', ')} (its linear layers: ${linears})`);
  }
  const tensors = initLoraPairs(modules.filter((m) => targetsModule({ targetModules: targets }, m.name)), r, seed);
  return { targetModules: canonicalDecoderTargets(config, targets), tensors: canonicalAdapterTensors(config, tensors) };
}

/** The canonical modules among `modules` that share one A in the checkpoint (Phi-3's q, k, v and gate, up), by fused module. */
export function tiedLoraGroups(config: DecoderConfig, modules: ReadonlySet<string>): string[][] {
  return fusedModules(config)
    .map((m) => m.parts.map((p) => p.name))
    .filter((names) => names.every((n) => modules.has(n)));
}
