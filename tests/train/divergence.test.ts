import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.ts';
import { type HostAdapterTensors, initLoraTensors, loraScale } from '../../src/model/lora.ts';
import type { HostTensor, StateDict } from '../../src/model/state-dict.ts';
import { adapterHealth } from '../../src/train/divergence.ts';
import { loadFixtureModel } from '../helpers/fixtures.ts';

const random = (rng: Rng, shape: number[], std: number): HostTensor => ({ shape, data: Float32Array.from({ length: shape[0] * shape[1] }, () => std * rng.normal()) });
const lora = { r: 3, alpha: 6, rslora: false };
const module = 'encoder.layer.0.attention.self.query';

function setup(bStd: number): { weights: StateDict; adapter: HostAdapterTensors } {
  const rng = new Rng(5);
  const weights: StateDict = new Map([[`${module}.weight`, random(rng, [7, 5], 0.1)]]);
  const adapter: HostAdapterTensors = new Map([
    [`${module}.lora_A`, random(rng, [3, 5], 0.2)],
    [`${module}.lora_B`, random(rng, [7, 3], bStd)],
  ]);
  return { weights, adapter };
}

/** ‖scale·B·A‖_F / ‖W‖_F by forming the product, in float64. */
function directRatio(weights: StateDict, adapter: HostAdapterTensors): number {
  const w = weights.get(`${module}.weight`)!;
  const a = adapter.get(`${module}.lora_A`)!;
  const b = adapter.get(`${module}.lora_B`)!;
  let delta = 0;
  for (let o = 0; o < 7; o++) {
    for (let i = 0; i < 5; i++) {
      let x = 0;
      for (let k = 0; k < 3; k++) x += b.data[o * 3 + k] * a.data[k * 5 + i];
      delta += (loraScale(lora) * x) ** 2;
    }
  }
  return Math.sqrt(delta) / Math.hypot(...w.data);
}

describe('divergence rule', () => {
  it('measures the update against the frozen weight exactly', () => {
    const { weights, adapter } = setup(0.01);
    const health = adapterHealth(weights, adapter, lora);
    expect(health.worstRatio).toBeCloseTo(directRatio(weights, adapter), 10);
    expect(health).toMatchObject({ sane: true, reason: '', worstModule: module });
  });

  it('rejects an update larger than the weight, and any non-finite value', () => {
    const big = setup(10);
    const health = adapterHealth(big.weights, big.adapter, lora);
    expect(directRatio(big.weights, big.adapter)).toBeGreaterThan(1);
    expect(health.sane).toBe(false);
    expect(health.reason).toBe(`the update of ${module} is ${health.worstRatio.toPrecision(3)}× the size of the frozen weight (at most 1× is kept)`);

    const inf = setup(0.01);
    inf.adapter.get(`${module}.lora_B`)!.data[4] = Infinity;
    expect(adapterHealth(inf.weights, inf.adapter, lora)).toMatchObject({ sane: false, reason: `${module}.lora_B holds Infinity at index 4` });
    inf.adapter.get(`${module}.lora_A`)!.data[2] = Number.NaN;
    expect(adapterHealth(inf.weights, inf.adapter, lora).reason).toBe(`${module}.lora_A holds NaN at index 2`);
  });

  it("measures the pooler's LoRA against the pooler weight the loaded model keeps", async () => {
    const model = await loadFixtureModel('tiny');
    const dense = { ...lora, dropout: 0, targetModules: ['dense'] };
    const adapter = initLoraTensors(model.config, dense, 3, { pooler: true });
    expect(adapterHealth(model.weights, adapter, dense)).toMatchObject({ sane: true, worstRatio: 0 });
    adapter.get('pooler.dense.lora_B')!.data.fill(10);
    expect(adapterHealth(model.weights, adapter, dense)).toMatchObject({ sane: false, worstModule: 'pooler.dense' });
  });
});
