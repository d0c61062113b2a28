// Mounts every plot component with data computed here, for plots.browser.test.ts to screenshot and probe.
import { mount, tick } from 'svelte';
import { Rng } from '../../../src/data/rng.ts';
import { evaluateBeforeAfter } from '../../../src/eval/before-after.ts';
import type { Embedder, EvalSet } from '../../../src/eval/types.ts';
import CurvePlot from '../../../src/ui/plots/CurvePlot.svelte';
import MetricsTable from '../../../src/ui/plots/MetricsTable.svelte';
import SeparationHistogram from '../../../src/ui/plots/SeparationHistogram.svelte';
import TsneScatter from '../../../src/ui/plots/TsneScatter.svelte';
import { report, scatterDrawn } from './report.ts';

/** Text from data that must show as text, never as markup. */
export const HOSTILE_TEXT = '<img src=x onerror="globalThis.__injected = 1">no evidence of <b>stenosis</b>';

function section(name: string): HTMLElement {
  const el = document.createElement('section');
  el.dataset.plot = name;
  el.style.width = '760px';
  el.style.margin = '8px';
  document.body.append(el);
  return el;
}

/** A deterministic 16-D embedder: a text's vector mixes its group direction (by prefix) with noise; `gain` sharpens groups. */
function syntheticEmbedder(gain: number): Embedder {
  return async (texts) =>
    texts.map((t) => {
      const rng = new Rng([...t].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7));
      const group = Number(t.split(':')[0]);
      const v = Float32Array.from({ length: 16 }, (_, d) => (d === group ? gain : 0) + rng.normal() * 0.5);
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    });
}

report(async () => {
  document.body.style.background = 'white';
  const rng = new Rng(5);

  // Scatter: 20,000 points in 6 Gaussian blobs (2-D), one hostile text.
  const n = 20_000;
  const positions = new Float32Array(n * 2);
  const labels: string[] = [];
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 6;
    positions[2 * i] = 10 * Math.cos(c) + rng.normal();
    positions[2 * i + 1] = 10 * Math.sin(c) + rng.normal();
    labels.push(`category ${c}`);
    texts.push(i === 0 ? HOSTILE_TEXT : `text ${i}`);
  }
  // The hostile text sits alone in the middle of the ring of blobs, so hovering there picks it.
  positions[0] = 0;
  positions[1] = 0;
  const embeddings = Array.from({ length: n }, (_, i) => Float32Array.of(positions[2 * i], positions[2 * i + 1], i % 6));
  const start = performance.now();
  const scatterTarget = section('scatter');
  const scatter = mount(TsneScatter, { target: scatterTarget, props: { positions, dims: 2, labels, texts, embeddings, height: 420 } });
  await scatterDrawn(scatterTarget);
  const scatterMs = performance.now() - start;

  // 3-D scatter of 2,000 points.
  const positions3 = Float32Array.from({ length: 2000 * 3 }, (_, i) => ((Math.floor(i / 3) % 4) - 1.5) * 6 + rng.normal());
  const labels3 = Array.from({ length: 2000 }, (_, i) => `cluster ${i % 4}`);
  const scatter3dTarget = section('scatter3d');
  mount(TsneScatter, { target: scatter3dTarget, props: { positions: positions3, dims: 3, labels: labels3, texts: labels3, height: 360, name: 'tsne-3d' } });
  await scatterDrawn(scatter3dTarget);

  // Before/after on a synthetic set, computed for real, feeds the histogram and the table.
  const pairs: EvalSet['pairs'] = [];
  for (let i = 0; i < 40; i++) {
    pairs.push({ a: `${i % 4}:s${i}`, b: `${i % 4}:t${i}`, group: 'similar' });
    pairs.push({ a: `${i % 4}:u${i}`, b: `${(i + 1) % 4}:v${i}`, group: 'different' });
    if (i < 20) pairs.push({ a: `${i % 4}:n${i}`, b: `${(i + 2) % 4}:m${i}`, group: 'negation' });
  }
  const labelled = Array.from({ length: 60 }, (_, i) => ({ text: `${i % 3}:l${i}`, label: `class ${i % 3}` }));
  const result = await evaluateBeforeAfter(syntheticEmbedder(0.5), syntheticEmbedder(2), { pairs, labelled }, { resamples: 200 });
  mount(SeparationHistogram, { target: section('histogram'), props: { pairs: result.pairCosines, width: 740 } });
  mount(MetricsTable, { target: section('table'), props: { result } });

  const points = [];
  for (let step = 0; step <= 200; step += 5) {
    points.push({ series: 'train loss', x: step, y: 2 * Math.exp(-step / 60) + 0.3 + 0.05 * Math.sin(step) });
    points.push({ series: 'eval loss', x: step, y: 2 * Math.exp(-step / 70) + 0.4 });
  }
  mount(CurvePlot, { target: section('curves'), props: { points, width: 740 } });

  await tick();
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  (globalThis as { __scatter?: typeof scatter }).__scatter = scatter;
  return { scatterMs, metrics: result.metrics.length };
});
