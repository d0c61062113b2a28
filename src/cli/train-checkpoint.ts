/**
 * `qlora-lab train` checkpoints: one safetensors file in the output folder holding the adapter, the
 * AdamW moments and, in its metadata, the step, the command's own arguments and a fingerprint of
 * the data. The data position and every random draw follow from the step and the seed (epoch
 * shuffles are replayed, dropout masks are hashed from the step), so this is all a resume needs to
 * continue bit-identically. One file, written through a rename, so a kill leaves the previous one.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSafetensors, writeSafetensors } from '../model/safetensors.ts';
import type { HostTensor } from '../model/state-dict.ts';
import type { TrainerSnapshot } from '../train/trainer.ts';
import { UsageError } from './errors.ts';
import { writeOutputFile } from './output.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const METADATA_KEY = 'qlora_lab_train_checkpoint';

export interface CheckpointState {
  /** The `train` arguments of the run, without --resume. */
  args: string[];
  /** SHA-256 of the data file, so a resume never continues on other data. */
  dataSha256: string;
  /** The commit a Hub model resolved to, when it did. */
  modelCommit?: string;
}

export interface TrainCheckpoint extends CheckpointState {
  snapshot: TrainerSnapshot;
}

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function saveTrainCheckpoint(out: string, checkpoint: TrainCheckpoint): Promise<void> {
  const { snapshot, ...state } = checkpoint;
  const tensors = new Map<string, HostTensor>();
  for (const [name, t] of snapshot.adapter) tensors.set(`adapter.${name}`, t);
  snapshot.m.forEach((data, i) => tensors.set(`adam_m.${i}`, { shape: [data.length], data }));
  snapshot.v.forEach((data, i) => tensors.set(`adam_v.${i}`, { shape: [data.length], data }));
  await writeOutputFile(join(out, CHECKPOINT_FILE), writeSafetensors(tensors, { [METADATA_KEY]: JSON.stringify({ version: 1, step: snapshot.step, ...state }) }));
}

export async function loadTrainCheckpoint(out: string): Promise<TrainCheckpoint> {
  const path = join(out, CHECKPOINT_FILE);
  const bytes = await readFile(path).catch(() => {
    throw new UsageError(`--resume ${out}: there is no ${CHECKPOINT_FILE} in it (checkpoints are written every --checkpoint-every steps and when training is interrupted)`);
  });
  const file = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
  const meta = file.metadata[METADATA_KEY];
  if (!meta) throw new UsageError(`${path} is not a qlora-lab train checkpoint`);
  const { step, args, dataSha256, modelCommit } = JSON.parse(meta) as CheckpointState & { step: number };
  const adapter = new Map<string, HostTensor>();
  const m: Float32Array[] = [];
  const v: Float32Array[] = [];
  for (const [name, t] of file.tensors) {
    if (name.startsWith('adapter.')) adapter.set(name.slice('adapter.'.length), t);
    else if (name.startsWith('adam_m.')) m[Number(name.slice('adam_m.'.length))] = t.data;
    else if (name.startsWith('adam_v.')) v[Number(name.slice('adam_v.'.length))] = t.data;
  }
  return { args, dataSha256, ...(modelCommit ? { modelCommit } : {}), snapshot: { step, adapter, m, v } };
}

export async function removeTrainCheckpoint(out: string): Promise<void> {
  await rm(join(out, CHECKPOINT_FILE), { force: true });
}
