/**
 * A local stand-in for the Hugging Face Hub: answers `/api/models/{repo}/revision/{revision}` with
 * the revision's commit and file list (sizes too with ?blobs=true), serves files at
 * `/{org}/{name}/resolve/{revision or commit}/{path}` (404 with the Hub's X-Error-Code for an unknown
 * repo, revision or file), counts every request, and sends CORS headers so pages on another origin
 * (the Vite test server) can fetch from it. A revision's commit is a hash of its files, so a test
 * that changes a branch's files (`contents` is read on every request) moves the branch to a new commit.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { type Server, type ServerResponse, createServer } from 'node:http';
import { join, relative } from 'node:path';

/** repo id → revision → file path → contents. */
export type HubContents = Record<string, Record<string, Record<string, Uint8Array | string>>>;

export interface HubServer {
  baseUrl: string;
  /** Every request path, in order. */
  requests: string[];
  /** Requests for one file of one repo/revision (by its name or its commit). */
  count(repoId: string, revision: string, path: string): number;
  /** The commit a revision resolves to now. */
  commit(repoId: string, revision: string): string;
  close(): Promise<void>;
}

export interface HubServerOptions {
  /** Send Content-Length (default true); false streams chunked, as some proxies do. */
  contentLength?: boolean;
  /** Send bodies in this many pieces, `pauseMs` apart, so a client sees partial progress. */
  pieces?: number;
  pauseMs?: number;
}

/** Every file below `dir`, keyed by its path relative to it (for serving a fixture folder). */
export function folderContents(dir: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(dir, path).split('\\').join('/')] = new Uint8Array(readFileSync(path));
    }
  };
  walk(dir);
  return out;
}

async function sendInPieces(res: ServerResponse, bytes: Uint8Array, pieces: number, pauseMs: number): Promise<void> {
  const size = Math.ceil(bytes.byteLength / pieces);
  for (let at = 0; at < bytes.byteLength; at += size) {
    if (at > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    res.write(bytes.subarray(at, at + size));
  }
  res.end();
}

const bytesOf = (body: Uint8Array | string) => (typeof body === 'string' ? new TextEncoder().encode(body) : body);

function commitOf(repoId: string, files: Record<string, Uint8Array | string>): string {
  const hash = createHash('sha1').update(repoId);
  for (const name of Object.keys(files).sort()) hash.update(`\0${name}\0`).update(bytesOf(files[name]));
  return hash.digest('hex');
}

export async function startHubServer(contents: HubContents, options: HubServerOptions = {}): Promise<HubServer> {
  const requests: string[] = [];
  /** A revision by name or by commit. */
  const revisionFiles = (repo: Record<string, Record<string, Uint8Array | string>>, repoId: string, revision: string) =>
    repo[revision] ?? Object.values(repo).find((files) => commitOf(repoId, files) === revision);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    requests.push(path);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'X-Error-Code, Content-Length');
    const notFound = (code: string) => {
      res.writeHead(404, { 'X-Error-Code': code, 'Content-Type': 'text/plain' });
      res.end(`${code}: ${path}`);
    };
    const api = /^\/api\/models\/((?:[^/]+\/)?[^/]+)\/revision\/([^/]+)$/.exec(path);
    if (api) {
      const [, repoId, revision] = api.map(decodeURIComponent);
      const repo = contents[repoId];
      if (!repo) return notFound('RepoNotFound');
      const files = revisionFiles(repo, repoId, revision);
      if (!files) return notFound('RevisionNotFound');
      const blobs = new URL(req.url ?? '/', 'http://x').searchParams.get('blobs') === 'true';
      const siblings = Object.keys(files).map((rfilename) => ({ rfilename, ...(blobs ? { size: bytesOf(files[rfilename]).byteLength } : {}) }));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: repoId, sha: commitOf(repoId, files), siblings }));
      return;
    }
    const m = /^\/((?:[^/]+\/)?[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) return notFound('RepoNotFound');
    const [, repoId, revision, file] = m.map(decodeURIComponent);
    const repo = contents[repoId];
    if (!repo) return notFound('RepoNotFound');
    const files = revisionFiles(repo, repoId, revision);
    if (!files) return notFound('RevisionNotFound');
    const body = files[file];
    if (body === undefined) return notFound('EntryNotFound');
    const bytes = bytesOf(body);
    const headers: Record<string, string | number> = { 'Content-Type': 'application/octet-stream' };
    if (options.contentLength ?? true) headers['Content-Length'] = bytes.byteLength;
    res.writeHead(200, headers);
    void sendInPieces(res, bytes, options.pieces ?? 1, options.pauseMs ?? 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('hub server has no TCP address');
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    requests,
    count: (repoId, revision, path) => {
      const names = [revision, commitOf(repoId, contents[repoId][revision])].map((r) => `/${repoId}/resolve/${encodeURIComponent(r)}/${path}`);
      return requests.filter((r) => names.includes(r)).length;
    },
    commit: (repoId, revision) => commitOf(repoId, contents[repoId][revision]),
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}
