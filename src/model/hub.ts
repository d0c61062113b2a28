/**
 * Model files from the Hugging Face Hub: `{baseUrl}/{repo}/resolve/{revision}/{file}`, streamed
 * with progress and cached by URL (so by revision too), including "this file does not exist", so a
 * model that loaded once loads again with no network at all.
 *
 * Why not @huggingface/transformers' hub helpers: its getModelFile is not part of the package's
 * public exports, and its endpoint and cache are process-wide settings (`env.remoteHost`,
 * `env.cacheDir`) rather than per call. The fetching here is small: fetch + a stream reader, the
 * browser's Cache Storage, and (Node) a folder cache in node-files.ts.
 */
import { type ModelFileSource, type OnProgress, readStream } from './file-source.ts';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** A byte cache keyed by URL; 'missing' records a 404 so it is not asked again. */
export interface FileCache {
  get(url: string): Promise<Uint8Array | 'missing' | undefined>;
  put(url: string, entry: Uint8Array | 'missing'): Promise<void>;
}

export interface HubOptions {
  /** Branch, tag or commit; default 'main'. Pin a commit for reproducible runs. */
  revision?: string;
  /** Default https://huggingface.co; tests point it at a local server. */
  baseUrl?: string;
  /** Default: Cache Storage where the environment has it (browsers), else no cache. null: no cache. */
  cache?: FileCache | null;
  /** Hugging Face access token, for gated or private repositories. */
  token?: string;
  fetch?: typeof fetch;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

export function checkRepoId(repoId: string): void {
  if (!REPO_ID.test(repoId) || repoId.includes('..')) {
    throw new Error(`"${repoId}" is not a Hugging Face repo id (expected "org/name", letters, digits, - _ .)`);
  }
}

export function hubFileUrl(baseUrl: string, repoId: string, revision: string, path: string): string {
  const file = path.split('/').map(encodeURIComponent).join('/');
  return `${baseUrl.replace(/\/+$/, '')}/${repoId}/resolve/${encodeURIComponent(revision)}/${file}`;
}

export function hubSource(repoId: string, options: HubOptions = {}): ModelFileSource {
  checkRepoId(repoId);
  const revision = options.revision ?? 'main';
  if (revision === '' || revision.includes('..')) throw new Error(`"${revision}" is not a valid revision`);
  const baseUrl = options.baseUrl ?? DEFAULT_HUB_URL;
  const cache = options.cache === undefined ? defaultCache() : options.cache;
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  const headers: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  const where = `${repoId}@${revision}`;

  async function read(path: string, onProgress?: OnProgress): Promise<Uint8Array | null> {
    const url = hubFileUrl(baseUrl, repoId, revision, path);
    const cached = await cache?.get(url);
    if (cached === 'missing') return null;
    if (cached) {
      onProgress?.({ file: path, loaded: cached.byteLength, total: cached.byteLength, cached: true, done: true });
      return cached;
    }
    const bytes = await download(fetchFn, url, { headers }, `${path} of ${where}`, path, onProgress, (response) => {
      if (response.status === 404) {
        // The Hub says which part of the URL was not found; only a missing file is a normal answer.
        const code = response.headers.get('x-error-code');
        if (code === 'RepoNotFound') throw new Error(`no repository ${repoId} on ${baseUrl}`);
        if (code === 'RevisionNotFound') throw new Error(`repository ${repoId} has no revision "${revision}"`);
        return true;
      }
      if (response.status === 401 || response.status === 403) {
        throw new Error(
          `${baseUrl} refused ${path} of ${where} (HTTP ${response.status}): the repository may not exist, or be private or gated` +
            (options.token ? ' (the token given has no access to it)' : ' (an access token is needed)'),
        );
      }
      return false;
    });
    await cache?.put(url, bytes ?? 'missing');
    return bytes;
  }

  return { kind: 'hub', id: repoId, revision, read };
}

/**
 * A model folder the app serves itself (public/models/<id>/). Not cached here: the app's service
 * worker keeps same-origin files. An HTML answer is a dev server's page fallback, i.e. no such file.
 */
export function bundledSource(folderUrl: string | URL, id: string, fetchFn: typeof fetch = globalThis.fetch.bind(globalThis)): ModelFileSource {
  const folder = new URL(folderUrl);
  if (!folder.pathname.endsWith('/')) folder.pathname += '/';
  return {
    kind: 'bundled',
    id,
    read: (path, onProgress) =>
      download(fetchFn, new URL(path, folder).href, { headers: { accept: 'application/octet-stream' } }, `${path} of the bundled model ${id}`, path, onProgress, (response) =>
        response.status === 404 || (response.ok && (response.headers.get('content-type') ?? '').startsWith('text/html')),
      ),
  };
}

/**
 * GET `url` streaming the body with progress. `isMissing` sees each response first: true means "no
 * such file" (null is returned), false goes on, and it may throw a better error of its own.
 */
async function download(
  fetchFn: typeof fetch,
  url: string,
  init: RequestInit,
  what: string,
  file: string,
  onProgress: OnProgress | undefined,
  isMissing: (response: Response) => boolean,
): Promise<Uint8Array | null> {
  let response: Response;
  try {
    response = await fetchFn(url, init);
  } catch (e) {
    throw new Error(`could not download ${what} from ${new URL(url).origin}: ${(e as Error).message}`);
  }
  try {
    if (isMissing(response)) {
      await response.body?.cancel();
      return null;
    }
  } catch (e) {
    await response.body?.cancel();
    throw e;
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`downloading ${what} failed: HTTP ${response.status} ${response.statusText}`);
  }
  // A compressed response's Content-Length counts compressed bytes: only a hint for progress.
  const length = Number(response.headers.get('content-length'));
  const total = Number.isSafeInteger(length) && length > 0 && !response.headers.get('content-encoding') ? length : null;
  try {
    return await readStream(response.body, total, (loaded, done) =>
      onProgress?.({ file, loaded, total: total === null ? null : Math.max(total, loaded), cached: false, done }),
    );
  } catch (e) {
    throw new Error(`download of ${what} broke off: ${(e as Error).message}`);
  }
}

function defaultCache(): FileCache | null {
  return typeof caches === 'undefined' ? null : cacheStorageCache();
}

/** The browser's Cache Storage (persists across page loads; the user can clear it with site data). */
export function cacheStorageCache(name = 'qlora-lab-hub'): FileCache {
  const open = () => caches.open(name);
  return {
    async get(url) {
      const response = await (await open()).match(url);
      if (!response) return undefined;
      if (response.status === 404) return 'missing';
      return new Uint8Array(await response.arrayBuffer());
    },
    async put(url, entry) {
      const response =
        entry === 'missing'
          ? new Response(null, { status: 404 })
          : new Response(entry as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } });
      await (await open()).put(url, response);
    },
  };
}
