/**
 * The run the engine worker is training: its pause gate and cancel flag, its step history and the
 * step times its ETA comes from.
 */
import type { LabelledText } from '../eval/types.ts';
import type { RunConfig } from '../train/run-config.ts';
import type { StepReport } from '../train/trainer.ts';

/** The mutable state of the run being trained. */
export class ActiveRun {
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
