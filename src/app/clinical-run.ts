/**
 * The clinical two-adapter recipe on the app's decoder, in the engine worker (the command line's
 * `train --notes` then `train --objective statements --stack`): a domain adapter trained with
 * next-token loss on the training side of the user's notes (split by whole documents), with the
 * held-out notes' perplexity before and after; then a task adapter trained on labelled statements
 * over the frozen domain adapter, whose zero-shot accuracy and AUROC on held-out statements are
 * compared without and with the domain adapter under it. Both adapters are the CTD study's preset
 * (adapter-training.ts); the intervals are paired bootstraps seeded by the settings' seed. No DOM.
 */
import { type NoteDocument, chunkText, splitDocuments } from '../data/notes.ts';
import { type LabelledStatement, labelledStatementsFingerprint, splitLabelledStatements } from '../data/labelled-statements.ts';
import { beforeAfterResult } from '../eval/before-after.ts';
import { perplexityComparison, textLosses } from '../eval/perplexity.ts';
import { statementComparisons } from '../eval/statement-accuracy.ts';
import type { DecoderModelFiles } from '../model/decoder-checkpoint.ts';
import { createDecoderAdapter } from '../model/decoder-lora.ts';
import type { DecoderModel } from '../model/decoder.ts';
import type { GpuLoraModules } from '../model/lora.ts';
import { type PeftAdapter, loraConfigOf, peftConfigOf } from '../model/peft-files.ts';
import type { EncodedStatement } from '../model/statement-prompt.ts';
import { scoreStatements } from '../model/statement-score.ts';
import { CTD_STUDY_TRAINING as STUDY } from '../train/defaults.ts';
import { type TrainingHooks, WHOLE_STEP, newStudyAdapter, trainAdapterSteps } from './adapter-training.ts';
import type { ClinicalSettings, ClinicalStage, DomainRunSummary, TaskRunSummary } from './protocol.ts';
import { encodeStudyStatements, trainOnStatements } from './statement-run.ts';

/** Most tokens of a training sequence or a perplexity piece (fewer when the model has fewer positions). */
export const NOTE_MAX_TOKENS = 256;

export interface ClinicalHooks extends TrainingHooks {
  onProgress(stage: ClinicalStage, done: number, total: number): void;
}

export type DomainRunOutcome = Omit<DomainRunSummary, 'adapter'> & { adapter: PeftAdapter };
export type TaskRunOutcome = Omit<TaskRunSummary, 'adapter'> & { adapter: PeftAdapter };

/** Check the settings before any GPU work, each with the value it got. */
export function checkClinicalSettings(s: ClinicalSettings): void {
  if (!(s.heldOutShare > 0 && s.heldOutShare < 1)) throw new Error(`The held-out share must be above 0 and below 1, got ${s.heldOutShare}.`);
  if (!Number.isInteger(s.steps) || s.steps < 1) throw new Error(`Training steps must be a positive whole number, got ${s.steps}.`);
  if (!(s.learningRate > 0 && Number.isFinite(s.learningRate))) throw new Error(`The learning rate must be a positive number, got ${s.learningRate}.`);
  if (!Number.isInteger(s.seed)) throw new Error(`The seed must be a whole number, got ${s.seed}.`);
}

/** Tokens per sequence of the notes for `files`' decoder. */
export function noteMaxLength(files: DecoderModelFiles): number {
  return Math.min(NOTE_MAX_TOKENS, files.config.maxSequenceLength);
}

const training = (s: ClinicalSettings) => ({ steps: s.steps, batchSize: STUDY.batchSize, learningRate: s.learningRate, seed: s.seed });

/** Release the adapters, clear the model's stack, and pass on what `work` threw. */
async function withAdapters<T>(model: DecoderModel, adapters: GpuLoraModules[], work: () => Promise<T>): Promise<T> {
  model.adapters = adapters;
  try {
    return await work();
  } finally {
    for (const a of adapters) a.release();
    model.adapters = [];
  }
}

export async function runDomainAdapter(model: DecoderModel, files: DecoderModelFiles, modelId: string, documents: readonly NoteDocument[], settings: ClinicalSettings, hooks: ClinicalHooks): Promise<DomainRunOutcome> {
  checkClinicalSettings(settings);
  const { tokenizer } = files;
  const maxLength = noteMaxLength(files);
  const count = (text: string) => tokenizer.encode(text).length;
  const sides = splitDocuments(documents, settings.heldOutShare, settings.seed);
  const sequences = sides.train.flatMap((doc) => chunkText(doc.text, maxLength, count));
  const heldOut = sides.heldOut.map((doc) => doc.text);
  const losses = (stage: ClinicalStage) => textLosses(model, tokenizer, heldOut, { maxLength, onProgress: (done, total) => hooks.onProgress(stage, done, total) });

  model.adapters = [];
  const before = await losses('base perplexity');
  const { adapter, lora } = newStudyAdapter(model, files, settings.seed);
  const { trained, after, tensors } = await withAdapters(model, [adapter], async () => {
    const trained = await trainAdapterSteps(model, sequences.length, training(settings), WHOLE_STEP, hooks, (trainer, microBatches) =>
      trainer.trainStep(microBatches.map((part) => tokenizer.encodeBatch(part.map((i) => sequences[i]), maxLength))),
    );
    return { trained, after: await losses('adapted perplexity'), tensors: await adapter.download() };
  });
  const bootstrap = { seed: settings.seed };
  return {
    ...trained,
    documents: { train: sides.train.map((d) => d.name), heldOut: sides.heldOut.map((d) => d.name) },
    sequences: sequences.length,
    maxLength,
    totalSteps: settings.steps,
    result: beforeAfterResult([perplexityComparison(before, after, bootstrap)], [], bootstrap),
    adapter: { config: peftConfigOf(lora, { id: modelId }), tensors },
  };
}

export async function runTaskAdapter(model: DecoderModel, files: DecoderModelFiles, modelId: string, domain: PeftAdapter, rows: readonly LabelledStatement[], settings: ClinicalSettings, hooks: ClinicalHooks): Promise<TaskRunOutcome> {
  checkClinicalSettings(settings);
  const { tokenizer, config } = files;
  const split = splitLabelledStatements(rows, settings.heldOutShare, settings.seed);
  const train = encodeStudyStatements(files, split.train, 'training', modelId);
  const test = encodeStudyStatements(files, split.heldOut, 'held-out', modelId);
  const score = async (stage: ClinicalStage, encoded: EncodedStatement[]) =>
    (await scoreStatements(model, encoded, { padId: tokenizer.padId, onProgress: (done) => hooks.onProgress(stage, done, encoded.length) })).map((s) => s.margin);

  // The domain adapter frozen as it was trained; LoRA dropout applies only to the adapter being trained.
  const frozen = createDecoderAdapter(model.engine, config, { ...loraConfigOf(domain), dropout: 0 }, domain.tensors, false);
  const { adapter: task, lora } = newStudyAdapter(model, files, settings.seed);
  const { trained, without, withDomain, tensors } = await withAdapters(model, [frozen, task], async () => {
    const trained = await trainOnStatements(model, train, tokenizer.padId, training(settings), WHOLE_STEP, hooks);
    model.adapters = [task];
    const without = await score('scoring without the domain adapter', test.encoded);
    model.adapters = [frozen, task];
    const withDomain = await score('scoring with the domain adapter', test.encoded);
    return { trained, without, withDomain, tensors: await task.download() };
  });
  const bootstrap = { seed: settings.seed };
  return {
    ...trained,
    statements: { train: train.encoded.length, test: test.encoded.length, leftOut: train.leftOut + test.leftOut },
    fingerprint: labelledStatementsFingerprint(rows),
    totalSteps: settings.steps,
    result: beforeAfterResult(statementComparisons(without, withDomain, test.labels, bootstrap), [], bootstrap),
    adapter: { config: peftConfigOf(lora, { id: modelId }), tensors },
  };
}
