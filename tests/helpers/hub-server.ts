/**
 * A local stand-in for the Hugging Face Hub: serves files at `/{org}/{name}/resolve/{revision}/{path}`
 * (404 with the Hub's X-Error-Code for an unknown repo, revision or file), counts every request,
 * and sends CORS headers so pages on another origin (the Vite test server) can fetch from it.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { type Server, type ServerResponse, createServer } from 'node:http';
import { join, relative } from 'node:path';

/** repo id → revision → file path → contents. */
export type HubContents = Record<string, Record<string, Record<string, Uint8Array | string>>>;

export interface HubServer {
  baseUrl: string;
  /** Every request path, in order. */
  requests: string[];
  /** Requests for one file of one repo/revision. */
  count(repoId: string, revision: string, path: string): number;
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

export async function startHubServer(contents: HubContents, options: HubServerOptions = {}): Promise<HubServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    requests.push(path);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'X-Error-Code, Content-Length');
    const notFound = (code: string) => {
      res.writeHead(404, { 'X-Error-Code': code, 'Content-Type': 'text/plain' });
      res.end(`${code}: ${path}`);
    };
    const m = /^\/((?:[^/]+\/)?[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) return notFound('RepoNotFound');
    const [, repoId, revision, file] = m.map(decodeURIComponent);
    const repo = contents[repoId];
    if (!repo) return notFound('RepoNotFound');
    const files = repo[revision];
    if (!files) return notFound('RevisionNotFound');
    const body = files[file];
    if (body === undefined) return notFound('EntryNotFound');
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
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
    count: (repoId, revision, path) => requests.filter((r) => r === `/${repoId}/resolve/${encodeURIComponent(revision)}/${path}`).length,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}
