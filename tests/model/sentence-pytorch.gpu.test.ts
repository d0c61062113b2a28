/**
 * sentence-transformers model folders on the GPU against PyTorch (tests/fixtures/sentence, float64
 * references of encode / encode_query / encode_document), through the code the app uses: a new
 * run's configuration takes the loaded folder's settings (modelSentenceSettings,
 * withSentenceSettings) and the session builds its encoder from the run (runSentenceSettings,
 * sentenceOptions). Embeddings within 1e-4; token ids exact.
 */
import { describe, expect, it } from 'vitest';
import { BertEncoder } from '../../src/model/bert.ts';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { GpuAdapter, initLoraTensors } from '../../src/model/lora.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { defaultPrompt } from '../../src/model/sentence-config.ts';
import { SentenceEncoder, sentenceOptions } from '../../src/model/sentence.ts';
import { hasPooler } from '../../src/model/state-dict.ts';
import { type ContrastiveExample, encodeExamples, recordMicroBatch } from '../../src/train/objective.ts';
import { defaultRunConfig, modelSentenceSettings, runSentenceSettings, withSentenceSettings } from '../../src/train/run-config.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/numeric.ts';
import { SENTENCE_FIXTURES, type SentenceFixture, sentenceModelDir, sentenceReference } from '../helpers/sentence-fixtures.ts';

const DATA = { source: { kind: 'demo', id: 'x' }, build: { kind: 'pairs', testFraction: 0.2 }, fingerprint: 'f', evaluation: { kind: 'test-split' } } as const;

/** The app's path from a loaded folder to the encoder of a new run. */
async function appEncoder(name: SentenceFixture) {
  const engine = await gpuEngine();
  const files = await loadModelFiles(localDirSource(sentenceModelDir(name)));
  const config = withSentenceSettings(defaultRunConfig(DATA), modelSentenceSettings(files.sentence).settings);
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: 'f32' });
  return { engine, files, config, bert, encoder: new SentenceEncoder(bert, files.tokenizer, sentenceOptions(runSentenceSettings(config), files.sentence)) };
}

describe.each(SENTENCE_FIXTURES)('sentence-transformers folder %s vs PyTorch', (name) => {
  it('a new run takes the folder settings, and embeds every role as sentence-transformers does (≤ 1e-4)', async () => {
    const { files, config, bert, encoder } = await appEncoder(name);
    const reference = sentenceReference(name);
    expect(config).toMatchObject({ pooling: reference.settings.pooling, normalize: reference.settings.normalize, maxLength: reference.settings.max_seq_length });
    for (const [role, expected] of Object.entries(reference.roles)) {
      const prompt = role === 'none' ? defaultPrompt(files.sentence) : encoder.prompt(role as 'query' | 'passage');
      expect(prompt, `${role} prompt`).toBe(expected.prompt ?? '');
      const tokens = encoder.tokenize(reference.texts, prompt);
      const ids = reference.texts.map((_, b) => Array.from(tokens.inputIds.subarray(b * tokens.seq, b * tokens.seq + tokens.attentionMask.subarray(b * tokens.seq, (b + 1) * tokens.seq).reduce((n, m) => n + m, 0))));
      expect(ids, `${role} input ids`).toEqual(expected.input_ids);
      const got = await encoder.embed(reference.texts, { prompt, batchSize: 4 });
      got.forEach((vector, i) => expectClose(vector, expected.embeddings[i], { atol: 1e-4, rtol: 0 }, `${name} ${role} text ${i}`));
    }
    bert.destroy();
  });
});

describe('training on sentence-transformers folders', () => {
  const examples: ContrastiveExample[] = [
    { anchor: 'heart disease', positive: 'chronic heart disease in patients' },
    { anchor: 'insulin receptor', positive: 'increased insulin expression' },
    { anchor: 'liver tumor', positive: 'acute liver cancer', negatives: ['blood glucose level'] },
  ];

  /** InfoNCE (scale 20) from host embeddings: anchors as queries, the rest as passages, cosines. */
  async function hostInfoNce(encoder: SentenceEncoder): Promise<number> {
    const unit = (v: Float32Array) => {
      const n = Math.hypot(...v);
      return Array.from(v, (x) => x / n);
    };
    const anchors = (await encoder.embed(examples.map((e) => e.anchor), { prompt: encoder.prompt('query') })).map(unit);
    const others = (await encoder.embed([...examples.map((e) => e.positive), ...examples.flatMap((e) => e.negatives ?? [])], { prompt: encoder.prompt('passage') })).map(unit);
    let loss = 0;
    anchors.forEach((a, i) => {
      const logits = others.map((o) => 20 * a.reduce((s, x, k) => s + x * o[k], 0));
      const max = Math.max(...logits);
      loss += max + Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0)) - logits[i];
    });
    return loss / anchors.length;
  }

  it.each(['e5', 'instructor'] as const)('%s: the training loss uses the role prompts and cosines (unnormalised output or an excluded prompt), and gradients reach the adapter', async (name) => {
    const { engine, files, bert, encoder } = await appEncoder(name);
    const lora = { r: 2, alpha: 4, dropout: 0, rslora: false, targetModules: ['query', 'value'] };
    const adapter = new GpuAdapter(engine, files.config, lora, initLoraTensors(files.config, lora, 5, { pooler: hasPooler(files.weights) }), true);
    bert.adapters = [adapter];
    const objective = { kind: 'infonce', scale: 20, symmetric: false } as const;
    const batch = encodeExamples(encoder, objective, examples);
    if (name === 'instructor') expect(batch.tokens.poolingMask).toBeDefined();
    adapter.zeroGrads();
    const loss = recordMicroBatch(encoder, objective, batch, { train: true, hiddenDropout: 0, seed: 0 }, 1);
    const value = (await engine.readF32(loss))[0];
    engine.release(loss);
    expect(value).toBeCloseTo(await hostInfoNce(encoder), 4);
    const grads = await Promise.all(adapter.parameters().grads.map((g) => engine.readF32(g)));
    expect(grads.every((g) => g.every(Number.isFinite))).toBe(true);
    expect(grads.some((g) => g.some((x) => x !== 0))).toBe(true);
    bert.destroy();
  });
});
