/**
 * LoRA adapters in PEFT's shapes and naming: A [r, in], B [out, r], Y += scale·(X·Aᵀ)·Bᵀ with
 * scale = alpha/r (or alpha/√r with rsLoRA). Target modules are matched by PEFT's suffix rule.
 */
import type { Engine } from '../engine/engine.ts';
import { Rng } from '../engine/rng.ts';
import type { Tensor } from '../engine/tensor.ts';
import { checkAdapter } from './adapter-check.ts';
import type { BertConfig } from './config.ts';
import type { HostTensor } from './state-dict.ts';

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  /** PEFT target_modules, e.g. ['query', 'value'] or ['attention.output.dense']. */
  targetModules: string[];
}

/** Every linear module of a BERT layer, by its PEFT-visible name suffix. */
export const LINEAR_SUFFIXES = [
  'attention.self.query',
  'attention.self.key',
  'attention.self.value',
  'attention.output.dense',
  'intermediate.dense',
  'output.dense',
] as const;
export type LinearSuffix = (typeof LINEAR_SUFFIXES)[number];

/** The names PEFT accepts in target_modules for BERT, as the UI lists them. */
export const TARGETABLE_MODULES = ['query', 'key', 'value', 'attention.output.dense', 'intermediate.dense', 'output.dense', 'dense'];

export function loraScale(config: Pick<LoraConfig, 'r' | 'alpha' | 'rslora'>): number {
  return config.rslora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
}

/** Full module name of a linear layer, e.g. `encoder.layer.3.attention.self.query`. */
export function moduleName(layer: number, suffix: LinearSuffix): string {
  return `encoder.layer.${layer}.${suffix}`;
}

/** Whether `name` is a linear module of some layer, like `encoder.layer.3.attention.self.query`. */
export function isLinearModule(name: string): boolean {
  const m = /^encoder\.layer\.\d+\.(.+)$/.exec(name);
  return m !== null && (LINEAR_SUFFIXES as readonly string[]).includes(m[1]);
}

/** Every linear module of the model, layer by layer, by full name. */
export function linearModules(config: BertConfig): string[] {
  const all: string[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) for (const s of LINEAR_SUFFIXES) all.push(moduleName(layer, s));
  return all;
}

/**
 * PEFT's rule: a target matches a module whose full name equals it or ends with `.${target}`.
 * So 'output.dense' matches both `attention.output.dense` and the layer's own `output.dense`.
 */
export function matchesTarget(module: string, target: string): boolean {
  return module === target || module.endsWith(`.${target}`);
}

/** The modules target_modules selects, layer by layer; a target that matches none is an error. */
export function resolveTargets(config: BertConfig, targetModules: string[]): string[] {
  if (targetModules.length === 0) throw new Error('LoRA needs at least one target module');
  const all = linearModules(config);
  const matched = all.filter((name) => targetModules.some((t) => matchesTarget(name, t)));
  const unmatched = targetModules.filter((t) => !all.some((name) => matchesTarget(name, t)));
  if (unmatched.length > 0) {
    throw new Error(`LoRA target modules not found in this BERT: ${unmatched.join(', ')} (BERT's linear layers: ${TARGETABLE_MODULES.join(', ')})`);
  }
  return matched;
}

export function validateLoraConfig(config: LoraConfig): void {
  if (!Number.isInteger(config.r) || config.r < 1 || config.r > 256) throw new Error(`LoRA rank r must be an integer in 1..256, got ${config.r}`);
  if (!(config.alpha > 0)) throw new Error(`LoRA alpha must be positive, got ${config.alpha}`);
  if (!(config.dropout >= 0 && config.dropout < 1)) throw new Error(`LoRA dropout must be in [0, 1), got ${config.dropout}`);
}

/** In and out features of a linear module of BERT. */
export function moduleShape(config: BertConfig, name: string): { in: number; out: number } {
  const h = config.hiddenSize;
  if (name.endsWith('intermediate.dense')) return { in: h, out: config.intermediateSize };
  if (name.endsWith('.output.dense') && !name.endsWith('attention.output.dense')) return { in: config.intermediateSize, out: h };
  return { in: h, out: h };
}

/** LoRA weights on the host: `${module}.lora_A` [r,in] and `${module}.lora_B` [out,r]. */
export type HostAdapterTensors = Map<string, HostTensor>;

/** PEFT's default init: A Kaiming-uniform (a = √5, so bound 1/√in), B zero. Seeded. */
export function initLoraTensors(config: BertConfig, lora: LoraConfig, seed: number): HostAdapterTensors {
  validateLoraConfig(lora);
  const rng = new Rng(seed);
  const tensors: HostAdapterTensors = new Map();
  for (const name of resolveTargets(config, lora.targetModules)) {
    const shape = moduleShape(config, name);
    const bound = 1 / Math.sqrt(shape.in);
    const a = Float32Array.from({ length: lora.r * shape.in }, () => rng.uniform(-bound, bound));
    tensors.set(`${name}.lora_A`, { shape: [lora.r, shape.in], data: a });
    tensors.set(`${name}.lora_B`, { shape: [shape.out, lora.r], data: new Float32Array(shape.out * lora.r) });
  }
  return tensors;
}

export interface GpuLoraModule {
  a: Tensor;
  b: Tensor;
  r: number;
  scale: number;
}

/** An adapter resident on the GPU. Trainable adapters also hold gradients. */
export class GpuAdapter {
  readonly modules = new Map<string, GpuLoraModule>();
  readonly grads = new Map<string, { da: Tensor; db: Tensor }>();

  constructor(
    readonly engine: Engine,
    readonly bert: BertConfig,
    readonly config: LoraConfig,
    tensors: HostAdapterTensors,
    readonly trainable: boolean,
  ) {
    validateLoraConfig(config);
    checkAdapter(bert, { config, tensors }, 'LoRA adapter');
    const scale = loraScale(config);
    for (const name of resolveTargets(bert, config.targetModules)) {
      const a = tensors.get(`${name}.lora_A`)!; // checked above
      const b = tensors.get(`${name}.lora_B`)!;
      this.modules.set(name, { a: engine.upload(a.data, a.shape), b: engine.upload(b.data, b.shape), r: config.r, scale });
      if (trainable) this.grads.set(name, { da: engine.alloc(a.shape, 'f32', true), db: engine.alloc(b.shape, 'f32', true) });
    }
  }

  /** Trainable tensors and their gradients, in a fixed order (A then B per module). */
  parameters(): { params: Tensor[]; grads: Tensor[]; names: string[] } {
    const params: Tensor[] = [];
    const grads: Tensor[] = [];
    const names: string[] = [];
    for (const [name, m] of this.modules) {
      const g = this.grads.get(name)!;
      params.push(m.a, m.b);
      grads.push(g.da, g.db);
      names.push(`${name}.lora_A`, `${name}.lora_B`);
    }
    return { params, grads, names };
  }

  zeroGrads(): void {
    for (const g of this.grads.values()) {
      this.engine.zero(g.da);
      this.engine.zero(g.db);
    }
  }

  /** Copy the adapter back to the host (PEFT-shaped tensors). */
  async download(): Promise<HostAdapterTensors> {
    const out: HostAdapterTensors = new Map();
    for (const [name, m] of this.modules) {
      out.set(`${name}.lora_A`, { shape: [...m.a.shape], data: await this.engine.readF32(m.a) });
      out.set(`${name}.lora_B`, { shape: [...m.b.shape], data: await this.engine.readF32(m.b) });
    }
    return out;
  }

  /** Overwrite the adapter's values (e.g. restoring a checkpoint). */
  load(tensors: HostAdapterTensors): void {
    for (const [name, m] of this.modules) {
      this.engine.write(m.a, tensors.get(`${name}.lora_A`)!.data);
      this.engine.write(m.b, tensors.get(`${name}.lora_B`)!.data);
    }
  }

  release(): void {
    for (const m of this.modules.values()) this.engine.release(m.a, m.b);
    for (const g of this.grads.values()) this.engine.release(g.da, g.db);
    this.modules.clear();
    this.grads.clear();
  }
}
