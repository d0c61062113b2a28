/**
 * LoRA adapters in PEFT's shapes and naming: A [r, in], B [out, r], Y += scale·(X·Aᵀ)·Bᵀ with
 * scale = alpha/r (or alpha/√r with rsLoRA). Target modules are matched by PEFT's rule
 * (check_target_module_exists): a list matches a module whose whole name equals an entry or ends
 * with `.entry`; a string is a regular expression the whole name must match.
 */
import type { Engine } from '../engine/engine.ts';
import { Rng } from '../data/rng.ts';
import type { Tensor } from '../engine/tensor.ts';
import { checkAdapter } from './adapter-check.ts';
import type { BertConfig } from './config.ts';
import type { HostTensor } from './state-dict.ts';

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  /** PEFT target_modules, e.g. ['query', 'value'] or ['attention.output.dense'], or one regular expression. */
  targetModules: string[] | string;
  /**
   * What the model PEFT wrapped called the BertModel (`bert.` in a task model, `0.auto_model.` in a
   * SentenceTransformer); PEFT matched target_modules against names under it. Absent: the BertModel itself.
   */
  modulePrefix?: string;
}

/** A LoRA config for an adapter trained here: target modules are names (the UI's and CLI's choices). */
export interface TrainingLoraConfig extends LoraConfig {
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

/** The names PEFT accepts in target_modules for BERT, as the UI lists them ('dense' includes the pooler's). */
export const TARGETABLE_MODULES = ['query', 'key', 'value', 'attention.output.dense', 'intermediate.dense', 'output.dense', 'dense'];

/**
 * BertModel's pooler (dense + tanh over [CLS]). Sentence embeddings here never run it, but PEFT puts
 * LoRA on it whenever target_modules match it (`dense` does), so such weights are kept, exported and merged.
 */
export const POOLER_MODULE = 'pooler.dense';

export function loraScale(config: Pick<LoraConfig, 'r' | 'alpha' | 'rslora'>): number {
  return config.rslora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
}

/** Full module name of a linear layer, e.g. `encoder.layer.3.attention.self.query`. */
export function moduleName(layer: number, suffix: LinearSuffix): string {
  return `encoder.layer.${layer}.${suffix}`;
}

/** Whether `name` is a linear module of BertModel by full name: a layer's (`encoder.layer.3.attention.self.query`) or the pooler's. */
export function isLinearModule(name: string): boolean {
  if (name === POOLER_MODULE) return true;
  const m = /^encoder\.layer\.\d+\.(.+)$/.exec(name);
  return m !== null && (LINEAR_SUFFIXES as readonly string[]).includes(m[1]);
}

/** Every linear module of a BertModel in PEFT's (registration) order: each layer's six, then the pooler's, if the checkpoint has one. */
export function linearModules(config: BertConfig, base: { pooler: boolean }): string[] {
  const all: string[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) for (const s of LINEAR_SUFFIXES) all.push(moduleName(layer, s));
  if (base.pooler) all.push(POOLER_MODULE);
  return all;
}

/** Whether PEFT would put LoRA on `module` (a BertModel name): the rule's suffix match or full regex match, under its module prefix. */
export function targetsModule(rule: Pick<LoraConfig, 'targetModules' | 'modulePrefix'>, module: string): boolean {
  const key = `${rule.modulePrefix ?? ''}${module}`;
  const targets = rule.targetModules;
  if (typeof targets === 'string') return fullMatch(targets).test(key);
  return targets.some((t) => key === t || key.endsWith(`.${t}`));
}

/** PEFT's string target_modules as a JavaScript regular expression that must match a whole name (re.fullmatch). */
export function fullMatch(pattern: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    throw new Error(`target_modules ${JSON.stringify(pattern)} is not a regular expression this app can read (${(e as Error).message})`);
  }
}

/** target_modules as a person reads them. */
export function describeTargets(targets: string[] | string): string {
  return typeof targets === 'string' ? `the modules matching /${targets}/` : targets.join(', ');
}

/**
 * The linear modules a LoRA config covers, in PEFT's order. As in PEFT, targets that name nothing
 * in BERT are fine as long as something matches (adapter configs often list several models' names).
 */
export function resolveTargets(config: BertConfig, rule: Pick<LoraConfig, 'targetModules' | 'modulePrefix'>, base: { pooler: boolean }): string[] {
  const matched = linearModules(config, base).filter((name) => targetsModule(rule, name));
  if (matched.length === 0) {
    throw new Error(`LoRA target modules ${JSON.stringify(rule.targetModules)} match none of this BERT's linear layers (${TARGETABLE_MODULES.join(', ')})`);
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

/**
 * PEFT's default init: A Kaiming-uniform (a = √5, so bound 1/√in), B zero. Seeded. Every target must
 * name a linear layer (a typo here is the user's, not another model's name). The pooler's LoRA, when
 * targeted, gets no gradient (sentence embeddings do not use the pooler) and is exported as initialised,
 * as PEFT's would be.
 */
export function initLoraTensors(config: BertConfig, lora: TrainingLoraConfig, seed: number, base: { pooler: boolean }): HostAdapterTensors {
  validateLoraConfig(lora);
  const modules = linearModules(config, base);
  const unmatched = lora.targetModules.filter((t) => !modules.some((name) => targetsModule({ targetModules: [t] }, name)));
  if (unmatched.length > 0) {
    throw new Error(`LoRA target modules not found in this BERT: ${unmatched.join(', ')} (BERT's linear layers: ${TARGETABLE_MODULES.join(', ')})`);
  }
  return initLoraPairs(resolveTargets(config, lora, base).map((name) => ({ name, ...moduleShape(config, name) })), lora.r, seed);
}

/** PEFT's default init of rank-`r` LoRA on `modules`, in order, from one seeded stream: A Kaiming-uniform (bound 1/√in), B zero. */
export function initLoraPairs(modules: { name: string; in: number; out: number }[], r: number, seed: number): HostAdapterTensors {
  const rng = new Rng(seed);
  const tensors: HostAdapterTensors = new Map();
  for (const { name, in: inF, out } of modules) {
    const bound = 1 / Math.sqrt(inF);
    const a = Float32Array.from({ length: r * inF }, () => rng.uniform(-bound, bound));
    tensors.set(`${name}.lora_A`, { shape: [r, inF], data: a });
    tensors.set(`${name}.lora_B`, { shape: [out, r], data: new Float32Array(out * r) });
  }
  return tensors;
}

export interface GpuLoraModule {
  a: Tensor;
  b: Tensor;
  r: number;
  scale: number;
}

/**
 * LoRA modules resident on the GPU, for any model: `names` are the modules to upload from `tensors`
 * (`${name}.lora_A` [r, in], `${name}.lora_B` [out, r]), already checked against the model by the
 * caller. Trainable ones also hold gradients.
 */
export class GpuLoraModules {
  readonly modules = new Map<string, GpuLoraModule>();
  readonly grads = new Map<string, { da: Tensor; db: Tensor }>();

  constructor(
    readonly engine: Engine,
    readonly config: LoraConfig,
    tensors: HostAdapterTensors,
    names: readonly string[],
    readonly trainable: boolean,
  ) {
    const scale = loraScale(config);
    for (const name of names) {
      const a = tensors.get(`${name}.lora_A`);
      const b = tensors.get(`${name}.lora_B`);
      if (!a || !b) throw new Error(`LoRA adapter: ${name} needs both lora_A and lora_B`);
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

  /** Copy the adapter back to the host (PEFT-shaped tensors, in PEFT's order). */
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

/**
 * A BERT adapter resident on the GPU, checked against the model. The pooler's LoRA, which the engine
 * never runs, stays on the host and comes back unchanged from `download`.
 */
export class GpuAdapter extends GpuLoraModules {
  private readonly carried: HostAdapterTensors = new Map();

  constructor(engine: Engine, bert: BertConfig, config: LoraConfig, tensors: HostAdapterTensors, trainable: boolean) {
    validateLoraConfig(config);
    // Adapters without the pooler's LoRA (from a base without a pooler, or made before it was kept) still
    // apply: PEFT loads such a file with that LoRA at B = 0, which changes nothing. The engine never runs
    // the pooler, so the base is taken to have one exactly when the adapter does; where the adapter meets
    // the checkpoint (import, merge) it is checked against the checkpoint's own.
    const pooler = tensors.has(`${POOLER_MODULE}.lora_A`) || tensors.has(`${POOLER_MODULE}.lora_B`);
    checkAdapter(bert, { config, tensors }, 'LoRA adapter', { pooler });
    const modules = resolveTargets(bert, config, { pooler });
    super(engine, config, tensors, modules.filter((name) => name !== POOLER_MODULE), trainable);
    for (const half of ['lora_A', 'lora_B']) {
      const t = pooler ? tensors.get(`${POOLER_MODULE}.${half}`) : undefined;
      if (t) this.carried.set(`${POOLER_MODULE}.${half}`, t);
    }
  }

  override async download(): Promise<HostAdapterTensors> {
    const out = await super.download();
    for (const [name, t] of this.carried) out.set(name, { shape: [...t.shape], data: t.data.slice() });
    return out;
  }

  override load(tensors: HostAdapterTensors): void {
    super.load(tensors);
    // A snapshot from before the pooler's LoRA was carried lacks it; it never trains, so its init stands.
    for (const name of this.carried.keys()) this.carried.set(name, tensors.get(name) ?? this.carried.get(name)!);
  }

  override release(): void {
    super.release();
    this.carried.clear();
  }
}
