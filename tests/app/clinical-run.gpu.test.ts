/**
 * The app's clinical two-adapter flow (src/app/clinical-run.ts through DecoderHost) on the bundled
 * demo decoder: a domain adapter on notes with the held-out notes' perplexity before/after (the
 * library's figures from the exported adapter), Stop after a step, then a task adapter over the
 * frozen domain adapter compared without and with it, both exported as PEFT CAUSAL_LM; the task
 * adapter refused before a domain adapter and bad settings refused by name.
 */
import { describe, expect, it } from 'vitest';
import { DecoderHost } from '../../src/app/decoder-host.ts';
import type { SessionEvent } from '../../src/app/protocol.ts';
import { splitDocuments } from '../../src/data/notes.ts';
import { perplexityComparison, textLosses } from '../../src/eval/perplexity.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { readDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { loraConfigOf } from '../../src/model/peft-files.ts';
import { gpuEngine } from '../helpers/gpu.ts';

const DOCUMENTS = ['Heart failure clinic, furosemide.', 'Atrial fibrillation on bisoprolol.', 'Chest pain on exertion.', 'Oedema better on furosemide.', 'ECG shows atrial fibrillation.'].map((text, i) => ({ name: `n${i}.txt`, text }));
const SETTINGS = { heldOutShare: 0.4, seed: 2, steps: 3, learningRate: 1e-2 };
const TASK = ['Furosemide treats heart failure', 'Bisoprolol controls atrial fibrillation', 'Apixaban prevents stroke'].flatMap((s) => [
  { statement: s, label: true },
  { statement: `${s.split(' ')[0]} cures hay fever`, label: false },
]);

describe('DecoderHost clinical adapters', () => {
  it('trains a domain adapter on notes, then a task adapter over it, reporting perplexity and the comparison', async () => {
    const engine = await gpuEngine();
    const host = await DecoderHost.open(engine, localDirSource('public/models/demo-decoder'), 'demo-decoder', 'nf4');
    await expect(host.trainTask(TASK, SETTINGS, () => {})).rejects.toThrow('Train the domain adapter on your notes first');
    await expect(host.trainDomain(DOCUMENTS, { ...SETTINGS, heldOutShare: 1 }, () => {})).rejects.toThrow('The held-out share must be above 0 and below 1, got 1.');
    expect(() => host.clinicalAdapterFiles('domain')).toThrow('No domain adapter has been trained on this decoder yet.');

    const events: SessionEvent[] = [];
    const domain = await host.trainDomain(DOCUMENTS, SETTINGS, (e) => events.push(e));
    const { heldOut } = splitDocuments(DOCUMENTS, SETTINGS.heldOutShare, SETTINGS.seed);
    expect(domain.documents.heldOut).toEqual(heldOut.map((d) => d.name));
    expect(domain).toMatchObject({ sequences: 3, maxLength: 128, totalSteps: 3, stopped: false, error: null });
    expect(domain.losses).toHaveLength(3);
    expect(domain.adapter).toMatch(/^the domain adapter trained on 3 notes: LoRA r16 α32 on /);
    const order = events.map((e) => (e.type === 'clinical-step' ? `${e.adapter} ${e.step}` : e.type === 'clinical-progress' ? `${e.stage} ${e.done}/${e.total}` : e.type));
    expect(order).toEqual(['base perplexity 2/2', 'domain 1', 'domain 2', 'domain 3', 'adapted perplexity 2/2']);

    // The perplexity is the library's, from the exported adapter.
    const files = host.clinicalAdapterFiles('domain');
    expect(JSON.parse(files['adapter_config.json'])).toMatchObject({ task_type: 'CAUSAL_LM', r: 16, lora_alpha: 32 });
    const texts = heldOut.map((d) => d.text);
    const options = { maxLength: domain.maxLength };
    host.model.adapters = [];
    const before = await textLosses(host.model, host.files.tokenizer, texts, options);
    const peft = readDecoderPeftAdapter(files, host.files.config);
    host.model.adapters = [createDecoderAdapter(engine, host.files.config, { ...loraConfigOf(peft), dropout: 0 }, peft.tensors, false)];
    const after = await textLosses(host.model, host.files.tokenizer, texts, options);
    host.model.adapters[0].release();
    host.model.adapters = [];
    expect(domain.result.metrics).toEqual([perplexityComparison(before, after, { seed: SETTINGS.seed })]);

    events.length = 0;
    const task = await host.trainTask(TASK, { ...SETTINGS, steps: 4 }, (e) => {
      events.push(e);
      if (e.type === 'clinical-step' && e.step === 2) host.stop();
    });
    expect(task).toMatchObject({ statements: { train: 4, test: 2, leftOut: 0 }, totalSteps: 4, stopped: true, error: null });
    expect(task.losses).toHaveLength(2);
    expect(task.result.metrics.map((m) => [m.key, m.n])).toEqual([['zero_shot_accuracy', 2], ['zero_shot_auroc', 2]]);
    expect(events.filter((e) => e.type === 'clinical-progress').map((e) => (e.type === 'clinical-progress' ? e.stage : ''))).toEqual(['scoring without the domain adapter', 'scoring with the domain adapter']);
    expect(JSON.parse(host.clinicalAdapterFiles('task')['adapter_config.json'])).toMatchObject({ task_type: 'CAUSAL_LM', r: 16 });
    expect(host.model.adapters).toEqual([]);

    // A new domain adapter drops the task adapter trained over the old one.
    await host.trainDomain(DOCUMENTS, { ...SETTINGS, steps: 1 }, () => {});
    expect(() => host.clinicalAdapterFiles('task')).toThrow('No task adapter has been trained on this decoder yet.');
    host.destroy();
  }, 300_000);
});
