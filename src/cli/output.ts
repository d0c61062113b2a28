/**
 * CLI outputs that never leave a half-written result: paths are checked before any work starts,
 * and files are written to temporary siblings and renamed into place only once all are complete,
 * so a failed write (full disk, permissions) leaves the previous output as it was.
 */
import { constants } from 'node:fs';
import { access, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.ts';

/** Where an output goes: a folder of files, or a single file. */
export type OutputKind = 'dir' | 'file';

/**
 * Check that `path` can receive the output before any work starts: an existing path of the other
 * kind, or a nearest existing ancestor that is not a writable folder, is a UsageError naming the option.
 */
export async function checkOutputPath(option: string, path: string, kind: OutputKind): Promise<void> {
  const existing = await stat(path).catch(() => null);
  if (existing) {
    if (kind === 'dir' && !existing.isDirectory()) throw new UsageError(`--${option} ${path} is a file; give a folder (it will be created if missing)`);
    if (kind === 'file' && existing.isDirectory()) throw new UsageError(`--${option} ${path} is a folder; give a file name`);
    await writable(option, kind === 'dir' ? path : dirname(resolve(path)), path);
    return;
  }
  let ancestor = dirname(resolve(path));
  for (;;) {
    const s = await stat(ancestor).catch(() => null);
    if (s) {
      if (!s.isDirectory()) throw new UsageError(`--${option} ${path} cannot be created: ${ancestor} is a file, not a folder`);
      break;
    }
    ancestor = dirname(ancestor);
  }
  await writable(option, ancestor, path);
}

async function writable(option: string, folder: string, path: string): Promise<void> {
  await access(folder, constants.W_OK).catch(() => {
    throw new UsageError(`--${option} ${path}: the folder ${folder} is not writable`);
  });
}

/**
 * Write `files` into the folder `dir` (created if missing; a name like `1_Pooling/config.json` goes
 * into a subfolder): each is first written to a temporary sibling, and only when every one is
 * complete are they renamed over their names. Other entries of the folder are left alone. On
 * failure the temporaries are removed and the error says what was kept.
 */
export async function writeOutputDir<T extends { [K in keyof T]: Uint8Array | string }>(dir: string, files: T): Promise<void> {
  const temp = (name: string) => join(dir, dirname(name), `.${basename(name)}.partial-${process.pid}`);
  const names = Object.keys(files) as (keyof T & string)[];
  try {
    for (const folder of new Set(names.map((name) => join(dir, dirname(name))))) await mkdir(folder, { recursive: true });
    for (const name of names) await writeFile(temp(name), files[name]);
  } catch (e) {
    // A temporary that cannot be removed must not hide the error that matters.
    await Promise.all(names.map((name) => rm(temp(name), { force: true }).catch(() => {})));
    throw new Error(`could not write ${dir}: ${(e as Error).message}. Nothing in ${dir} was changed.`);
  }
  for (const name of names) await rename(temp(name), join(dir, name));
}

/** Write one file through a temporary sibling and a rename, so a failure keeps the previous file. */
export async function writeOutputFile(path: string, content: Uint8Array | string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.partial-${process.pid}`);
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(temp, content);
  } catch (e) {
    await rm(temp, { force: true }).catch(() => {});
    throw new Error(`could not write ${path}: ${(e as Error).message}. The previous ${path}, if any, was kept.`);
  }
  await rename(temp, path);
}
