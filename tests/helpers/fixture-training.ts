/** A fixture model under its initial PEFT adapter, trainable, as the step-comparison tests train it. */
import type { Engine } from '../../src/engine/engine.ts';
import { BertEncoder, type BaseQuantization } from '../../src/model/bert.ts';
import { GpuAdapter } from '../../src/model/lora.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import { type FixtureModel, loadFixtureModel, readFixtureAdapter } from './fixtures.ts';

/** The model with its fixture adapter (LoRA dropout `loraDropout`), mean pooling, normalised. */
export async function fixtureTrainingSetup(engine: Engine, model: FixtureModel, base: BaseQuantization, loraDropout = 0) {
  const files = await loadFixtureModel(model);
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: base });
  const peft = readFixtureAdapter(model);
  const loraConfig = { r: peft.config.r, alpha: peft.config.loraAlpha, dropout: loraDropout, rslora: peft.config.useRslora, targetModules: peft.config.targetModules };
  const adapter = new GpuAdapter(engine, files.config, loraConfig, peft.tensors, true);
  bert.adapters = [adapter];
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: true, maxLength: 512 });
  return { bert, adapter, encoder };
}
