/**
 * Run history and training checkpoints in IndexedDB (idb), used only by the engine worker's
 * session (src/app): it writes a run's progress and its latest checkpoint, and hands the page the
 * history, which offers to resume a run a closed tab left unfinished and compares runs. Checkpoints hold the trainer's full state (adapter and
 * AdamW moments), so a resumed run continues exactly where it stopped.
 */
import type { BeforeAfterResult } from '../eval/before-after.ts';
import { type DBSchema, type IDBPDatabase, openDB } from 'idb';
import { StorageFullError } from '../data/errors.ts';
import { formatBytes } from '../model/memory.ts';
import { type RunConfig, upgradeRunConfig } from './run-config.ts';
import type { StepReport, TrainerSnapshot } from './trainer.ts';

/** running: a worker is (or was, if the tab closed) training it; paused: the user paused it. */
export type RunStatus = 'running' | 'paused' | 'done' | 'cancelled' | 'failed';

export interface RunRecord {
  id: string;
  createdAt: number;
  updatedAt: number;
  config: RunConfig;
  status: RunStatus;
  /** Optimizer steps of the latest checkpoint (what a resume starts from). */
  checkpointStep: number;
  /** Step reports up to the latest checkpoint. */
  history: StepReport[];
  /** Flat before/after metrics of the finished run, `name → {before, after}`. */
  metrics: Record<string, { before: number; after: number }> | null;
  /** The whole evaluation (intervals, pair cosines), so opening the run shows it without embedding again; absent in older records. */
  evaluation?: BeforeAfterResult | null;
  /** The trained adapter as PEFT files, once the run is done. */
  adapter: { 'adapter_config.json': string; 'adapter_model.safetensors': Uint8Array } | null;
  error: string | null;
}

export interface CheckpointRecord {
  runId: string;
  savedAt: number;
  snapshot: TrainerSnapshot;
  history: StepReport[];
}

interface RunSchema extends DBSchema {
  runs: { key: string; value: RunRecord; indexes: { createdAt: number } };
  checkpoints: { key: string; value: CheckpointRecord };
}

const DB_NAME = 'qlora-lab-runs';

let opened: Promise<IDBPDatabase<RunSchema>> | null = null;

function db(): Promise<IDBPDatabase<RunSchema>> {
  opened ??= openDB<RunSchema>(DB_NAME, 1, {
    upgrade(database) {
      database.createObjectStore('runs', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
      database.createObjectStore('checkpoints', { keyPath: 'runId' });
    },
  });
  return opened;
}

export async function createRun(id: string, config: RunConfig): Promise<RunRecord> {
  const now = Date.now();
  const run: RunRecord = { id, createdAt: now, updatedAt: now, config, status: 'running', checkpointStep: 0, history: [], metrics: null, evaluation: null, adapter: null, error: null };
  await write(`the record of run ${id}`, JSON.stringify(config).length, async () => (await db()).put('runs', run));
  return run;
}

export async function getRun(id: string): Promise<RunRecord | undefined> {
  const run = await (await db()).get('runs', id);
  return run && upgraded(run);
}

/** Newest first. */
export async function listRuns(): Promise<RunRecord[]> {
  return (await (await db()).getAllFromIndex('runs', 'createdAt')).reverse().map(upgraded);
}

/** A record as this version reads it (fields added since it was stored take their old meaning). */
function upgraded(run: RunRecord): RunRecord {
  return { ...run, config: upgradeRunConfig(run.config) };
}

/** The Web Lock a tab holds while it trains a run. */
export function runLockName(id: string): string {
  return `qlora-lab-run-${id}`;
}

/** Runs a closed tab (or a crash) left unfinished, and that no open tab is training: the next visit offers to resume them. */
export async function unfinishedRuns(): Promise<RunRecord[]> {
  const held = new Set(((await navigator.locks?.query())?.held ?? []).map((lock) => lock.name));
  return (await listRuns()).filter((r) => (r.status === 'running' || r.status === 'paused') && !held.has(runLockName(r.id)));
}

export async function updateRun(id: string, change: Partial<Omit<RunRecord, 'id' | 'createdAt' | 'config'>>): Promise<RunRecord> {
  const database = await db();
  const tx = database.transaction('runs', 'readwrite');
  const run = await tx.store.get(id);
  if (!run) throw new Error(`run ${id} is not in the run history (was it deleted?)`);
  const updated = { ...run, ...change, updatedAt: Date.now() };
  const bytes = (updated.adapter?.['adapter_model.safetensors'].byteLength ?? 0) + JSON.stringify({ ...updated, adapter: null }).length;
  await write(`run ${id}`, bytes, async () => {
    await tx.store.put(updated);
    await tx.done;
  });
  return updated;
}

/** Replace the run's checkpoint and move its record to that step, in one transaction. */
export async function saveCheckpoint(runId: string, snapshot: TrainerSnapshot, history: StepReport[]): Promise<void> {
  const database = await db();
  const bytes = snapshotBytes(snapshot) + JSON.stringify(history).length;
  await write(`the checkpoint of run ${runId} at step ${snapshot.step}`, bytes, async () => {
    const tx = database.transaction(['runs', 'checkpoints'], 'readwrite');
    const run = await tx.objectStore('runs').get(runId);
    if (!run) throw new Error(`run ${runId} is not in the run history (was it deleted?)`);
    await tx.objectStore('checkpoints').put({ runId, savedAt: Date.now(), snapshot, history });
    await tx.objectStore('runs').put({ ...run, checkpointStep: snapshot.step, history, updatedAt: Date.now() });
    await tx.done;
  });
}

export async function getCheckpoint(runId: string): Promise<CheckpointRecord | undefined> {
  return (await db()).get('checkpoints', runId);
}

export async function deleteRun(id: string): Promise<void> {
  const tx = (await db()).transaction(['runs', 'checkpoints'], 'readwrite');
  await Promise.all([tx.objectStore('runs').delete(id), tx.objectStore('checkpoints').delete(id), tx.done]);
}

/** A finished run keeps its adapter; its checkpoint (adapter + optimizer moments) is no longer needed. */
export async function deleteCheckpoint(runId: string): Promise<void> {
  await (await db()).delete('checkpoints', runId);
}

function snapshotBytes(snapshot: TrainerSnapshot): number {
  let bytes = 0;
  for (const t of snapshot.adapter.values()) bytes += t.data.byteLength;
  for (const a of [...snapshot.m, ...snapshot.v]) bytes += a.byteLength;
  return bytes;
}

/** Run an IndexedDB write; a full quota becomes a StorageFullError that says how much space the write needed. */
async function write<T>(what: string, bytes: number, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (!isQuotaError(e)) throw e;
    const estimate = await navigator.storage?.estimate?.().catch(() => undefined);
    const usage = estimate?.usage !== undefined && estimate.quota !== undefined ? ` This site uses ${formatBytes(estimate.usage)} of its ${formatBytes(estimate.quota)} quota.` : '';
    throw new StorageFullError(
      `The browser's storage is full: saving ${what} needs about ${formatBytes(bytes)} more.${usage} ` +
        'Delete old runs or datasets in this page, or free disk space, then resume; what was saved before is kept.',
    );
  }
}

function isQuotaError(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === 'QuotaExceededError' || (name === 'AbortError' && /quota/i.test(String((e as Error).message)));
}
