/** The one table of training defaults: what the app's new run and `qlora-lab train` take from it. */
import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TRAIN_OPTIONS, TRAIN_USAGE, trainPlan } from '../../src/cli/train-options.ts';
import { APP_LORA_DEFAULTS, APP_TRAIN_DEFAULTS, CLI_TRAIN_DEFAULTS, DEFAULT_TRAIN_CONFIG } from '../../src/train/defaults.ts';
import { defaultRunConfig, validateRunConfig } from '../../src/train/run-config.ts';

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
