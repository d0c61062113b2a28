/**
 * The page's state of the CTD LLM study on the loaded decoder: which CTD dataset and split, the
 * short run's settings, the losses and scoring progress the engine worker streams, Stop, and the
 * zero-shot metrics before and after. The trained adapter becomes the adapted side of the answers,
 * and a finished run can be shared as a link that reruns it.
 */
import type { SplitMode } from '../data/builder.ts';
import type { SessionEvent, StatementPlan, StatementRunSummary } from '../app/protocol.ts';
import type { ModelRef } from '../model/model-ref.ts';
import { CTD_STUDY_DEMO_SCHEDULE, CTD_STUDY_TRAINING as STUDY } from '../train/defaults.ts';
import { type DataRef, RUN_CONFIG_VERSION } from '../train/run-config.ts';
import type { StatementRunConfig } from '../train/shared-run.ts';
import type { DecoderAnswers } from './decoder-answers.svelte.ts';
import type { RemoteSession } from './engine-client.ts';
import type { Phase } from './lab.svelte.ts';
import { shareLink } from './share-link.ts';

export interface StudySettings {
  split: SplitMode;
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
}

export class DecoderStudy {
  /** The CTD dataset the statements come from (its id in the data store). */
  datasetId = $state<string | null>(null);
  settings = $state<StudySettings>({ split: 'random', steps: STUDY.steps, batchSize: STUDY.batchSize, learningRate: STUDY.learningRate, seed: STUDY.seed });
  phase = $state<Phase>('idle');
  stopping = $state(false);
  losses = $state<number[]>([]);
  totalSteps = $state(0);
  /** What the run does after training, and how far: scoring by one model, or embedding for the maps. */
  scoring = $state<{ model: 'base' | 'adapted' | 'embedding'; done: number; total: number } | null>(null);
  summary = $state<StatementRunSummary | null>(null);
  /** The memory plan of the run the form describes (the encoder run's budget), or why there is none. */
  plan = $state<StatementPlan | null>(null);
  planError = $state<string | null>(null);
  /** The decoder's GPU memory at its peak while training, measured after each step (0 before the first). */
  peakBytes = $state(0);
  /** The merged model being built for export: steps done (layers read, modules folded) of total. */
  merging = $state<{ done: number; total: number } | null>(null);
  error = $state<string | null>(null);
  /** The last run that trained all its steps, as a share link carries it; null before one. */
  runConfig = $state<StatementRunConfig | null>(null);

  constructor(
    private readonly session: () => RemoteSession,
    private readonly answers: DecoderAnswers,
    /** The memory budget the step is planned into. */
    private readonly budgetBytes: () => number,
    /** Where a stored dataset came from (a bundled demo set or the user's file), for share links. */
    private readonly sourceOf: (datasetId: string) => DataRef['source'] | null,
  ) {}

  /** Plan the run the form describes into the budget (shown before training); a problem with its data is shown instead. */
  async checkPlan(): Promise<void> {
    if (!this.datasetId || this.phase === 'busy') return;
    try {
      this.plan = await this.session().planDecoderStatements({ datasetId: this.datasetId, ...$state.snapshot(this.settings) }, this.budgetBytes());
      this.planError = null;
    } catch (e) {
      this.plan = null;
      this.planError = (e as Error).message;
    }
  }

  /**
   * A newly loaded decoder: the last run's results (another decoder's) go, and the form takes the
   * demo schedule for the bundled decoder, the study's steps and learning rate otherwise.
   */
  forDecoder(ref: ModelRef): void {
    const schedule = ref.kind === 'bundled' ? CTD_STUDY_DEMO_SCHEDULE : { steps: STUDY.steps, learningRate: STUDY.learningRate };
    this.settings.steps = schedule.steps;
    this.settings.learningRate = schedule.learningRate;
    this.summary = null;
    this.runConfig = null;
    this.losses = [];
    this.peakBytes = 0;
    this.plan = null;
    this.error = null;
    this.phase = 'idle';
  }

  /** Train and evaluate; a share link's rerun passes the fingerprint its statements must have. */
  async train(expectedFingerprint?: string): Promise<void> {
    if (!this.datasetId) {
      this.error = 'Choose a CTD dataset first.';
      return;
    }
    const settings = $state.snapshot(this.settings);
    const shared = this.sharedPart(this.datasetId);
    this.phase = 'busy';
    this.stopping = false;
    this.error = null;
    this.summary = null;
    this.runConfig = null;
    this.losses = [];
    this.peakBytes = 0;
    this.totalSteps = settings.steps;
    this.scoring = null;
    try {
      const fingerprint = expectedFingerprint === undefined ? {} : { fingerprint: expectedFingerprint };
      this.summary = await this.session().trainDecoderStatements({ datasetId: this.datasetId, ...settings, ...fingerprint }, this.budgetBytes());
      if (shared && !this.summary.stopped && this.summary.error === null) {
        const { model, quantization, source } = shared;
        this.runConfig = { v: RUN_CONFIG_VERSION, kind: 'decoder-statements', model, quantization, data: { source, fingerprint: this.summary.fingerprint }, ...settings };
      }
      this.answers.adapter = this.summary.adapter;
      this.answers.panes = {};
      this.phase = 'ready';
    } catch (e) {
      this.error = (e as Error).message;
      this.phase = 'error';
    } finally {
      this.stopping = false;
      this.scoring = null;
    }
  }

  /** A link that reruns the last complete run on the same decoder (a Hub one at the commit it resolved to), data and settings. */
  shareUrl(): string {
    if (!this.runConfig) throw new Error('Train the decoder on CTD statements first: the link reruns a complete run.');
    return shareLink($state.snapshot(this.runConfig) as StatementRunConfig, location.href);
  }

  /** What a share link of a run on `datasetId` takes from the loaded decoder and the data store. */
  private sharedPart(datasetId: string): (Pick<StatementRunConfig, 'model' | 'quantization'> & { source: DataRef['source'] }) | null {
    const [decoder, source] = [this.answers.sharedRef(), this.sourceOf(datasetId)];
    return decoder && source ? { ...decoder, source } : null;
  }

  stop(): void {
    this.stopping = true;
    void this.session().stopAnswers();
  }

  /** The trained adapter as a PEFT CAUSAL_LM folder in a zip. */
  exportZip(): Promise<Uint8Array> {
    return this.session().exportDecoderAdapterZip();
  }

  /** The decoder with the trained adapter merged in, as a Hugging Face model folder in a zip. */
  async exportMergedZip(): Promise<Uint8Array> {
    this.merging = { done: 0, total: 1 };
    try {
      return await this.session().exportDecoderMergedZip();
    } finally {
      this.merging = null;
    }
  }

  onEvent(event: Extract<SessionEvent, { type: 'statement-step' | 'statement-scoring' | 'statement-embedding' }>): void {
    if (this.phase !== 'busy') return;
    if (event.type === 'statement-step') {
      this.losses.push(event.loss);
      this.totalSteps = event.totalSteps;
      this.peakBytes = event.peakBytes;
      this.scoring = null; // the base's scoring is over
    } else this.scoring = { model: event.type === 'statement-embedding' ? 'embedding' : event.model, done: event.done, total: event.total };
  }
}
