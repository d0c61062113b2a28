/**
 * The app's CTD statements run (src/app/statement-run.ts through DecoderHost.trainStatements) on the
 * bundled demo decoder: progress events in order (base scoring, steps, adapted scoring), Stop after
 * a step, statements too long for the positions left out and counted, the embedding metrics and
 * t-SNE maps of the held-out statements, the trained adapter then
 * answering on the adapted side and exported as PEFT CAUSAL_LM, and bad settings refused by name.
 */
import { describe, expect, it } from 'vitest';
import { DecoderHost } from '../../src/app/decoder-host.ts';
import type { SessionEvent } from '../../src/app/protocol.ts';
import type { CtdStatement } from '../../src/data/statements.ts';
import { readDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { gpuEngine } from '../helpers/gpu.ts';

const statement = (gene: string, disease: string, label: boolean): CtdStatement => ({ statement: `${gene} is associated with ${disease}`, label, gene, disease });
const DATA = {
  train: [statement('CFTR', 'Cystic Fibrosis', true), statement('HBB', 'Gout', false), statement('FBN1', 'Marfan Syndrome', true), statement('KRAS', 'x'.repeat(120), false)],
  test: [statement('MYH7', 'Cardiomyopathy, Hypertrophic', true), statement('APOE', 'Asthma', false), statement('KCNQ1', 'Long QT Syndrome', true), statement('LDLR', 'Migraine', false)],
};
const SETTINGS = { steps: 5, batchSize: 2, learningRate: 1e-2, seed: 3 };

describe('DecoderHost.trainStatements', () => {
  it('streams its progress, stops after a step on Stop, leaves out what is too long, and answers with the adapter it trained', async () => {
    const host = await DecoderHost.open(await gpuEngine(), localDirSource('public/models/demo-decoder'), 'demo-decoder', 'nf4');
    expect(() => host.trainedAdapterFiles()).toThrow('No adapter has been trained on this decoder yet');
    const events: SessionEvent[] = [];
    let answersWhileTraining: Promise<string> | null = null;
    const summary = await host.trainStatements(DATA, 'random', SETTINGS, (e) => {
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

    const files = host.trainedAdapterFiles();
    expect(JSON.parse(files['adapter_config.json'])).toMatchObject({ task_type: 'CAUSAL_LM', r: 16, lora_alpha: 32, base_model_name_or_path: 'demo-decoder' });
    expect(readDecoderPeftAdapter(files, host.files.config).tensors.size).toBeGreaterThan(0);
    const answers = await host.answers({ prompt: 'CFTR is', chat: false, maxNewTokens: 2, temperature: 0, topP: 1, seed: 0 }, () => {});
    expect(answers.adapted).toBeDefined();
    await expect(host.trainStatements(DATA, 'random', { ...SETTINGS, batchSize: 0 }, () => {})).rejects.toThrow('Statements per step must be a positive whole number, got 0.');
    host.destroy();
  });
});
