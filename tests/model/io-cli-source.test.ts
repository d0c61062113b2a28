import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelArgument, parseModelArgument, progressPrinter } from '../../src/cli/model-source.ts';
import { type HubServer, folderContents, startHubServer } from '../helpers/hub-server.ts';

const TINY = 'tests/fixtures/bert/tiny';

describe('--model argument', () => {
  it('is a local folder when one exists, else a Hub id with an optional @revision', () => {
    expect(parseModelArgument(TINY)).toEqual({ kind: 'local', dir: TINY });
    expect(parseModelArgument('BAAI/bge-small-en-v1.5')).toEqual({ kind: 'hub', id: 'BAAI/bge-small-en-v1.5', revision: 'main' });
    expect(parseModelArgument('michiyasunaga/BioLinkBERT-base@5b0c6a4')).toEqual({ kind: 'hub', id: 'michiyasunaga/BioLinkBERT-base', revision: '5b0c6a4' });
    expect(parseModelArgument('bert-base-uncased')).toMatchObject({ kind: 'hub', id: 'bert-base-uncased' });
  });

  it('gives a clear error for something that is neither', () => {
    expect(() => parseModelArgument('./no/such/dir/here')).toThrow(/no such folder, and not a Hugging Face repo id/);
    expect(() => parseModelArgument('org/name@')).toThrow(/empty revision/);
  });
});

describe('loading a --model from the Hub (HF_ENDPOINT, QLORA_LAB_CACHE)', () => {
  let server: HubServer;
  let cache: string;
  beforeAll(async () => {
    server = await startHubServer({ 'test-org/tiny': { main: folderContents(TINY) } }, { pieces: 20, pauseMs: 5 });
    cache = mkdtempSync(join(tmpdir(), 'qlora-lab-cli-cache-'));
    process.env.HF_ENDPOINT = server.baseUrl;
    process.env.QLORA_LAB_CACHE = cache;
  });
  afterAll(async () => {
    delete process.env.HF_ENDPOINT;
    delete process.env.QLORA_LAB_CACHE;
    await server?.close();
    rmSync(cache, { recursive: true, force: true });
  });

  it('downloads once with progress on stderr, then loads from the cache folder (asking only which commit main is at)', async () => {
    const lines: string[] = [];
    const stderr = { write: (s: string) => lines.push(s) };
    const model = await loadModelArgument('test-org/tiny', stderr);
    expect(model.source).toMatchObject({ kind: 'hub', id: 'test-org/tiny', revision: 'main' });
    const requests = server.requests.length;
    expect(lines.some((l) => /^model\.safetensors: [\d.]+ MB of [\d.]+ MB\n$/.test(l))).toBe(true);
    expect(lines).toContain(`model.safetensors: ${(folderContents(TINY)['model.safetensors'].byteLength / 1e6).toFixed(1)} MB\n`);
    expect(lines.filter((l) => /ignored/.test(l))).toEqual([]); // the pooler is part of BertModel, kept
    lines.length = 0;
    await loadModelArgument('test-org/tiny', stderr);
    expect(server.requests.slice(requests)).toEqual(['/api/models/test-org/tiny/revision/main']);
    expect(lines.filter((l) => l.includes('(cached)'))).toHaveLength(4);
  });
});

describe('progress printer', () => {
  it('prints each tenth once, the end of every file, and every 50 MB when the size is unknown', () => {
    const lines: string[] = [];
    const print = progressPrinter({ write: (s: string) => lines.push(s.trimEnd()) });
    for (let loaded = 0; loaded <= 100e6; loaded += 1e6) print({ file: 'w', loaded, total: 100e6, cached: false, done: false });
    print({ file: 'w', loaded: 100e6, total: 100e6, cached: false, done: true });
    expect(lines).toEqual([...Array.from({ length: 10 }, (_, k) => `w: ${(k + 1) * 10}.0 MB of 100.0 MB`), 'w: 100.0 MB']);
    lines.length = 0;
    for (let loaded = 0; loaded <= 120e6; loaded += 7e6) print({ file: 'x', loaded, total: null, cached: false, done: false });
    expect(lines).toEqual(['x: 56.0 MB', 'x: 105.0 MB']);
  });
});
