/**
 * The page's state of the clinical two-adapter flow on the loaded decoder: the user's notes (read in
 * this tab, each file judged on its own: bad ones refused by name), the settings, a domain adapter
 * trained on the notes with its held-out perplexity before/after, then a task adapter on labelled
 * statements (a picked file's, or a stored CTD dataset's) over the frozen domain adapter, compared
 * without and with the domain adapter under it; the losses and progress the engine worker streams,
 * Stop, and both adapters' PEFT zips. A complete run (both adapters, the same settings) can be
 * shared as a link that names and fingerprints the notes and statements file but never holds them;
 * opened, it waits for the same files and reruns both adapters.
 */
import type { ClinicalSettings, ClinicalStage, DomainRunSummary, SessionEvent, TaskRunSummary } from '../app/protocol.ts';
import { type LabelledStatement, checkStatementsFingerprint, parseStatementLines } from '../data/labelled-statements.ts';
import { DEFAULT_NOTES_HELD_OUT, type NoteDocument, type RefusedNote, noteFingerprints, sortNoteFiles } from '../data/notes.ts';
import type { ModelRef } from '../model/model-ref.ts';
import { CTD_STUDY_DEMO_SCHEDULE, CTD_STUDY_TRAINING as STUDY } from '../train/defaults.ts';
import { type DataRef, RUN_CONFIG_VERSION } from '../train/run-config.ts';
import type { ClinicalRunConfig, FingerprintedFile } from '../train/shared-run.ts';
import type { DecoderAnswers } from './decoder-answers.svelte.ts';
import type { NamedFile } from './dropped-files.ts';
import type { RemoteSession } from './engine-client.ts';
import { shareLink } from './share-link.ts';

export type ClinicalAdapter = 'domain' | 'task';

export class ClinicalNotes {
  documents = $state<NoteDocument[]>([]);
  /** The files of the last addition that were left out, each with why. */
  refused = $state<RefusedNote[]>([]);
  settings = $state<ClinicalSettings>({ heldOutShare: DEFAULT_NOTES_HELD_OUT, seed: STUDY.seed, steps: STUDY.steps, learningRate: STUDY.learningRate });
  /** The labelled statements of the picked file, by its name. */
  statements = $state<{ name: string; rows: LabelledStatement[] } | null>(null);
  statementsError = $state<string | null>(null);
  /** The adapter training or being measured now. */
  training = $state<ClinicalAdapter | null>(null);
  stopping = $state(false);
  losses = $state<number[]>([]);
  totalSteps = $state(0);
  progress = $state<{ stage: ClinicalStage; done: number; total: number } | null>(null);
  domain = $state<DomainRunSummary | null>(null);
  task = $state<TaskRunSummary | null>(null);
  error = $state<string | null>(null);
  /** The last complete run (both adapters, the same settings) as a share link carries it; null before one. */
  runConfig = $state<ClinicalRunConfig | null>(null);
  /** The run a share link asks to rerun once its files are given, and the stored CTD dataset its task uses (when it uses one). */
  shared = $state<{ config: ClinicalRunConfig; datasetId: string | null } | null>(null);
  /** What the domain adapter was trained on and with, for the link a task adapter over it completes. */
  private domainRun: { settings: ClinicalSettings; notes: FingerprintedFile[] } | null = null;

  constructor(
    private readonly session: () => RemoteSession,
    private readonly answers: DecoderAnswers,
    /** Where a stored dataset came from (a bundled demo set or the user's file), for share links. */
    private readonly sourceOf: (datasetId: string) => DataRef['source'] | null,
  ) {}

  /** A newly loaded decoder: the adapters trained on the one before go; the bundled demo gets the demo schedule. */
  forDecoder(ref: ModelRef): void {
    const schedule = ref.kind === 'bundled' ? CTD_STUDY_DEMO_SCHEDULE : { steps: STUDY.steps, learningRate: STUDY.learningRate };
    this.settings.steps = schedule.steps;
    this.settings.learningRate = schedule.learningRate;
    this.domain = null;
    this.task = null;
    this.runConfig = null;
    this.domainRun = null;
    // A share link's rerun waits for its files on the decoder loaded for it (and is set once that one is).
    this.shared = null;
    this.losses = [];
    this.error = null;
  }

  /** Add note files (dropped or picked): each good one becomes a document, each bad one is named in `refused`. */
  async addFiles(files: NamedFile[]): Promise<void> {
    const read = await Promise.all(files.map(async ({ name, file }) => ({ name, bytes: new Uint8Array(await file.arrayBuffer()) })));
    const { documents, refused, hidden } = sortNoteFiles(read, this.documents);
    this.documents = [...this.documents, ...documents].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.refused = refused;
    this.error = hidden > 0 && documents.length === 0 && refused.length === 0 ? `The ${hidden} file(s) added are hidden files (names starting with "."), which are never notes.` : null;
  }

  clearNotes(): void {
    this.documents = [];
    this.refused = [];
  }

  /** Labelled statements from a picked file ("statement<TAB>true|false" lines); a bad line is refused by its number. */
  async pickStatements(file: File): Promise<void> {
    this.statementsError = null;
    try {
      this.statements = { name: file.name, rows: parseStatementLines(await file.text(), file.name) };
    } catch (e) {
      this.statements = null;
      this.statementsError = (e as Error).message;
    }
  }

  /** The domain adapter on the notes added; a share link's rerun passes the notes it expects. */
  async trainDomain(expected?: FingerprintedFile[]): Promise<void> {
    await this.train('domain', async (settings) => {
      const documents = $state.snapshot(this.documents);
      this.task = null;
      this.runConfig = null;
      this.domainRun = null;
      this.domain = await this.session().trainClinicalDomain(documents, settings, expected);
      if (!this.domain.stopped && this.domain.error === null) this.domainRun = { settings, notes: noteFingerprints(documents) };
    });
  }

  /**
   * The task adapter on the picked file's statements, or on every statement of the stored CTD
   * dataset `datasetId`; a share link's rerun passes the statements' fingerprint it expects.
   */
  async trainTask(source: 'file' | { datasetId: string }, expectedFingerprint?: string): Promise<void> {
    const statements = source === 'file' ? $state.snapshot(this.statements) : source;
    if (!statements) {
      this.error = 'Choose a file of labelled statements first.';
      return;
    }
    await this.train('task', async (settings) => {
      this.runConfig = null;
      this.task = await this.session().trainClinicalTask(statements, settings, expectedFingerprint);
      this.runConfig = this.completeRun(statements, settings, this.task);
    });
  }

  /** Rerun the shared run on the files given: the notes and statements are refused unless they are the link's, then both adapters train. */
  async rerunShared(): Promise<void> {
    if (!this.shared) return;
    const { config, datasetId } = $state.snapshot(this.shared);
    this.settings = { heldOutShare: config.heldOutShare, seed: config.seed, steps: config.steps, learningRate: config.learningRate };
    // Another statements file is refused before the domain adapter trains, not after.
    if (config.task.kind === 'file' && this.statements) {
      try {
        checkStatementsFingerprint(this.statements.name, $state.snapshot(this.statements.rows), config.task.fingerprint);
      } catch (e) {
        this.error = (e as Error).message;
        return;
      }
    }
    await this.trainDomain(config.notes);
    if (!this.domainRun) return;
    if (config.task.kind === 'ctd' && !datasetId) {
      this.error = 'The CTD dataset of the link is not added yet.';
      return;
    }
    await this.trainTask(config.task.kind === 'file' ? 'file' : { datasetId: datasetId! }, config.task.fingerprint);
  }

  /** A link that reruns the last complete run: the same decoder (a Hub one at the commit it resolved to), settings, and files by name and fingerprint. */
  shareUrl(): string {
    if (!this.runConfig) throw new Error('Train the domain adapter, then the task adapter over it with the same settings, first: the link reruns a complete run.');
    return shareLink($state.snapshot(this.runConfig) as ClinicalRunConfig, location.href);
  }

  /** The run a share link reruns, when the task adapter just trained completes one: over a complete domain adapter with the same settings. */
  private completeRun(statements: { name: string } | { datasetId: string }, settings: ClinicalSettings, task: TaskRunSummary): ClinicalRunConfig | null {
    const [domain, decoder] = [this.domainRun, this.answers.sharedRef()];
    if (!domain || !decoder || task.stopped || task.error !== null || JSON.stringify(domain.settings) !== JSON.stringify(settings)) return null;
    let taskRef: ClinicalRunConfig['task'];
    if ('name' in statements) taskRef = { kind: 'file', name: statements.name, fingerprint: task.fingerprint };
    else {
      const source = this.sourceOf(statements.datasetId);
      if (!source) return null;
      taskRef = { kind: 'ctd', source, fingerprint: task.fingerprint };
    }
    return { v: RUN_CONFIG_VERSION, kind: 'decoder-clinical', ...decoder, notes: domain.notes, task: taskRef, ...settings };
  }

  stop(): void {
    this.stopping = true;
    void this.session().stopAnswers();
  }

  /** The domain or task adapter as a PEFT CAUSAL_LM folder in a zip. */
  exportZip(which: ClinicalAdapter): Promise<Uint8Array> {
    return this.session().exportClinicalAdapterZip(which);
  }

  onEvent(event: Extract<SessionEvent, { type: 'clinical-step' | 'clinical-progress' }>): void {
    if (this.training === null) return;
    if (event.type === 'clinical-step') {
      this.losses.push(event.loss);
      this.totalSteps = event.totalSteps;
      this.progress = null;
    } else this.progress = { stage: event.stage, done: event.done, total: event.total };
  }

  private async train(which: ClinicalAdapter, run: (settings: ClinicalSettings) => Promise<void>): Promise<void> {
    const settings = $state.snapshot(this.settings);
    this.training = which;
    this.stopping = false;
    this.error = null;
    this.losses = [];
    this.totalSteps = settings.steps;
    this.progress = null;
    try {
      await run(settings);
    } catch (e) {
      this.error = (e as Error).message;
    } finally {
      this.training = null;
      this.stopping = false;
      this.progress = null;
    }
  }
}
