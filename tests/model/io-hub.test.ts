import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { type FileProgress, fileListToMap, fileMapSource } from '../../src/model/file-source.ts';
import { bundledSource, hubFileUrl, hubSource } from '../../src/model/hub.ts';
import { localDirSource, nodeFileCache } from '../../src/model/node-files.ts';
import { writeSafetensors } from '../../src/model/safetensors.ts';
import { type HubServer, folderContents, startHubServer } from '../helpers/hub-server.ts';

const TINY = 'tests/fixtures/bert/tiny';
const BIN = 'tests/model/io-fixtures/tiny-bert-bin';
const REPO = 'test-org/tiny-bert';
const tiny = folderContents(TINY);
const modelFiles = (names: string[]) => Object.fromEntries(names.map((n) => [n, tiny[n]]));
const BASE_FILES = ['config.json', 'model.safetensors', 'vocab.txt', 'tokenizer_config.json'];

/** The .bin fixture model again, its weights (torch's values from expected.json) in two safetensors shards. */
function shardedFiles(): Record<string, Uint8Array | string> {
  const expected = JSON.parse(readFileSync(join(BIN, 'expected.json'), 'utf8')) as Record<string, { shape: number[]; values: number[] }>;
  const names = Object.keys(expected);
  const half = Math.ceil(names.length / 2);
  const out: Record<string, Uint8Array | string> = {};
  for (const name of ['config.json', 'vocab.txt', 'tokenizer_config.json']) out[name] = readFileSync(join(BIN, name));
  const weightMap: Record<string, string> = {};
  [names.slice(0, half), names.slice(half)].forEach((group, k) => {
    const file = `model-0000${k + 1}-of-00002.safetensors`;
    out[file] = writeSafetensors(new Map(group.map((n) => [n, { shape: expected[n].shape, data: Float32Array.from(expected[n].values) }])));
    for (const n of group) weightMap[n] = file;
  });
  out['model.safetensors.index.json'] = JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap });
  return out;
}

let server: HubServer;
let cacheDir: string;
beforeAll(async () => {
  const bin = folderContents(BIN);
  server = await startHubServer(
    {
      [REPO]: {
        main: modelFiles(BASE_FILES),
        v1: modelFiles(BASE_FILES),
        'refs/pr/1': modelFiles(BASE_FILES),
      },
      'test-org/bin-only': { main: bin },
      'test-org/sharded': { main: shardedFiles() },
      'test-org/no-weights': { main: modelFiles(['config.json', 'vocab.txt']) },
      'test-org/mpnet': { main: { 'config.json': JSON.stringify({ model_type: 'mpnet', architectures: ['MPNetModel'] }) } },
      legacyname: { main: modelFiles(BASE_FILES) },
    },
    { pieces: 4, pauseMs: 20 },
  );
  cacheDir = mkdtempSync(join(tmpdir(), 'qlora-lab-hub-cache-'));
});
afterAll(async () => {
  await server?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('Hub source against a local server in the Hub URL layout', () => {
  it('loads config, weights and tokenizer, reporting streamed progress per file', async () => {
    const events: FileProgress[] = [];
    const source = hubSource(REPO, { baseUrl: server.baseUrl, cache: nodeFileCache(join(cacheDir, 'a')) });
    const model = await loadModelFiles(source, { onProgress: (p) => events.push(p) });
    expect(model.source).toEqual({
      kind: 'hub',
      id: REPO,
      revision: 'main',
      commit: server.commit(REPO, 'main'),
      files: ['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt'],
    });
    expect(model.config.hiddenSize).toBe(32);
    expect(model.weights.size).toBe(5 + 16 * 2 + 2); // embeddings, 2 layers, pooler
    const weightEvents = events.filter((e) => e.file === 'model.safetensors');
    const size = tiny['model.safetensors'].byteLength;
    // The server sends 4 pieces 20 ms apart: progress must show the partial amounts.
    expect(weightEvents.filter((e) => e.loaded > 0 && e.loaded < size).length).toBeGreaterThanOrEqual(3);
    expect(weightEvents.every((e) => e.total === size && !e.cached)).toBe(true);
    expect(weightEvents.map((e) => e.loaded)).toEqual([...weightEvents.map((e) => e.loaded)].sort((a, b) => a - b));
    expect(weightEvents.at(-1)).toMatchObject({ loaded: size, done: true });
  });

  it('fetches each file once: a second load (same cache) only asks which commit main is at', async () => {
    const cache = nodeFileCache(join(cacheDir, 'b'));
    const before = server.requests.length;
    await loadModelFiles(hubSource(REPO, { baseUrl: server.baseUrl, cache }));
    const first = server.requests.slice(before);
    // the revision lookup, then config, weights, tokenizer config and vocab.txt; tokenizer.json is
    // not in the file list, so it is never asked for.
    expect(first).toEqual([`/api/models/${REPO}/revision/main`, ...['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt'].map((f) => `/${REPO}/resolve/${server.commit(REPO, 'main')}/${f}`)]);
    const events: FileProgress[] = [];
    const again = await loadModelFiles(hubSource(REPO, { baseUrl: server.baseUrl, cache }), { onProgress: (p) => events.push(p) });
    expect(server.requests.slice(before + 5)).toEqual([`/api/models/${REPO}/revision/main`]);
    expect(again.weights.get('encoder.layer.1.output.dense.weight')?.data.length).toBe(32 * 64);
    expect(events.every((e) => e.cached && e.done)).toBe(true);
    expect(events.map((e) => e.file)).toEqual(['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']);
  });

  it('keys the cache by commit: a revision at the same commit downloads nothing, refs/pr/1 is URL-encoded in one path segment', async () => {
    const cache = nodeFileCache(join(cacheDir, 'c'));
    await loadModelFiles(hubSource(REPO, { baseUrl: server.baseUrl, cache }));
    const before = server.requests.length;
    const v1 = await loadModelFiles(hubSource(REPO, { baseUrl: server.baseUrl, cache, revision: 'v1' }));
    expect(v1.source).toMatchObject({ revision: 'v1', commit: server.commit(REPO, 'main') });
    const pr = await loadModelFiles(hubSource(REPO, { baseUrl: server.baseUrl, cache, revision: 'refs/pr/1' }));
    expect(pr.source.revision).toBe('refs/pr/1');
    expect(server.requests.slice(before)).toEqual([`/api/models/${REPO}/revision/v1`, `/api/models/${REPO}/revision/refs%2Fpr%2F1`]);
    expect(hubFileUrl('https://huggingface.co/', 'a/b', 'refs/pr/1', 'onnx/model q.onnx')).toBe('https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/onnx/model%20q.onnx');
    expect(readdirSync(join(cacheDir, 'c', 'hub'))).toEqual([encodeURIComponent(new URL(server.baseUrl).host)]);
  });

  it('follows a branch that moves: new files are found (nothing missing is remembered), changed ones downloaded; offline, the last commit seen is used', async () => {
    const repo = { main: modelFiles(['config.json', 'model.safetensors', 'vocab.txt']) as Record<string, Uint8Array | string> };
    const moving = await startHubServer({ 'test-org/moving': repo });
    const cache = nodeFileCache(join(cacheDir, 'd'));
    const load = () => loadModelFiles(hubSource('test-org/moving', { baseUrl: moving.baseUrl, cache }));
    try {
      const first = await load();
      expect(first.source.files).toEqual(['config.json', 'model.safetensors', 'vocab.txt']);
      // A new commit on main adds tokenizer_config.json (absent before) and changes config.json.
      const config = JSON.parse(new TextDecoder().decode(tiny['config.json']));
      repo.main = { ...repo.main, 'tokenizer_config.json': tiny['tokenizer_config.json'], 'config.json': JSON.stringify({ ...config, note: 'moved' }) };
      const before = moving.requests.length;
      const second = await load();
      expect(second.source.commit).toBe(moving.commit('test-org/moving', 'main'));
      expect(second.source.commit).not.toBe(first.source.commit);
      expect(second.source.files).toEqual(['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']);
      expect(moving.requests.slice(before).filter((r) => r.includes('/resolve/'))).toHaveLength(4); // the new commit's URLs
    } finally {
      await moving.close();
    }
    // The Hub is gone: the last answer for main, and the files of its commit, come from the cache.
    const offline = await load();
    expect(offline.source.commit).toBe(moving.commit('test-org/moving', 'main'));
    expect(offline.source.files).toEqual(['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']);
  });

  it('works without Content-Length (total unknown) and with legacy repo ids without an org', async () => {
    const chunked = await startHubServer({ legacyname: { main: modelFiles(BASE_FILES) } }, { contentLength: false, pieces: 3, pauseMs: 20 });
    try {
      const events: FileProgress[] = [];
      const model = await loadModelFiles(hubSource('legacyname', { baseUrl: chunked.baseUrl, cache: null }), { onProgress: (p) => events.push(p) });
      expect(model.weights.size).toBe(39);
      const last = events.filter((e) => e.file === 'model.safetensors').at(-1);
      // No Content-Length, but the revision's file list gave the size.
      expect(last).toMatchObject({ loaded: tiny['model.safetensors'].byteLength, total: tiny['model.safetensors'].byteLength, done: true });
    } finally {
      await chunked.close();
    }
  });

  it('reads pytorch_model.bin when there is no safetensors, and sharded safetensors through the index', async () => {
    const bin = await loadModelFiles(hubSource('test-org/bin-only', { baseUrl: server.baseUrl, cache: null }));
    expect(bin.source.files).toEqual(['config.json', 'pytorch_model.bin', 'tokenizer_config.json', 'vocab.txt']);
    expect(bin.weights.get('embeddings.word_embeddings.weight')?.shape).toEqual([24, 8]);
    const sharded = await loadModelFiles(hubSource('test-org/sharded', { baseUrl: server.baseUrl, cache: null }));
    expect(sharded.source.files.slice(0, 4)).toEqual(['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    // Same tensors as the .bin of the same model.
    for (const [name, t] of bin.weights) expect(sharded.weights.get(name)?.data, name).toEqual(t.data);
  });

  it('sends the access token, and explains a 401', async () => {
    const seen: (string | null)[] = [];
    const refusing: typeof fetch = async (_url, init) => {
      seen.push(new Headers(init?.headers).get('authorization'));
      return new Response('no', { status: 401 });
    };
    await expect(loadModelFiles(hubSource('org/gated', { fetch: refusing, token: 'hf_abc', cache: null }))).rejects.toThrow(
      /refused the file list of org\/gated@main \(HTTP 401\): the repository may not exist, or be private or gated \(the token given has no access to it\)/,
    );
    await expect(loadModelFiles(hubSource('org/gated', { fetch: refusing, cache: null }))).rejects.toThrow(/\(an access token is needed\)/);
    expect(seen).toEqual(['Bearer hf_abc', null]);
  });

  it('gives clear errors: unknown repo, unknown revision, no weights, another architecture, unreachable host, bad id', async () => {
    const load = (id: string, revision?: string, baseUrl = server.baseUrl) => loadModelFiles(hubSource(id, { baseUrl, revision, cache: null }));
    await expect(load('test-org/missing')).rejects.toThrow(/no repository test-org\/missing/);
    await expect(load(REPO, 'nope')).rejects.toThrow(/has no revision "nope"/);
    await expect(load('test-org/no-weights')).rejects.toThrow(/has no weights: looked for model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin/);
    await expect(load('test-org/mpnet')).rejects.toThrow(/model_type "mpnet".*MPNetModel.*not supported yet/);
    await expect(load(REPO, 'main', 'http://127.0.0.1:1')).rejects.toThrow(/could not reach http:\/\/127\.0\.0\.1:1 to look up test-org\/tiny-bert@main \(and it is not cached here\)/);
    expect(() => hubSource('../etc/passwd')).toThrow(/not a Hugging Face repo id/);
  });
});

describe('bundled source (a model folder the app serves)', () => {
  it('loads from a folder URL, treating a dev server\'s HTML page fallback as a missing file', async () => {
    const folder = `${server.baseUrl}/${REPO}/resolve/main`;
    // Like Vite's dev server: unknown paths answer 200 with index.html instead of 404.
    const spaFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (response.status !== 404) return response;
      await response.body?.cancel();
      return new Response('<!doctype html><title>app</title>', { headers: { 'content-type': 'text/html; charset=utf-8' } });
    };
    const model = await loadModelFiles(bundledSource(folder, 'demo-bert', spaFetch));
    expect(model.source).toEqual({ kind: 'bundled', id: 'demo-bert', revision: undefined, files: ['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt'] });
    await expect(loadModelFiles(bundledSource(`${server.baseUrl}/nowhere/`, 'gone'))).rejects.toThrow(/gone has no config\.json/);
  });
});

describe('local sources', () => {
  it('a folder on disk and a map of Blobs (the browser path) load the same model', async () => {
    const fromDir = await loadModelFiles(localDirSource(TINY));
    const blobs = new Map(Object.entries(tiny).map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])]));
    const events: FileProgress[] = [];
    const fromMap = await loadModelFiles(fileMapSource(blobs, 'dropped'), { onProgress: (p) => events.push(p) });
    expect(fromMap.source).toMatchObject({ kind: 'local', id: 'dropped' });
    expect(fromDir.source.files).toEqual(fromMap.source.files);
    for (const [name, t] of fromDir.weights) expect(fromMap.weights.get(name)?.data, name).toEqual(t.data);
    expect(events.filter((e) => e.done).map((e) => e.file)).toEqual(fromMap.source.files);
  });

  it('keys a picked folder\'s files by their path inside it', () => {
    const picked = ['bge/config.json', 'bge/onnx/model.onnx'].map((path) => {
      const file = new File(['x'], path.split('/').pop() as string);
      Object.defineProperty(file, 'webkitRelativePath', { value: path });
      return file;
    });
    expect([...fileListToMap([...picked, new File(['y'], 'vocab.txt')]).keys()]).toEqual(['config.json', 'onnx/model.onnx', 'vocab.txt']);
  });

  it('reports dropped head tensors through log', async () => {
    const notes: string[] = [];
    await loadModelFiles(localDirSource(BIN), { log: (m) => notes.push(m) });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toBe('ignored 3 tensors that are not part of BertModel: bert.embeddings.position_ids, cls.predictions.bias, cls.predictions.decoder.weight');
  });

  it('reads a sharded pytorch_model.bin index, and names what is wrong with a broken index', async () => {
    const expected = JSON.parse(readFileSync(join(BIN, 'expected.json'), 'utf8')) as Record<string, unknown>;
    const files = new Map(['config.json', 'vocab.txt'].map((n) => [n, new Blob([readFileSync(join(BIN, n))])]));
    const withIndex = (weightMap: Record<string, string>) =>
      new Map([...files, ['pytorch_model.bin.index.json', new Blob([JSON.stringify({ weight_map: weightMap })])]]);
    const shard = 'pytorch_model-00001-of-00001.bin';
    const all = Object.fromEntries(Object.keys(expected).map((n) => [n, shard]));
    files.set(shard, new Blob([readFileSync(join(BIN, 'pytorch_model.bin'))]));
    const model = await loadModelFiles(fileMapSource(withIndex(all)));
    expect(model.source.files.slice(0, 3)).toEqual(['config.json', 'pytorch_model.bin.index.json', shard]);
    await expect(loadModelFiles(fileMapSource(withIndex({ ...all, 'bert.pooler.dense.bias': 'pytorch_model-00002-of-00002.bin' })))).rejects.toThrow(
      /lists shard pytorch_model-00002-of-00002\.bin, which is missing/,
    );
    await expect(loadModelFiles(fileMapSource(withIndex({ ...all, 'bert.extra.weight': shard })))).rejects.toThrow(
      /lists tensors its shards do not contain: bert\.extra\.weight \(in pytorch_model-00001-of-00001\.bin\)/,
    );
    await expect(loadModelFiles(fileMapSource(withIndex({ a: '../../etc/passwd' })))).rejects.toThrow(/shard name "\.\.\/\.\.\/etc\/passwd" must be a plain file name/);
  });

  it('refuses a tokenizer with more tokens than the embedding table', async () => {
    const files = new Map(Object.entries(tiny).map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])]));
    const vocab = new TextDecoder().decode(tiny['vocab.txt']);
    files.set('vocab.txt', new Blob([`${vocab}extra1\nextra2\n`]));
    await expect(loadModelFiles(fileMapSource(files))).rejects.toThrow(/tokenizer has 122 tokens but config\.json says vocab_size 120/);
  });
});
