import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type BrowserSession, openBrowserSession, runPageModule } from '../helpers/browser.ts';
import { type HubServer, folderContents, startHubServer } from '../helpers/hub-server.ts';

const TINY = 'tests/fixtures/bert/tiny';
const REPO = 'test-org/tiny-bert';

interface PageResult {
  first: { files: string[]; checksum: number; ids: number[]; partial: number; cachedEvents: number };
  second: { files: string[]; checksum: number; ids: number[]; allCached: boolean; eventCount: number };
  cachedUrls: string[];
  expectedUrl: string;
}

let session: BrowserSession;
let server: HubServer;
beforeAll(async () => {
  server = await startHubServer({ [REPO]: { main: folderContents(TINY) } }, { pieces: 4, pauseMs: 20 });
  session = await openBrowserSession();
});
afterAll(async () => {
  await session?.close();
  await server?.close();
});

describe('Hub download in headless Chromium (fetch streaming + Cache Storage)', () => {
  it('downloads each file once with progress, caches it by commit, and reloads asking only for the commit', async () => {
    const page = `/tests/browser/pages/hub-cache.page.ts?hub=${encodeURIComponent(server.baseUrl)}&repo=${encodeURIComponent(REPO)}`;
    const result = await runPageModule<PageResult>(session, page);
    const fileRequests = server.requests.filter((r) => r.startsWith(`/${REPO}/`));
    // config, weights, tokenizer_config and vocab.txt, once each across both loads; each load looks up main's commit.
    expect(fileRequests).toHaveLength(4);
    expect(new Set(fileRequests).size).toBe(4);
    expect(server.requests.filter((r) => r.startsWith('/api/'))).toEqual([`/api/models/${REPO}/revision/main`, `/api/models/${REPO}/revision/main`]);
    expect(result.first.files).toEqual(['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']);
    expect(result.first.partial).toBeGreaterThanOrEqual(3);
    expect(result.first.cachedEvents).toBe(0);
    expect(result.second.allCached).toBe(true);
    expect(result.second.eventCount).toBe(4);
    expect(result.cachedUrls).toContain(result.expectedUrl);
    expect(result.cachedUrls).toHaveLength(5); // the four files and the answer for main
    // The browser read the same model as Node does from the folder.
    const local = await loadModelFiles(localDirSource(TINY));
    let checksum = 0;
    for (const t of local.weights.values()) for (let i = 0; i < t.data.length; i++) checksum += t.data[i] * ((i % 7) + 1);
    expect(result.first.checksum).toBe(checksum);
    expect(result.second.checksum).toBe(checksum);
    const { inputIds, seq } = local.tokenizer.encode(['the patient'], 16);
    expect(result.first.ids).toEqual(Array.from(inputIds.subarray(0, seq)));
  });
});
