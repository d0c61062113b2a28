/** The one table of training defaults: what the app's new run and `qlora-lab train` take from it. */
import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TRAIN_OPTIONS, TRAIN_USAGE, trainPlan } from '../../src/cli/train-options.ts';
import { parseBertConfig } from '../../src/model/config.ts';
import { planTraining } from '../../src/model/memory.ts';
import { APP_LORA_DEFAULTS, APP_MEMORY_BUDGET_GIB, APP_TRAIN_DEFAULTS, CLI_TRAIN_DEFAULTS, DEFAULT_TRAIN_CONFIG } from '../../src/train/defaults.ts';
import { STUDY_PRESETS, defaultRunConfig, runStepShape, validateRunConfig } from '../../src/train/run-config.ts';

const pairs = Array.from({ length: 64 }, (_, i) => ({ anchor: `a${i}`, positive: `p${i}` }));

describe('training defaults', () => {
  it("make a valid app run with the table's optimizer settings", () => {
    const config = validateRunConfig(defaultRunConfig({ source: { kind: 'demo', id: 'x' }, build: { kind: 'pairs', testFraction: 0.2 }, fingerprint: 'f', evaluation: { kind: 'test-split' } }));
    expect(config.train).toEqual(APP_TRAIN_DEFAULTS);
    expect(config.lora.r).toBe(APP_LORA_DEFAULTS.r);
    for (const key of ['learningRate', 'weightDecay', 'beta1', 'beta2', 'eps', 'maxGradNorm'] as const) expect(config.train[key]).toBe(DEFAULT_TRAIN_CONFIG[key]);
  });

  it('are what `qlora-lab train` uses when no option is given, and what its usage says', () => {
    const { values } = parseArgs({ args: [], options: TRAIN_OPTIONS, strict: true });
    const plan = trainPlan(values, { layout: 'triplets', examples: pairs });
    const D = CLI_TRAIN_DEFAULTS;
    expect(plan.lora).toEqual({ r: D.r, alpha: D.alpha, dropout: D.loraDropout, rslora: false, targetModules: D.targets.split(',') });
    expect(plan.batchSize).toBe(D.batchSize);
    expect(plan.checkpointEvery).toBe(D.checkpointEvery);
    expect(plan.config).toMatchObject({ learningRate: D.learningRate, weightDecay: D.weightDecay, hiddenDropout: D.hiddenDropout, seed: D.seed, maxGradNorm: D.maxGradNorm });
    expect(plan.config.beta2).toBe(DEFAULT_TRAIN_CONFIG.beta2);
    expect(plan.config.warmupSteps).toBe(Math.round(D.warmupRatio * plan.config.totalSteps));
    expect(TRAIN_USAGE).toContain(`LoRA rank (default ${D.r})`);
    expect(TRAIN_USAGE).toContain(`examples per micro-batch (default ${D.batchSize})`);
  });

  it('leave the storage precision to the memory plan unless --storage is given, and refuse other precisions by name', () => {
    const planOf = (args: string[]) => trainPlan(parseArgs({ args, options: TRAIN_OPTIONS, strict: true }).values, { layout: 'triplets', examples: pairs });
    expect(planOf([]).memory.fixed.storage).toBeUndefined();
    expect(planOf(['--storage', 'f16']).memory.fixed.storage).toBe('f16');
    expect(planOf(['--storage', 'f32']).memory.fixed.storage).toBe('f32');
    expect(() => planOf(['--storage', 'bf16'])).toThrow(/--storage must be f16 or f32, got bf16/);
  });
});

describe('the cardiology study preset', () => {
  it("trains BioLinkBERT-large's study configuration (32 pairs × 128) within the app's default memory budget", () => {
    const demo = defaultRunConfig({ source: { kind: 'demo', id: 'x' }, build: { kind: 'pairs', testFraction: 0.2 }, fingerprint: 'f', evaluation: { kind: 'test-split' } });
    const config = validateRunConfig(STUDY_PRESETS.find((p) => p.name.startsWith('cardiology'))!.apply(demo));
    expect(config.train.batchSize).toBe(32);
    expect(config.maxLength).toBe(128);
    const large = parseBertConfig({ model_type: 'bert', vocab_size: 28895, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 4096, max_position_embeddings: 512 });
    const shape = runStepShape(config, large.maxSequenceLength);
    expect(shape).toEqual({ sequences: 96, seq: 128 }); // anchors, positives and one possible negative each
    const budgetBytes = APP_MEMORY_BUDGET_GIB * 2 ** 30;
    const plan = planTraining({ config: large, lora: config.lora, shape, base: { quantization: config.quantization }, budgetBytes, maxBufferBytes: 128 * 2 ** 20 });
    expect(plan.fits).toBe(true);
    expect(plan.estimate.total).toBeLessThanOrEqual(budgetBytes);
  });
});
