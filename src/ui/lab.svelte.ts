/**
 * The page's state of the lab: GPU, model, data, the run configuration, the run being trained, its
 * evaluation and the run history. All GPU work is delegated to the engine worker; this module only
 * keeps what the page shows, so every handler is short (no main-thread task near 50 ms).
 */
import type { FileProgress } from '../model/file-source.ts';
import { type ModelRef, type RunConfig, defaultRunConfig, modelLabel } from '../train/run-config.ts';
import { type RunRecord, deleteRun, listRuns, newRunId, unfinishedRuns } from '../train/run-store.ts';
import type { GpuInfo, MemoryCheck, ModelSummary, RunState, SessionEvent } from '../train/session.ts';
import type { StepReport } from '../train/trainer.ts';
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
  message: string | null;
}

export class Lab {
  gpu = $state<GpuInfo | null>(null);
  /** Set when there is no usable WebGPU; `gpuErrorName` tells a missing API from a failed device. */
  gpuError = $state<string | null>(null);
  gpuErrorName = $state<string | null>(null);

  config = $state<RunConfig>(defaultRunConfig({ kind: 'demo', id: 'cardiology-pairs', fingerprint: 'pending' }));

  modelPhase = $state<Phase>('idle');
  model = $state<ModelSummary | null>(null);
  modelError = $state<string | null>(null);
  downloads = $state<Record<string, FileProgress>>({});
  log = $state<string[]>([]);

  memory = $state<MemoryCheck | null>(null);
  memoryError = $state<string | null>(null);

  run = $state<LiveRun | null>(null);
  runError = $state<string | null>(null);

  history = $state<RunRecord[]>([]);
  unfinished = $state<RunRecord[]>([]);
  /** A configuration opened from a share link, waiting to be rerun. */
  shared = $state<RunConfig | null>(null);
  shareError = $state<string | null>(null);

  private session: RemoteSession | null = null;

  /** Start the engine worker, open the GPU, read a share link and the run history, load the model. */
  async start(pageUrl: string): Promise<void> {
    const { session, worker } = startEngineWorker((event) => this.onEvent(event));
    this.session = session;
    worker.addEventListener('error', (e) => (this.gpuError = `The engine worker stopped: ${e.message || 'it could not be loaded'}`));
    try {
      const shared = readShareLink(pageUrl);
      if (shared) {
        this.config = shared;
        this.shared = shared;
      }
    } catch (e) {
      this.shareError = (e as Error).message;
    }
    await this.refreshHistory();
    try {
      this.gpu = await session.connect();
    } catch (e) {
      this.gpuError = (e as Error).message;
      this.gpuErrorName = (e as Error).name;
      return;
    }
    if (this.config.model.kind !== 'local') await this.loadModel(this.config.model);
  }

  async refreshHistory(): Promise<void> {
    [this.history, this.unfinished] = await Promise.all([listRuns(), unfinishedRuns()]);
  }

  async loadModel(ref: ModelRef, localFiles?: Map<string, File>): Promise<void> {
    const session = this.requireSession();
    this.modelPhase = 'busy';
    this.modelError = null;
    this.downloads = {};
    this.model = null;
    try {
      this.model = await session.loadModel(ref, this.config.quantization, localFiles, new URL(import.meta.env.BASE_URL, location.href).href);
      this.config.model = ref;
      this.modelPhase = 'ready';
      await this.checkMemory();
    } catch (e) {
      this.modelError = (e as Error).message;
      this.modelPhase = 'error';
    }
  }

  async checkMemory(): Promise<void> {
    if (!this.session || this.modelPhase !== 'ready') return;
    try {
      this.memory = await this.session.checkMemory($state.snapshot(this.config));
      this.memoryError = null;
    } catch (e) {
      this.memory = null;
      this.memoryError = (e as Error).message;
    }
  }

  shareUrl(): string {
    return shareLink($state.snapshot(this.config), location.href);
  }

  async deleteRun(id: string): Promise<void> {
    await deleteRun(id);
    await this.refreshHistory();
  }

  describeModel(): string {
    return modelLabel(this.config.model);
  }

  protected requireSession(): RemoteSession {
    if (!this.session) throw new Error('the engine worker has not started');
    return this.session;
  }

  protected newRunId(): string {
    return newRunId();
  }

  private onEvent(event: SessionEvent): void {
    switch (event.type) {
      case 'download':
        this.downloads[event.progress.file] = event.progress;
        break;
      case 'log':
        this.log.push(event.message);
        break;
      case 'step':
        if (this.run?.id !== event.runId) return;
        this.run.steps.push(event.report);
        this.run.totalSteps = event.totalSteps;
        this.run.examplesPerSecond = event.examplesPerSecond;
        this.run.etaSeconds = event.etaSeconds;
        break;
      case 'checkpoint':
        if (this.run?.id === event.runId) this.run.checkpointStep = event.step;
        break;
      case 'state':
        if (this.run?.id !== event.runId) return;
        this.run.state = event.state;
        this.run.message = event.message ?? null;
        break;
    }
  }
}
