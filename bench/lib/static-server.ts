/**
 * A local HTTP server for files the Vite dev server does not serve (benchmark models in the temp
 * folder, onnxruntime-web's WASM runtime), with CORS so pages on the Vite origin can fetch them.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticServer {
  /** `${baseUrl}${prefix}` is the URL of a mounted folder (prefixes start and end with '/'). */
  baseUrl: string;
  close(): Promise<void>;
}

/** Serve each folder of `mounts` (URL prefix → folder) read-only on 127.0.0.1. */
export async function serveFolders(mounts: Record<string, string>): Promise<StaticServer> {
  for (const prefix of Object.keys(mounts)) {
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new Error(`mount prefix "${prefix}" must start and end with "/"`);
  }
  const server: Server = createServer(async (req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const prefix = Object.keys(mounts).find((p) => path.startsWith(p));
    const relative = prefix === undefined ? null : normalize(path.slice(prefix.length));
    if (prefix === undefined || relative === null || relative.startsWith('..') || relative.split(sep).includes('..')) {
      res.writeHead(404).end();
      return;
    }
    const file = join(mounts[prefix], relative);
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': info.size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the static server has no TCP address');
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    close: () => new Promise((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}
