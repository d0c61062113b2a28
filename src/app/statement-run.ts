/**
 * The CTD LLM study's run of a decoder, in the engine worker: zero-shot scoring of the held-out
 * statements by the base, QLoRA on the training statements with the study's preset (LoRA r16 α32 on
 * every linear layer, over the base as loaded: NF4 unless f32 was chosen), the same scoring with the
 * adapter, and zero-shot accuracy and AUROC before and after with paired bootstrap intervals; then
 * the encoder's embedding metrics (KG separation, probe accuracy, silhouette...) on the decoder's
 * mean-pooled embeddings of the held-out statements, and a t-SNE map of them per model. The
 * statements are put as the command line's `score` puts them (the default plain prompt, " True" /
 * " False"); those whose prompt and answer need more positions than the model has are left out and
 * counted. No DOM.
 */
import type { LabelledStatement } from '../data/labelled-statements.ts';
import type { CtdStatement } from '../data/statements.ts';
import { type BeforeAfterResult, beforeAfterResult, evaluateBeforeAfter } from '../eval/before-after.ts';
import { labelledFromAssociations } from '../eval/eval-set.ts';
import { perplexityFor, runTsne } from '../eval/tsne.ts';
import type { Embedder, EvalSet } from '../eval/types.ts';
import { embedDecoderTexts } from '../model/decoder-embed.ts';
import type { GpuLoraModules } from '../model/lora.ts';
import { statementComparisons } from '../eval/statement-accuracy.ts';
import type { DecoderModelFiles } from '../model/decoder-checkpoint.ts';
import type { BaseQuantization } from '../model/adapted-linear.ts';
import { type DecoderMemoryPlan, planDecoderTraining } from '../model/decoder-memory.ts';
import type { DecoderModel } from '../model/decoder.ts';
import type { PeftAdapter } from '../model/peft-files.ts';
import { peftConfigOf } from '../model/peft-files.ts';
import { type EncodedStatement, defaultStatementPrompt, encodeStatement } from '../model/statement-prompt.ts';
import { scoreStatements } from '../model/statement-score.ts';
import { type AdapterTrainingSettings, type StepLayout, type TrainedSteps, type TrainingHooks, WHOLE_STEP, newStudyAdapter, studyLora, trainAdapterSteps } from './adapter-training.ts';
import type { TsneMap } from './protocol.ts';

/** Fewest held-out statements a t-SNE map is drawn of (its perplexity, at least 2, must stay below n − 1). */
export const MIN_MAP_STATEMENTS = 4;

/** The run's steps, statements per step, learning rate and seed (which also seeds the bootstrap). */
export type StatementRunSettings = AdapterTrainingSettings;

export interface StatementRunHooks extends Omit<TrainingHooks, 'onStep'> {
  /** `stepBytes`: the most GPU memory the adapter, its optimizer and the steps so far took above what was held before training (engine.peakBytes). */
  onStep(step: number, totalSteps: number, loss: number, stepBytes: number): void;
  onScored(model: 'base' | 'adapted', done: number, total: number): void;
  /** Texts embedded so far for the embedding metrics and maps (both models), of `total`. */
  onEmbedded(done: number, total: number): void;
}

export interface StatementRunOutcome extends TrainedSteps {
  adapter: PeftAdapter;
  /** Statements used, and left out as longer than the model's positions. */
  statements: { train: number; test: number; leftOut: number };
  /** Zero-shot statement metrics, then the embedding metrics; the gene–disease pair cosines. */
  result: BeforeAfterResult;
  /** t-SNE maps of the held-out statements' embeddings, base and adapted, labelled true / false statement; none under MIN_MAP_STATEMENTS. */
  maps: TsneMap[];
}

/**
 * The memory plan of the study's statement step on `files`' decoder (planDecoderTraining, as `qlora-lab
 * train --objective statements` plans it): a step of `batchSize` training statements, each row as long
 * as the longest training statement's prompt and answer, into `budgetBytes`.
 */
export function planStatementStep(
  files: DecoderModelFiles,
  train: StudyStatements,
  batchSize: number,
  base: { quantization: BaseQuantization; budgetBytes: number; maxBufferBytes: number },
): DecoderMemoryPlan {
  const seq = Math.max(...train.encoded.map((e) => e.prompt.length + Math.max(e.true.length, e.false.length) - 1));
  return planDecoderTraining({
    config: files.config,
    lora: studyLora(files.config),
    shape: { sequences: Math.min(batchSize, train.encoded.length), seq },
    base: { quantization: base.quantization },
    budgetBytes: base.budgetBytes,
    maxBufferBytes: base.maxBufferBytes,
    storages: ['f32', 'f16'],
  });
}

/** Statements as the study puts them to the decoder, with their labels, and how many were too long. */
export interface StudyStatements {
  encoded: EncodedStatement[];
  labels: boolean[];
  leftOut: number;
}

/**
 * A split's statements under the study's prompt, leaving out those whose prompt and answer (but its
 * last token, the longest row scoring or training feeds) need more positions than the decoder has.
 */
export function encodeStudyStatements(files: DecoderModelFiles, split: readonly LabelledStatement[], name: string, modelId: string): StudyStatements {
  const prompt = defaultStatementPrompt(false);
  const out: StudyStatements = { encoded: [], labels: [], leftOut: 0 };
  split.forEach((s, i) => {
    const encoded = encodeStatement(files.tokenizer, prompt, s.statement, i);
    if (encoded.prompt.length + Math.max(encoded.true.length, encoded.false.length) - 1 > files.config.maxSequenceLength) out.leftOut++;
    else {
      out.encoded.push(encoded);
      out.labels.push(s.label);
    }
  });
  if (out.encoded.length === 0) throw new Error(`No ${name} statement fits in ${modelId}'s ${files.config.maxSequenceLength} positions with its question and answer.`);
  return out;
}

/** Check the settings before any GPU work, each with the value it got. */
export function checkStatementRunSettings(s: StatementRunSettings): void {
  if (!Number.isInteger(s.steps) || s.steps < 1) throw new Error(`Training steps must be a positive whole number, got ${s.steps}.`);
  if (!Number.isInteger(s.batchSize) || s.batchSize < 1) throw new Error(`Statements per step must be a positive whole number, got ${s.batchSize}.`);
  if (!(s.learningRate > 0 && Number.isFinite(s.learningRate))) throw new Error(`The learning rate must be a positive number, got ${s.learningRate}.`);
  if (!Number.isInteger(s.seed)) throw new Error(`The seed must be a whole number, got ${s.seed}.`);
}

export async function runStatementStudy(
  model: DecoderModel,
  files: DecoderModelFiles,
  modelId: string,
  data: { train: CtdStatement[]; test: CtdStatement[] },
  settings: StatementRunSettings,
  hooks: StatementRunHooks,
  layout: StepLayout = WHOLE_STEP,
): Promise<StatementRunOutcome> {
  checkStatementRunSettings(settings);
  const { tokenizer } = files;
  const train = encodeStudyStatements(files, data.train, 'training', modelId);
  const test = encodeStudyStatements(files, data.test, 'held-out', modelId);
  const score = async (which: 'base' | 'adapted') =>
    (await scoreStatements(model, test.encoded, { padId: tokenizer.padId, onProgress: (done) => hooks.onScored(which, done, test.encoded.length) })).map((s) => s.margin);

  model.adapters = [];
  const before = await score('base');
  // Scoring's scratch goes, so the measured peak is training's (the plan's estimate counts the base, the adapter and one step).
  const { engine } = model;
  engine.flush(); // recorded work keeps the pooled buffers it uses; once submitted they may go
  engine.trimPool();
  const held = engine.liveBytes;
  engine.peakBytes = held;
  const { adapter, lora } = newStudyAdapter(model, files, settings.seed);
  model.adapters = [adapter];
  let trained: TrainedSteps;
  try {
    trained = await trainOnStatements(model, train, tokenizer.padId, settings, layout, {
      ...hooks,
      onStep: (step, totalSteps, loss) => hooks.onStep(step, totalSteps, loss, engine.peakBytes - held),
    });
  } catch (e) {
    adapter.release();
    model.adapters = [];
    throw e;
  }
  const bootstrap = { seed: settings.seed };
  let after: number[];
  let tensors: Awaited<ReturnType<typeof adapter.download>>;
  let embedded: Awaited<ReturnType<typeof embeddingMetrics>>;
  try {
    after = await score('adapted');
    embedded = await embeddingMetrics(model, files, adapter, data.test, bootstrap.seed, hooks);
    tensors = await adapter.download();
  } finally {
    adapter.release();
    model.adapters = [];
  }
  const metrics = [...statementComparisons(before, after, test.labels, bootstrap), ...embedded.result.metrics];
  const result = beforeAfterResult(metrics, embedded.result.pairCosines, bootstrap);
  const maps: TsneMap[] = [];
  if (data.test.length >= MIN_MAP_STATEMENTS) for (const which of ['base', 'adapted'] as const) maps.push(await tsneMap(model, which, embedded.vectors[which], data.test, bootstrap.seed));
  return {
    adapter: { config: peftConfigOf(lora, { id: modelId }), tensors },
    ...trained,
    statements: { train: train.encoded.length, test: test.encoded.length, leftOut: train.leftOut + test.leftOut },
    result,
    maps,
  };
}

/**
 * Train the model's trainable adapter on the statements (trainAdapterSteps): `settings.batchSize`
 * statements a step, in micro-batches of `layout.microBatch` with `layout.checkpointEvery`; the loss
 * is the step's mean over answer tokens whatever the layout.
 */
export async function trainOnStatements(
  model: DecoderModel,
  train: StudyStatements,
  padId: number,
  settings: AdapterTrainingSettings,
  layout: StepLayout,
  hooks: TrainingHooks,
): Promise<TrainedSteps> {
  return trainAdapterSteps(model, train.encoded.length, settings, layout, hooks, (trainer, microBatches) =>
    trainer.statementStep(
      microBatches.map((part) => ({ statements: part.map((i) => train.encoded[i]), labels: part.map((i) => train.labels[i]) })),
      padId,
    ),
  );
}

/**
 * The encoder's before/after metrics of the held-out statements as gene–disease associations, on
 * the decoder's mean-pooled last hidden states without and with `adapter`; the sentences' vectors
 * are kept for the maps.
 */
async function embeddingMetrics(model: DecoderModel, files: DecoderModelFiles, adapter: GpuLoraModules, test: CtdStatement[], seed: number, hooks: StatementRunHooks) {
  const associations = test.map((s) => ({ gene: s.gene, disease: s.disease, sentence: s.statement, associated: s.label }));
  const evalSet: EvalSet = { associations, labelled: labelledFromAssociations(associations) };
  const vectors = { base: new Map<string, Float32Array>(), adapted: new Map<string, Float32Array>() };
  const embedder =
    (which: 'base' | 'adapted'): Embedder =>
    async (texts) => {
      const todo = [...new Set(texts.filter((t) => !vectors[which].has(t)))];
      model.adapters = which === 'adapted' ? [adapter] : [];
      const embedded = await embedDecoderTexts(model, files.tokenizer, todo, { pooling: 'mean', normalize: false });
      todo.forEach((t, i) => vectors[which].set(t, embedded[i]));
      return texts.map((t) => vectors[which].get(t)!);
    };
  const result = await evaluateBeforeAfter(embedder('base'), embedder('adapted'), evalSet, { seed, onProgress: hooks.onEmbedded });
  return { result, vectors };
}

async function tsneMap(model: DecoderModel, which: 'base' | 'adapted', vectors: Map<string, Float32Array>, test: CtdStatement[], seed: number): Promise<TsneMap> {
  const texts = test.map((s) => s.statement);
  const positions = await runTsne(model.engine, texts.map((t) => vectors.get(t)!), { dims: 2, seed, perplexity: perplexityFor(texts.length) });
  return { model: which, dims: 2, positions, texts, labels: test.map((s) => (s.label ? 'true statement' : 'false statement')) };
}
