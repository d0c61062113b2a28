/**
 * The app's CTD statements run (src/app/statement-run.ts through DecoderHost.trainStatements) on the
 * bundled demo decoder: progress events in order (base scoring, steps, adapted scoring), Stop after
 * a step, statements too long for the positions left out and counted, the embedding metrics and
 * t-SNE maps of the held-out statements, the trained adapter then
 * answering on the adapted side and exported as PEFT CAUSAL_LM, and bad settings refused by name.
 * The step planned into a small budget (micro-batches, checkpointing) trains as the whole step does,
 * and a budget nothing fits is refused with the plan and the least it needs.
 */
import { describe, expect, it } from 'vitest';
import { DecoderHost } from '../../src/app/decoder-host.ts';
import type { SessionEvent } from '../../src/app/protocol.ts';
import type { CtdStatement } from '../../src/data/statements.ts';
import { WHOLE_STEP, studyLora } from '../../src/app/adapter-training.ts';
import { encodeStudyStatements, planStatementStep, trainOnStatements } from '../../src/app/statement-run.ts';
import { initDecoderLora } from '../../src/model/decoder-lora-layout.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { readDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import { allLinearTargets } from '../../src/model/decoder-weights.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { gpuEngine } from '../helpers/gpu.ts';

const statement = (gene: string, disease: string, label: boolean): CtdStatement => ({ statement: `${gene} is associated with ${disease}`, label, gene, disease });
const DATA = {
  train: [statement('CFTR', 'Cystic Fibrosis', true), statement('HBB', 'Gout', false), statement('FBN1', 'Marfan Syndrome', true), statement('KRAS', 'x'.repeat(120), false)],
  test: [statement('MYH7', 'Cardiomyopathy, Hypertrophic', true), statement('APOE', 'Asthma', false), statement('KCNQ1', 'Long QT Syndrome', true), statement('LDLR', 'Migraine', false)],
};
const SETTINGS = { steps: 5, batchSize: 2, learningRate: 1e-2, seed: 3 };
const BUDGET = 2 ** 30;

describe('DecoderHost.trainStatements', () => {
  it('streams its progress, stops after a step on Stop, leaves out what is too long, and answers with the adapter it trained', async () => {
    const host = await DecoderHost.open(await gpuEngine(), localDirSource('public/models/demo-decoder'), 'demo-decoder', 'nf4');
    expect(() => host.trainedAdapterFiles()).toThrow('No adapter has been trained on this decoder yet');
    const events: SessionEvent[] = [];
    let answersWhileTraining: Promise<string> | null = null;
    const summary = await host.trainStatements(DATA, 'random', SETTINGS, BUDGET, (e) => {
      events.push(e);
      if (e.type === 'statement-step' && e.step === 2) {
        answersWhileTraining = host.answers({ prompt: 'x', chat: false, maxNewTokens: 1, temperature: 0, topP: 1, seed: 0 }, () => {}).then(
          () => 'answered',
          (e: Error) => e.message,
        );
        host.stop();
      }
    });
    expect(await answersWhileTraining).toBe('Cannot start other answers while the decoder trains; stop it first.');
    expect(summary).toMatchObject({ split: 'random', statements: { train: 3, test: 4, leftOut: 1 }, totalSteps: 5, stopped: true, error: null });
    expect(summary.losses).toHaveLength(2);
    expect(summary.adapter).toMatch(/^the adapter trained on CTD statements: LoRA r16 α32 on /);
    const keys = summary.result.metrics.map((m) => m.key);
    expect(keys.slice(0, 2)).toEqual(['zero_shot_accuracy', 'zero_shot_auroc']);
    expect(keys).toEqual(expect.arrayContaining(['kg_separation', 'probe_accuracy', 'silhouette']));
    expect(summary.result.pairCosines.map((p) => [p.model, p.set, p.group])).toEqual(
      ['base', 'adapted'].flatMap((model) => ['associated', 'not associated', 'associated', 'not associated'].map((group) => [model, 'gene–disease', group])),
    );
    expect(summary.diseases).toEqual(DATA.test.map((s) => s.disease));
    expect(summary.maps.map((m) => [m.model, m.positions.length, m.labels])).toEqual(
      ['base', 'adapted'].map((model) => [model, 8, ['true statement', 'false statement', 'true statement', 'false statement']]),
    );
    const order = events.map((e) => (e.type === 'statement-step' ? `step ${e.step}` : e.type === 'statement-scoring' ? `${e.model} ${e.done}/${e.total}` : e.type));
    expect(order.filter((e) => e !== 'statement-embedding')).toEqual(['base 4/4', 'step 1', 'step 2', 'adapted 4/4']);
    expect(order.at(-1)).toBe('statement-embedding');

    // The first step's measured peak is about the plan's estimate (which pads every row to the longest statement).
    const [peak] = events.flatMap((e) => (e.type === 'statement-step' ? [e.peakBytes] : []));
    expect(Math.abs(peak / host.planStatements(DATA, SETTINGS, BUDGET).estimate.total - 1)).toBeLessThan(0.05);

    const files = host.trainedAdapterFiles();
    expect(JSON.parse(files['adapter_config.json'])).toMatchObject({ task_type: 'CAUSAL_LM', r: 16, lora_alpha: 32, base_model_name_or_path: 'demo-decoder' });
    expect(readDecoderPeftAdapter(files, host.files.config).tensors.size).toBeGreaterThan(0);
    const answers = await host.answers({ prompt: 'CFTR is', chat: false, maxNewTokens: 2, temperature: 0, topP: 1, seed: 0 }, () => {});
    expect(answers.adapted).toBeDefined();
    await expect(host.trainStatements(DATA, 'random', { ...SETTINGS, batchSize: 0 }, BUDGET, () => {})).rejects.toThrow('Statements per step must be a positive whole number, got 0.');
    host.destroy();
  });
});

describe('the statements step planned into a memory budget', () => {
  it('trains in micro-batches with checkpointing exactly as the whole step, and refuses a budget nothing fits', async () => {
    const engine = await gpuEngine();
    const host = await DecoderHost.open(engine, localDirSource('public/models/demo-decoder'), 'demo-decoder', 'nf4');
    const { files, model } = host;
    const train = encodeStudyStatements(files, DATA.train, 'training', 'demo-decoder');
    const limits = { quantization: 'nf4' as const, maxBufferBytes: engine.maxBindingBytes };
    const whole = planStatementStep(files, train, 3, { ...limits, budgetBytes: 2 ** 30 });
    expect([whole.microBatches, whole.checkpointEvery]).toEqual([1, 0]);
    // Under the whole step's estimate, the plan splits the step and checkpoints.
    const split = planStatementStep(files, train, 3, { ...limits, budgetBytes: whole.estimate.total - 1 });
    expect(split.fits).toBe(true);
    expect(split.microBatches > 1 || split.checkpointEvery > 0).toBe(true);

    // LoRA dropout off: its masks are drawn per micro-batch, the rest of the step is the same sum.
    const losses = async (layout: { microBatch: number; checkpointEvery: number }) => {
      const adapter = createDecoderAdapter(engine, files.config, { ...studyLora(files.config), dropout: 0 }, initDecoderLora(files.config, 16, allLinearTargets(files.config), 3).tensors, true);
      model.adapters = [adapter];
      const trained = await trainOnStatements(model, train, files.tokenizer.padId, { steps: 2, batchSize: 3, learningRate: 1e-2, seed: 3 }, layout, { onStep: () => {}, stopRequested: () => false });
      adapter.release();
      model.adapters = [];
      return trained.losses;
    };
    const reference = await losses(WHOLE_STEP);
    const planned = await losses({ microBatch: 1, checkpointEvery: 1 });
    expect(reference).toHaveLength(2);
    planned.forEach((loss, i) => expect(Math.abs(loss - reference[i])).toBeLessThanOrEqual(1e-5 * Math.abs(reference[i])));

    const tiny = host.planStatements(DATA, { batchSize: 3 }, 1024);
    expect(tiny.fits).toBe(false);
    expect(tiny.description).toMatch(/^memory plan: .* over the 1\.0 KiB budget even so/);
    expect(tiny.description).toMatch(/micro-batches of 1 sequences .* every layer checkpointed, f16 embeddings and head/);
    expect(tiny.advice).toMatch(/^The least it can take is [\d.]+ KiB, laid out as above: raise the memory budget/);
    await expect(host.trainStatements(DATA, 'random', { ...SETTINGS, batchSize: 3 }, 1024, () => {})).rejects.toThrow(`This run does not fit the memory budget: ${tiny.description}. ${tiny.advice}`);
    host.destroy();
  });
});
