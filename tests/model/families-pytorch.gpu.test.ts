/**
 * RoBERTa, XLM-RoBERTa and DistilBERT on the GPU against PyTorch (tests/fixtures/families, float64
 * references from RobertaModel / DistilBertModel re-stated in plain torch): each family's checkpoint
 * and adapter go through the canonical layout, and the embeddings, InfoNCE loss and every LoRA
 * gradient match as BERT's do (embeddings 1e-4 absolute; gradients 1e-3 relative to each tensor's
 * largest |gradient|).
 */
import { describe, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { BertEncoder } from '../../src/model/bert.ts';
import { GpuAdapter } from '../../src/model/lora.ts';
import { peftTensorKey } from '../../src/model/peft-files.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import { FAMILY_FIXTURES, type FamilyFixture, loadFixtureModel, readFixtureAdapter } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectReferenceEmbeddings, expectReferenceGradients } from '../helpers/reference-checks.ts';

async function setup(engine: Engine, model: FamilyFixture) {
  const files = await loadFixtureModel(model);
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: 'f32' });
  const peft = readFixtureAdapter(model, 'adapter_init', files.config);
  const loraConfig = { r: peft.config.r, alpha: peft.config.loraAlpha, dropout: 0, rslora: peft.config.useRslora, targetModules: peft.config.targetModules };
  const adapter = new GpuAdapter(engine, files.config, loraConfig, peft.tensors, true);
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: true, maxLength: 512 });
  return { bert, adapter, encoder };
}

describe.each(FAMILY_FIXTURES)('%s vs PyTorch', (model) => {
  it('embeddings without and with the adapter match within 1e-4', async () => {
    const engine = await gpuEngine();
    const loaded = await setup(engine, model);
    await expectReferenceEmbeddings(loaded, model, 'f32');
    loaded.bert.destroy();
  });

  it('InfoNCE loss and every LoRA gradient, under the family\'s PEFT names, match (loss 1e-5, gradients 1e-3 relative)', async () => {
    const engine = await gpuEngine();
    const loaded = await setup(engine, model);
    await expectReferenceGradients(loaded, model, 'f32', (name) => peftTensorKey(loaded.bert.config, name));
    loaded.bert.destroy();
  });
});
