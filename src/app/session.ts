/**
 * The lab session the engine worker hosts: one GPU engine, one loaded model (frozen base, an
 * optional frozen adapter under the run's adapter), the run history, and the run lifecycle around
 * them — train with progress, pause/resume/cancel, IndexedDB checkpoints, recovery from a lost GPU
 * device, before/after evaluation, nearest-neighbour exploration, t-SNE maps and exports. The
 * pieces are the other layers' (the training loop is train/loop.ts, shared with the CLI); this
 * module holds them together. No DOM: it runs in a worker.
 */
import { transfer } from 'comlink';
import { type DataDB, DatasetError, getDataset, loadCtdGraph, openDataStore } from '../data/index.ts';
import { type LabelledStatement, checkStatementsFingerprint } from '../data/labelled-statements.ts';
import { type NoteDocument, checkNoteFingerprints } from '../data/notes.ts';
import { type CtdStatements, buildCtdStatements } from '../data/statements.ts';
import { autotuneMatmuls } from '../engine/autotune.ts';
import { indexedDbTuneCache } from '../engine/autotune-idb-cache.ts';
import { type Engine, createEngine } from '../engine/engine.ts';
import { DeviceLostError } from '../engine/errors.ts';
import type { StoragePrecision } from '../engine/stored.ts';
import { FEATURE_ROLE, evaluateBeforeAfter } from '../eval/before-after.ts';
import { projectorTsv } from '../eval/export.ts';
import { nearestNeighbours } from '../eval/neighbours.ts';
import { perplexityFor, runTsne } from '../eval/tsne.ts';
import type { Embedder, LabelledText } from '../eval/types.ts';
import { checkAdapter } from '../model/adapter-check.ts';
import { adapterFolder } from '../model/adapter-settings.ts';
import { BertEncoder } from '../model/bert.ts';
import { type ModelFiles, filesToLoad, loadModelFiles } from '../model/checkpoint.ts';
import { APP_DECODER_TRAINING, checkDecoderFit } from '../model/decoder-fit.ts';
import { familyOf } from '../model/families.ts';
import type { ModelFileSource } from '../model/file-source.ts';
import type { HubSource } from '../model/hub.ts';
import { GpuAdapter, type HostAdapterTensors, initLoraTensors } from '../model/lora.ts';
import { type MemoryPlan, bufferLimitProblems, describePlan, planTraining } from '../model/memory.ts';
import { configModelKind } from '../model/decoder-config.ts';
import { type ModelRef, modelRefSource } from '../model/model-ref.ts';
import { type PeftAdapter, type PeftAdapterFiles, describePeftAdapter, loraConfigOf, peftConfigOf, readPeftAdapter, writePeftAdapter } from '../model/peft-files.ts';
import { mergedModelFolder } from '../model/sentence-folder.ts';
import { SentenceEncoder, sentenceOptions } from '../model/sentence.ts';
import type { TextRole } from '../model/sentence-config.ts';
import { hasPooler } from '../model/state-dict.ts';
import { linearProducts } from '../model/kernel-products.ts';
import { adapterReadme } from '../train/adapter-readme.ts';
import { DivergedError, adapterHealth } from '../train/divergence.ts';
import { runTrainingLoop } from '../train/loop.ts';
import { type RunConfig, modelSentenceSettings, runSentenceSettings, runStepShape } from '../train/run-config.ts';
import { evaluationData, evaluationRows, findBuild, trainingFeed } from '../train/run-data.ts';
import { appRunExport, runExportFiles } from '../train/run-export.ts';
import {
  createRun,
  deleteCheckpoint,
  deleteRun,
  getCheckpoint,
  getRun,
  listRuns,
  runLockName,
  saveCheckpoint,
  unfinishedRuns,
  updateRun,
} from '../train/run-store.ts';
import type { FingerprintedFile } from '../train/shared-run.ts';
import { NonFiniteLossError, Trainer } from '../train/trainer.ts';
import { ActiveRun } from './active-run.ts';
import { DecoderHost } from './decoder-host.ts';
import type {
  ClinicalSettings,
  DomainRunSummary,
  TaskRunSummary,
  AnswersRequest,
  AnswersResult,
  DecoderCheck,
  DecoderSummary,
  Evaluation,
  GpuInfo,
  MemoryCheck,
  ModelPreview,
  ModelSummary,
  Neighbour,
  RunHistory,
  RunState,
  SessionListener,
  StatementPlan,
  StatementRunRequest,
  StatementRunSummary,
  TrainOptions,
  TsneMap,
} from './protocol.ts';
import { zip } from './zip.ts';

/** How many times in a row a lost device is recovered from before the run is stopped. */
const MAX_RECOVERIES = 3;
const EMBED_BATCH = 32;
/** Iterations of a live map: a rough picture, quick enough to redraw at every checkpoint. */
const LIVE_MAP_ITERATIONS = 300;

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
  /** A decoder LLM loaded beside the encoder, for the answers side by side. */
  private decoder: DecoderHost | null = null;
  /** The last CTD statements built (planned, then trained on), by dataset, split and seed. */
  private statements: { key: string; split: CtdStatements; name: string } | null = null;

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
    const source = modelRefSource(ref, localFiles, siteUrl ?? self.location.href);
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

  /** Whether `ref` is a decoder LLM (its config.json names a supported family) or goes the encoder's way (loadModel explains any problem). */
  async modelKind(ref: ModelRef, localFiles?: Map<string, Blob>, siteUrl?: string): Promise<'encoder' | 'decoder'> {
    const bytes = await Promise.resolve()
      .then(() => modelRefSource(ref, localFiles, siteUrl ?? self.location.href).read('config.json'))
      .catch(() => null);
    return configModelKind(bytes) === 'decoder' ? 'decoder' : 'encoder';
  }

  /**
   * Load a decoder LLM from the same places as an encoder, beside the encoder (which stays loaded
   * for training); replaces the decoder loaded before once the new one is on the GPU.
   */
  async loadDecoder(ref: ModelRef, quantization: 'nf4' | 'f32', localFiles?: Map<string, Blob>, siteUrl?: string): Promise<DecoderSummary> {
    this.assertIdle('load a decoder');
    this.decoder?.assertNotGenerating('load another decoder');
    const source = modelRefSource(ref, localFiles, siteUrl ?? self.location.href);
    const decoder = await DecoderHost.open(await this.ensureEngine(), source, ref.id, quantization);
    this.decoder?.destroy();
    this.decoder = decoder;
    return decoder.summary();
  }

  /** The adapter the decoder's adapted answers use (a PEFT CAUSAL_LM folder's two files), or none. Returns its description. */
  setDecoderAdapter(files: (PeftAdapterFiles & { name: string }) | null): string | null {
    return this.requireDecoder().setAdapter(files, files?.name ?? '');
  }

  /** Answers side by side from the decoder; each token's text so far comes as an 'answer' event. */
  answers(request: AnswersRequest): Promise<AnswersResult> {
    this.assertIdle('generate answers');
    return this.requireDecoder().answers(request, (event) => this.listener(event));
  }

  /** Stop the answers being generated (their KV caches are released), or the decoder's training (statements run, clinical adapters). */
  stopAnswers(): void {
    this.decoder?.stop();
  }

  /**
   * Train the decoder on the CTD study's statements from a stored CTD dataset (its split chosen by
   * the request), its step planned into `memoryBudgetBytes` (refused with the plan when it does not
   * fit), evaluating zero-shot accuracy before and after; progress comes as 'statement-step' (with
   * the measured peak) and 'statement-scoring' events. The adapter then answers on the adapted side.
   */
  async trainDecoderStatements(request: StatementRunRequest, memoryBudgetBytes: number): Promise<StatementRunSummary> {
    this.assertIdle('train the decoder');
    const decoder = this.requireDecoder();
    const statements = await this.ctdStatements(request);
    const { fingerprint } = statements.stats;
    if (request.fingerprint !== undefined && request.fingerprint !== fingerprint) {
      throw new DatasetError(
        `These are not the statements the link was made with: ${this.statements!.name} builds statements with fingerprint ${fingerprint}, the link expects ${request.fingerprint}. Choose the same file (same content), or train on this one without the link.`,
      );
    }
    const { steps, batchSize, learningRate, seed } = request;
    return { ...(await decoder.trainStatements(statements, request.split, { steps, batchSize, learningRate, seed }, memoryBudgetBytes, (event) => this.listener(event))), fingerprint };
  }

  /** The memory plan of the statements run `request` describes, under `budgetBytes`, before it starts. */
  async planDecoderStatements(request: StatementRunRequest, budgetBytes: number): Promise<StatementPlan> {
    const decoder = this.requireDecoder();
    return decoder.planStatements(await this.ctdStatements(request), request, budgetBytes);
  }

  /** The CTD statements and split of a request, built again only when its dataset, split or seed changes. */
  private async ctdStatements(request: Pick<StatementRunRequest, 'datasetId' | 'split' | 'seed'>): Promise<CtdStatements> {
    const key = JSON.stringify([request.datasetId, request.split, request.seed]);
    if (this.statements?.key === key) return this.statements.split;
    const db = await this.data();
    const meta = await getDataset(db, request.datasetId);
    if (!meta) throw new DatasetError(`The CTD dataset ${request.datasetId} is not in this browser's storage; add it again.`);
    if (meta.kind !== 'ctd') throw new DatasetError(`${meta.name} is a ${meta.kind} dataset; statements come from a CTD gene–disease file.`);
    if (meta.status !== 'complete') throw new DatasetError(`${meta.name} is not completely read (${meta.status}); resume or add it again first.`);
    const split = buildCtdStatements(await loadCtdGraph(db, request.datasetId), request.split, request.seed, { count: meta.counts.bad, samples: meta.badSamples });
    this.statements = { key, split, name: meta.name };
    return split;
  }

  /** The adapter the decoder's statements run trained, as a PEFT CAUSAL_LM folder in a zip. */
  exportDecoderAdapterZip(): Uint8Array {
    return zip({ ...this.requireDecoder().trainedAdapterFiles() });
  }

  /**
   * The decoder with the statements run's adapter merged in, as a Hugging Face model folder in a
   * zip; progress comes as 'merge' events. Refused, with the size, where this tab cannot hold it.
   */
  async exportDecoderMergedZip(): Promise<Uint8Array> {
    this.assertIdle('merge the decoder');
    const decoder = this.requireDecoder();
    decoder.assertNotGenerating('merge the decoder');
    const deviceMemory = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
    const bytes = zip(await decoder.mergedModelFiles(deviceMemory, (done, total) => this.listener({ type: 'merge', done, total })));
    // Moved to the page, not copied: the model may take much of this tab's memory.
    return transfer(bytes, [bytes.buffer]);
  }

  /**
   * The clinical flow's domain adapter on the decoder: next-token loss on the training side of the
   * note documents (which the page read from the user's files; they stay in this tab), held-out
   * perplexity before and after; progress comes as 'clinical-step' and 'clinical-progress' events.
   * A share link's rerun passes the notes it expects: others are refused, by name, before any training.
   */
  async trainClinicalDomain(documents: NoteDocument[], settings: ClinicalSettings, expected?: FingerprintedFile[]): Promise<DomainRunSummary> {
    this.assertIdle('train a domain adapter');
    if (expected) checkNoteFingerprints(documents, expected);
    return this.requireDecoder().trainDomain(documents, settings, (event) => this.listener(event));
  }

  /**
   * The clinical flow's task adapter over the frozen domain adapter, on labelled statements (a file's
   * rows, by its name) or on every statement of a stored CTD dataset (its true associations and as
   * many false ones). A share link's rerun passes the statements' fingerprint it expects: other
   * statements are refused, naming their file, before any training.
   */
  async trainClinicalTask(statements: { name: string; rows: LabelledStatement[] } | { datasetId: string }, settings: ClinicalSettings, expectedFingerprint?: string): Promise<TaskRunSummary> {
    this.assertIdle('train a task adapter');
    const decoder = this.requireDecoder();
    let source = statements;
    if ('datasetId' in source) {
      const ctd = await this.ctdStatements({ datasetId: source.datasetId, split: 'random', seed: settings.seed });
      source = { name: this.statements!.name, rows: [...ctd.train, ...ctd.test] };
    }
    if (expectedFingerprint !== undefined) checkStatementsFingerprint(source.name, source.rows, expectedFingerprint);
    return decoder.trainTask(source.rows, settings, (event) => this.listener(event));
  }

  /** The clinical flow's domain or task adapter, as a PEFT CAUSAL_LM folder in a zip. */
  exportClinicalAdapterZip(which: 'domain' | 'task'): Uint8Array {
    return zip({ ...this.requireDecoder().clinicalAdapterFiles(which) });
  }

  /** The download a model needs (Hub: its files at the revision's commit; the bundled model comes with the app). */
  async previewModel(ref: ModelRef): Promise<ModelPreview> {
    if (ref.kind !== 'hub') return { bytes: null, toDownload: ref.kind === 'bundled' ? 0 : null };
    const source = modelRefSource(ref, undefined, self.location.href) as HubSource;
    const { commit, files } = await source.resolve();
    return { ...(await source.sizeOf(filesToLoad(new Set(files.keys())))), commit };
  }

  /**
   * Whether the Hub repository `ref` is a decoder this device can train with `shape` (sequences per
   * step × tokens) under the budget, before any weight is downloaded: only its file list and
   * config.json are fetched. Null for an encoder (previewModel tells its download); a model of any
   * other family is refused with a message naming it.
   */
  async checkDecoder(ref: ModelRef, budgetBytes: number, shape: { sequences: number; seq: number }): Promise<DecoderCheck | null> {
    if (ref.kind !== 'hub') throw new Error('only a Hugging Face Hub repository is checked before download');
    const { limits } = this.requireEngine();
    const source = modelRefSource(ref, undefined, self.location.href) as HubSource;
    const { commit, files } = await source.resolve();
    const bytes = await source.read('config.json');
    if (!bytes) throw new Error(`${ref.id}@${ref.revision} has no config.json, so it is not a Hugging Face model repository`);
    let json: { model_type?: unknown; architectures?: unknown };
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new Error(`${ref.id}@${ref.revision}/config.json is not valid JSON (${(e as Error).message})`);
    }
    if (familyOf(json?.model_type, Array.isArray(json?.architectures) ? json.architectures : [])) return null;
    const device = { budgetBytes, maxBufferSize: limits.maxBufferSize, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize };
    const fit = checkDecoderFit(ref.id, json, files, device, { ...APP_DECODER_TRAINING, ...shape });
    return { ...fit, commit, toDownload: (await source.sizeOf(fit.files)).toDownload };
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
    await this.buildEncoder(this.encoder?.quantization ?? 'nf4', this.encoder?.baseParts);
    return adapter ? describePeftAdapter(adapter) : null;
  }

  /** The memory plan for `config` under the budget, and its estimate checked against this device's limits. */
  checkMemory(config: RunConfig, budgetBytes: number): MemoryCheck {
    const engine = this.requireEngine();
    const plan = this.memoryPlan(config, budgetBytes);
    const { maxBufferSize, maxStorageBufferBindingSize } = engine.limits;
    const { sequencesPerPass, checkpointEvery, storage, relativeTime, fits } = plan;
    return {
      plan: { sequencesPerPass, checkpointEvery, storage, relativeTime, fits },
      description: describePlan(plan, budgetBytes),
      estimate: plan.estimate,
      maxBufferSize,
      maxStorageBufferBindingSize,
      problems: bufferLimitProblems(plan.estimate, engine.limits),
    };
  }

  /**
   * The exact step layout (gradient caching, checkpointing, storage precision) planTraining chooses
   * for the budget, for the step's sequences (runStepShape).
   */
  private memoryPlan(config: RunConfig, budgetBytes: number): MemoryPlan {
    const engine = this.requireEngine();
    const model = this.requireModel();
    return planTraining({
      config: model.files.config,
      lora: config.lora,
      shape: runStepShape(config, model.files.config.maxSequenceLength),
      base: { quantization: config.quantization },
      budgetBytes,
      maxBufferBytes: Math.min(engine.limits.maxStorageBufferBindingSize, engine.limits.maxBufferSize),
    });
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
    // The plan's storage precision covers the base's f32 parts too, as its estimate counts them.
    await this.prepareModel(config, this.memoryPlan(config, options.memoryBudgetBytes).storage);
    await this.tuneKernels(config);
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
          await this.trainFromCheckpoint(run, feed, options.memoryBudgetBytes);
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

  // ---------------------------------------------------------------- run history (IndexedDB, read and written only here)

  async runHistory(): Promise<RunHistory> {
    const [runs, unfinished] = await Promise.all([listRuns(), unfinishedRuns()]);
    return { runs, unfinished };
  }

  /** Give up an unfinished run: it stays in the history as cancelled. */
  async discardRun(runId: string): Promise<void> {
    await updateRun(runId, { status: 'cancelled' });
  }

  /** Remove a run and its checkpoint. */
  async deleteRun(runId: string): Promise<void> {
    await deleteRun(runId);
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
      return nearestNeighbours(q, analysis.labelled.map((t, i) => ({ ...t, vector: corpus[i] })), k);
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
    return zip(mergedModelFolder(files, adapters, runSentenceSettings(this.runAdapter!.config)));
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

  private async trainFromCheckpoint(run: ActiveRun, feed: ReturnType<typeof trainingFeed>, memoryBudgetBytes: number): Promise<void> {
    const { config } = run;
    const checkpoint = await getCheckpoint(run.id);
    const trainer = this.newTrainer(run.id, config, this.memoryPlan(config, memoryBudgetBytes));
    const engine = this.requireEngine();
    try {
      if (checkpoint) trainer.restore(checkpoint.snapshot);
      run.history = checkpoint ? [...checkpoint.history] : [];
      this.emitState(run, run.paused ? 'paused' : 'training');
      const total = config.train.steps;
      await runTrainingLoop(trainer, { weights: this.requireModel().files.weights, lora: config.lora }, {
        examples: (step, micro) => feed.examples(step, micro),
        beforeStep: async () => {
          await run.whenRunning();
          return !run.cancelled;
        },
        onStep: (report, seconds) => {
          run.history.push(report);
          run.recordStepTime(seconds);
          this.listener({
            type: 'step',
            runId: run.id,
            report,
            totalSteps: total,
            examplesPerSecond: report.examples / seconds,
            etaSeconds: (total - report.step) * run.secondsPerStep(),
            peakBytes: engine.peakBytes,
          });
        },
        checkpointDue: (step) => step % config.train.checkpointEvery === 0 || step === total,
        saveCheckpoint: async (snapshot) => {
          await saveCheckpoint(run.id, snapshot, run.history);
          this.listener({ type: 'checkpoint', runId: run.id, step: snapshot.step });
          if (run.liveMap) await this.emitLiveMap(run, snapshot.step);
        },
      });
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

  /** The run's trainer, its step laid out by the memory plan (the loss and gradients are the same whatever the layout). */
  private newTrainer(runId: string, config: RunConfig, plan: MemoryPlan): Trainer {
    const { files } = this.requireModel();
    this.attachRunAdapter(runId, config, initLoraTensors(files.config, config.lora, config.seeds.init, { pooler: hasPooler(files.weights) }), true);
    return new Trainer(this.sentenceEncoder(config), {
      ...config.train,
      totalSteps: config.train.steps,
      seed: config.seeds.train,
      sequencesPerPass: plan.sequencesPerPass,
      checkpointEvery: plan.checkpointEvery,
      storage: plan.storage,
    });
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
    return {
      // The commit, not a branch that may move: PEFT then loads the very base the adapter was trained on.
      config: peftConfigOf(run.config.lora, { id: ref.id, revision: ref.kind === 'hub' ? (files.source.commit ?? ref.revision) : undefined }),
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
    const baseParts = this.encoder?.baseParts;
    this.encoder = null; // its buffers went with the old device
    const run = this.runAdapter;
    this.runAdapter = null;
    await this.buildEncoder(quantization, baseParts);
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

  private async buildEncoder(quantization: 'nf4' | 'f32', baseParts: StoragePrecision = 'f32'): Promise<void> {
    const model = this.requireModel();
    const engine = await this.ensureEngine();
    this.encoder?.destroy();
    this.encoder = await BertEncoder.create(engine, model.files.config, model.files.weights, { quantization, baseParts });
    if (this.frozen) {
      const { adapter } = this.frozen;
      this.encoder.adapters.push(new GpuAdapter(engine, model.files.config, loraConfigOf(adapter), adapter.tensors, false));
    }
  }

  /**
   * On a real GPU, choose the fastest matmul variants for the run's linear layers (cached per
   * adapter and browser in IndexedDB, so only the first run on a GPU pays for it). A software
   * fallback keeps the fixed kernels: tuning there takes minutes and gains nothing. Token rows per
   * step are taken as anchors plus positives at the maximum length; nearby sizes share a shape class.
   */
  private async tuneKernels(config: RunConfig): Promise<void> {
    const engine = this.requireEngine();
    if (engine.adapter.software) return;
    const { files } = this.requireModel();
    const seq = config.maxLength ?? files.config.maxSequenceLength;
    await autotuneMatmuls(engine, linearProducts(files.config, 2 * config.train.batchSize * seq, config.quantization), { cache: indexedDbTuneCache() });
  }

  /**
   * The loaded model must be the run's; the base is built again if the run asks for the other
   * quantisation, or `baseParts` (default: as they are) for the other storage of its f32 parts.
   */
  private async prepareModel(config: RunConfig, baseParts?: StoragePrecision): Promise<void> {
    const model = this.requireModel();
    if (JSON.stringify(model.ref) !== JSON.stringify(config.model)) throw new Error(`This run is for the model ${config.model.id}, but ${model.ref.id} is loaded.`);
    if ((config.frozenAdapter?.fingerprint ?? null) !== (this.frozen?.fingerprint ?? null)) {
      throw new Error(config.frozenAdapter ? `This run stacks the frozen adapter ${config.frozenAdapter.name}; attach it first.` : 'This run has no frozen adapter; remove the attached one first.');
    }
    await this.ensureEncoder();
    const parts = baseParts ?? this.encoder!.baseParts;
    if (this.encoder!.quantization !== config.quantization || this.encoder!.baseParts !== parts) {
      this.runAdapter = null;
      await this.buildEncoder(config.quantization, parts);
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
    // The decoder's training holds the GPU queue between its steps as a run does.
    if (this.decoder?.isTraining) throw new Error(`Cannot ${what} while the decoder trains; stop it first.`);
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new Error('The GPU is not connected yet.');
    return this.engine;
  }

  private requireModel(): NonNullable<LabSession['model']> {
    if (!this.model) throw new Error('No model is loaded yet.');
    return this.model;
  }

  private requireDecoder(): DecoderHost {
    if (!this.decoder) throw new Error('No decoder is loaded yet.');
    return this.decoder;
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
