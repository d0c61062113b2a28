/**
 * The lab session the engine worker hosts: one GPU engine, one loaded model (frozen base, an
 * optional frozen adapter under the trainable one), and the run lifecycle around it — train with
 * progress, pause/resume/cancel, periodic checkpoints, recovery from a lost GPU device, before/after
 * evaluation, nearest-neighbour exploration and exports. No DOM: it runs in a worker (or Node).
 */
import { type AdapterDescription, type Engine, createEngine } from '../engine/engine.ts';
import { DeviceLostError } from '../engine/errors.ts';
import { BertEncoder } from '../model/bert.ts';
import { type ModelFiles, loadModelFiles } from '../model/checkpoint.ts';
import type { FileProgress, ModelFileSource } from '../model/file-source.ts';
import { fileMapSource } from '../model/file-source.ts';
import { bundledSource, cacheStorageCache, hubSource } from '../model/hub.ts';
import { GpuAdapter, type HostAdapterTensors, initLoraTensors } from '../model/lora.ts';
import { type MemoryEstimate, estimateTrainingMemory } from '../model/memory.ts';
import { type PeftAdapter, readPeftAdapter, writePeftAdapter } from '../model/peft-files.ts';
import { SentenceEncoder } from '../model/sentence.ts';
import { type Example, encodeExamples } from './objective.ts';
import type { ModelRef, RunConfig } from './run-config.ts';
import { createRun, getCheckpoint, getRun, saveCheckpoint, updateRun } from './run-store.ts';
import { type StepReport, Trainer } from './trainer.ts';

export interface GpuInfo {
  adapter: AdapterDescription;
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
  | { type: 'state'; runId: string; state: RunState; message?: string };

export type SessionListener = (event: SessionEvent) => void;

/** Training examples for optimizer step `step` and micro-batch `micro`, in an order fixed by the data seed. */
export interface TrainingFeed {
  examples(step: number, micro: number): Promise<Example[]>;
}

/** How many times in a row a lost device is recovered from before the run is stopped. */
const MAX_RECOVERIES = 3;

export class LabSession {
  private engine: Engine | null = null;
  private listener: SessionListener = () => {};
  private model: { ref: ModelRef; files: ModelFiles; source: ModelFileSource } | null = null;
  private encoder: BertEncoder | null = null;
  private frozen: { fingerprint: string; adapter: PeftAdapter } | null = null;
  private run: ActiveRun | null = null;
  /** The adapter the last finished training produced, on the host. */
  private trained: HostAdapterTensors | null = null;

  setListener(listener: SessionListener): void {
    this.listener = listener;
  }

  /** Open the GPU. Throws WebGPUUnavailableError (with the browsers that have WebGPU) when there is none. */
  async connect(): Promise<GpuInfo> {
    const engine = await this.ensureEngine();
    return { adapter: engine.adapter };
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
    this.releaseModel();
    this.model = { ref, files, source };
    this.frozen = null;
    await this.buildEncoder(quantization);
    return this.summary();
  }

  /** Stack a PEFT adapter under the one being trained (frozen); null removes it. */
  async setFrozenAdapter(files: { 'adapter_config.json': Uint8Array; 'adapter_model.safetensors': Uint8Array; fingerprint: string } | null): Promise<string | null> {
    this.assertIdle('change the frozen adapter');
    const model = this.requireModel();
    const adapter = files ? readPeftAdapter(files, model.files.config) : null;
    this.frozen = adapter && files ? { fingerprint: files.fingerprint, adapter } : null;
    await this.buildEncoder(this.encoder!.quantization);
    return adapter ? describeAdapter(adapter) : null;
  }

  /** The training memory estimate for `config`, checked against this device's limits. */
  checkMemory(config: RunConfig): MemoryCheck {
    const engine = this.requireEngine();
    const model = this.requireModel();
    const negatives = config.train.objective.kind === 'infonce' ? 1 : 0;
    const sequences = config.train.batchSize * (2 + negatives);
    const seq = Math.min(config.maxLength, model.files.config.maxPositionEmbeddings);
    const estimate = estimateTrainingMemory(model.files.config, config.lora, { sequences, seq }, { quantization: config.quantization });
    const { maxBufferSize, maxStorageBufferBindingSize } = engine.limits;
    const problems: string[] = [];
    if (estimate.largestBuffer > maxStorageBufferBindingSize) {
      problems.push(
        `the largest buffer needs ${estimate.largestBuffer} bytes, over this GPU's maxStorageBufferBindingSize of ${maxStorageBufferBindingSize}: lower the batch size or the maximum length`,
      );
    }
    if (estimate.largestBuffer > maxBufferSize) problems.push(`the largest buffer needs ${estimate.largestBuffer} bytes, over this GPU's maxBufferSize of ${maxBufferSize}`);
    return { estimate, maxBufferSize, maxStorageBufferBindingSize, problems };
  }

  /**
   * Train a new run (or resume one from its checkpoint) and resolve when it ends: done, cancelled
   * or failed. A lost device is recovered from the last checkpoint without the caller noticing,
   * apart from a 'recovering' state event.
   */
  async train(runId: string, config: RunConfig, feed: TrainingFeed, options: { resume: boolean }): Promise<RunState> {
    this.assertIdle('start another run');
    await this.prepareModel(config);
    const run = new ActiveRun(runId, config);
    this.run = run;
    try {
      if (!options.resume) await createRun(runId, config);
      else if (!(await getRun(runId))) throw new Error(`run ${runId} is not in the run history, so it cannot be resumed`);
      await updateRun(runId, { status: 'running', error: null });
      let recoveries = 0;
      for (;;) {
        try {
          await this.trainFromCheckpoint(run, feed);
          break;
        } catch (e) {
          if (!(await this.isDeviceLoss(e)) || ++recoveries > MAX_RECOVERIES) throw e;
          this.emitState(run, 'recovering', `${(e as Error).message}. Resuming from the last checkpoint…`);
          await this.recoverDevice();
        }
      }
      const state: RunState = run.cancelled ? 'cancelled' : 'done';
      if (state === 'done') {
        const adapter = await this.trainedAdapter(config);
        await updateRun(runId, { status: 'done', adapter: writePeftAdapter(adapter) });
      } else await updateRun(runId, { status: 'cancelled' });
      this.emitState(run, state);
      return state;
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      await updateRun(runId, { status: 'failed', error: message }).catch(() => {});
      this.emitState(run, 'failed', message);
      throw e;
    } finally {
      this.run = null;
    }
  }

  pause(): void {
    this.run?.pause();
    if (this.run) this.emitState(this.run, 'paused');
  }

  resume(): void {
    this.run?.resume();
    if (this.run) this.emitState(this.run, 'training');
  }

  cancel(): void {
    this.run?.cancel();
  }

  /** Test hook: destroy the GPU device as a driver reset would, to exercise recovery. */
  loseDeviceForTest(): void {
    this.requireEngine().device.destroy();
  }

  /** The trained adapter as PEFT files (adapter_config.json, adapter_model.safetensors). */
  async exportAdapter(config: RunConfig): Promise<{ 'adapter_config.json': string; 'adapter_model.safetensors': Uint8Array }> {
    return writePeftAdapter(await this.trainedAdapter(config));
  }

  // ---------------------------------------------------------------- training

  private async trainFromCheckpoint(run: ActiveRun, feed: TrainingFeed): Promise<void> {
    const { config } = run;
    const trainer = this.newTrainer(config);
    try {
      const checkpoint = await getCheckpoint(run.id);
      if (checkpoint) trainer.restore(checkpoint.snapshot);
      run.history = checkpoint ? [...checkpoint.history] : [];
      this.emitState(run, 'training');
      const total = config.train.steps;
      while (trainer.step < total && !run.cancelled) {
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
        run.secondsPerStep = run.secondsPerStep === 0 ? seconds : 0.8 * run.secondsPerStep + 0.2 * seconds;
        this.listener({
          type: 'step',
          runId: run.id,
          report,
          totalSteps: total,
          examplesPerSecond: report.examples / seconds,
          etaSeconds: (total - report.step) * run.secondsPerStep,
        });
        if (report.step % config.train.checkpointEvery === 0 || report.step === total) {
          await saveCheckpoint(run.id, await trainer.snapshot(), run.history);
          this.listener({ type: 'checkpoint', runId: run.id, step: report.step });
        }
      }
      if (!run.cancelled) this.trained = await this.encoder!.trainableAdapter!.download();
    } finally {
      trainer.release();
    }
  }

  private newTrainer(config: RunConfig): Trainer {
    const model = this.requireModel();
    const encoder = this.encoder!;
    const previous = encoder.trainableAdapter;
    if (previous) {
      previous.release();
      encoder.adapters.pop();
    }
    const tensors = initLoraTensors(model.files.config, config.lora, config.seeds.init);
    encoder.adapters.push(new GpuAdapter(this.requireEngine(), model.files.config, config.lora, tensors, true));
    const sentence = new SentenceEncoder(encoder, model.files.tokenizer, { pooling: config.pooling, normalize: config.normalize, maxLength: config.maxLength });
    return new Trainer(sentence, { ...config.train, totalSteps: config.train.steps, seed: config.seeds.train });
  }

  private async trainedAdapter(config: RunConfig): Promise<PeftAdapter> {
    const { ref } = this.requireModel();
    const tensors = this.trained;
    if (!tensors) throw new Error('no adapter has been trained in this session yet');
    return {
      config: {
        r: config.lora.r,
        loraAlpha: config.lora.alpha,
        loraDropout: config.lora.dropout,
        targetModules: config.lora.targetModules,
        useRslora: config.lora.rslora,
        baseModelNameOrPath: ref.id,
        ...(ref.kind === 'hub' ? { revision: ref.revision } : {}),
      },
      tensors,
    };
  }

  // ---------------------------------------------------------------- device

  private async ensureEngine(): Promise<Engine> {
    if (this.engine && !this.engine.isLost) return this.engine;
    this.engine = await createEngine(navigator.gpu);
    return this.engine;
  }

  /** A device error, or any error thrown while the device is (or is about to be reported) lost. */
  private async isDeviceLoss(error: unknown): Promise<boolean> {
    if (error instanceof DeviceLostError) return true;
    const engine = this.engine;
    if (!engine) return false;
    // A map or submission can fail before device.lost settles; give it a moment to.
    await Promise.race([engine.device.lost, new Promise((resolve) => setTimeout(resolve, 500))]);
    return engine.isLost;
  }

  /** A new device, with the model and frozen adapter uploaded again from host memory. */
  private async recoverDevice(): Promise<void> {
    const quantization = this.encoder!.quantization;
    this.encoder = null; // its buffers went with the old device
    this.engine = null;
    await this.buildEncoder(quantization);
  }

  private async buildEncoder(quantization: 'nf4' | 'f32'): Promise<void> {
    const model = this.requireModel();
    const engine = await this.ensureEngine();
    this.encoder?.destroy();
    this.encoder = await BertEncoder.create(engine, model.files.config, model.files.weights, { quantization });
    if (this.frozen) {
      const { adapter } = this.frozen;
      const lora = { r: adapter.config.r, alpha: adapter.config.loraAlpha, dropout: 0, rslora: adapter.config.useRslora, targetModules: adapter.config.targetModules };
      this.encoder.adapters.push(new GpuAdapter(engine, model.files.config, lora, adapter.tensors, false));
    }
  }

  private releaseModel(): void {
    this.encoder?.destroy();
    this.encoder = null;
    this.model = null;
  }

  // ---------------------------------------------------------------- checks

  /** The loaded model must be the run's; the base is re-quantised if the run asks for the other precision. */
  private async prepareModel(config: RunConfig): Promise<void> {
    const model = this.requireModel();
    if (JSON.stringify(model.ref) !== JSON.stringify(config.model)) {
      throw new Error(`the run is for model ${config.model.id} but ${model.ref.id} is loaded`);
    }
    if ((config.frozenAdapter?.fingerprint ?? null) !== (this.frozen?.fingerprint ?? null)) {
      throw new Error('the run expects a different frozen adapter than the one attached');
    }
    if (this.encoder!.quantization !== config.quantization) await this.buildEncoder(config.quantization);
  }

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
      maxPositions: c.maxPositionEmbeddings,
      parameters,
      quantization: this.encoder!.quantization,
    };
  }

  private assertIdle(what: string): void {
    if (this.run) throw new Error(`cannot ${what} while run ${this.run.id} is training; pause or cancel it first`);
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new Error('the GPU is not connected yet');
    return this.engine;
  }

  private requireModel(): NonNullable<LabSession['model']> {
    if (!this.model) throw new Error('no model is loaded yet');
    return this.model;
  }

  private emitState(run: ActiveRun, state: RunState, message?: string): void {
    this.listener({ type: 'state', runId: run.id, state, message });
  }
}

/** The mutable state of the run being trained. */
class ActiveRun {
  history: StepReport[] = [];
  secondsPerStep = 0;
  cancelled = false;
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  constructor(
    readonly id: string,
    readonly config: RunConfig,
  ) {}

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
    if (!localFiles) throw new Error(`pick the folder of ${ref.id} again: local files are not kept between visits`);
    return fileMapSource(localFiles, ref.id);
  }
  return bundledSource(new URL(`models/${encodeURIComponent(ref.id)}/`, siteUrl ?? self.location.href), ref.id);
}

function describeAdapter(adapter: PeftAdapter): string {
  const c = adapter.config;
  return `LoRA r${c.r} α${c.loraAlpha} on ${c.targetModules.join(', ')}${c.baseModelNameOrPath ? ` (trained on ${c.baseModelNameOrPath})` : ''}`;
}
