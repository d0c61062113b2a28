/**
 * Model files from the Hugging Face Hub. A revision (branch, tag or commit) is first resolved to
 * its commit through the Hub's API (`/api/models/{repo}/revision/{revision}?blobs=true`, which also
 * lists the files and their sizes), then files are fetched from `{repo}/resolve/{commit}/{file}`
 * and cached by that URL: a commit never changes, so cached files never go stale, and a file the
 * commit does not have is known without asking. A branch such as `main` is looked up again on every
 * load when the Hub can be reached (one small request), and the last answer is used when it cannot,
 * so a model that loaded once loads again with no network at all.
 *
 * Why not @huggingface/transformers' hub helpers: its getModelFile is not part of the package's
 * public exports, and its endpoint and cache are process-wide settings (`env.remoteHost`,
 * `env.cacheDir`) rather than per call. The fetching here is small: fetch + a stream reader, the
 * browser's Cache Storage, and (Node) a folder cache in node-files.ts.
 */
import { type ModelFileSource, type OnProgress, readStream } from './file-source.ts';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** A byte cache keyed by URL. */
export interface FileCache {
  has(url: string): Promise<boolean>;
  get(url: string): Promise<Uint8Array | undefined>;
  put(url: string, bytes: Uint8Array): Promise<void>;
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

/** A revision resolved: its commit, and every file of the repository at that commit with its size in bytes. */
export interface HubRevision {
  commit: string;
  files: Map<string, number>;
  /** True when the Hub could not be reached and the last answer cached for this revision was used. */
  offline: boolean;
}

export interface HubSource extends ModelFileSource {
  readonly kind: 'hub';
  /** Resolve the revision (once per source). */
  resolve(): Promise<HubRevision>;
  /** Bytes of `paths` at the resolved commit, and how many of them are not cached yet. */
  sizeOf(paths: string[]): Promise<{ bytes: number; toDownload: number }>;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;
const COMMIT = /^[0-9a-f]{40}$/;

export function checkRepoId(repoId: string): void {
  if (!REPO_ID.test(repoId) || repoId.includes('..')) {
    throw new Error(`"${repoId}" is not a Hugging Face repo id (expected "org/name", letters, digits, - _ .)`);
  }
}

export function hubFileUrl(baseUrl: string, repoId: string, revision: string, path: string): string {
  const file = path.split('/').map(encodeURIComponent).join('/');
  return `${baseUrl.replace(/\/+$/, '')}/${repoId}/resolve/${encodeURIComponent(revision)}/${file}`;
}

export function hubRevisionUrl(baseUrl: string, repoId: string, revision: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/api/models/${repoId}/revision/${encodeURIComponent(revision)}?blobs=true`;
}

export function hubSource(repoId: string, options: HubOptions = {}): HubSource {
  checkRepoId(repoId);
  const revision = options.revision ?? 'main';
  if (revision === '' || revision.includes('..')) throw new Error(`"${revision}" is not a valid revision`);
  const baseUrl = options.baseUrl ?? DEFAULT_HUB_URL;
  const cache = options.cache === undefined ? defaultCache() : options.cache;
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  const headers: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  const where = `${repoId}@${revision}`;
  const refused = (status: number, what: string) =>
    new Error(
      `${baseUrl} refused ${what} (HTTP ${status}): the repository may not exist, or be private or gated` +
        (options.token ? ' (the token given has no access to it)' : ' (an access token is needed)'),
    );

  async function lookUp(): Promise<HubRevision> {
    const url = hubRevisionUrl(baseUrl, repoId, revision);
    const cached = await cache?.get(url);
    // A commit's files never change: its answer is final. A branch or tag is asked again.
    if (cached && COMMIT.test(revision)) return parseRevision(cached, where, false);
    let response: Response;
    try {
      response = await fetchFn(url, { headers });
    } catch (e) {
      if (cached) return parseRevision(cached, where, true);
      throw new Error(`could not reach ${new URL(url).origin} to look up ${where} (and it is not cached here): ${(e as Error).message}`);
    }
    if (response.status === 404) {
      await response.body?.cancel();
      if (response.headers.get('x-error-code') === 'RevisionNotFound') throw new Error(`repository ${repoId} has no revision "${revision}"`);
      throw new Error(`no repository ${repoId} on ${baseUrl}`);
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw refused(response.status, `the file list of ${where}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`looking up ${where} on ${baseUrl} failed: HTTP ${response.status} ${response.statusText}`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    const resolved = parseRevision(bytes, where, false);
    await cache?.put(url, bytes);
    return resolved;
  }

  let resolving: Promise<HubRevision> | null = null;
  const resolve = () => {
    resolving ??= lookUp();
    return resolving;
  };

  async function read(path: string, onProgress?: OnProgress): Promise<Uint8Array | null> {
    const { commit, files } = await resolve();
    const size = files.get(path);
    if (size === undefined) return null;
    const url = hubFileUrl(baseUrl, repoId, commit, path);
    const cached = await cache?.get(url);
    if (cached) {
      onProgress?.({ file: path, loaded: cached.byteLength, total: cached.byteLength, cached: true, done: true });
      return cached;
    }
    const bytes = await download(fetchFn, url, { headers }, `${path} of ${where}`, path, size, onProgress, (response) => {
      if (response.status === 404) throw new Error(`${where} lists ${path}, but the Hub has no such file at commit ${commit}`);
      if (response.status === 401 || response.status === 403) throw refused(response.status, `${path} of ${where}`);
      return false;
    });
    await cache?.put(url, bytes!);
    return bytes;
  }

  async function sizeOf(paths: string[]): Promise<{ bytes: number; toDownload: number }> {
    const { commit, files } = await resolve();
    let bytes = 0;
    let toDownload = 0;
    for (const path of paths) {
      const size = Math.max(0, files.get(path) ?? 0);
      bytes += size;
      if (!(await cache?.has(hubFileUrl(baseUrl, repoId, commit, path)))) toDownload += size;
    }
    return { bytes, toDownload };
  }

  return { kind: 'hub', id: repoId, revision, read, resolve, sizeOf, commit: async () => (await resolve()).commit };
}

/** The API's answer: `sha` (the commit) and `siblings` (`rfilename`, and `size` with blobs=true). */
function parseRevision(bytes: Uint8Array, where: string, offline: boolean): HubRevision {
  let json: { sha?: unknown; siblings?: unknown };
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error(`the Hub's answer for ${where} is not JSON`);
  }
  const siblings = json.siblings;
  if (typeof json.sha !== 'string' || !COMMIT.test(json.sha) || !Array.isArray(siblings)) {
    throw new Error(`the Hub's answer for ${where} has no commit and file list`);
  }
  const files = new Map<string, number>();
  for (const s of siblings as { rfilename?: unknown; size?: unknown }[]) {
    if (typeof s?.rfilename === 'string') files.set(s.rfilename, typeof s.size === 'number' ? s.size : -1);
  }
  return { commit: json.sha, files, offline };
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
      download(fetchFn, new URL(path, folder).href, { headers: { accept: 'application/octet-stream' } }, `${path} of the bundled model ${id}`, path, -1, onProgress, (response) =>
        response.status === 404 || (response.ok && (response.headers.get('content-type') ?? '').startsWith('text/html')),
      ),
  };
}

/**
 * GET `url` streaming the body with progress. `isMissing` sees each response first: true means "no
 * such file" (null is returned), false goes on, and it may throw a better error of its own.
 * `size` is the size known beforehand (-1: unknown), for progress when the response has no length.
 */
async function download(
  fetchFn: typeof fetch,
  url: string,
  init: RequestInit,
  what: string,
  file: string,
  size: number,
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
  const total = Number.isSafeInteger(length) && length > 0 && !response.headers.get('content-encoding') ? length : size >= 0 ? size : null;
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
    async has(url) {
      return (await (await open()).match(url)) !== undefined;
    },
    async get(url) {
      const response = await (await open()).match(url);
      return response ? new Uint8Array(await response.arrayBuffer()) : undefined;
    },
    async put(url, bytes) {
      await (await open()).put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }));
    },
  };
}
