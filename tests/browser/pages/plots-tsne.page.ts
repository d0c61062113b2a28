// GPU t-SNE in the browser (navigator.gpu) on labelled clusters, drawn with the scatter component.
import { mount } from 'svelte';
import { createEngine } from '../../../src/engine/engine.ts';
import { gaussianClusters } from '../../../src/eval/synthetic.ts';
import { runTsne } from '../../../src/eval/tsne.ts';
import { trustworthiness } from '../../../src/eval/trustworthiness.ts';
import TsneScatter from '../../../src/ui/plots/TsneScatter.svelte';
import { report, scatterDrawn } from './report.ts';

report(async () => {
  const engine = await createEngine(navigator.gpu);
  const { vectors, labels } = gaussianClusters(3, 300, 20, 4);
  const start = performance.now();
  let progressCalls = 0;
  const map = await runTsne(engine, vectors, { iterations: 300, perplexity: 20, progressEvery: 100, onProgress: () => progressCalls++ });
  const seconds = (performance.now() - start) / 1000;
  const input = Float64Array.from(vectors.flatMap((v) => Array.from(v)));
  const trust = trustworthiness(input, 20, map, 2, 10);

  const target = document.createElement('section');
  target.dataset.plot = 'tsne-browser';
  target.style.width = '640px';
  document.body.append(target);
  const names = labels.map((l) => `cluster ${l}`);
  mount(TsneScatter, { target, props: { positions: map, dims: 2, labels: names, texts: names.map((n, i) => `${n}, point ${i}`), height: 400 } });
  await scatterDrawn(target);
  engine.destroy();
  return { trust, seconds, progressCalls, adapter: engine.adapter.description };
});
