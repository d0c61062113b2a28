/** Our embedding workload in the browser: the same engine code as in Node, on navigator.gpu. */
import { createEngine } from '../../src/engine/engine.ts';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { report } from '../../tests/browser/pages/report.ts';
import type { EngineEmbedParams, EngineEmbedPageResult } from '../lib/embed-types.ts';
import { timeEngineEmbedding, toTokenBatch } from '../lib/embed-workload.ts';
import { benchParams } from '../lib/page.ts';
import { urlFolderSource } from '../lib/url-source.ts';

report(async (): Promise<EngineEmbedPageResult> => {
  const params = benchParams<EngineEmbedParams>();
  const start = performance.now();
  const files = await loadModelFiles(urlFolderSource(params.modelUrl));
  const loadMs = performance.now() - start;
  const engine = await createEngine(navigator.gpu);
  try {
    const results = [];
    for (const base of params.bases) {
      results.push(await timeEngineEmbedding(engine, files, base, params.shapes.map(toTokenBatch), params, (line) => console.log(line)));
    }
    return { adapter: engine.adapter, loadMs, results };
  } finally {
    engine.destroy();
  }
});
