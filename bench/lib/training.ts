/**
 * The QLoRA training set-up the benchmarks time: NF4 base, LoRA r 16, α 32, dropout 0.1 on query and
 * value, the project's Trainer with its default schedule; a step is InfoNCE over `pairs` (anchor,
 * positive) pairs of benchmark token sequences.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { BertEncoder } from '../../src/model/bert.ts';
import type { ModelFiles } from '../../src/model/checkpoint.ts';
import { GpuAdapter, type TrainingLoraConfig, initLoraTensors } from '../../src/model/lora.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import { hasPooler } from '../../src/model/state-dict.ts';
import { DEFAULT_TRAIN_CONFIG } from '../../src/train/defaults.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { benchTokenBatch } from './shapes.ts';

export const BENCH_LORA: TrainingLoraConfig = { r: 16, alpha: 32, dropout: 0.1, rslora: false, targetModules: ['query', 'value'] };

export interface BenchTrainer {
  trainer: Trainer;
  /** One step's batch: 2·pairs sequences of `seq` tokens, the first `pairs` the anchors. */
  batch(pairs: number, seq: number): Parameters<Trainer['trainStep']>[0][number];
  release(): void;
}

export async function benchTrainer(engine: Engine, files: Pick<ModelFiles, 'config' | 'weights' | 'tokenizer'>): Promise<BenchTrainer> {
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: 'nf4' });
  const lora = initLoraTensors(files.config, BENCH_LORA, 7, { pooler: hasPooler(files.weights) });
  bert.adapters = [new GpuAdapter(engine, files.config, BENCH_LORA, lora, true)];
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: true, maxLength: files.config.maxSequenceLength });
  const trainer = new Trainer(encoder, { ...DEFAULT_TRAIN_CONFIG, totalSteps: 1000 });
  return {
    trainer,
    batch: (pairs, seq) => ({ tokens: benchTokenBatch(2 * pairs, seq, files.config.vocabSize, 2000 + seq), anchors: pairs, labels: null }),
    release() {
      trainer.release();
      bert.destroy();
      engine.trimPool();
    },
  };
}
