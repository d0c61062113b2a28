/** Readers for the committed PyTorch fixtures (tests/fixtures/README.md describes them). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenBatch } from '../../src/model/bert.ts';
import { type ModelFiles, loadModelFiles } from '../../src/model/checkpoint.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type PeftAdapter, readPeftAdapter } from '../../src/model/peft-files.ts';
import { parseSafetensors } from '../../src/model/safetensors.ts';
import type { StateDict } from '../../src/model/state-dict.ts';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

export function fixtureModelDir(model: 'tiny' | 'odd'): string {
  return join(FIXTURES, 'bert', model);
}

export function readSafetensorsFile(path: string): StateDict {
  const buffer = readFileSync(path);
  return parseSafetensors(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), path).tensors;
}

export function loadFixtureModel(model: 'tiny' | 'odd'): Promise<ModelFiles> {
  return loadModelFiles(localDirSource(fixtureModelDir(model)));
}

export function readFixtureAdapter(model: 'tiny' | 'odd', dir = 'adapter_init'): PeftAdapter {
  const root = join(fixtureModelDir(model), dir);
  const bytes = readFileSync(join(root, 'adapter_model.safetensors'));
  return readPeftAdapter({
    'adapter_config.json': readFileSync(join(root, 'adapter_config.json'), 'utf8'),
    'adapter_model.safetensors': new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  });
}

/** The fixture batch as one TokenBatch: 4 anchors then 4 positives, padded to a common length. */
export function fixtureBatch(model: 'tiny' | 'odd'): { tokens: TokenBatch; anchors: number } {
  const t = readSafetensorsFile(join(fixtureModelDir(model), 'batch.safetensors'));
  const parts = ['anchor', 'positive'].map((p) => ({
    ids: t.get(`${p}.input_ids`)!,
    mask: t.get(`${p}.attention_mask`)!,
    types: t.get(`${p}.token_type_ids`)!,
  }));
  const seq = Math.max(...parts.map((p) => p.ids.shape[1]));
  const batch = parts.reduce((n, p) => n + p.ids.shape[0], 0);
  const inputIds = new Uint32Array(batch * seq);
  const tokenTypeIds = new Uint32Array(batch * seq);
  const attentionMask = new Float32Array(batch * seq);
  let row = 0;
  for (const p of parts) {
    const [rows, len] = p.ids.shape;
    for (let r = 0; r < rows; r++, row++) {
      for (let j = 0; j < len; j++) {
        inputIds[row * seq + j] = p.ids.data[r * len + j];
        tokenTypeIds[row * seq + j] = p.types.data[r * len + j];
        attentionMask[row * seq + j] = p.mask.data[r * len + j];
      }
    }
  }
  return { tokens: { inputIds, tokenTypeIds, attentionMask, batch, seq }, anchors: parts[0].ids.shape[0] };
}

export interface FixtureReference {
  tensors: StateDict;
  meta: {
    loss: { value: number; symmetric: number };
    lora: { r: number; lora_alpha: number; use_rslora: boolean; scale: number; target_modules: string[] };
    optimizer: { lr: number; betas: [number, number]; eps: number; weight_decay: number; clip_grad_norm: number; steps: number };
    train: {
      step_losses: number[];
      grad_norm_before_clip: number[];
      clip_coef: number[];
      adam_sensitive_elements: { tensor: string; index: [number, number] }[];
    };
  };
}

export function readFixtureReference(model: 'tiny' | 'odd', name: string): FixtureReference {
  const dir = join(fixtureModelDir(model), 'reference');
  return {
    tensors: readSafetensorsFile(join(dir, `${name}.safetensors`)),
    meta: JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')),
  };
}
