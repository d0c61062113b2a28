/**
 * The page's state of the lab: GPU, model, data, the run configuration, the run being trained, its
 * evaluation and the run history. GPU work goes to the engine worker and data work to the ingest
 * worker; this module only keeps what the page shows, so every handler is short (no main-thread
 * task near 50 ms while training).
 */
import * as Comlink from 'comlink';
import type { BuildMeta, DatasetMeta, IngestProgress } from '../data/index.ts';
import type { FileProgress } from '../model/file-source.ts';
import { APP_DECODER_TRAINING } from '../model/decoder-fit.ts';
import { formatBytes } from '../model/memory.ts';
import { describeSettings } from '../model/sentence-config.ts';
import type { ModelRef } from '../model/model-ref.ts';
import { APP_MEMORY_BUDGET_GIB, CTD_STUDY_TRAINING } from '../train/defaults.ts';
import { type BuildRecipe, type DataRef, type RunConfig, defaultRunConfig, demoDatasetId, modelLabel, newRunId, withSentenceSettings } from '../train/run-config.ts';
import type { ClinicalRunConfig, SharedRun, StatementRunConfig } from '../train/shared-run.ts';
import type { DecoderCheck, Evaluation, GpuInfo, MemoryCheck, ModelPreview, ModelSummary, Neighbour, RunRecord, RunState, SessionEvent, TsneMap } from '../app/protocol.ts';
import type { StepReport } from '../train/trainer.ts';
import { readPickedAdapter } from './adapter-files.ts';
import { type RemoteData, startIngestWorker } from './data-client.ts';
import { DecoderAnswers } from './decoder-answers.svelte.ts';
import { ClinicalNotes } from './clinical-notes.svelte.ts';
import { DecoderStudy } from './decoder-study.svelte.ts';
import { DEMO_SETS, type DemoSet } from './demo-sets.ts';
import { GUIDED_PRESETS } from './guided-presets.ts';
import { type RemoteSession, startEngineWorker } from './engine-client.ts';
import { readShareLink, shareLink } from './share-link.ts';

export type Phase = 'idle' | 'busy' | 'ready' | 'error';

export interface LiveRun {
  id: string;
  state: RunState;
  steps: StepReport[];
  totalSteps: number;
  examplesPerSecond: number;
  etaSeconds: number;
  checkpointStep: number;
  /** The engine's measured peak GPU memory so far (0 before the first step). */
  peakBytes: number;
  /** Times training came back from a lost GPU device in this run. */
  recoveries: number;
  message: string | null;
}

export interface IngestView {
  name: string;
  datasetId: string;
  progress: IngestProgress | null;
}

const LIVE_STATES: RunState[] = ['training', 'paused', 'recovering'];

export class Lab {
  gpu = $state<GpuInfo | null>(null);
  /** Set when there is no usable WebGPU; `gpuErrorName` tells a missing API from a failed device. */
  gpuError = $state<string | null>(null);
  gpuErrorName = $state<string | null>(null);

  /** The guided flow's default path: the demo preset, whose before/after change shows in a short run. */
  config = $state<RunConfig>(GUIDED_PRESETS[0].apply(defaultRunConfig(GUIDED_PRESETS[0].demo.dataRef(''))));

  modelPhase = $state<Phase>('idle');
  model = $state<ModelSummary | null>(null);
  modelError = $state<string | null>(null);
  downloads = $state<Record<string, FileProgress>>({});
  log = $state<string[]>([]);
  frozenAdapter = $state<string | null>(null);
  frozenError = $state<string | null>(null);

  datasets = $state<DatasetMeta[]>([]);
  builds = $state<BuildMeta[]>([]);
  ingesting = $state<IngestView | null>(null);
  dataPhase = $state<Phase>('idle');
  dataError = $state<string | null>(null);
  /** The dataset the training set is built from, and the build in use. */
  datasetId = $state<string | null>(null);
  build = $state<BuildMeta | null>(null);

  memory = $state<MemoryCheck | null>(null);
  /** The budget the training step is planned into (Advanced settings). */
  memoryBudgetGiB = $state(APP_MEMORY_BUDGET_GIB);
  memoryError = $state<string | null>(null);

  run = $state<LiveRun | null>(null);
  runError = $state<string | null>(null);
  /** Show a t-SNE map that updates at every checkpoint while training (a view option, not part of the run). */
  liveMapWanted = $state(false);
  liveMap = $state<(TsneMap & { step: number }) | null>(null);

  evaluationPhase = $state<Phase>('idle');
  evaluation = $state<Evaluation | null>(null);
  evaluationProgress = $state<{ done: number; total: number } | null>(null);
  evaluationError = $state<string | null>(null);
  maps = $state<Partial<Record<'base' | 'adapted', TsneMap>>>({});
  mapError = $state<string | null>(null);
  neighbours = $state<{ query: string; base: Neighbour[]; adapted: Neighbour[] } | null>(null);
  exploreError = $state<string | null>(null);

  history = $state<RunRecord[]>([]);
  /** Runs something was exported from in this page, so that deleting one that was not can say so. */
  exportedRuns = $state<string[]>([]);
  unfinished = $state<RunRecord[]>([]);
  /**
   * A configuration opened from a share link: what its model will download (looked up before the
   * user confirms; nothing is downloaded or run until then), for a Hub decoder whether it fits this
   * device, whether it was confirmed, what it still needs, and whether it has been rerun.
   */
  shared = $state<{ config: SharedRun; preview: ModelPreview | null; fit: DecoderCheck | null; confirmed: boolean; waitingFor: string | null; rerun: boolean } | null>(null);
  shareError = $state<string | null>(null);

  /** A decoder LLM beside the model being trained, and its answers side by side. */
  readonly answers = new DecoderAnswers(
    () => this.requireSession(),
    (ref) => {
      this.study.forDecoder(ref);
      this.clinical.forDecoder(ref);
    },
  );
  /** The CTD statements run of that decoder, whose adapter the answers' adapted side then uses. */
  readonly study = new DecoderStudy(
    () => this.requireSession(),
    this.answers,
    () => this.memoryBudgetGiB * 2 ** 30,
    (id) => this.sourceOf(id),
  );
  /** The clinical two-adapter flow of that decoder: a domain adapter on the user's notes, a task adapter over it. */
  readonly clinical = new ClinicalNotes(
    () => this.requireSession(),
    this.answers,
    (id) => this.sourceOf(id),
  );

  private session: RemoteSession | null = null;
  private loadedModel: ModelRef | null = null;
  private data: RemoteData | null = null;

  /** Start the workers, open the GPU, read a share link and the run history, load the model and data. */
  async start(pageUrl: string): Promise<void> {
    const { session, worker } = startEngineWorker((event) => this.onEvent(event));
    this.session = session;
    this.data = startIngestWorker();
    worker.addEventListener('error', (e) => (this.gpuError = `The engine worker stopped: ${e.message || 'it could not be loaded'}`));
    if (import.meta.env.DEV) (globalThis as { __qloraTest?: unknown }).__qloraTest = { loseDevice: () => session.loseDeviceForTest() };
    let shared: SharedRun | null = null;
    try {
      shared = readShareLink(pageUrl);
    } catch (e) {
      this.shareError = (e as Error).message;
    }
    await Promise.all([this.refreshHistory(), this.refreshDatasets()]);
    try {
      this.gpu = await session.connect();
    } catch (e) {
      this.gpuError = (e as Error).message;
      this.gpuErrorName = (e as Error).name;
      return;
    }
    if (shared) await this.offerShared(shared);
    else await this.openDemo();
  }

  private async openDemo(): Promise<void> {
    await this.loadModel(this.config.model);
    await this.useDemo(GUIDED_PRESETS[0].demo);
  }

  // ---------------------------------------------------------------- model

  /**
   * Load a model. A new run takes the model folder's pooling, normalisation, length and prompts
   * (editable afterwards); a stored run or a share link keeps its own (`keepSettings`).
   */
  async loadModel(model: ModelRef, localFiles?: Map<string, File>, keepSettings = false): Promise<boolean> {
    const session = this.requireSession();
    const ref = $state.snapshot(model); // state proxies cannot be posted to a worker
    const previous = this.model;
    this.modelPhase = 'busy';
    this.modelError = null;
    this.downloads = {};
    try {
      this.model = await session.loadModel(ref, this.config.quantization, localFiles, new URL(import.meta.env.BASE_URL, location.href).href);
      this.config.model = ref;
      if (!keepSettings) this.config = withSentenceSettings($state.snapshot(this.config) as RunConfig, this.model.sentence.settings);
      this.loadedModel = ref;
      this.frozenAdapter = null;
      this.config.frozenAdapter = null;
      this.clearEvaluation();
      this.modelPhase = 'ready';
      await this.checkMemory();
      return true;
    } catch (e) {
      // The worker keeps the model it had: a broken folder or a failed download loses nothing, and
      // the form goes back to that model so the page never shows one model as loaded and another as chosen.
      const kept = previous ? this.loadedModel : null;
      this.modelError = kept ? `${modelLabel(ref)} could not be loaded: ${(e as Error).message}\n${modelLabel(kept)} stays loaded.` : (e as Error).message;
      if (kept) this.config.model = structuredClone(kept);
      this.modelPhase = previous ? 'ready' : 'error';
      return false;
    }
  }

  /**
   * A Hub decoder's download size, memory plan and fit on this GPU for the run's batch at `seq`
   * tokens under the memory budget, before anything is downloaded; null for an encoder.
   */
  async checkDecoder(ref: Extract<ModelRef, { kind: 'hub' }>, seq: number): Promise<DecoderCheck | null> {
    return this.requireSession().checkDecoder({ ...ref }, this.memoryBudgetGiB * 2 ** 30, { sequences: this.config.train.batchSize, seq });
  }

  /** Load the model the user chose: a decoder LLM goes beside the model being trained (for the answers side by side), anything else replaces it. */
  async loadChosenModel(model: ModelRef, localFiles?: Map<string, File>): Promise<void> {
    const ref = $state.snapshot(model);
    const siteUrl = new URL(import.meta.env.BASE_URL, location.href).href;
    if ((await this.requireSession().modelKind(ref, localFiles, siteUrl)) === 'decoder') await this.answers.load(ref, this.config.quantization, localFiles);
    else await this.loadModel(ref, localFiles);
  }

  /** Stack a PEFT adapter (adapter_config.json + adapter_model.safetensors) frozen under the new one. */
  async setFrozenAdapter(files: File[] | null): Promise<void> {
    this.frozenError = null;
    try {
      if (!files) {
        await this.requireSession().setFrozenAdapter(null);
        this.frozenAdapter = null;
        this.config.frozenAdapter = null;
        return;
      }
      const { files: adapterFiles, name } = await readPickedAdapter(files);
      const fingerprint = await digest(adapterFiles['adapter_model.safetensors']);
      this.frozenAdapter = await this.requireSession().setFrozenAdapter({ ...adapterFiles, fingerprint, name });
      this.config.frozenAdapter = { name, fingerprint };
      this.clearEvaluation();
    } catch (e) {
      this.frozenError = (e as Error).message;
    }
  }

  async checkMemory(): Promise<void> {
    if (!this.session || this.modelPhase !== 'ready') return;
    try {
      this.memory = await this.session.checkMemory($state.snapshot(this.config), this.memoryBudgetGiB * 2 ** 30);
      this.memoryError = null;
    } catch (e) {
      this.memory = null;
      this.memoryError = (e as Error).message;
    }
  }

  // ---------------------------------------------------------------- data

  async refreshDatasets(): Promise<void> {
    const data = this.requireData();
    [this.datasets, this.builds] = await Promise.all([data.listDatasets(), data.listBuilds()]);
  }

  /** Ingest a bundled demo set (once: it is kept in the browser) with its evaluation set, and build it (by its own recipe unless given one). */
  async useDemo(demo: DemoSet, build: BuildRecipe = demo.build): Promise<boolean> {
    const ok = (await this.ingestDemo(demo.id, demo.url, demo.label)) && (!demo.evaluation || (await this.ingestDemo(demo.evaluation.id, demo.evaluation.url, demo.evaluation.label)));
    if (!ok) return false;
    return this.buildData(demoDatasetId(demo.id), build, { kind: 'demo', id: demo.id }, demo.evaluation ? { kind: 'demo', id: demo.evaluation.id } : { kind: 'test-split' });
  }

  /** Ingest a bundled demo set (once) without building it for the encoder's run; returns its dataset id, or null when it could not be read. */
  async addDemoDataset(demo: DemoSet): Promise<string | null> {
    return (await this.ingestDemo(demo.id, demo.url, demo.label)) ? demoDatasetId(demo.id) : null;
  }

  /** Ingest the user's file (CTD or pairs, detected from its header) and build it with `recipe`. */
  async addFile(file: File, recipe: (kind: DatasetMeta['kind']) => BuildRecipe): Promise<boolean> {
    const datasetId = crypto.randomUUID();
    const meta = await this.ingest(file, datasetId, file.name);
    if (!meta) return false;
    return this.buildData(datasetId, recipe(meta.kind), { kind: 'file', name: file.name }, { kind: 'test-split' });
  }

  async cancelIngest(): Promise<void> {
    if (this.ingesting) await this.requireData().cancel(this.ingesting.datasetId);
  }

  async deleteDataset(id: string): Promise<void> {
    await this.requireData().deleteDataset(id);
    if (this.datasetId === id) {
      this.datasetId = null;
      this.build = null;
    }
    await this.refreshDatasets();
  }

  /** Build train/test splits of a stored dataset (seeded by the data seed) and make them the run's data. */
  async buildData(datasetId: string, recipe: BuildRecipe, source: DataRef['source'], evaluation: DataRef['evaluation']): Promise<boolean> {
    const data = this.requireData();
    this.dataPhase = 'busy';
    this.dataError = null;
    try {
      const seed = this.config.seeds.data;
      const build =
        recipe.kind === 'ctd'
          ? await data.buildCtd(datasetId, { seed, negatives: recipe.negatives, split: recipe.split, testFraction: recipe.testFraction, template: recipe.template })
          : await data.buildPairs(datasetId, { seed, testFraction: recipe.testFraction });
      this.datasetId = datasetId;
      this.build = build;
      this.config.data = { source, build: recipe, fingerprint: build.stats.fingerprint, evaluation };
      this.dataPhase = 'ready';
      this.clearEvaluation();
      await this.refreshDatasets();
      return true;
    } catch (e) {
      this.dataError = (e as Error).message;
      this.dataPhase = 'error';
      return false;
    }
  }

  private async ingestDemo(id: string, url: string, label: string): Promise<boolean> {
    const datasetId = demoDatasetId(id);
    const existing = this.datasets.find((d) => d.id === datasetId);
    if (existing?.status === 'complete') return true;
    if (existing) await this.requireData().deleteDataset(datasetId);
    return (await this.ingest({ url: new URL(url, new URL(import.meta.env.BASE_URL, location.href)).href, name: label }, datasetId, label)) !== null;
  }

  private async ingest(input: File | { url: string; name: string }, datasetId: string, name: string): Promise<DatasetMeta | null> {
    const data = this.requireData();
    this.dataPhase = 'busy';
    this.dataError = null;
    this.ingesting = { name, datasetId, progress: null };
    try {
      const meta = await data.ingest(input, { datasetId, name }, Comlink.proxy((progress: IngestProgress) => this.ingesting && (this.ingesting.progress = progress)));
      await this.refreshDatasets();
      if (meta.status !== 'complete') {
        this.dataError = meta.error ?? `${name} was not completely read (${meta.status}).`;
        this.dataPhase = 'error';
        return null;
      }
      return meta;
    } catch (e) {
      this.dataError = (e as Error).message + (await this.spaceNeeded(e));
      this.dataPhase = 'error';
      await this.refreshDatasets();
      return null;
    } finally {
      this.ingesting = null;
    }
  }

  /** For a full disk during an ingest: how much of the file is left to store, against the site's quota. */
  private async spaceNeeded(error: unknown): Promise<string> {
    const progress = this.ingesting?.progress;
    if ((error as Error).name !== 'StorageFullError' || !progress || progress.totalBytes === 0) return '';
    const left = Math.max(0, progress.totalBytes - progress.bytesRead);
    const estimate = await navigator.storage?.estimate?.().catch(() => undefined);
    const quota = estimate?.usage !== undefined && estimate.quota !== undefined ? ` (this site uses ${formatBytes(estimate.usage)} of ${formatBytes(estimate.quota)})` : '';
    return ` Storing the rest of the file needs at least ${formatBytes(left)} more${quota}.`;
  }

  // ---------------------------------------------------------------- training

  get training(): boolean {
    return this.run !== null && LIVE_STATES.includes(this.run.state);
  }

  async startTraining(): Promise<void> {
    await this.train(newRunId(), $state.snapshot(this.config), false, []);
  }

  /** Resume a run a closed tab (or a lost device) left unfinished, from its last checkpoint. */
  async resumeRun(run: RunRecord): Promise<void> {
    const record = $state.snapshot(run);
    this.runError = null;
    if (!(await this.useModelOf(record.config))) return;
    await this.train(record.id, record.config, true, record.history);
  }

  /** Take a stored run's configuration, loading its model unless it is the one loaded. */
  private async useModelOf(config: RunConfig): Promise<boolean> {
    const loaded = this.modelPhase === 'ready' ? this.loadedModel : null;
    this.config = structuredClone(config);
    if (JSON.stringify(loaded) === JSON.stringify(config.model)) return true;
    if (config.model.kind === 'local') {
      this.runError = `This run used the local model folder ${config.model.id}: load that folder in the model section, then try again.`;
      return false;
    }
    return this.loadModel(config.model, undefined, true);
  }

  async discardRun(record: RunRecord): Promise<void> {
    await this.requireSession().discardRun(record.id);
    await this.refreshHistory();
  }

  pause(): void {
    void this.requireSession().pause();
  }

  resume(): void {
    void this.requireSession().resume();
  }

  cancel(): void {
    void this.requireSession().cancel();
  }

  private async train(id: string, config: RunConfig, resume: boolean, history: StepReport[]): Promise<void> {
    const session = this.requireSession();
    this.runError = null;
    this.clearEvaluation();
    this.liveMap = null;
    this.run = { id, state: 'training', steps: [...history], totalSteps: config.train.steps, examplesPerSecond: 0, etaSeconds: Number.NaN, checkpointStep: history.at(-1)?.step ?? 0, peakBytes: 0, recoveries: 0, message: null };
    let state: RunState = 'failed';
    try {
      state = await session.train(id, config, { resume, liveMap: this.liveMapWanted, memoryBudgetBytes: this.memoryBudgetGiB * 2 ** 30 });
    } catch (e) {
      this.runError = (e as Error).message;
      if (this.run?.id === id) this.run.state = 'failed';
    }
    await this.refreshHistory();
    // The run may have tuned the matmul kernels for this GPU: the panel shows the choices.
    this.gpu = await session.connect();
    if (state === 'done') await this.evaluate();
  }

  // ---------------------------------------------------------------- evaluation and exploration

  async evaluate(): Promise<void> {
    const run = this.run;
    if (!run) return;
    this.evaluationPhase = 'busy';
    this.evaluationError = null;
    try {
      this.evaluation = await this.requireSession().evaluate(run.id);
      this.evaluationPhase = 'ready';
      await this.refreshHistory();
    } catch (e) {
      this.evaluationError = (e as Error).message;
      this.evaluationPhase = 'error';
    }
  }

  /** Show a finished run from the history: attach its adapter and show its stored evaluation (evaluating it only if it has none). */
  async openRun(run: RunRecord): Promise<void> {
    const record = $state.snapshot(run);
    this.runError = null;
    try {
      if (!(await this.useModelOf(record.config))) return;
      await this.requireSession().useRun(record.id);
      this.run = { id: record.id, state: 'done', steps: record.history, totalSteps: record.config.train.steps, examplesPerSecond: 0, etaSeconds: 0, checkpointStep: record.checkpointStep, peakBytes: 0, recoveries: 0, message: null };
      this.clearEvaluation();
      const saved = await this.requireSession().savedEvaluation(record.id);
      if (!saved) return await this.evaluate();
      this.evaluation = saved;
      this.evaluationPhase = 'ready';
    } catch (e) {
      this.runError = (e as Error).message;
    }
  }

  async makeMap(model: 'base' | 'adapted', dims: 2 | 3): Promise<void> {
    this.mapError = null;
    try {
      this.maps[model] = await this.requireSession().tsne(model, dims);
    } catch (e) {
      this.mapError = (e as Error).message;
    }
  }

  async explore(query: string, k = 5): Promise<void> {
    this.exploreError = null;
    try {
      this.neighbours = { query, ...(await this.requireSession().nearest(query, k)) };
    } catch (e) {
      this.exploreError = (e as Error).message;
    }
  }

  /** Zipped exports made in the engine worker: the PEFT adapter, the merged model, the run for sentence-transformers, the embeddings (TSV). */
  async exportZip(what: 'adapter' | 'merged' | 'run' | 'embeddings-base' | 'embeddings-adapted'): Promise<Uint8Array> {
    const session = this.requireSession();
    const bytes = await (what === 'adapter'
      ? session.exportAdapterZip()
      : what === 'merged'
        ? session.exportMergedZip()
        : what === 'run'
          ? session.exportRunZip()
          : session.exportEmbeddingsZip(what === 'embeddings-base' ? 'base' : 'adapted'));
    if (this.run && !this.exportedRuns.includes(this.run.id)) this.exportedRuns.push(this.run.id);
    return bytes;
  }

  private clearEvaluation(): void {
    this.evaluation = null;
    this.evaluationPhase = 'idle';
    this.maps = {};
    this.neighbours = null;
  }

  // ---------------------------------------------------------------- history and share links

  async refreshHistory(): Promise<void> {
    const { runs, unfinished } = await this.requireSession().runHistory();
    [this.history, this.unfinished] = [runs, unfinished];
  }

  async deleteRun(id: string): Promise<void> {
    await this.requireSession().deleteRun(id);
    await this.refreshHistory();
  }

  /** A link to this setup; a Hub model is pinned to the commit its revision resolved to, so the link reruns on the same weights. */
  shareUrl(): string {
    const config = $state.snapshot(this.config) as RunConfig;
    const commit = this.model?.commit;
    if (config.model.kind === 'hub' && commit) config.model = { ...config.model, revision: commit };
    return shareLink(config, location.href);
  }

  describeModel(): string {
    return modelLabel(this.config.model);
  }

  /** The loaded model folder's sentence settings and where each came from (a file, or "default"). */
  describeModelSettings(): string {
    return this.model ? describeSettings(this.model.sentence.settings, this.model.sentence.origins) : '';
  }

  /**
   * Show what a share link will download and run, and wait for the user to confirm it. A Hub
   * decoder is checked against this device first: one that does not fit is refused with its plan.
   */
  private async offerShared(config: SharedRun): Promise<void> {
    this.shared = { config, preview: null, fit: null, confirmed: false, waitingFor: null, rerun: false };
    const session = this.requireSession();
    try {
      const decoderRun = config.kind === 'decoder-statements' || config.kind === 'decoder-clinical';
      const sequences = config.kind === 'decoder-statements' ? config.batchSize : CTD_STUDY_TRAINING.batchSize;
      const fit =
        decoderRun && config.model.kind === 'hub' ? await session.checkDecoder({ ...config.model }, this.memoryBudgetGiB * 2 ** 30, { sequences, seq: APP_DECODER_TRAINING.seq }) : null;
      this.shared.fit = fit;
      if (fit && !fit.fits) this.shareError = `This link's decoder ${modelLabel(config.model)} does not fit this device, so it will not be downloaded: ${fit.problems.join(' ')}`;
      // The fit check has looked up the decoder's download already.
      this.shared.preview = fit ? { bytes: fit.downloadBytes, toDownload: fit.toDownload, commit: fit.commit } : await session.previewModel(config.model);
    } catch (e) {
      this.shareError = `Could not look up the link's model ${modelLabel(config.model)}: ${(e as Error).message}`;
    }
  }

  /** The user confirmed the share link: restore and rerun it (never a decoder the device cannot fit). */
  async confirmShared(): Promise<void> {
    const shared = this.shared;
    if (!shared || shared.confirmed || shared.fit?.fits === false) return;
    shared.confirmed = true;
    this.shareError = null;
    const config = $state.snapshot(shared.config) as SharedRun;
    if (config.kind === 'decoder-statements') await this.openSharedStatements(config);
    else if (config.kind === 'decoder-clinical') await this.openSharedClinical(config);
    else await this.openShared(config);
  }

  /** The user declined the share link: nothing of it is loaded; the page opens on the demo as usual. */
  async declineShared(): Promise<void> {
    this.shared = null;
    this.shareError = null;
    history.replaceState(null, '', location.pathname + location.search);
    await this.openDemo();
  }

  /**
   * Restore a shared configuration: load its model, rebuild its data (a demo set at once; the
   * user's own file once they choose it, checked by fingerprint) and rerun it.
   */
  private async openShared(config: RunConfig): Promise<void> {
    this.config = config;
    const source = config.data.source;
    this.shared!.waitingFor = source.kind === 'file' ? source.name : null;
    if (config.model.kind === 'local') {
      this.shareError = `This link trains the local model folder ${config.model.id}: load that folder in the model section.`;
      return;
    }
    if (!(await this.loadModel(config.model, undefined, true))) return;
    if (source.kind === 'demo') {
      const demo = DEMO_SETS.find((d) => d.id === source.id);
      if (!demo) {
        this.shareError = `This link uses a demo set this version of the app does not have (${source.id}).`;
        return;
      }
      if (!(await this.ingestDemo(demo.id, demo.url, demo.label))) return;
      if (demo.evaluation && !(await this.ingestDemo(demo.evaluation.id, demo.evaluation.url, demo.evaluation.label))) return;
      await this.rerunShared(demoDatasetId(demo.id));
    }
  }

  /**
   * Restore a shared decoder statements run: load its decoder beside the encoder, add its CTD data (a
   * demo set at once; the user's own file once they choose it) and rerun it, the statements checked
   * by fingerprint before any training.
   */
  private async openSharedStatements(config: StatementRunConfig): Promise<void> {
    if (!(await this.loadSharedDecoder(config, 'train on CTD statements'))) return;
    const datasetId = await this.sharedCtdDataset(config.data.source);
    if (datasetId) await this.rerunSharedStatements(datasetId, config);
  }

  /**
   * A shared decoder run's CTD data, asked for once its decoder is loaded (loading one starts the
   * decoder's forms afresh): a demo set is added at once (its id returned); for the user's own file
   * the link waits for it (null), as it does when the demo set is unknown (the reason shown).
   */
  private async sharedCtdDataset(source: DataRef['source']): Promise<string | null> {
    if (source.kind === 'file') {
      this.shared!.waitingFor = source.name;
      return null;
    }
    const demo = DEMO_SETS.find((d) => d.id === source.id && d.ctd);
    if (!demo) {
      this.shareError = `This link uses a CTD demo set this version of the app does not have (${source.id}).`;
      return null;
    }
    return this.addDemoDataset(demo);
  }

  /** Load a shared decoder run's decoder beside the encoder; false (the reason shown) when it cannot be. */
  private async loadSharedDecoder(config: StatementRunConfig | ClinicalRunConfig, then: string): Promise<boolean> {
    if (config.model.kind === 'local') {
      this.shareError = `This link trains the local decoder folder ${config.model.id}: load that folder under "Answers side by side", then ${then}.`;
      return false;
    }
    await this.answers.load(config.model, config.quantization);
    if (JSON.stringify($state.snapshot(this.answers.ref)) === JSON.stringify(config.model)) return true;
    this.shareError = this.answers.error ?? `The link's decoder ${modelLabel(config.model)} could not be loaded.`;
    return false;
  }

  /**
   * Restore a shared clinical run: load its decoder, add its CTD data when the task used some (a demo
   * set at once; the user's own file once they choose it), then wait in the clinical section for the
   * notes and statements file, which are checked by fingerprint when the user starts the rerun.
   */
  private async openSharedClinical(config: ClinicalRunConfig): Promise<void> {
    if (!(await this.loadSharedDecoder(config, 'train the clinical adapters'))) return;
    this.clinical.shared = { config, datasetId: null };
    if (config.task.kind === 'ctd') this.clinical.shared.datasetId = await this.sharedCtdDataset(config.task.source);
  }

  private async rerunSharedStatements(datasetId: string, config: StatementRunConfig): Promise<void> {
    const { split, steps, batchSize, learningRate, seed } = config;
    this.study.datasetId = datasetId;
    this.study.settings = { split, steps, batchSize, learningRate, seed };
    this.shared!.rerun = true;
    await this.study.train(config.data.fingerprint);
    // Another file than the sender's is refused by fingerprint (the study says so): ask for it again.
    if (this.study.phase === 'error' && config.data.source.kind === 'file') {
      this.shared!.rerun = false;
      this.shared!.waitingFor = config.data.source.name;
    }
  }

  /** Where a stored dataset came from: a bundled demo set (by its id) or the user's file (by its name). */
  private sourceOf(datasetId: string): DataRef['source'] | null {
    const demo = DEMO_SETS.find((d) => demoDatasetId(d.id) === datasetId);
    if (demo) return { kind: 'demo', id: demo.id };
    const meta = this.datasets.find((d) => d.id === datasetId);
    return meta ? { kind: 'file', name: meta.source.name } : null;
  }

  /** The user chose the file a shared configuration needs: ingest it, rebuild, compare fingerprints, rerun. */
  async provideSharedFile(file: File): Promise<void> {
    const shared = this.shared;
    if (!shared) return;
    const datasetId = crypto.randomUUID();
    if (!(await this.ingest(file, datasetId, file.name))) return;
    shared.waitingFor = null;
    await this.rerunShared(datasetId);
  }

  private async rerunShared(datasetId: string): Promise<void> {
    const shared = this.shared!;
    if (shared.config.kind === 'decoder-statements') return this.rerunSharedStatements(datasetId, $state.snapshot(shared.config) as StatementRunConfig);
    if (shared.config.kind === 'decoder-clinical') {
      // The CTD file the task adapter trains on; the rerun starts in the clinical section once the notes are given too.
      if (this.clinical.shared) this.clinical.shared.datasetId = datasetId;
      return;
    }
    const { data } = shared.config;
    const expected = data.fingerprint;
    if (!(await this.buildData(datasetId, data.build, data.source, data.evaluation))) return;
    if (this.config.data.fingerprint !== expected) {
      this.shareError =
        `This is not the data the link was made with: its build has fingerprint ${this.config.data.fingerprint}, the link expects ${expected}. ` +
        'Choose the same file (same content), or start a new run with this one.';
      shared.waitingFor = data.source.kind === 'file' ? data.source.name : null;
      return;
    }
    shared.rerun = true;
    await this.startTraining();
  }

  // ---------------------------------------------------------------- plumbing

  private requireSession(): RemoteSession {
    if (!this.session) throw new Error('The engine worker has not started.');
    return this.session;
  }

  private requireData(): RemoteData {
    if (!this.data) throw new Error('The ingest worker has not started.');
    return this.data;
  }

  private onEvent(event: SessionEvent): void {
    switch (event.type) {
      case 'download':
        this.downloads[event.progress.file] = event.progress;
        break;
      case 'log':
        this.log.push(event.message);
        break;
      case 'answer':
        this.answers.onAnswer(event);
        break;
      case 'statement-step':
      case 'statement-scoring':
      case 'statement-embedding':
        this.study.onEvent(event);
        break;
      case 'merge':
        this.study.merging = { done: event.done, total: event.total };
        break;
      case 'clinical-step':
      case 'clinical-progress':
        this.clinical.onEvent(event);
        break;
      case 'evaluation':
        this.evaluationProgress = { done: event.done, total: event.total };
        break;
      case 'step':
        if (this.run?.id !== event.runId) return;
        this.run.steps.push(event.report);
        this.run.totalSteps = event.totalSteps;
        this.run.examplesPerSecond = event.examplesPerSecond;
        this.run.etaSeconds = event.etaSeconds;
        this.run.peakBytes = event.peakBytes;
        break;
      case 'live-map':
        if (this.run?.id === event.runId) this.liveMap = event.map;
        break;
      case 'checkpoint':
        if (this.run?.id === event.runId) this.run.checkpointStep = event.step;
        break;
      case 'state':
        if (this.run?.id !== event.runId) return;
        this.run.state = event.state;
        this.run.message = event.message ?? null;
        // A recovery restarts from the checkpoint: steps after it are trained again.
        if (event.state === 'recovering') {
          this.run.recoveries += 1;
          this.run.steps = this.run.steps.filter((s) => s.step <= this.run!.checkpointStep);
        }
        break;
    }
  }
}

async function digest(bytes: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(hash)].slice(0, 8).map((b) => b.toString(16).padStart(2, '0')).join('');
}
