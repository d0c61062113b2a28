/**
 * Node-only file access (the CLI and tests): a model folder on disk, and the Hub download cache
 * folder ($QLORA_LAB_CACHE, else ~/.cache/qlora-lab). Browser code must not import this module.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ModelFileSource } from './file-source.ts';
import type { FileCache } from './hub.ts';

export function localDirSource(dir: string): ModelFileSource {
  const root = resolve(dir);
  return {
    kind: 'local',
    id: root,
    async read(path, onProgress) {
      const bytes = await readOptional(join(root, path));
      if (bytes) onProgress?.({ file: path, loaded: bytes.byteLength, total: bytes.byteLength, cached: false, done: true });
      return bytes;
    },
    ranges: {
      async size(path) {
        return stat(join(root, path)).then(
          (s) => s.size,
          (e: NodeJS.ErrnoException) => {
            if (e.code === 'ENOENT') return null;
            throw new Error(`could not read ${join(root, path)}: ${e.message}`);
          },
        );
      },
      async read(path, begin, end) {
        const file = await open(join(root, path), 'r');
        try {
          const bytes = new Uint8Array(end - begin);
          const { bytesRead } = await file.read(bytes, 0, bytes.length, begin);
          if (bytesRead !== bytes.length) throw new Error(`${join(root, path)}: bytes [${begin}, ${end}) run past its end`);
          return bytes;
        } finally {
          await file.close();
        }
      },
    },
  };
}

async function readOptional(path: string): Promise<Uint8Array | null> {
  try {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`could not read ${path}: ${(e as Error).message}`);
  }
}

export function defaultCacheDir(): string {
  return process.env.QLORA_LAB_CACHE || join(homedir(), '.cache', 'qlora-lab');
}

/**
 * Files under `<dir>/hub/<host>/files/<url path>[?query]`. URL path segments stay percent-encoded,
 * so a revision like refs/pr/1 is one folder; a query (the API's `?blobs=true`) is part of the last one.
 */
export function nodeFileCache(dir = defaultCacheDir()): FileCache {
  const location = (url: string) => {
    const { host, pathname, search } = new URL(url);
    const segments = pathname.split('/').filter((s) => s !== '');
    if (segments.some((s) => s === '.' || s === '..')) throw new Error(`refusing to cache ${url}: dot segments in the path`);
    if (search) segments.push(`${segments.pop()}${encodeURIComponent(search)}`);
    return join(dir, 'hub', encodeURIComponent(host), 'files', ...segments);
  };
  const writeAtomically = async (path: string, bytes: Uint8Array) => {
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${randomBytes(6).toString('hex')}.partial`;
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  };
  return {
    async has(url) {
      return stat(location(url)).then(() => true, () => false);
    },
    async get(url) {
      return (await readOptional(location(url))) ?? undefined;
    },
    async put(url, bytes) {
      await writeAtomically(location(url), bytes);
    },
  };
}
