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
import { isLinearModule } from './lora.ts';
import { parseSafetensors, writeSafetensors } from './safetensors.ts';
import { type HostTensor, type StateDict, canonicalBertWeights } from './state-dict.ts';

export interface PeftAdapter {
  config: {
    r: number;
    loraAlpha: number;
    loraDropout: number;
    targetModules: string[];
    useRslora: boolean;
    baseModelNameOrPath: string;
    revision?: string;
  };
  /** `${module}.lora_A` [r, in] and `${module}.lora_B` [out, r], module like 'encoder.layer.0.attention.self.query' (canonical names, whatever the family). */
  tensors: Map<string, HostTensor>;
}

export interface PeftAdapterFiles {
  'adapter_config.json': string;
  'adapter_model.safetensors': Uint8Array;
}

/** A layer's linears in registration order: PEFT saves the state dict in this order. */
const LINEARS = ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense', 'intermediate.dense', 'output.dense'];
/** PEFT's key of a module: under base_model.model., after the task model's prefix if any, with the adapter name if kept. */
const peftKey = (family: ModelFamily) => new RegExp(`^base_model\\.model\\.(?:${family.prefix.replaceAll('.', '\\.')})?(.+)\\.lora_([AB])(?:\\.default)?\\.weight$`);

function orderKey(name: string): number {
  const m = /^encoder\.layer\.(\d+)\.(.+)\.lora_([AB])$/.exec(name) as RegExpExecArray; // names are checked before sorting
  return (Number(m[1]) * LINEARS.length + LINEARS.indexOf(m[2])) * 2 + (m[3] === 'B' ? 1 : 0);
}

/** PEFT's file key of an adapter tensor (`${module}.lora_A`, canonical) on `model`: under base_model.model., in the model's own module names. */
export function peftTensorKey(model: BertConfig, name: string): string {
  const dot = name.lastIndexOf('.');
  return `base_model.model.${familyName(FAMILIES[model.family], name.slice(0, dot))}.${name.slice(dot + 1)}.weight`;
}

/** The adapter for `model`'s base, in that model's own module names (DistilBERT: transformer.layer.N.attention.q_lin…). */
export function writePeftAdapter(adapter: PeftAdapter, model: BertConfig): PeftAdapterFiles {
  const c = adapter.config;
  checkAdapterConfig(c);
  checkAdapterTensors(adapter, 'LoRA adapter');
  const names = [...adapter.tensors.keys()].sort((a, b) => orderKey(a) - orderKey(b));
  const onDisk = new Map(names.map((name) => [peftTensorKey(model, name), adapter.tensors.get(name) as HostTensor]));
  const config = {
    peft_type: 'LORA',
    task_type: 'FEATURE_EXTRACTION',
    base_model_name_or_path: c.baseModelNameOrPath,
    revision: c.revision ?? null,
    r: c.r,
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    target_modules: familyTargets(model, c.targetModules),
    use_rslora: c.useRslora,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: null,
  };
  return {
    'adapter_config.json': `${JSON.stringify(config, null, 2)}\n`,
    'adapter_model.safetensors': writeSafetensors(onDisk, { format: 'pt' }),
  };
}

/**
 * Read a PEFT LoRA adapter, consistent on its own; where it meets a base model, checkAdapter
 * (adapter-check.ts) also checks it against that model. Names are read as `model`'s family writes
 * them (BERT's without a model) and come back canonical.
 */
export function readPeftAdapter(files: { 'adapter_config.json': string | Uint8Array; 'adapter_model.safetensors': Uint8Array }, model?: BertConfig): PeftAdapter {
  const configText = files['adapter_config.json'];
  let json: unknown;
  try {
    json = JSON.parse(typeof configText === 'string' ? configText : new TextDecoder().decode(configText));
  } catch (e) {
    throw new Error(`adapter_config.json is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('adapter_config.json must be a JSON object');
  const family = FAMILIES[model?.family ?? 'bert'];
  const ownConfig = parseAdapterConfig(json as Record<string, unknown>);
  const config = model ? { ...ownConfig, targetModules: canonicalTargets(model, ownConfig.targetModules) } : ownConfig;
  const { tensors: stored } = parseSafetensors(files['adapter_model.safetensors'], 'adapter_model.safetensors');
  const tensors = new Map<string, HostTensor>();
  const unknown: string[] = [];
  const keyForm = peftKey(family);
  for (const [fileKey, tensor] of stored) {
    const m = keyForm.exec(fileKey);
    const module = m ? canonicalName(family, m[1]) : '';
    // Only the family's own names: a BERT-named adapter is not one PEFT would load on DistilBERT.
    if (!m || !isLinearModule(module) || familyName(family, module) !== m[1]) {
      unknown.push(fileKey);
      continue;
    }
    const name = `${module}.lora_${m[2]}`;
    if (tensors.has(name)) throw new Error(`adapter_model.safetensors holds ${name} twice (with and without an adapter name)`);
    tensors.set(name, tensor);
  }
  if (unknown.length > 0) {
    throw new Error(
      `adapter_model.safetensors has tensors that are not LoRA weights of ${family.label}'s linear layers ` +
        `(expected names like base_model.model.${familyName(family, 'encoder.layer.0.attention.self.query')}.lora_A.weight): ${unknown.join(', ')}`,
    );
  }
  checkAdapterTensors({ config, tensors }, 'adapter_model.safetensors');
  return { config, tensors };
}

function parseAdapterConfig(json: Record<string, unknown>): PeftAdapter['config'] {
  const unsupported = (what: string) => new Error(`adapter_config.json: ${what} is not supported yet`);
  if (json.peft_type !== 'LORA') throw unsupported(`peft_type ${JSON.stringify(json.peft_type)} (only "LORA")`);
  if (typeof json.target_modules === 'string') throw unsupported(`a regular expression as target_modules (${json.target_modules})`);
  if (json.use_dora === true) throw unsupported('DoRA (use_dora)');
  if (json.fan_in_fan_out === true) throw unsupported('fan_in_fan_out');
  if (json.bias !== undefined && json.bias !== 'none') throw unsupported(`bias ${JSON.stringify(json.bias)} (only "none")`);
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const v = json[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0)) throw unsupported(`a per-module ${key}`);
  }
  if (Array.isArray(json.modules_to_save) && json.modules_to_save.length > 0) throw unsupported('modules_to_save');
  const base = json.base_model_name_or_path;
  const revision = json.revision;
  const config = {
    r: json.r as number,
    loraAlpha: json.lora_alpha as number,
    loraDropout: (json.lora_dropout ?? 0) as number,
    targetModules: json.target_modules as string[],
    useRslora: (json.use_rslora ?? false) as boolean,
    baseModelNameOrPath: typeof base === 'string' ? base : '',
    ...(typeof revision === 'string' ? { revision } : {}),
  };
  checkAdapterConfig(config);
  return config;
}

function checkAdapterConfig(c: PeftAdapter['config']): void {
  if (!Number.isInteger(c.r) || c.r < 1) throw new Error(`adapter config: r must be a positive integer, got ${JSON.stringify(c.r)}`);
  if (typeof c.loraAlpha !== 'number' || !Number.isFinite(c.loraAlpha)) throw new Error(`adapter config: lora_alpha must be a number, got ${JSON.stringify(c.loraAlpha)}`);
  if (typeof c.loraDropout !== 'number' || !(c.loraDropout >= 0 && c.loraDropout < 1)) {
    throw new Error(`adapter config: lora_dropout must be in [0, 1), got ${JSON.stringify(c.loraDropout)}`);
  }
  if (!Array.isArray(c.targetModules) || c.targetModules.length === 0 || !c.targetModules.every((t) => typeof t === 'string' && t !== '')) {
    throw new Error(`adapter config: target_modules must be a non-empty list of module names, got ${JSON.stringify(c.targetModules)}`);
  }
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
