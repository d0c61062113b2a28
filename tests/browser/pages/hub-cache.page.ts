/**
 * Loads a model twice from the local Hub server (URL in this module's `?hub=` query) through the
 * browser's fetch and Cache Storage; the test counts the server's requests around it.
 */
import { loadModelFiles } from '../../../src/model/checkpoint.ts';
import type { FileProgress } from '../../../src/model/file-source.ts';
import { hubFileUrl, hubSource } from '../../../src/model/hub.ts';
import { report } from './report.ts';

report(async () => {
  const query = new URL(import.meta.url).searchParams;
  const baseUrl = query.get('hub');
  const repo = query.get('repo');
  if (!baseUrl || !repo) throw new Error('hub-cache.page.ts needs ?hub=<server>&repo=<id>');
  await caches.delete('qlora-lab-hub');

  const load = async () => {
    const events: FileProgress[] = [];
    const model = await loadModelFiles(hubSource(repo, { baseUrl, revision: 'main' }), { onProgress: (p) => events.push(p) });
    let checksum = 0;
    for (const t of model.weights.values()) for (let i = 0; i < t.data.length; i++) checksum += t.data[i] * ((i % 7) + 1);
    const { inputIds, seq } = model.tokenizer.encode(['the patient'], 16);
    return { files: model.source.files, commit: model.source.commit!, events, checksum, ids: Array.from(inputIds.subarray(0, seq)) };
  };
  const first = await load();
  const cache = await caches.open('qlora-lab-hub');
  const cachedUrls = (await cache.keys()).map((r) => r.url).sort();
  const second = await load();
  return {
    first: { ...first, events: undefined, partial: first.events.filter((e) => !e.cached && !e.done && e.loaded > 0).length, cachedEvents: first.events.filter((e) => e.cached).length },
    second: { ...second, events: undefined, allCached: second.events.every((e) => e.cached && e.done), eventCount: second.events.length },
    cachedUrls,
    expectedUrl: hubFileUrl(baseUrl, repo, first.commit, 'model.safetensors'),
  };
});
