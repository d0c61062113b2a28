/**
 * The lab session the engine worker hosts: one GPU engine, one loaded model (frozen base, an
 * optional frozen adapter under the run's adapter), and the run lifecycle around it — train with
 * progress, pause/resume/cancel, periodic checkpoints, recovery from a lost GPU device, before/after
 * evaluation, nearest-neighbour exploration, t-SNE maps and exports. No DOM: it runs in a worker.
 */
import { strToU8, zipSync } from 'fflate';
import { type DataDB, openDataStore } from '../data/index.ts';
import { type AdapterDescription, type Engine, createEngine } from '../engine/engine.ts';
import { DeviceLostError } from '../engine/errors.ts';
import { type BeforeAfterResult, FEATURE_ROLE, evaluateBeforeAfter } from '../eval/before-after.ts';
import { projectorTsv } from '../eval/export.ts';
import { runTsne } from '../eval/tsne.ts';
import type { Embedder, LabelledText } from '../eval/types.ts';
import { cosine } from '../eval/vectors.ts';
import { checkAdapter } from '../model/adapter-check.ts';
import { BertEncoder } from '../model/bert.ts';
import { type ModelFiles, filesToLoad, loadModelFiles } from '../model/checkpoint.ts';
import type { FileProgress, ModelFileSource } from '../model/file-source.ts';
import { fileMapSource } from '../model/file-source.ts';
import { type HubSource, bundledSource, cacheStorageCache, hubSource } from '../model/hub.ts';
import { GpuAdapter, type HostAdapterTensors, type LoraConfig, describeTargets, initLoraTensors } from '../model/lora.ts';
import { type MemoryEstimate, estimateTrainingMemory } from '../model/memory.ts';
import { adapterFolder } from '../model/adapter-settings.ts';
import { type PeftAdapter, type PeftAdapterFiles, readPeftAdapter, writePeftAdapter } from '../model/peft-files.ts';
import { sentenceTransformersFolder } from '../model/sentence-folder.ts';
import { mergeAdapters } from '../model/merge.ts';
import { SentenceEncoder, sentenceOptions } from '../model/sentence.ts';
import { type SentenceSettings, type SettingOrigins, type TextRole, describeSettings } from '../model/sentence-config.ts';
import { hasPooler } from '../model/state-dict.ts';
import { DivergedError, adapterHealth, assertAdapterSane } from './divergence.ts';
import { encodeExamples } from './objective.ts';
import { DEMO_MODEL_NOTICE, type ModelRef, type RunConfig, modelSentenceSettings, runSentenceSettings } from './run-config.ts';
import { evaluationData, evaluationRows, findBuild, trainingFeed } from './run-data.ts';
import { appRunExport, runExportFiles } from './run-export.ts';
import { createRun, deleteCheckpoint, getCheckpoint, getRun, runLockName, saveCheckpoint, updateRun } from './run-store.ts';
import { NonFiniteLossError, type StepReport, Trainer } from './trainer.ts';

export interface GpuInfo {
  adapter: AdapterDescription;
  /** Matmul variant per shape class, as the autotuner chose (engine.kernelChoices); empty until it runs. */
  kernels: Record<string, string>;
}

export interface ModelSummary {
  label: string;
  files: string[];
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
  /** Parameters of the frozen base. */
  parameters: number;
  quantization: 'nf4' | 'f32';
  /** The commit a Hub revision resolved to. */
  commit?: string;
  /** The model folder's sentence settings (fallbacks where it says nothing), where each came from, and what it asks for that is not applied. */
  sentence: { settings: SentenceSettings; origins: SettingOrigins; unsupported: string[] };
}

/** What loading a model will take, before anything is downloaded (for a share link's confirmation). */
export interface ModelPreview {
  /** Bytes the model's files take, and how many of them are not in this browser yet; null when unknown. */
  bytes: number | null;
  toDownload: number | null;
  /** The commit a Hub revision resolves to now. */
  commit?: string;
}

export interface MemoryCheck {
  estimate: MemoryEstimate;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Reasons the run cannot start on this device; empty when it fits. */
  problems: string[];
}

export type RunState = 'training' | 'paused' | 'recovering' | 'done' | 'cancelled' | 'failed';

export type SessionEvent =
  | { type: 'download'; progress: FileProgress }
  | { type: 'log'; message: string }
  | { type: 'step'; runId: string; report: StepReport; totalSteps: number; examplesPerSecond: number; etaSeconds: number }
  | { type: 'checkpoint'; runId: string; step: number }
  | { type: 'state'; runId: string; state: RunState; message?: string }
  | { type: 'evaluation'; done: number; total: number }
  | { type: 'live-map'; runId: string; map: TsneMap & { step: number } };

export interface TrainOptions {
  /** Continue a stored run from its checkpoint. */
  resume: boolean;
  /** Send a t-SNE map of the evaluation texts at every checkpoint (slows training down). */
  liveMap: boolean;
}

export type SessionListener = (event: SessionEvent) => void;

export interface Evaluation {
  runId: string;
  result: BeforeAfterResult;
}

export interface Neighbour {
  text: string;
  label: string;
  cosine: number;
}

export interface TsneMap {
  model: 'base' | 'adapted';
  dims: 2 | 3;
  positions: Float32Array;
  texts: string[];
  labels: string[];
}

/** How many times in a row a lost device is recovered from before the run is stopped. */
const MAX_RECOVERIES = 3;
const EMBED_BATCH = 32;
/** Iterations of a live map: a rough picture, quick enough to redraw at every checkpoint. */
const LIVE_MAP_ITERATIONS = 300;

/** t-SNE needs perplexity < n / 3; 30 is the usual value. */
function perplexityFor(n: number): number {
  return Math.min(30, Math.max(2, Math.floor((n - 1) / 3)));
}

/** The adapter of a run (being trained, or loaded back from the run history) and its host copy. */
interface RunAdapter {
  runId: string;
  config: RunConfig;
  gpu: GpuAdapter;
  host: HostAdapterTensors | null;
}

/** Embeddings by role and text. */
type RoleVectors = Record<TextRole, Map<string, Float32Array>>;

const roleVectors = (): RoleVectors => ({ query: new Map(), passage: new Map() });

/**
 * Embeddings of the last evaluation, kept for the maps and the TSV export (the labelled texts as
 * features) and the search box (the labelled texts as passages, embedded at the first search).
 */
interface Analysis {
  runId: string;
  labelled: LabelledText[];
  base: RoleVectors;
  adapted: RoleVectors;
}

export class LabSession {
  private engine: Engine | null = null;
  private listener: SessionListener = () => {};
  private model: { ref: ModelRef; files: ModelFiles; source: ModelFileSource } | null = null;
  private encoder: BertEncoder | null = null;
  private frozen: { fingerprint: string; adapter: PeftAdapter } | null = null;
  private runAdapter: RunAdapter | null = null;
  private active: ActiveRun | null = null;
  private analysis: Analysis | null = null;
  private dataDb: Promise<DataDB> | null = null;

  setListener(listener: SessionListener): void {
    this.listener = listener;
  }

  /** Open the GPU. Throws WebGPUUnavailableError (naming the browsers that have WebGPU) when there is none. */
  async connect(): Promise<GpuInfo> {
    const engine = await this.ensureEngine();
    return { adapter: engine.adapter, kernels: Object.fromEntries(engine.kernelChoices) };
  }

  /**
   * Load a model: the bundled demo from this site, a Hub repo (cached in the browser, so a second
   * load needs no network) or files the user picked. Replaces any model loaded before.
   */
  async loadModel(ref: ModelRef, quantization: 'nf4' | 'f32', localFiles?: Map<string, Blob>, siteUrl?: string): Promise<ModelSummary> {
    this.assertIdle('load another model');
    const source = modelSource(ref, localFiles, siteUrl);
    const files = await loadModelFiles(source, {
      onProgress: (progress) => this.listener({ type: 'download', progress }),
      log: (message) => this.listener({ type: 'log', message }),
    });
    this.encoder?.destroy();
    this.encoder = null;
    this.runAdapter = null;
    this.analysis = null;
    this.frozen = null;
    this.model = { ref, files, source };
    await this.buildEncoder(quantization);
    return this.summary();
  }

  /** The download a model needs (Hub: its files at the revision's commit; the bundled model comes with the app). */
  async previewModel(ref: ModelRef): Promise<ModelPreview> {
    if (ref.kind !== 'hub') return { bytes: null, toDownload: ref.kind === 'bundled' ? 0 : null };
    const source = modelSource(ref, undefined, undefined) as HubSource;
    const { commit, files } = await source.resolve();
    return { ...(await source.sizeOf(filesToLoad(new Set(files.keys())))), commit };
  }

  /**
   * Stack a PEFT adapter (`name`: the folder it came from) under the one being trained (frozen),
   * once it is checked against the loaded model; null removes it. Returns a description.
   */
  async setFrozenAdapter(files: (PeftAdapterFiles & { fingerprint: string; name: string }) | null): Promise<string | null> {
    this.assertIdle('change the frozen adapter');
    const model = this.requireModel();
    const adapter = files ? readPeftAdapter(files, model.files.config) : null;
    if (adapter && files) checkAdapter(model.files.config, adapter, `adapter ${files.name}`, { pooler: hasPooler(model.files.weights) });
    this.frozen = adapter && files ? { fingerprint: files.fingerprint, adapter } : null;
    this.runAdapter = null;
    this.analysis = null;
    await this.buildEncoder(this.encoder?.quantization ?? 'nf4');
    return adapter ? describeAdapter(adapter) : null;
  }

  /** The training memory estimate for `config`, checked against this device's limits. */
  checkMemory(config: RunConfig): MemoryCheck {
    const engine = this.requireEngine();
    const model = this.requireModel();
    const negatives = config.train.objective.kind === 'infonce' ? 1 : 0;
    const sequences = config.train.batchSize * (2 + negatives);
    const seq = Math.min(config.maxLength, model.files.config.maxSequenceLength);
    const estimate = estimateTrainingMemory(model.files.config, config.lora, { sequences, seq }, { quantization: config.quantization });
    const { maxBufferSize, maxStorageBufferBindingSize } = engine.limits;
    const problems: string[] = [];
    if (estimate.largestBuffer > maxStorageBufferBindingSize) {
      problems.push(
        `The largest buffer needs ${estimate.largestBuffer} bytes, over this GPU's maxStorageBufferBindingSize of ${maxStorageBufferBindingSize}: lower the batch size or the maximum length.`,
      );
    }
    if (estimate.largestBuffer > maxBufferSize) problems.push(`The largest buffer needs ${estimate.largestBuffer} bytes, over this GPU's maxBufferSize of ${maxBufferSize}.`);
    return { estimate, maxBufferSize, maxStorageBufferBindingSize, problems };
  }

  /**
   * Train a new run (or resume one from its checkpoint) and resolve when it ends: done, cancelled
   * or failed. A lost device is recovered from the last checkpoint, announced by a 'recovering' state.
   */
  async train(runId: string, config: RunConfig, options: TrainOptions): Promise<RunState> {
    // One tab at a time trains a run: other tabs see the lock and do not offer to resume it.
    return navigator.locks.request(runLockName(runId), { ifAvailable: true }, async (lock) => {
      if (!lock) throw new Error(`Run ${runId} is being trained in another tab of this browser.`);
      return this.trainHoldingLock(runId, config, options);
    });
  }

  private async trainHoldingLock(runId: string, config: RunConfig, options: TrainOptions): Promise<RunState> {
    this.assertIdle('start another run');
    await this.prepareModel(config);
    const db = await this.data();
    const feed = trainingFeed(db, await findBuild(db, config.data.fingerprint), config);
    const run = new ActiveRun(runId, config, options.liveMap);
    this.active = run;
    this.analysis = null;
    try {
      if (!options.resume) await createRun(runId, config);
      else if (!(await getRun(runId))) throw new Error(`Run ${runId} is not in the run history, so it cannot be resumed.`);
      await updateRun(runId, { status: 'running', error: null });
      for (let recoveries = 0; ; ) {
        try {
          await this.trainFromCheckpoint(run, feed);
          break;
        } catch (e) {
          if (!(await this.isDeviceLoss(e)) || ++recoveries > MAX_RECOVERIES) throw e;
          this.emitState(run, 'recovering', (e as Error).message);
          await this.ensureEncoder();
        }
      }
      if (run.cancelled) {
        await updateRun(runId, { status: 'cancelled' });
        this.emitState(run, 'cancelled');
        return 'cancelled';
      }
      await updateRun(runId, { status: 'done', adapter: writePeftAdapter(this.peftAdapter(), this.requireModel().files.config) });
      await deleteCheckpoint(runId); // the run keeps its adapter; the optimizer state is no longer needed
      this.emitState(run, 'done');
      return 'done';
    } catch (e) {
      if ((e instanceof NonFiniteLossError || e instanceof DivergedError) && this.runAdapter) this.runAdapter.host = await this.lastSaneAdapter(runId, config);
      const message = (e as Error).message ?? String(e);
      await updateRun(runId, { status: 'failed', error: message }).catch(() => {});
      this.emitState(run, 'failed', message);
      throw e;
    } finally {
      this.active = null;
    }
  }

  /**
   * What a run that stopped on a NaN loss or diverged keeps for export: the adapter on the GPU (a
   * NaN step skipped its update) if it passes the divergence rule, else the last checkpoint's (only
   * sane ones are stored), else none.
   */
  private async lastSaneAdapter(runId: string, config: RunConfig): Promise<HostAdapterTensors | null> {
    const current = await this.runAdapter!.gpu.download();
    if (adapterHealth(this.requireModel().files.weights, current, config.lora).sane) return current;
    return (await getCheckpoint(runId))?.snapshot.adapter ?? null;
  }

  pause(): void {
    if (!this.active) return;
    this.active.pause();
    void updateRun(this.active.id, { status: 'paused' });
    this.emitState(this.active, 'paused');
  }

  resume(): void {
    if (!this.active) return;
    this.active.resume();
    void updateRun(this.active.id, { status: 'running' });
    this.emitState(this.active, 'training');
  }

  cancel(): void {
    this.active?.cancel();
  }

  /** Test hook: destroy the GPU device as a driver reset would, to exercise recovery. */
  loseDeviceForTest(): void {
    this.requireEngine().device.destroy();
  }

  /** Attach a finished run's adapter (from the run history) for evaluation, search and export. */
  async useRun(runId: string): Promise<void> {
    this.assertIdle('switch runs');
    if (this.runAdapter?.runId === runId) return;
    const run = await getRun(runId);
    if (!run?.adapter) throw new Error(`Run ${runId} has no finished adapter to use.`);
    await this.prepareModel(run.config);
    const { files } = this.requireModel();
    const adapter = readPeftAdapter(run.adapter, files.config);
    checkAdapter(files.config, adapter, `the adapter of run ${runId}`, { pooler: hasPooler(files.weights) });
    this.attachRunAdapter(runId, run.config, adapter.tensors, false);
  }

  /** Before/after metrics of the current run's adapter, stored with the run. */
  async evaluate(runId: string): Promise<Evaluation> {
    this.assertIdle('evaluate');
    const adapter = this.requireRunAdapter(runId);
    const { evalSet, labelled } = await evaluationData(await this.data(), adapter.config);
    const analysis: Analysis = { runId, labelled, base: roleVectors(), adapted: roleVectors() };
    const result = await evaluateBeforeAfter(this.embedder(adapter.config, false, analysis.base), this.embedder(adapter.config, true, analysis.adapted), evalSet, {
      seed: adapter.config.seeds.eval,
      batchSize: 64,
      onProgress: (done, total) => this.listener({ type: 'evaluation', done, total }),
    });
    await this.completeAnalysis(analysis);
    const metrics = Object.fromEntries(result.metrics.map((m) => [m.key, { before: m.base.value, after: m.adapted.value }]));
    await updateRun(runId, { metrics, evaluation: result });
    return { runId, result };
  }

  /** The evaluation stored with a finished run, shown as it was (nothing is embedded); null for runs stored without one. */
  async savedEvaluation(runId: string): Promise<Evaluation | null> {
    const result = (await getRun(runId))?.evaluation;
    return result ? { runId, result } : null;
  }

  /** The map and the search embed every labelled text under both models; the metrics may have embedded only some. */
  private async completeAnalysis(analysis: Analysis): Promise<void> {
    const adapter = this.requireRunAdapter(analysis.runId);
    const texts = analysis.labelled.map((t) => t.text);
    await this.embedder(adapter.config, false, analysis.base)(texts, FEATURE_ROLE);
    await this.embedder(adapter.config, true, analysis.adapted)(texts, FEATURE_ROLE);
    this.analysis = analysis;
  }

  /** The `k` texts of the evaluation corpus (as passages) nearest to `query` (as a query), under the base and the adapted model. */
  async nearest(query: string, k: number): Promise<{ base: Neighbour[]; adapted: Neighbour[] }> {
    const analysis = await this.requireAnalysis();
    const adapter = this.requireRunAdapter(analysis.runId);
    const rank = async (adapted: boolean) => {
      const vectors = adapted ? analysis.adapted : analysis.base;
      const embed = this.embedder(adapter.config, adapted, vectors);
      const corpus = await embed(analysis.labelled.map((t) => t.text), 'passage');
      const [q] = await this.embedder(adapter.config, adapted, roleVectors())([query], 'query');
      return analysis.labelled
        .map((t, i) => ({ text: t.text, label: t.label, cosine: cosine(q, corpus[i]) }))
        .sort((a, b) => b.cosine - a.cosine)
        .slice(0, k);
    };
    return { base: await rank(false), adapted: await rank(true) };
  }

  /** A t-SNE map of the evaluation texts under one model (GPU t-SNE, seeded by the run's eval seed). */
  async tsne(model: 'base' | 'adapted', dims: 2 | 3): Promise<TsneMap> {
    const analysis = await this.requireAnalysis();
    const adapter = this.requireRunAdapter(analysis.runId);
    const vectors = (model === 'base' ? analysis.base : analysis.adapted)[FEATURE_ROLE];
    const texts = analysis.labelled.map((t) => t.text);
    const positions = await runTsne(await this.ensureEngine(), texts.map((t) => vectors.get(t)!), {
      dims,
      seed: adapter.config.seeds.eval,
      perplexity: perplexityFor(texts.length),
    });
    return { model, dims, positions, texts, labels: analysis.labelled.map((t) => t.label) };
  }

  /** The run's adapter as a PEFT folder in a zip: adapter_config.json, adapter_model.safetensors, qlora_lab.json, README.md. */
  exportAdapterZip(): Uint8Array {
    const adapter = this.peftAdapter();
    const { config } = this.runAdapter!;
    const settings = { baseModel: adapter.config.baseModelNameOrPath, ...(adapter.config.revision ? { revision: adapter.config.revision } : {}), quantization: config.quantization, sentence: runSentenceSettings(config) };
    return zip({ ...adapterFolder(adapter, this.requireModel().files.config, settings), 'README.md': adapterReadme(adapter, config) });
  }

  /**
   * The merged model — every adapter folded into the base, W + scale·B·A, starting from the base's
   * original full-precision weights — as a sentence-transformers folder with the run's pooling and the base's tokenizer.
   */
  exportMergedZip(): Uint8Array {
    const { files } = this.requireModel();
    const adapters = [...(this.frozen ? [this.frozen.adapter] : []), this.peftAdapter()].map((a) => ({ config: loraConfigOf(a), tensors: a.tensors }));
    const weights = mergeAdapters(files.config, files.weights, adapters);
    return zip(sentenceTransformersFolder(files, weights, runSentenceSettings(this.runAdapter!.config)));
  }

  /**
   * The current run for sentence-transformers + PEFT (run-export.ts), in a zip: the training rows
   * in the order the run fed them, its evaluation rows, run.json and train.py.
   */
  async exportRunZip(): Promise<Uint8Array> {
    this.assertIdle('export the run');
    const run = this.runAdapter;
    if (!run) throw new Error('No run yet: train one or pick one in the run history.');
    const { config } = run;
    const { files } = this.requireModel();
    const exported = appRunExport(run.runId, config, files.source.commit ?? null, files);
    const db = await this.data();
    const feed = trainingFeed(db, await findBuild(db, config.data.fingerprint), config);
    const rows = [];
    for (let step = 0; step < config.train.steps; step++) {
      for (let micro = 0; micro < config.train.gradientAccumulation; micro++) rows.push(...(await feed.examples(step, micro)));
    }
    return zip(runExportFiles(exported, rows, await evaluationRows(db, config)));
  }

  /** vectors.tsv + metadata.tsv of the evaluation texts under one model, for projector.tensorflow.org, in a zip. */
  async exportEmbeddingsZip(model: 'base' | 'adapted'): Promise<Uint8Array> {
    const analysis = await this.requireAnalysis();
    const vectors = (model === 'base' ? analysis.base : analysis.adapted)[FEATURE_ROLE];
    const tsv = projectorTsv(
      analysis.labelled.map((t) => vectors.get(t.text)!),
      analysis.labelled.map((t) => ({ text: t.text, label: t.label })),
    );
    return zip({ 'vectors.tsv': tsv.vectors, 'metadata.tsv': tsv.metadata });
  }

  // ---------------------------------------------------------------- training

  private async trainFromCheckpoint(run: ActiveRun, feed: ReturnType<typeof trainingFeed>): Promise<void> {
    const { config } = run;
    const checkpoint = await getCheckpoint(run.id);
    const trainer = this.newTrainer(run.id, config);
    try {
      if (checkpoint) trainer.restore(checkpoint.snapshot);
      run.history = checkpoint ? [...checkpoint.history] : [];
      this.emitState(run, run.paused ? 'paused' : 'training');
      const total = config.train.steps;
      while (trainer.step < total) {
        await run.whenRunning();
        if (run.cancelled) break;
        const started = performance.now();
        const micro = [];
        for (let k = 0; k < config.train.gradientAccumulation; k++) {
          micro.push(encodeExamples(trainer.encoder, config.train.objective, await feed.examples(trainer.step, k)));
        }
        const report = await trainer.trainStep(micro);
        run.history.push(report);
        const seconds = (performance.now() - started) / 1000;
        run.recordStepTime(seconds);
        this.listener({
          type: 'step',
          runId: run.id,
          report,
          totalSteps: total,
          examplesPerSecond: report.examples / seconds,
          etaSeconds: (total - report.step) * run.secondsPerStep(),
        });
        if (report.step % config.train.checkpointEvery === 0 || report.step === total) {
          const snapshot = await trainer.snapshot();
          // A diverged adapter is never checkpointed: the stored checkpoint stays the last sane one.
          assertAdapterSane(this.requireModel().files.weights, snapshot.adapter, config.lora, report.step);
          await saveCheckpoint(run.id, snapshot, run.history);
          this.listener({ type: 'checkpoint', runId: run.id, step: report.step });
          if (run.liveMap) await this.emitLiveMap(run, report.step);
        }
      }
      this.runAdapter!.host = await this.runAdapter!.gpu.download();
    } finally {
      trainer.release();
    }
  }

  /**
   * A quick t-SNE map of the evaluation texts under the adapter as it is now, so a class can watch
   * the cloud reorganise. Inference only, with its own seed: the training itself is unchanged.
   */
  private async emitLiveMap(run: ActiveRun, step: number): Promise<void> {
    run.mapTexts ??= (await evaluationData(await this.data(), run.config)).labelled;
    const texts = run.mapTexts.map((t) => t.text);
    const vectors = await this.embedder(run.config, true, roleVectors())(texts, FEATURE_ROLE);
    const positions = await runTsne(await this.ensureEngine(), vectors, { dims: 2, seed: run.config.seeds.eval, iterations: LIVE_MAP_ITERATIONS, perplexity: perplexityFor(texts.length) });
    this.listener({ type: 'live-map', runId: run.id, map: { model: 'adapted', dims: 2, positions, texts, labels: run.mapTexts.map((t) => t.label), step } });
  }

  private newTrainer(runId: string, config: RunConfig): Trainer {
    const { files } = this.requireModel();
    this.attachRunAdapter(runId, config, initLoraTensors(files.config, config.lora, config.seeds.init, { pooler: hasPooler(files.weights) }), true);
    return new Trainer(this.sentenceEncoder(config), { ...config.train, totalSteps: config.train.steps, seed: config.seeds.train });
  }

  /** Put a run's adapter on top of the frozen stack, replacing the previous run's. */
  private attachRunAdapter(runId: string, config: RunConfig, tensors: HostAdapterTensors, trainable: boolean): GpuAdapter {
    const encoder = this.encoder!;
    if (this.runAdapter) {
      encoder.adapters = encoder.adapters.filter((a) => a !== this.runAdapter!.gpu);
      this.runAdapter.gpu.release();
    }
    const gpu = new GpuAdapter(this.requireEngine(), this.requireModel().files.config, config.lora, tensors, trainable);
    encoder.adapters.push(gpu);
    this.runAdapter = { runId, config, gpu, host: trainable ? null : tensors };
    return gpu;
  }

  private peftAdapter(): PeftAdapter {
    const { ref, files } = this.requireModel();
    const run = this.runAdapter;
    if (!run?.host) throw new Error('No adapter has been trained or loaded yet.');
    const { lora } = run.config;
    return {
      config: {
        r: lora.r,
        loraAlpha: lora.alpha,
        loraDropout: lora.dropout,
        targetModules: lora.targetModules,
        useRslora: lora.rslora,
        baseModelNameOrPath: ref.id,
        // The commit, not a branch that may move: PEFT then loads the very base the adapter was trained on.
        ...(ref.kind === 'hub' ? { revision: files.source.commit ?? ref.revision } : {}),
      },
      tensors: run.host,
    };
  }

  // ---------------------------------------------------------------- embeddings

  private sentenceEncoder(config: RunConfig): SentenceEncoder {
    const { files } = this.requireModel();
    return new SentenceEncoder(this.encoder!, files.tokenizer, sentenceOptions(runSentenceSettings(config), files.sentence));
  }

  /** Texts of a role → embeddings under the base (frozen stack only) or the adapted model, memoised in `caches`. */
  private embedder(config: RunConfig, adapted: boolean, caches: RoleVectors): Embedder {
    return async (texts, role) => {
      const cache = caches[role];
      const todo = [...new Set(texts.filter((t) => !cache.has(t)))];
      if (todo.length > 0) {
        await this.ensureEncoder();
        const encoder = this.encoder!;
        const all = encoder.adapters;
        encoder.adapters = adapted ? all : all.filter((a) => a !== this.runAdapter?.gpu);
        try {
          const sentence = this.sentenceEncoder(config);
          const vectors = await sentence.embed(todo, { prompt: sentence.prompt(role), batchSize: EMBED_BATCH });
          todo.forEach((t, i) => cache.set(t, vectors[i]));
        } finally {
          encoder.adapters = all;
        }
      }
      return texts.map((t) => cache.get(t)!);
    };
  }

  // ---------------------------------------------------------------- device

  private async ensureEngine(): Promise<Engine> {
    if (this.engine && !this.engine.isLost) return this.engine;
    this.engine = await createEngine(navigator.gpu);
    return this.engine;
  }

  /** After a device loss: a new device with the base, the frozen adapter and the run's adapter uploaded again. */
  private async ensureEncoder(): Promise<void> {
    if (this.engine && !this.engine.isLost && this.encoder) return;
    const quantization = this.encoder?.quantization ?? 'nf4';
    this.encoder = null; // its buffers went with the old device
    const run = this.runAdapter;
    this.runAdapter = null;
    await this.buildEncoder(quantization);
    if (run?.host) this.attachRunAdapter(run.runId, run.config, run.host, false);
  }

  /** A device error, or any error thrown while the device is (or is about to be reported) lost. */
  private async isDeviceLoss(error: unknown): Promise<boolean> {
    if (error instanceof DeviceLostError) return true;
    const engine = this.engine;
    if (!engine) return false;
    // A map or a submission can fail before device.lost settles; give it a moment to.
    await Promise.race([engine.device.lost, new Promise((resolve) => setTimeout(resolve, 500))]);
    return engine.isLost;
  }

  private async buildEncoder(quantization: 'nf4' | 'f32'): Promise<void> {
    const model = this.requireModel();
    const engine = await this.ensureEngine();
    this.encoder?.destroy();
    this.encoder = await BertEncoder.create(engine, model.files.config, model.files.weights, { quantization });
    if (this.frozen) {
      const { adapter } = this.frozen;
      this.encoder.adapters.push(new GpuAdapter(engine, model.files.config, loraConfigOf(adapter), adapter.tensors, false));
    }
  }

  /** The loaded model must be the run's; the base is re-quantised if the run asks for the other precision. */
  private async prepareModel(config: RunConfig): Promise<void> {
    const model = this.requireModel();
    if (JSON.stringify(model.ref) !== JSON.stringify(config.model)) throw new Error(`This run is for the model ${config.model.id}, but ${model.ref.id} is loaded.`);
    if ((config.frozenAdapter?.fingerprint ?? null) !== (this.frozen?.fingerprint ?? null)) {
      throw new Error(config.frozenAdapter ? `This run stacks the frozen adapter ${config.frozenAdapter.name}; attach it first.` : 'This run has no frozen adapter; remove the attached one first.');
    }
    await this.ensureEncoder();
    if (this.encoder!.quantization !== config.quantization) {
      this.runAdapter = null;
      await this.buildEncoder(config.quantization);
    }
  }

  private data(): Promise<DataDB> {
    this.dataDb ??= openDataStore();
    return this.dataDb;
  }

  // ---------------------------------------------------------------- checks

  private summary(): ModelSummary {
    const { files, ref } = this.requireModel();
    const c = files.config;
    let parameters = 0;
    for (const t of files.weights.values()) parameters += t.data.length;
    return {
      label: ref.id,
      files: files.source.files,
      layers: c.numHiddenLayers,
      hidden: c.hiddenSize,
      heads: c.numAttentionHeads,
      intermediate: c.intermediateSize,
      vocab: c.vocabSize,
      maxPositions: c.maxSequenceLength,
      parameters,
      quantization: this.encoder!.quantization,
      ...(files.source.commit ? { commit: files.source.commit } : {}),
      sentence: { ...modelSentenceSettings(files.sentence), unsupported: files.sentence.unsupported },
    };
  }

  private assertIdle(what: string): void {
    if (this.active) throw new Error(`Cannot ${what} while run ${this.active.id} is training; pause and cancel it first.`);
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new Error('The GPU is not connected yet.');
    return this.engine;
  }

  private requireModel(): NonNullable<LabSession['model']> {
    if (!this.model) throw new Error('No model is loaded yet.');
    return this.model;
  }

  private requireRunAdapter(runId: string): RunAdapter {
    if (this.runAdapter?.runId !== runId || !this.runAdapter.host) throw new Error(`Run ${runId} has no finished adapter in this session; train it or pick it in the run history.`);
    return this.runAdapter;
  }

  /** The embeddings the search, the maps and the embedding exports use: those of the last evaluation, or of the opened run, embedded on first use. */
  private async requireAnalysis(): Promise<Analysis> {
    const run = this.runAdapter;
    if (!run?.host) throw new Error('Evaluate the run first: the search and the maps use its embeddings.');
    if (this.analysis?.runId !== run.runId) {
      const { labelled } = await evaluationData(await this.data(), run.config);
      await this.completeAnalysis({ runId: run.runId, labelled, base: roleVectors(), adapted: roleVectors() });
    }
    return this.analysis!;
  }

  private emitState(run: ActiveRun, state: RunState, message?: string): void {
    this.listener({ type: 'state', runId: run.id, state, message });
  }
}

/** The mutable state of the run being trained. */
class ActiveRun {
  history: StepReport[] = [];
  cancelled = false;
  /** Durations of this session's steps, the first left out: it includes compiling the GPU pipelines. */
  private stepSeconds: number[] | null = null;
  /** The labelled evaluation texts the live map shows, read once. */
  mapTexts: LabelledText[] | null = null;
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  recordStepTime(seconds: number): void {
    if (this.stepSeconds === null) this.stepSeconds = [];
    else this.stepSeconds = [...this.stepSeconds.slice(-9), seconds];
  }

  /** The median of the last ten step times once three are measured (a stable estimate), else NaN. */
  secondsPerStep(): number {
    const s = [...(this.stepSeconds ?? [])].sort((a, b) => a - b);
    return s.length < 3 ? Number.NaN : s[Math.floor(s.length / 2)];
  }

  constructor(
    readonly id: string,
    readonly config: RunConfig,
    readonly liveMap: boolean,
  ) {}

  get paused(): boolean {
    return this.gate !== null;
  }

  pause(): void {
    if (this.gate) return;
    let open = () => {};
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  resume(): void {
    this.gate?.open();
    this.gate = null;
  }

  cancel(): void {
    this.cancelled = true;
    this.resume();
  }

  whenRunning(): Promise<void> {
    return this.gate?.promise ?? Promise.resolve();
  }
}

function modelSource(ref: ModelRef, localFiles: Map<string, Blob> | undefined, siteUrl: string | undefined): ModelFileSource {
  if (ref.kind === 'hub') return hubSource(ref.id, { revision: ref.revision, cache: typeof caches === 'undefined' ? null : cacheStorageCache() });
  if (ref.kind === 'local') {
    if (!localFiles) throw new Error(`Pick the folder of ${ref.id} again: local files are not kept between visits.`);
    return fileMapSource(localFiles, ref.id);
  }
  return bundledSource(new URL(`models/${encodeURIComponent(ref.id)}/`, siteUrl ?? self.location.href), ref.id);
}

/** Text compressed; binary weights stored (float32 barely compresses, and a large model would take minutes). */
function zip(files: Record<string, string | Uint8Array>): Uint8Array {
  return zipSync(
    Object.fromEntries(Object.entries(files).map(([name, content]) => [name, typeof content === 'string' ? [strToU8(content), { level: 6 }] : [content, { level: 0 }]])),
  );
}

/** PEFT's adapter_config fields as the engine's LoRA config (dropout off: a frozen adapter does not train). */
function loraConfigOf(adapter: PeftAdapter): LoraConfig {
  const c = adapter.config;
  return { r: c.r, alpha: c.loraAlpha, dropout: 0, rslora: c.useRslora, targetModules: c.targetModules, modulePrefix: c.modulePrefix };
}

function adapterReadme(adapter: PeftAdapter, config: RunConfig): string {
  const c = adapter.config;
  return `# LoRA adapter trained with qlora-lab
${config.model.kind === 'bundled' ? `\n**${DEMO_MODEL_NOTICE}**\n` : ''}
Base model: ${c.baseModelNameOrPath}${c.revision ? ` (revision ${c.revision})` : ''}, ${config.quantization === 'nf4' ? 'frozen in NF4 (QLoRA)' : 'frozen in f32'}.
LoRA: r=${c.r}, alpha=${c.loraAlpha}, dropout=${c.loraDropout}, rsLoRA=${c.useRslora}, target modules ${describeTargets(c.targetModules)}.
Training: ${config.train.steps} steps, ${config.train.objective.kind}, learning rate ${config.train.learningRate}, batch ${config.train.batchSize}×${config.train.gradientAccumulation}, seeds ${JSON.stringify(config.seeds)}.
Data fingerprint: ${config.data.fingerprint}.${config.frozenAdapter ? `\nTrained on top of the frozen adapter ${config.frozenAdapter.name}: load that adapter first.` : ''}

Load it with PEFT:

    from transformers import AutoModel
    from peft import PeftModel
    base = AutoModel.from_pretrained("${c.baseModelNameOrPath}"${c.revision ? `, revision="${c.revision}"` : ''})
    model = PeftModel.from_pretrained(base, "path/to/this/folder")

Embed as in training: ${describeSettings(runSentenceSettings(config))}.
qlora_lab.json records these settings (pooling, normalize, max_seq_length, prompts), the base revision
and precision; PEFT ignores it, qlora-lab merge reads it.
`;
}

function describeAdapter(adapter: PeftAdapter): string {
  const c = adapter.config;
  return `LoRA r${c.r} α${c.loraAlpha} on ${describeTargets(c.targetModules)}${c.baseModelNameOrPath ? ` (trained on ${c.baseModelNameOrPath})` : ''}`;
}
