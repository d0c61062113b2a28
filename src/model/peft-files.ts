/**
 * Files other tools read: a LoRA adapter in PEFT's layout (adapter_config.json +
 * adapter_model.safetensors, loadable with `PeftModel.from_pretrained(BertModel, dir)`, or the
 * model's own class for the other families: tensor names and target_modules are written in the
 * model's module names and read back into the canonical ones), and a merged model as a plain
 * Hugging Face BertModel checkpoint (config.json + model.safetensors).
 */
import { checkAdapterTensors } from './adapter-check.ts';
import type { BertConfig } from './config.ts';
import { FAMILIES, type ModelFamily, canonicalName, canonicalTargets, familyConfigJson, familyName, familyTargets, familyWeights } from './families.ts';
import { LINEAR_SUFFIXES, type LinearSuffix, type LoraConfig, POOLER_MODULE, type TrainingLoraConfig, describeTargets, fullMatch, isLinearModule } from './lora.ts';
import { parseSafetensors, writeSafetensors } from './safetensors.ts';
import { type HostTensor, type StateDict, canonicalBertWeights } from './state-dict.ts';

export interface PeftAdapter {
  config: {
    r: number;
    loraAlpha: number;
    loraDropout: number;
    /** A list of names (PEFT's suffix rule) or one regular expression a whole module name must match. */
    targetModules: string[] | string;
    /** What the wrapped model called the BertModel (see LoraConfig); from the tensor names, and written back into them. */
    modulePrefix?: string;
    useRslora: boolean;
    baseModelNameOrPath: string;
    revision?: string;
  };
  /** `${module}.lora_A` [r, in] and `${module}.lora_B` [out, r], module like 'encoder.layer.0.attention.self.query' or 'pooler.dense' (canonical names, whatever the family). */
  tensors: Map<string, HostTensor>;
}

/**
 * The one mapping between the engine's LoRA config and PEFT's adapter_config fields. `base` is the
 * model the adapter was trained on, its revision the commit where known: PEFT then loads that very base.
 */
export function peftConfigOf(lora: TrainingLoraConfig, base: { id: string; revision?: string }): PeftAdapter['config'] {
  return {
    r: lora.r,
    loraAlpha: lora.alpha,
    loraDropout: lora.dropout,
    targetModules: lora.targetModules,
    useRslora: lora.rslora,
    baseModelNameOrPath: base.id,
    ...(base.revision ? { revision: base.revision } : {}),
  };
}

/** An adapter's PEFT config as the engine's LoRA config (its dropout matters only if it trains). */
export function loraConfigOf(peft: PeftAdapter): LoraConfig {
  const c = peft.config;
  return { r: c.r, alpha: c.loraAlpha, dropout: c.loraDropout, rslora: c.useRslora, targetModules: c.targetModules, modulePrefix: c.modulePrefix };
}

/** One line naming an adapter: its rank, alpha, targets and base. */
export function describePeftAdapter(adapter: PeftAdapter): string {
  const c = adapter.config;
  return `LoRA r${c.r} α${c.loraAlpha} on ${describeTargets(c.targetModules)}${c.baseModelNameOrPath ? ` (trained on ${c.baseModelNameOrPath})` : ''}`;
}

export interface PeftAdapterFiles {
  'adapter_config.json': string;
  'adapter_model.safetensors': Uint8Array;
}

/**
 * Tensor names as the tools that save adapters write them; all name the same module of the family's
 * bare encoder (BertModel, RobertaModel…), in its own module names (DistilBERT: transformer.layer.N.attention.q_lin):
 * - `base_model.model.<module>`: PEFT's PeftModel.save_pretrained over the bare encoder (what we write), and
 *   `base_model.model.bert.<module>` over a BertFor… task model (roberta., distilbert. for the others);
 * - `<module>` and `bert.<module>`: transformers' own PEFT integration (model.add_adapter, then
 *   save_pretrained), which is also what sentence-transformers' add_adapter saves;
 * - `base_model.model.0.auto_model.<module>` (`0.model.` from sentence-transformers 5): get_peft_model
 *   around a whole SentenceTransformer, whose module 0 holds the encoder.
 * PEFT strips the adapter name on save; `.default` before `.weight` is kept by state dicts taken
 * straight from the model, and PEFT loads those as they are.
 */
const peftKey = (family: ModelFamily) =>
  new RegExp(`^(?:base_model\\.model\\.)?(${family.prefix.replaceAll('.', '\\.')}|0\\.auto_model\\.|0\\.model\\.)?(.+)\\.lora_([AB])(?:\\.default)?\\.weight$`);
const keyForms = (family: ModelFamily) =>
  `<module>.lora_A.weight, optionally prefixed by base_model.model. and by ${family.prefix}, 0.auto_model. or 0.model., with .default before .weight`;

/** Where a BertModel linear comes in registration order (each layer's six, then the pooler), which is the order PEFT saves in. */
function modulePosition(module: string): number {
  if (module === POOLER_MODULE) return Number.MAX_SAFE_INTEGER;
  const m = /^encoder\.layer\.(\d+)\.(.+)$/.exec(module) as RegExpExecArray; // names are checked before sorting
  return Number(m[1]) * LINEAR_SUFFIXES.length + LINEAR_SUFFIXES.indexOf(m[2] as LinearSuffix);
}

/** `${module}.lora_A` before `${module}.lora_B`, modules in PEFT's order (names are checked before sorting). */
function byPeftOrder(a: string, b: string): number {
  const [moduleA, moduleB] = [a, b].map((name) => name.slice(0, name.lastIndexOf('.')));
  return modulePosition(moduleA) - modulePosition(moduleB) || a.localeCompare(b);
}

/** PEFT's file key of an adapter tensor (`${module}.lora_A`, canonical) on `model`: under base_model.model. and the wrapped model's prefix, in the model's own module names. */
export function peftTensorKey(model: BertConfig, name: string, modulePrefix = ''): string {
  const dot = name.lastIndexOf('.');
  return `base_model.model.${modulePrefix}${familyName(FAMILIES[model.family], name.slice(0, dot))}.${name.slice(dot + 1)}.weight`;
}

/** The adapter for `model`'s base, in that model's own module names (DistilBERT: transformer.layer.N.attention.q_lin…). */
export function writePeftAdapter(adapter: PeftAdapter, model: BertConfig): PeftAdapterFiles {
  const c = adapter.config;
  checkAdapterConfig(c);
  checkAdapterTensors(adapter, 'LoRA adapter');
  const names = [...adapter.tensors.keys()].sort(byPeftOrder);
  const onDisk = new Map(names.map((name) => [peftTensorKey(model, name, c.modulePrefix), adapter.tensors.get(name) as HostTensor]));
  const config = peftConfigJson(c, 'FEATURE_EXTRACTION', familyTargets(model, c.targetModules));
  return {
    'adapter_config.json': `${JSON.stringify(config, null, 2)}\n`,
    'adapter_model.safetensors': writeSafetensors(onDisk, { format: 'pt' }),
  };
}

/** adapter_config.json's fields for `c`, with the task type and target_modules (in the model's own names) of the model it is for. */
export function peftConfigJson(c: PeftAdapter['config'], taskType: 'FEATURE_EXTRACTION' | 'CAUSAL_LM', targetModules: string[] | string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: taskType,
    base_model_name_or_path: c.baseModelNameOrPath,
    revision: c.revision ?? null,
    r: c.r,
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    target_modules: targetModules,
    use_rslora: c.useRslora,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: null,
  };
}

/**
 * Read a PEFT LoRA adapter, consistent on its own; where it meets a base model, checkAdapter
 * (adapter-check.ts) also checks it against that model. Names are read as `model`'s family writes
 * them (BERT's without a model) and come back canonical.
 */
export function readPeftAdapter(files: { 'adapter_config.json': string | Uint8Array; 'adapter_model.safetensors': Uint8Array }, model?: BertConfig): PeftAdapter {
  const family = FAMILIES[model?.family ?? 'bert'];
  const config = readAdapterConfig(files['adapter_config.json']);
  const { tensors: stored } = parseSafetensors(files['adapter_model.safetensors'], 'adapter_model.safetensors');
  const tensors = new Map<string, HostTensor>();
  const unknown: string[] = [];
  const prefixes = new Set<string>();
  const keyForm = peftKey(family);
  for (const [fileKey, tensor] of stored) {
    // The family's module names become BertModel's first; the prefix and the target rule then work on those.
    const m = keyForm.exec(fileKey);
    const module = m ? canonicalName(family, m[2]) : '';
    // Only the family's own names: a BERT-named adapter is not one PEFT would load on DistilBERT.
    if (!m || !isLinearModule(module) || familyName(family, module) !== m[2]) {
      unknown.push(fileKey);
      continue;
    }
    prefixes.add(m[1] ?? '');
    const name = `${module}.lora_${m[3]}`;
    if (tensors.has(name)) throw new Error(`adapter_model.safetensors holds ${name} twice (under two of the name forms ${keyForms(family)})`);
    tensors.set(name, tensor);
  }
  if (unknown.length > 0) {
    throw new Error(
      `adapter_model.safetensors has tensors that are not LoRA weights of ${family.label}'s linear layers ` +
        `(expected names like base_model.model.${familyName(family, 'encoder.layer.0.attention.self.query')}.lora_A.weight or ${familyName(family, 'encoder.layer.0.attention.self.query')}.lora_A.weight; ` +
        `accepted forms: ${keyForms(family)}): ${unknown.join(', ')}`,
    );
  }
  // One wrapped model per file: its prefix decides which names target_modules were matched against.
  if (prefixes.size > 1) throw new Error(`adapter_model.safetensors mixes names from differently wrapped models (prefixes ${[...prefixes].map((p) => JSON.stringify(p)).join(', ')})`);
  const [modulePrefix = ''] = prefixes;
  const withPrefix = modulePrefix ? { ...config, modulePrefix } : config;
  // target_modules as PEFT matched them on the model's own names, as the BertModel names they select.
  if (model) withPrefix.targetModules = canonicalTargets(model, withPrefix);
  checkAdapterTensors({ config: withPrefix, tensors }, 'adapter_model.safetensors');
  return { config: withPrefix, tensors };
}

/** adapter_config.json's text or bytes as a checked config (what the engine cannot compute is refused, naming the field). */
export function readAdapterConfig(text: string | Uint8Array): PeftAdapter['config'] {
  let json: unknown;
  try {
    json = JSON.parse(typeof text === 'string' ? text : new TextDecoder().decode(text));
  } catch (e) {
    throw new Error(`adapter_config.json is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('adapter_config.json must be a JSON object');
  return parseAdapterConfig(json as Record<string, unknown>);
}

function parseAdapterConfig(json: Record<string, unknown>): PeftAdapter['config'] {
  const unsupported = (what: string) => new Error(`adapter_config.json: ${what} is not supported yet`);
  if (json.peft_type !== 'LORA') throw unsupported(`peft_type ${JSON.stringify(json.peft_type)} (only "LORA")`);
  if (json.use_dora === true) throw unsupported('DoRA (use_dora)');
  if (json.fan_in_fan_out === true) throw unsupported('fan_in_fan_out');
  if (json.bias !== undefined && json.bias !== 'none') throw unsupported(`bias ${JSON.stringify(json.bias)} (only "none")`);
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const v = json[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0)) throw unsupported(`a per-module ${key}`);
  }
  if (Array.isArray(json.modules_to_save) && json.modules_to_save.length > 0) throw unsupported('modules_to_save');
  // Both narrow which modules target_modules select; read as absent they would put LoRA where PEFT did not.
  for (const key of ['layers_to_transform', 'exclude_modules']) {
    const v = json[key];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) throw unsupported(`${key} (${JSON.stringify(v)})`);
  }
  const base = json.base_model_name_or_path;
  const revision = json.revision;
  const config = {
    r: json.r as number,
    loraAlpha: json.lora_alpha as number,
    loraDropout: (json.lora_dropout ?? 0) as number,
    targetModules: json.target_modules as string[] | string,
    useRslora: (json.use_rslora ?? false) as boolean,
    baseModelNameOrPath: typeof base === 'string' ? base : '',
    ...(typeof revision === 'string' ? { revision } : {}),
  };
  checkAdapterConfig(config);
  return config;
}

export function checkAdapterConfig(c: PeftAdapter['config']): void {
  if (!Number.isInteger(c.r) || c.r < 1) throw new Error(`adapter config: r must be a positive integer, got ${JSON.stringify(c.r)}`);
  if (typeof c.loraAlpha !== 'number' || !Number.isFinite(c.loraAlpha)) throw new Error(`adapter config: lora_alpha must be a number, got ${JSON.stringify(c.loraAlpha)}`);
  if (typeof c.loraDropout !== 'number' || !(c.loraDropout >= 0 && c.loraDropout < 1)) {
    throw new Error(`adapter config: lora_dropout must be in [0, 1), got ${JSON.stringify(c.loraDropout)}`);
  }
  const t = c.targetModules;
  if (typeof t === 'string' ? t === '' : !Array.isArray(t) || t.length === 0 || !t.every((name) => typeof name === 'string' && name !== '')) {
    throw new Error(`adapter config: target_modules must be a non-empty list of module names or a regular expression, got ${JSON.stringify(t)}`);
  }
  if (typeof t === 'string') fullMatch(t);
  if (typeof c.useRslora !== 'boolean') throw new Error(`adapter config: use_rslora must be true or false, got ${JSON.stringify(c.useRslora)}`);
}

/**
 * A merged model (or any encoder's weights) as config.json + model.safetensors of the family's bare
 * encoder (BertModel, RobertaModel, XLMRobertaModel, DistilBertModel), in its own keys and names.
 */
export function writeBertCheckpoint(config: BertConfig, weights: StateDict): { 'config.json': string; 'model.safetensors': Uint8Array } {
  const { weights: canonical } = canonicalBertWeights(config, weights);
  const json = {
    ...config.raw,
    ...familyConfigJson(config),
    torch_dtype: 'float32', // what model.safetensors holds, whatever the source had
  };
  return { 'config.json': `${JSON.stringify(json, null, 2)}\n`, 'model.safetensors': writeSafetensors(familyWeights(config, canonical), { format: 'pt' }) };
}
