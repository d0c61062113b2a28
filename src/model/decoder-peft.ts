/**
 * PEFT adapter folders for decoders, both ways: adapter_config.json (task_type CAUSAL_LM,
 * target_modules in the checkpoint's module names) and adapter_model.safetensors with keys as
 * PeftModel.save_pretrained writes them over a *ForCausalLM
 * (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`). Read adapters come back in
 * canonical modules (Phi-3's fused ones split, decoder-lora-layout.ts); the config parsing and
 * writing is the encoder's (peft-files.ts).
 */
import { checkDecoderAdapter } from './decoder-adapter-check.ts';
import type { DecoderConfig } from './decoder-config.ts';
import { canonicalAdapterTensors, canonicalDecoderTargets, fileAdapterTensors, fileDecoderTargets } from './decoder-lora-layout.ts';
import { decoderFileModules } from './decoder-lora.ts';
import { type PeftAdapter, type PeftAdapterFiles, checkAdapterConfig, peftConfigJson, readAdapterConfig } from './peft-files.ts';
import { parseSafetensors, writeSafetensors } from './safetensors.ts';
import type { HostTensor } from './state-dict.ts';

/**
 * Key forms read: PeftModel.save_pretrained over the *ForCausalLM (`base_model.model.` + module) and
 * transformers' own PEFT integration (model.add_adapter; the module name alone); `.default` before
 * `.weight` as in state dicts taken straight from the model.
 */
const KEY = /^(base_model\.model\.)?(model\.layers\.\d+\.(?:self_attn|mlp)\.[a-z_]+)\.lora_([AB])(?:\.default)?\.weight$/;

/** PEFT's file key of a `${module}.lora_A|B` tensor named by the checkpoint's modules. */
export const decoderPeftKey = (name: string) => `base_model.model.${name}.weight`;

/** Read an adapter folder's two files for `config`'s decoder, checked against it (names, rank, shapes, finite values). */
export function readDecoderPeftAdapter(files: { 'adapter_config.json': string | Uint8Array; 'adapter_model.safetensors': Uint8Array }, config: DecoderConfig): PeftAdapter {
  const peft = readAdapterConfig(files['adapter_config.json']);
  const { tensors: stored } = parseSafetensors(files['adapter_model.safetensors'], 'adapter_model.safetensors');
  const modules = decoderFileModules(config);
  const linears = new Set(modules.map((m) => m.name.slice(m.name.indexOf('.', 'model.layers.'.length) + 1)));
  const tensors = new Map<string, HostTensor>();
  const unknown: string[] = [];
  const forms = new Set<string>();
  for (const [key, tensor] of stored) {
    const m = KEY.exec(key);
    if (!m || !linears.has(m[2].slice(m[2].indexOf('.', 'model.layers.'.length) + 1))) {
      unknown.push(key);
      continue;
    }
    forms.add(m[1] ?? '');
    const name = `${m[2]}.lora_${m[3]}`;
    if (tensors.has(name)) throw new Error(`adapter_model.safetensors holds ${name} twice (with and without base_model.model. or .default)`);
    tensors.set(name, tensor);
  }
  if (unknown.length > 0) {
    const example = modules[0].name;
    throw new Error(
      `adapter_model.safetensors has tensors that are not LoRA weights of this ${config.family} decoder's linear layers (${[...linears].join(', ')}; ` +
        `expected names like base_model.model.${example}.lora_A.weight): ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', …' : ''}`,
    );
  }
  if (forms.size > 1) throw new Error('adapter_model.safetensors mixes names with and without base_model.model.: it is not one saved adapter');
  checkDecoderAdapter(config, modules, { config: peft, tensors }, 'adapter_model.safetensors');
  return { config: { ...peft, targetModules: canonicalDecoderTargets(config, peft.targetModules) }, tensors: canonicalAdapterTensors(config, tensors) };
}

/** The adapter (canonical modules) as PEFT's two files for `config`'s checkpoint. */
export function writeDecoderPeftAdapter(adapter: PeftAdapter, config: DecoderConfig): PeftAdapterFiles {
  const c = adapter.config;
  checkAdapterConfig(c);
  const targets = fileDecoderTargets(config, c.targetModules);
  const tensors = fileAdapterTensors(config, adapter.tensors, 'shared');
  const modules = decoderFileModules(config);
  checkDecoderAdapter(config, modules, { config: { r: c.r, targetModules: targets }, tensors }, 'LoRA adapter');
  // In the checkpoint's module order, as PEFT saves.
  const onDisk = new Map<string, HostTensor>();
  for (const m of modules) {
    for (const half of ['lora_A', 'lora_B']) {
      const t = tensors.get(`${m.name}.${half}`);
      if (t) onDisk.set(decoderPeftKey(`${m.name}.${half}`), t);
    }
  }
  return {
    'adapter_config.json': `${JSON.stringify(peftConfigJson(c, 'CAUSAL_LM', targets), null, 2)}\n`,
    'adapter_model.safetensors': writeSafetensors(onDisk, { format: 'pt' }),
  };
}

/** LoRA gradients (canonical `${module}.lora_A|B`) under PEFT's keys; a fused module's A gets the sum of its parts'. */
export function decoderPeftGradients(config: DecoderConfig, grads: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of fileAdapterTensors(config, grads, 'sum')) out.set(decoderPeftKey(name), t);
  return out;
}
