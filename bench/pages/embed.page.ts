/**
 * The embedding benchmark's browser half: our engine (one engine per base, navigator.gpu) and
 * transformers.js (WebGPU, WASM) on the same weights and token ids, taking turns in one page.
 */
import { createEngine } from '../../src/engine/engine.ts';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { report } from '../../tests/browser/pages/report.ts';
import { type Contestant, runContest } from '../lib/contest.ts';
import { type EmbedPageParams, type EmbedPageResult, fromPageTokenBatch } from '../lib/embed-protocol.ts';
import { engineContestant } from '../lib/engine-contestant.ts';
import { benchParams } from '../lib/page.ts';
import { transformersContestant } from '../lib/transformers-contestant.ts';
import { urlFolderSource } from '../lib/url-source.ts';

report(async (): Promise<EmbedPageResult> => {
  const params = benchParams<EmbedPageParams>();
  const log = (line: string) => console.log(line);
  const start = performance.now();
  const files = await loadModelFiles(urlFolderSource(params.modelUrl));
  const loadMs = performance.now() - start;
  if (params.bases.length === 0) throw new Error('the embedding page needs at least one base for our engine');
  const engines = await Promise.all(params.bases.map(() => createEngine(navigator.gpu)));
  const contestants: Contestant[] = [];
  const result: Omit<EmbedPageResult, 'shapes'> = { adapter: engines[0].adapter, loadMs, ours: {}, peers: {} };
  try {
    for (const [i, base] of params.bases.entries()) {
      const ours = await engineContestant(engines[i], files, base);
      log(`${ours.name}: weights on the GPU in ${(ours.createMs / 1000).toFixed(1)} s`);
      result.ours[ours.name] = { createMs: ours.createMs, weightBytes: ours.weightBytes };
      contestants.push(ours);
    }
    for (const device of params.peers) {
      const peer = await transformersContestant(device, params.peer);
      log(`${peer.name}: model loaded in ${(peer.loadMs / 1000).toFixed(1)} s`);
      result.peers[peer.name] = { loadMs: peer.loadMs, runtime: peer.runtime };
      contestants.push(peer);
    }
    const shapes = await runContest(contestants, params.shapes.map(fromPageTokenBatch), params.contest, log);
    return { ...result, shapes };
  } finally {
    for (const c of contestants) await c.dispose();
    for (const engine of engines) engine.destroy();
  }
});
