/** Readers for the committed PyTorch fixtures (tests/fixtures/README.md describes them). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenBatch } from '../../src/model/bert.ts';
import { type ModelFiles, loadModelFiles } from '../../src/model/checkpoint.ts';
import type { BertConfig } from '../../src/model/config.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type PeftAdapter, readPeftAdapter } from '../../src/model/peft-files.ts';
import { parseSafetensors } from '../../src/model/safetensors.ts';
import type { StateDict } from '../../src/model/state-dict.ts';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** The BERT fixtures (bert/) and one model of each other family (families/, tests/fixtures/README.md). */
export type FamilyFixture = 'roberta' | 'xlm-roberta' | 'distilbert';
export type FixtureModel = 'tiny' | 'odd' | FamilyFixture;
export const FAMILY_FIXTURES: FamilyFixture[] = ['roberta', 'xlm-roberta', 'distilbert'];

export function fixtureModelDir(model: FixtureModel): string {
  return model === 'tiny' || model === 'odd' ? join(FIXTURES, 'bert', model) : join(FIXTURES, 'families', model);
}

export function readSafetensorsFile(path: string): StateDict {
  const buffer = readFileSync(path);
  return parseSafetensors(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), path).tensors;
}

export function loadFixtureModel(model: FixtureModel): Promise<ModelFiles> {
  return loadModelFiles(localDirSource(fixtureModelDir(model)));
}

/** The fixture's adapter, read as written for `config`'s family (BERT's names without one). */
export function readFixtureAdapter(model: FixtureModel, dir = 'adapter_init', config?: BertConfig): PeftAdapter {
  const root = join(fixtureModelDir(model), dir);
  const bytes = readFileSync(join(root, 'adapter_model.safetensors'));
  const files = {
    'adapter_config.json': readFileSync(join(root, 'adapter_config.json'), 'utf8'),
    'adapter_model.safetensors': new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  };
  return readPeftAdapter(files, config);
}

/** The fixture batch as one TokenBatch: 4 anchors then 4 positives, padded to a common length. */
export function fixtureBatch(model: FixtureModel): { tokens: TokenBatch; anchors: number } {
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

export function readFixtureReference(model: FixtureModel, name: string): FixtureReference {
  const dir = join(fixtureModelDir(model), 'reference');
  return {
    tensors: readSafetensorsFile(join(dir, `${name}.safetensors`)),
    meta: JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')),
  };
}
