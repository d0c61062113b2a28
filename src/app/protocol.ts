/**
 * What the engine worker's session (session.ts) and the page exchange: the values its methods
 * return and the events it sends while it works. Types only, so the page imports no worker code.
 */
import type { AdapterDescription } from '../engine/engine.ts';
import type { SplitMode } from '../data/builder.ts';
import type { BeforeAfterResult } from '../eval/before-after.ts';
import type { DecoderFamilyName } from '../model/decoder-config.ts';
import type { DecoderFit } from '../model/decoder-fit.ts';
import type { DecoderMemoryPlan } from '../model/decoder-memory.ts';
import type { FileProgress } from '../model/file-source.ts';
import type { MemoryEstimate, MemoryPlan } from '../model/memory.ts';
import type { SentenceSettings, SettingOrigins } from '../model/sentence-config.ts';
import type { RunRecord } from '../train/run-store.ts';
import type { StepReport } from '../train/trainer.ts';

export type { Neighbour } from '../eval/neighbours.ts';
export type { RunRecord };

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

/** A loaded decoder LLM (for the answers side by side), as the page shows it. */
export interface DecoderSummary {
  label: string;
  family: DecoderFamilyName;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
  /** Parameters of the frozen base. */
  parameters: number;
  quantization: 'nf4' | 'f32';
  /** The tokenizer has a chat template, so a prompt can go in as a user message. */
  chatTemplate: boolean;
  /** The commit a Hub revision resolved to. */
  commit?: string;
}

/** Answers side by side: one prompt, generated from the base and (when there is an adapter) the adapted decoder with the same settings and seed. */
export interface AnswersRequest {
  prompt: string;
  /** Send the prompt as a user message through the chat template (else as plain text to continue). */
  chat: boolean;
  maxNewTokens: number;
  /** 0: greedy. */
  temperature: number;
  topP: number;
  seed: number;
}

export type AnswerPane = 'base' | 'adapted';

/** Why an answer ended: a stop token, the token limit (or the model's positions), or the Stop button. */
export type AnswerEnd = 'stop token' | 'length' | 'stopped';

export interface Answer {
  text: string;
  tokens: number;
  end: AnswerEnd;
}

export interface AnswersResult {
  promptTokens: number;
  base: Answer;
  /** Absent when no adapter is attached: the base answers alone. */
  adapted?: Answer;
}

/** A CTD statements run of the loaded decoder (the study's preset): the CTD dataset, its split and the short run's settings. */
export interface StatementRunRequest {
  datasetId: string;
  split: SplitMode;
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** The statements' fingerprint a share link expects: a build that differs is refused before any training. */
  fingerprint?: string;
}

/** How a CTD statements run's step is laid out to fit the memory budget (planDecoderTraining), before it starts. */
export interface StatementPlan {
  /** describeDecoderPlan's line: the layout and the estimate against the budget. */
  description: string;
  fits: boolean;
  estimate: MemoryEstimate;
  layout: Pick<DecoderMemoryPlan, 'microBatch' | 'microBatches' | 'checkpointEvery' | 'baseParts'>;
  /** When it does not fit: what would. */
  advice: string | null;
}

/** What every short adapter run of the decoder (CTD statements, clinical domain and task) reports. */
export interface AdapterRunSummary {
  losses: number[];
  totalSteps: number;
  /** Ended by Stop before its last step. */
  stopped: boolean;
  /** Ended by a non-finite loss: the message (the adapter of the last good step is kept). */
  error: string | null;
  /** The metrics before/after (base and adapted columns), with intervals. */
  result: BeforeAfterResult;
  /** The trained adapter, described. */
  adapter: string;
}

/** Statements trained on and held out, and those left out as longer than the decoder's positions. */
export interface StatementCounts {
  train: number;
  test: number;
  leftOut: number;
}

/** A finished CTD statements run: its losses, the zero-shot metrics before/after and the adapter now used by the adapted answers. */
export interface StatementRunSummary extends AdapterRunSummary {
  split: SplitMode;
  /** Hash of every statement of both splits in order (the CTD build's fingerprint): what a share link checks the data by. */
  fingerprint: string;
  statements: StatementCounts;
  /** t-SNE maps of the held-out statements' embeddings, base and adapted, labelled true / false statement; none for fewer than 4 statements. */
  maps: TsneMap[];
  /** Each mapped statement's disease, in the maps' order (their other colouring). */
  diseases: string[];
}

/** The clinical two-adapter flow's settings, the same for the domain and the task adapter. */
export interface ClinicalSettings {
  /** Share of the note documents (and of the true and of the false statements) held out for the before/after. */
  heldOutShare: number;
  /** Seeds the held-out split, the adapter's init, the order of the examples, dropout and the bootstrap. */
  seed: number;
  steps: number;
  learningRate: number;
}

/** What the clinical flow's worker is measuring after training, named as the page says it. */
export type ClinicalStage = 'base perplexity' | 'adapted perplexity' | 'scoring without the domain adapter' | 'scoring with the domain adapter';

/** A finished domain adapter: trained with next-token loss on the training notes; the result is the held-out notes' perplexity, base vs base + domain adapter. */
export interface DomainRunSummary extends AdapterRunSummary {
  /** The note documents trained on and held out, by name. */
  documents: { train: string[]; heldOut: string[] };
  /** Training sequences the training notes were cut into, of at most maxLength tokens. */
  sequences: number;
  maxLength: number;
}

/** A finished task adapter over the frozen domain adapter: the result is its zero-shot metrics without (base column) and with (adapted column) the domain adapter under it. */
export interface TaskRunSummary extends AdapterRunSummary {
  statements: StatementCounts;
  /** The labelled statements' fingerprint (labelledStatementsFingerprint): what a share link checks them by. */
  fingerprint: string;
}

/** What loading a model will take, before anything is downloaded (for a share link's confirmation). */
export interface ModelPreview {
  /** Bytes the model's files take, and how many of them are not in this browser yet; null when unknown. */
  bytes: number | null;
  toDownload: number | null;
  /** The commit a Hub revision resolves to now. */
  commit?: string;
}

/** A Hub decoder checked before download (session.checkDecoder): its files, plan and fit, at the commit looked up. */
export interface DecoderCheck extends DecoderFit {
  commit: string;
  /** Bytes of its files not in this browser's cache yet. */
  toDownload: number;
}

export interface MemoryCheck {
  /** How the step is laid out to fit the budget (exact whatever is chosen), and its estimate. */
  plan: Pick<MemoryPlan, 'sequencesPerPass' | 'checkpointEvery' | 'storage' | 'relativeTime' | 'fits'>;
  /** The plan in one line, with the budget. */
  description: string;
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
  | { type: 'step'; runId: string; report: StepReport; totalSteps: number; examplesPerSecond: number; etaSeconds: number; peakBytes: number }
  | { type: 'checkpoint'; runId: string; step: number }
  | { type: 'state'; runId: string; state: RunState; message?: string }
  | { type: 'evaluation'; done: number; total: number }
  | { type: 'live-map'; runId: string; map: TsneMap & { step: number } }
  | { type: 'answer'; pane: AnswerPane; text: string; tokens: number }
  /** `peakBytes`: the decoder's measured GPU memory at its peak so far (its base, the adapter, AdamW and the steps' activations). */
  | { type: 'statement-step'; step: number; totalSteps: number; loss: number; peakBytes: number }
  | { type: 'statement-scoring'; model: 'base' | 'adapted'; done: number; total: number }
  | { type: 'statement-embedding'; done: number; total: number }
  /** Merging the decoder for export: layers read and modules folded, of `total`. */
  | { type: 'merge'; done: number; total: number }
  | { type: 'clinical-step'; adapter: 'domain' | 'task'; step: number; totalSteps: number; loss: number }
  | { type: 'clinical-progress'; stage: ClinicalStage; done: number; total: number };

export interface TrainOptions {
  /** Continue a stored run from its checkpoint. */
  resume: boolean;
  /** Send a t-SNE map of the evaluation texts at every checkpoint (slows training down). */
  liveMap: boolean;
  /** GPU memory the training step is planned to fit into. */
  memoryBudgetBytes: number;
}

export type SessionListener = (event: SessionEvent) => void;

export interface Evaluation {
  runId: string;
  result: BeforeAfterResult;
}

export interface TsneMap {
  model: 'base' | 'adapted';
  dims: 2 | 3;
  positions: Float32Array;
  texts: string[];
  labels: string[];
}

/** The run history, newest first, and the runs a closed tab left unfinished (offered for resuming). */
export interface RunHistory {
  runs: RunRecord[];
  unfinished: RunRecord[];
}
