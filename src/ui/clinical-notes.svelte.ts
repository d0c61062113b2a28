/**
 * The page's state of the clinical two-adapter flow on the loaded decoder: the user's notes (read in
 * this tab, each file judged on its own: bad ones refused by name), the settings, a domain adapter
 * trained on the notes with its held-out perplexity before/after, then a task adapter on labelled
 * statements (a picked file's, or a stored CTD dataset's) over the frozen domain adapter, compared
 * without and with the domain adapter under it; the losses and progress the engine worker streams,
 * Stop, and both adapters' PEFT zips.
 */
import type { ClinicalSettings, ClinicalStage, DomainRunSummary, SessionEvent, TaskRunSummary } from '../app/protocol.ts';
import { type LabelledStatement, parseStatementLines } from '../data/labelled-statements.ts';
import { DEFAULT_NOTES_HELD_OUT, type NoteDocument, type RefusedNote, sortNoteFiles } from '../data/notes.ts';
import type { ModelRef } from '../model/model-ref.ts';
import { CTD_STUDY_DEMO_SCHEDULE, CTD_STUDY_TRAINING as STUDY } from '../train/defaults.ts';
import type { NamedFile } from './dropped-files.ts';
import type { RemoteSession } from './engine-client.ts';

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

  constructor(private readonly session: () => RemoteSession) {}

  /** A newly loaded decoder: the adapters trained on the one before go; the bundled demo gets the demo schedule. */
  forDecoder(ref: ModelRef): void {
    const schedule = ref.kind === 'bundled' ? CTD_STUDY_DEMO_SCHEDULE : { steps: STUDY.steps, learningRate: STUDY.learningRate };
    this.settings.steps = schedule.steps;
    this.settings.learningRate = schedule.learningRate;
    this.domain = null;
    this.task = null;
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

  async trainDomain(): Promise<void> {
    await this.train('domain', async (settings) => {
      this.task = null;
      this.domain = await this.session().trainClinicalDomain($state.snapshot(this.documents), settings);
    });
  }

  /** The task adapter on the picked file's statements, or on every statement of the stored CTD dataset `datasetId`. */
  async trainTask(source: 'file' | { datasetId: string }): Promise<void> {
    const rows = source === 'file' ? this.statements?.rows : source;
    if (!rows) {
      this.error = 'Choose a file of labelled statements first.';
      return;
    }
    await this.train('task', async (settings) => {
      this.task = await this.session().trainClinicalTask(Array.isArray(rows) ? $state.snapshot(rows) : rows, settings);
    });
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
