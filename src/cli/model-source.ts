/**
 * `--model <dir|hub-id[@revision]>` for CLI commands: an existing folder is read from disk,
 * anything else is a Hub repo id (downloads cached in $QLORA_LAB_CACHE or ~/.cache/qlora-lab;
 * HF_ENDPOINT and HF_TOKEN are honoured as in huggingface_hub). Progress goes to stderr.
 */
import { statSync } from 'node:fs';
import { type ModelFiles, loadModelFiles } from '../model/checkpoint.ts';
import type { FileProgress, ModelFileSource } from '../model/file-source.ts';
import { DEFAULT_HUB_URL, checkRepoId, hubSource } from '../model/hub.ts';
import { localDirSource, nodeFileCache } from '../model/node-files.ts';

export type ModelArgument = { kind: 'local'; dir: string } | { kind: 'hub'; id: string; revision: string };

export function parseModelArgument(arg: string): ModelArgument {
  if (isDirectory(arg)) return { kind: 'local', dir: arg };
  const at = arg.lastIndexOf('@');
  const [id, revision] = at > 0 ? [arg.slice(0, at), arg.slice(at + 1)] : [arg, 'main'];
  if (revision === '') throw new Error(`--model ${arg}: empty revision after @`);
  try {
    checkRepoId(id);
  } catch {
    throw new Error(`--model ${arg}: no such folder, and not a Hugging Face repo id ("org/name" or "org/name@revision")`);
  }
  return { kind: 'hub', id, revision };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function modelSource(arg: string, env: NodeJS.ProcessEnv = process.env): ModelFileSource {
  const parsed = parseModelArgument(arg);
  if (parsed.kind === 'local') return localDirSource(parsed.dir);
  return hubSource(parsed.id, {
    revision: parsed.revision,
    baseUrl: env.HF_ENDPOINT || DEFAULT_HUB_URL,
    token: env.HF_TOKEN || undefined,
    cache: nodeFileCache(),
  });
}

/** Load the model named by a --model argument, reporting downloads on `stderr`. */
export async function loadModelArgument(arg: string, stderr: { write(s: string): unknown } = process.stderr): Promise<ModelFiles> {
  const source = modelSource(arg);
  return loadModelFiles(source, { onProgress: progressPrinter(stderr), log: (message) => stderr.write(`${message}\n`) });
}

/** A line when a file is done, and while downloading every 10% (or every 50 MB when the size is unknown). */
export function progressPrinter(stderr: { write(s: string): unknown }): (p: FileProgress) => void {
  const nextReport = new Map<string, number>();
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  return (p) => {
    if (p.done) {
      stderr.write(`${p.file}: ${mb(p.loaded)}${p.cached ? ' (cached)' : ''}\n`);
      return;
    }
    const step = p.total ? p.total / 10 : 50e6;
    if (p.loaded < (nextReport.get(p.file) ?? step)) return;
    nextReport.set(p.file, (Math.floor(p.loaded / step) + 1) * step);
    stderr.write(`${p.file}: ${mb(p.loaded)}${p.total ? ` of ${mb(p.total)}` : ''}\n`);
  };
}
