/**
 * The autotuner's cache in Node (CLI, benchmarks, tests): one JSON file, by default
 * $XDG_CACHE_HOME/qlora-lab/autotune.json (~/.cache/qlora-lab/autotune.json), holding each adapter
 * key's table. Writes go to a temporary sibling renamed into place, so a crash never leaves half a file.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TuneCache, TuneTable } from './autotune.ts';

interface CacheFile {
  version: 1;
  adapters: Record<string, TuneTable>;
}

export function defaultTuneCachePath(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'qlora-lab', 'autotune.json');
}

/** Node's and the webgpu package's (Dawn's) versions. */
function nodeRuntime(): string {
  const { version } = createRequire(import.meta.url)('webgpu/package.json') as { version: string };
  return `node ${process.version}, webgpu ${version}`;
}

function readCacheFile(path: string): CacheFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, adapters: {} };
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`autotune cache ${path} is not valid JSON (${(e as Error).message}); delete it to tune again`);
  }
  const file = parsed as Partial<CacheFile>;
  const tables = file?.adapters;
  if (file?.version !== 1 || typeof tables !== 'object' || tables === null) {
    throw new Error(`autotune cache ${path} is not a version 1 cache ({"version": 1, "adapters": {...}}); delete it to tune again`);
  }
  for (const [key, table] of Object.entries(tables)) {
    for (const [cls, choice] of Object.entries(table ?? {})) {
      if (typeof choice?.variant !== 'string' || typeof choice.ms !== 'object' || choice.ms === null) {
        throw new Error(`autotune cache ${path}: adapter "${key}", class "${cls}" has no variant name and timings; delete the file to tune again`);
      }
    }
  }
  return file as CacheFile;
}

export function fileTuneCache(path = defaultTuneCachePath()): TuneCache {
  return {
    runtime: nodeRuntime(),
    async load(adapterKey) {
      return readCacheFile(path).adapters[adapterKey] ?? {};
    },
    async save(adapterKey, table) {
      const file = readCacheFile(path);
      file.adapters[adapterKey] = table;
      mkdirSync(dirname(path), { recursive: true });
      const temporary = `${path}.${process.pid}.tmp`;
      writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`);
      renameSync(temporary, path);
    },
  };
}
