/**
 * The statement objective on the tiny decoder with a LoRA adapter on every linear: its loss is the
 * mean of the scoring path's −log p over the correct answers' tokens (training and zero-shot
 * scoring measure one quantity), and its LoRA gradient matches central finite differences of that
 * loss along the gradient itself and along two modules' parts of it (relative error < 2e-3).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { createDecoderAdapter, decoderLinearModules } from '../../src/model/decoder-lora.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import type { HostAdapterTensors } from '../../src/model/lora.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { recordStatementStep } from '../../src/model/statement-objective.ts';
import { type EncodedStatement, defaultStatementPrompt, encodeStatement } from '../../src/model/statement-prompt.ts';
import { scoreStatements } from '../../src/model/statement-score.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';

const STATEMENTS = ['TP53 is associated with sarcoma', 'A is associated with B', 'APOE is associated with dementia'];
const LABELS = [true, false, true];
const LORA = { r: 2, alpha: 4, dropout: 0, rslora: false, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };

async function setup(engine: Engine) {
  const files = await openDecoderModel(localDirSource(writeTinyDecoder(tempDir('objective-'), { seed: 9 })));
  const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'f32' });
  // B is random too (not PEFT's zeros) so every gradient path carries signal.
  const rng = new Rng(4);
  const tensors: HostAdapterTensors = new Map();
  for (const m of decoderLinearModules(files.config)) {
    for (const [half, shape] of [['lora_A', [LORA.r, m.in]], ['lora_B', [m.out, LORA.r]]] as const) {
      tensors.set(`${m.name}.${half}`, { shape: [...shape], data: Float32Array.from({ length: shape[0] * shape[1] }, () => rng.normal() * 0.1) });
    }
  }
  const encoded = STATEMENTS.map((s, i) => encodeStatement(files.tokenizer, defaultStatementPrompt(), s, i));
  return { files, model, tensors, encoded };
}

/** The objective's loss with a frozen adapter of `tensors`. */
async function lossWith(model: DecoderModel, tensors: HostAdapterTensors, encoded: EncodedStatement[], padId: number): Promise<number> {
  const adapter = createDecoderAdapter(model.engine, model.config, LORA, tensors, true);
  model.adapters = [adapter];
  const loss = recordStatementStep(model, encoded, LABELS, { padId, seed: 0 });
  const value = (await model.engine.readF32(loss))[0];
  model.engine.release(loss);
  adapter.release();
  return value;
}

/** tensors + ε·direction, for the directions' keys. */
function shifted(tensors: HostAdapterTensors, direction: Map<string, Float32Array>, eps: number): HostAdapterTensors {
  const out: HostAdapterTensors = new Map(tensors);
  for (const [key, d] of direction) {
    const t = tensors.get(key)!;
    out.set(key, { shape: t.shape, data: Float32Array.from(t.data, (v, k) => v + eps * d[k]) });
  }
  return out;
}

describe('statement objective', () => {
  it('is the mean −log p of the correct answers, and its LoRA gradient matches finite differences', async () => {
    const engine = await gpuEngine();
    const { files, model, tensors, encoded } = await setup(engine);
    const padId = files.tokenizer.padId;

    model.adapters = [createDecoderAdapter(engine, files.config, LORA, tensors, false)];
    const scores = await scoreStatements(model, encoded, { padId, batchSize: 2 });
    model.adapters[0].release();
    const correct = encoded.map((s, i) => s[LABELS[i] ? 'true' : 'false'].length);
    const expectedLoss = -scores.reduce((sum, s, i) => sum + (LABELS[i] ? s.logpTrue : s.logpFalse), 0) / correct.reduce((a, b) => a + b, 0);

    const adapter = createDecoderAdapter(engine, files.config, LORA, tensors, true);
    model.adapters = [adapter];
    const lossTensor = recordStatementStep(model, encoded, LABELS, { padId, seed: 0 });
    const loss = (await engine.readF32(lossTensor))[0];
    engine.release(lossTensor);
    expect(Math.abs(loss - expectedLoss), `loss ${loss} vs scoring ${expectedLoss}`).toBeLessThan(1e-5);

    const gradient = new Map<string, Float32Array>();
    for (const [name, g] of adapter.grads) {
      gradient.set(`${name}.lora_A`, await engine.readF32(g.da));
      gradient.set(`${name}.lora_B`, await engine.readF32(g.db));
    }
    adapter.release();
    const part = (key: string) => new Map([[key, gradient.get(key)!]]);
    const directions = {
      'the whole gradient': gradient,
      'layer 1 v_proj lora_A': part('model.layers.1.self_attn.v_proj.lora_A'),
      'layer 0 q_proj lora_B': part('model.layers.0.self_attn.q_proj.lora_B'),
    };
    for (const [label, direction] of Object.entries(directions)) {
      // Along d = the gradient's part, dL/dε = Σ d·g = |d|²; ε moves the loss by about 2e-3, large
      // enough for the loss's f32 rounding (~1e-6) to stay small and small enough for the ε² term.
      const squared = [...direction.values()].reduce((s, d) => s + d.reduce((a, v) => a + v * v, 0), 0);
      expect(squared, label).toBeGreaterThan(0);
      const eps = 2e-3 / squared;
      const at = (k: number) => lossWith(model, shifted(tensors, direction, k * eps), encoded, padId);
      const numeric = ((await at(1)) - (await at(-1))) / (2 * eps);
      expect(Math.abs(numeric - squared) / squared, `${label}: finite difference ${numeric} vs |g|² ${squared}`).toBeLessThan(2e-3);
    }
    model.destroy();
  });
});
