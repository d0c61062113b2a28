import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBertConfig } from '../../src/model/config.ts';
import { parseSafetensors } from '../../src/model/safetensors.ts';
import { type StateDict, bertWeightShapes, canonicalBertWeights, hasPooler } from '../../src/model/state-dict.ts';

const tinyConfigJson = () => JSON.parse(readFileSync('tests/fixtures/bert/tiny/config.json', 'utf8')) as Record<string, unknown>;

/** Zero tensors of the right shapes, named as `rename` says. */
function stateDict(config: ReturnType<typeof parseBertConfig>, rename: (name: string) => string = (n) => n): StateDict {
  return new Map([...bertWeightShapes(config)].map(([name, shape]) => [rename(name), { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }]));
}

describe('config.json', () => {
  it('parses a BertModel config (the fixture) with every field', () => {
    const config = parseBertConfig(tinyConfigJson());
    expect(config).toMatchObject({
      modelType: 'bert',
      architectures: ['BertModel'],
      vocabSize: 120,
      hiddenSize: 32,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      intermediateSize: 64,
      maxPositionEmbeddings: 64,
      typeVocabSize: 2,
      layerNormEps: 1e-12,
      hiddenAct: 'gelu',
      padTokenId: 0,
    });
    expect(config.raw.initializer_range).toBe(0.1);
  });

  it('accepts BERT-family configs (model_type bert with task heads), and old configs without model_type', () => {
    const base = tinyConfigJson();
    expect(parseBertConfig({ ...base, architectures: ['BertForMaskedLM'] }).architectures).toEqual(['BertForMaskedLM']);
    const { model_type: _, ...old } = base;
    expect(parseBertConfig({ ...old, architectures: ['BertForPreTraining'] }).modelType).toBe('bert');
    // HF defaults for fields old files leave out.
    const { layer_norm_eps: _e, type_vocab_size: _t, pad_token_id: _p, hidden_act: _h, ...sparse } = base;
    expect(parseBertConfig(sparse)).toMatchObject({ layerNormEps: 1e-12, typeVocabSize: 2, padTokenId: 0, hiddenAct: 'gelu' });
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    [
      'mpnet (all-mpnet-base-v2)',
      { model_type: 'mpnet', architectures: ['MPNetModel'] },
      /model_type "mpnet", architectures MPNetModel: not supported yet — qlora-lab loads the encoders with model_type "bert", "roberta", "xlm-roberta", "distilbert"/,
    ],
    ['electra (e.g. BioELECTRA)', { model_type: 'electra', architectures: undefined }, /model_type "electra", no architectures: not supported yet/],
    ['unknown class without model_type', { model_type: undefined, architectures: ['MPNetModel'] }, /no model_type, architectures MPNetModel: not supported yet/],
    ['gelu_new', { hidden_act: 'gelu_new' }, /hidden_act "gelu_new" is not supported yet/],
    ['relu', { hidden_act: 'relu' }, /hidden_act "relu"/],
    ['relative positions', { position_embedding_type: 'relative_key' }, /position_embedding_type "relative_key" is not supported yet/],
    ['decoder', { is_decoder: true }, /decoder/],
    ['heads not dividing hidden', { num_attention_heads: 5 }, /hidden_size 32 is not a multiple of num_attention_heads 5/],
    ['missing hidden_size', { hidden_size: undefined }, /"hidden_size" must be a positive integer, got undefined/],
    ['fractional layers', { num_hidden_layers: 1.5 }, /"num_hidden_layers" must be a positive integer, got 1.5/],
    ['pad outside vocab', { pad_token_id: 120 }, /pad_token_id 120 is outside the vocabulary/],
  ];
  it.each(refused)('refuses %s with a clear message', (_, patch, message) => {
    expect(() => parseBertConfig({ ...tinyConfigJson(), ...patch })).toThrow(message);
  });

  it('refuses something that is not an object', () => {
    expect(() => parseBertConfig([1])).toThrow(/must be a JSON object/);
  });
});

describe('canonical BertModel weights', () => {
  const config = parseBertConfig(tinyConfigJson());

  it('takes the fixture model.safetensors as is (BertModel names), keeping the pooler last', () => {
    const raw = parseSafetensors(new Uint8Array(readFileSync('tests/fixtures/bert/tiny/model.safetensors'))).tensors;
    const { weights, ignored } = canonicalBertWeights(config, raw);
    expect([...weights.keys()]).toEqual([...bertWeightShapes(config).keys(), 'pooler.dense.weight', 'pooler.dense.bias']);
    expect(hasPooler(weights)).toBe(true);
    expect(ignored).toEqual([]);
    expect(weights.get('encoder.layer.1.intermediate.dense.weight')).toBe(raw.get('encoder.layer.1.intermediate.dense.weight'));
  });

  it('maps bert.-prefixed names and TF-era LayerNorm.gamma/beta onto the canonical names', () => {
    const raw = stateDict(config, (n) => `bert.${n}`.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'));
    raw.set('cls.predictions.bias', { shape: [120], data: new Float32Array(120) });
    raw.set('bert.embeddings.position_ids', { shape: [1, 64], data: new Float32Array(64) });
    const { weights, ignored } = canonicalBertWeights(config, raw);
    expect(weights.size).toBe(bertWeightShapes(config).size);
    expect(weights.has('encoder.layer.0.attention.output.LayerNorm.weight')).toBe(true);
    expect(ignored).toEqual(['cls.predictions.bias', 'bert.embeddings.position_ids']);
  });

  it('lists every missing, unexpected and mis-shaped tensor in one error with expected vs actual shapes', () => {
    const raw = stateDict(config);
    raw.delete('encoder.layer.1.output.dense.bias');
    raw.delete('embeddings.LayerNorm.weight');
    raw.set('encoder.layer.0.attention.self.query.weight', { shape: [32, 16], data: new Float32Array(512) });
    raw.set('encoder.layer.2.attention.self.query.weight', { shape: [32, 32], data: new Float32Array(1024) });
    raw.set('encoder.layer.0.attention.self.rotary.inv_freq', { shape: [8], data: new Float32Array(8) });
    let message = '';
    try {
      canonicalBertWeights(config, raw);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('checkpoint does not match a BertModel with this config (hidden 32, 2 layers, intermediate 64, vocab 120)');
    expect(message).toContain('missing (2):\n  embeddings.LayerNorm.weight [32]\n  encoder.layer.1.output.dense.bias [32]');
    expect(message).toContain('unexpected (2):\n  encoder.layer.2.attention.self.query.weight [32, 32]\n  encoder.layer.0.attention.self.rotary.inv_freq [8]');
    expect(message).toContain('wrong shape (1):\n  encoder.layer.0.attention.self.query.weight: expected [32, 32], got [32, 16]');
  });

  it('refuses a name given both with and without the bert. prefix, and data that does not fill its shape', () => {
    const raw = stateDict(config);
    raw.set('bert.embeddings.LayerNorm.bias', { shape: [32], data: new Float32Array(32) });
    expect(() => canonicalBertWeights(config, raw)).toThrow(/given twice.*\n  embeddings\.LayerNorm\.bias and bert\.embeddings\.LayerNorm\.bias/);
    const short = stateDict(config);
    short.set('embeddings.LayerNorm.bias', { shape: [32], data: new Float32Array(31) });
    expect(() => canonicalBertWeights(config, short)).toThrow(/embeddings\.LayerNorm\.bias: shape \[32\] needs 32 values, has 31/);
  });

  it('takes a checkpoint without a pooler (add_pooling_layer=False), but not half a pooler', () => {
    const { weights } = canonicalBertWeights(config, stateDict(config));
    expect(hasPooler(weights)).toBe(false);
    const half = stateDict(config);
    half.set('bert.pooler.dense.weight', { shape: [32, 32], data: new Float32Array(32 * 32) });
    expect(() => canonicalBertWeights(config, half)).toThrow(/missing \(1\):\n  pooler\.dense\.bias \[32\]/);
  });
});
