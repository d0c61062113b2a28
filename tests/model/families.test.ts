/**
 * RoBERTa, XLM-RoBERTa and DistilBERT checkpoints in their own layouts (tests/fixtures/families):
 * config keys, weight names and prefixes, positions and token types map onto the canonical BertModel
 * layout, and PEFT adapters and merged checkpoints go back out under each family's names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { parseBertConfig } from '../../src/model/config.ts';
import { canonicalTargets, familyTargets, trainingTargets } from '../../src/model/families.ts';
import { fileMapSource } from '../../src/model/file-source.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { readPeftAdapter, writeBertCheckpoint, writePeftAdapter } from '../../src/model/peft-files.ts';
import { readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { type StateDict, bertWeightShapes, canonicalBertWeights } from '../../src/model/state-dict.ts';
import { type FamilyFixture, fixtureModelDir, loadFixtureModel, readSafetensorsFile } from '../helpers/fixtures.ts';

const configJson = (model: FamilyFixture) => JSON.parse(readFileSync(join(fixtureModelDir(model), 'config.json'), 'utf8')) as Record<string, unknown>;
const configOf = (model: FamilyFixture) => parseBertConfig(configJson(model));
const fileWeights = (model: FamilyFixture) => readSafetensorsFile(join(fixtureModelDir(model), 'model.safetensors'));
const adapterFiles = (model: FamilyFixture) => {
  const dir = join(fixtureModelDir(model), 'adapter_init');
  return { 'adapter_config.json': readFileSync(join(dir, 'adapter_config.json'), 'utf8'), 'adapter_model.safetensors': new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))) };
};

describe('config.json of each family', () => {
  it('RoBERTa: BertModel keys, positions after pad_token_id 1, one token type', () => {
    expect(configOf('roberta')).toMatchObject({
      family: 'roberta',
      modelType: 'roberta',
      hiddenSize: 32,
      numHiddenLayers: 2,
      intermediateSize: 64,
      maxPositionEmbeddings: 66,
      typeVocabSize: 1,
      layerNormEps: 1e-5,
      padTokenId: 1,
      positionOffset: 2,
      maxSequenceLength: 64,
    });
  });

  it('XLM-RoBERTa (saved as XLMRobertaForMaskedLM): the same reading', () => {
    expect(configOf('xlm-roberta')).toMatchObject({ family: 'xlm-roberta', architectures: ['XLMRobertaForMaskedLM'], hiddenSize: 48, numAttentionHeads: 3, positionOffset: 2, maxSequenceLength: 40 });
  });

  it('DistilBERT: dim, n_layers, n_heads, hidden_dim, activation; LayerNorm eps fixed at 1e-12; no token types', () => {
    expect(configOf('distilbert')).toMatchObject({
      family: 'distilbert',
      hiddenSize: 32,
      numHiddenLayers: 3,
      numAttentionHeads: 2,
      intermediateSize: 72,
      typeVocabSize: 1,
      layerNormEps: 1e-12,
      padTokenId: 0,
      positionOffset: 0,
      maxSequenceLength: 64,
    });
  });

  it('goes by the class names when model_type is missing, and takes each family\'s pad_token_id default', () => {
    const { model_type: _r, pad_token_id: _p, ...roberta } = configJson('xlm-roberta');
    expect(parseBertConfig(roberta)).toMatchObject({ family: 'xlm-roberta', padTokenId: 1, positionOffset: 2 });
    const { model_type: _d, ...distil } = configJson('distilbert');
    expect(parseBertConfig({ ...distil, architectures: ['DistilBertForMaskedLM'] }).family).toBe('distilbert');
    expect(() => parseBertConfig({ ...distil, architectures: ['DistilBertModel', 'BertModel'] })).toThrow(/no model_type, architectures DistilBertModel, BertModel: not supported yet/);
  });

  const refused: [string, FamilyFixture, Record<string, unknown>, RegExp][] = [
    ['a DistilBERT with relu', 'distilbert', { activation: 'relu' }, /config\.json: activation "relu" is not supported yet/],
    ['a DistilBERT without dim', 'distilbert', { dim: undefined }, /"dim" must be a positive integer, got undefined/],
    ['heads not dividing dim', 'distilbert', { n_heads: 5 }, /dim 32 is not a multiple of n_heads 5/],
    ['a RoBERTa whose positions end before the offset', 'roberta', { max_position_embeddings: 3 }, /max_position_embeddings 3 leaves 1 positions after RoBERTa's offset of 2/],
  ];
  it.each(refused)('refuses %s', (_, model, patch, message) => {
    expect(() => parseBertConfig({ ...configJson(model), ...patch })).toThrow(message);
  });
});

describe('weights of each family, in the canonical layout', () => {
  it('RoBERTa: BertModel names as they are, the pooler kept (for merged checkpoints)', async () => {
    const model = await loadFixtureModel('roberta');
    expect([...model.weights.keys()]).toEqual([...bertWeightShapes(model.config).keys(), 'pooler.dense.weight', 'pooler.dense.bias']);
    expect(model.weights.get('embeddings.position_embeddings.weight')!.shape).toEqual([66, 32]);
    expect(model.weights.get('embeddings.token_type_embeddings.weight')!.shape).toEqual([1, 32]);
  });

  it('XLM-RoBERTa task checkpoint: the roberta. prefix stripped, lm_head dropped (and listed)', async () => {
    const log: string[] = [];
    const model = await loadModelFiles(localDirSource(fixtureModelDir('xlm-roberta')), { log: (m) => log.push(m) });
    const raw = fileWeights('xlm-roberta');
    expect(model.weights.get('encoder.layer.1.attention.self.key.weight')).toEqual(raw.get('roberta.encoder.layer.1.attention.self.key.weight'));
    expect(log.join('\n')).toMatch(/ignored 5 tensors .*lm_head\.dense\.weight.*lm_head\.bias/);
  });

  it('DistilBERT: transformer.layer names mapped onto BertModel\'s, one all-zero token type row', async () => {
    const model = await loadFixtureModel('distilbert');
    const raw = fileWeights('distilbert');
    expect([...model.weights.keys()]).toEqual([...bertWeightShapes(model.config).keys()]);
    const pairs: [string, string][] = [
      ['encoder.layer.2.attention.self.query.weight', 'transformer.layer.2.attention.q_lin.weight'],
      ['encoder.layer.0.attention.self.value.bias', 'transformer.layer.0.attention.v_lin.bias'],
      ['encoder.layer.1.attention.output.dense.weight', 'transformer.layer.1.attention.out_lin.weight'],
      ['encoder.layer.1.attention.output.LayerNorm.weight', 'transformer.layer.1.sa_layer_norm.weight'],
      ['encoder.layer.0.intermediate.dense.weight', 'transformer.layer.0.ffn.lin1.weight'],
      ['encoder.layer.2.output.dense.bias', 'transformer.layer.2.ffn.lin2.bias'],
      ['encoder.layer.2.output.LayerNorm.bias', 'transformer.layer.2.output_layer_norm.bias'],
      ['embeddings.LayerNorm.weight', 'embeddings.LayerNorm.weight'],
    ];
    for (const [canonical, own] of pairs) expect(model.weights.get(canonical), canonical).toEqual(raw.get(own));
    const types = model.weights.get('embeddings.token_type_embeddings.weight')!;
    expect(types.shape).toEqual([1, 32]);
    expect(types.data.every((v) => v === 0)).toBe(true);
  });

  it('DistilBERT task checkpoint: the distilbert. prefix stripped, its heads dropped; canonical weights read back as they are', () => {
    const config = configOf('distilbert');
    const raw: StateDict = new Map([...fileWeights('distilbert')].map(([name, t]) => [`distilbert.${name}`, t]));
    raw.set('vocab_projector.weight', { shape: [120, 32], data: new Float32Array(120 * 32) });
    raw.set('pre_classifier.bias', { shape: [32], data: new Float32Array(32) });
    const { weights, ignored } = canonicalBertWeights(config, raw);
    expect(weights.size).toBe(bertWeightShapes(config).size);
    expect(ignored).toEqual(['vocab_projector.weight', 'pre_classifier.bias']);
    expect(canonicalBertWeights(config, weights).weights).toEqual(weights);
    const twice = new Map([...fileWeights('distilbert'), ['encoder.layer.0.attention.self.query.weight', weights.get('encoder.layer.0.attention.self.query.weight')!]]);
    expect(() => canonicalBertWeights(config, twice)).toThrow(
      /checkpoint does not match a DistilBertModel .*\ngiven twice .*DistilBERT's and BertModel's.*\n {2}transformer\.layer\.0\.attention\.q_lin\.weight and encoder\.layer\.0\.attention\.self\.query\.weight/s,
    );
  });
});

describe('PEFT adapters under each family\'s module names', () => {
  it('DistilBERT: q_lin … lin2 read into the canonical modules and written back byte for byte', () => {
    const config = configOf('distilbert');
    const fixture = adapterFiles('distilbert');
    const adapter = readPeftAdapter(fixture, config);
    expect(adapter.config.targetModules).toEqual(['query', 'key', 'value', 'attention.output.dense', 'intermediate.dense', 'output.dense']);
    expect(adapter.tensors.get('encoder.layer.2.output.dense.lora_A')?.shape).toEqual([4, 72]);
    const written = writePeftAdapter(adapter, config);
    expect(JSON.parse(written['adapter_config.json']).target_modules).toEqual(['q_lin', 'k_lin', 'v_lin', 'out_lin', 'lin1', 'lin2']);
    const ours = readSafetensorsHeader(written['adapter_model.safetensors']);
    const theirs = readSafetensorsHeader(fixture['adapter_model.safetensors']);
    expect(ours.entries).toEqual(theirs.entries);
    expect(ours.entries[0].name).toBe('base_model.model.transformer.layer.0.attention.q_lin.lora_A.weight');
    expect(written['adapter_model.safetensors'].subarray(ours.dataStart)).toEqual(fixture['adapter_model.safetensors'].subarray(theirs.dataStart));
  });

  it('DistilBERT: an adapter trained with BERT target names is written under DistilBERT\'s', () => {
    const config = configOf('distilbert');
    const adapter = readPeftAdapter(adapterFiles('distilbert'), config);
    const qv = new Map([...adapter.tensors].filter(([name]) => /attention\.self\.(query|value)/.test(name)));
    const written = writePeftAdapter({ config: { ...adapter.config, targetModules: ['query', 'value'] }, tensors: qv }, config);
    expect(JSON.parse(written['adapter_config.json']).target_modules).toEqual(['q_lin', 'v_lin']);
    expect(readSafetensorsHeader(written['adapter_model.safetensors']).entries.map((e) => e.name).slice(0, 4)).toEqual([
      'base_model.model.transformer.layer.0.attention.q_lin.lora_A.weight',
      'base_model.model.transformer.layer.0.attention.q_lin.lora_B.weight',
      'base_model.model.transformer.layer.0.attention.v_lin.lora_A.weight',
      'base_model.model.transformer.layer.0.attention.v_lin.lora_B.weight',
    ]);
    expect(readPeftAdapter(written, config).config.targetModules).toEqual(['query', 'value']);
  });

  it('DistilBERT: adapters named for another family are refused', () => {
    const config = configOf('distilbert');
    expect(() => readPeftAdapter(adapterFiles('distilbert'))).toThrow(/not LoRA weights of BERT's linear layers .*transformer\.layer\.0\.attention\.q_lin\.lora_A\.weight/);
    const bertNamed = writePeftAdapter(readPeftAdapter(adapterFiles('distilbert'), config), configOf('roberta'));
    expect(() => readPeftAdapter(bertNamed, config)).toThrow(
      /not LoRA weights of DistilBERT's linear layers \(expected names like base_model\.model\.transformer\.layer\.0\.attention\.q_lin\.lora_A\.weight or transformer\.layer\.0\.attention\.q_lin\.lora_A\.weight; accepted forms: .* distilbert\., .*\): base_model\.model\.encoder\.layer\.0/,
    );
  });

  it('RoBERTa: BERT\'s names, also under the roberta. prefix of task models', () => {
    const config = configOf('roberta');
    const fixture = adapterFiles('roberta');
    const adapter = readPeftAdapter(fixture, config);
    expect(adapter.tensors.has('encoder.layer.1.attention.self.query.lora_A')).toBe(true);
    const written = writePeftAdapter(adapter, config);
    expect(readSafetensorsHeader(written['adapter_model.safetensors']).entries).toEqual(readSafetensorsHeader(fixture['adapter_model.safetensors']).entries);
    expect(JSON.parse(written['adapter_config.json']).target_modules).toEqual(JSON.parse(fixture['adapter_config.json']).target_modules);
  });

  it('translates target_modules exactly, whole names where no short name fits', () => {
    const config = configOf('distilbert');
    expect(familyTargets(config, ['output.dense'])).toEqual(['out_lin', 'lin2']);
    expect(familyTargets(config, ['dense'])).toEqual(['out_lin', 'lin1', 'lin2']);
    expect(canonicalTargets(config, { targetModules: ['out_lin', 'lin2'] })).toEqual(['attention.output.dense', 'output.dense']);
    // BERT's "output.dense" would also take attention.output.dense: the FFN output alone needs whole names.
    const lin2 = canonicalTargets(config, { targetModules: ['lin2'] });
    expect(lin2).toEqual(['encoder.layer.0.output.dense', 'encoder.layer.1.output.dense', 'encoder.layer.2.output.dense']);
    expect(familyTargets(config, lin2)).toEqual(['lin2']);
    expect(canonicalTargets(config, { targetModules: ['transformer.layer.1.attention.q_lin', 'ffn.lin1'] })).toEqual(['encoder.layer.1.attention.self.query', 'intermediate.dense']);
    expect(familyTargets(config, ['encoder.layer.1.attention.self.query'])).toEqual(['transformer.layer.1.attention.q_lin']);
    expect(canonicalTargets(config, { targetModules: ['nothing'] })).toEqual(['nothing']);
    // A regular expression is matched, as PEFT does, against the model's own names under the wrapped model's prefix.
    expect(canonicalTargets(config, { targetModules: 'distilbert\\.transformer\\.layer\\.\\d+\\.attention\\.(q_lin|v_lin)', modulePrefix: 'distilbert.' })).toEqual(['query', 'value']);
    expect(familyTargets(configOf('roberta'), ['output.dense'])).toEqual(['output.dense']);
  });

  it('takes training targets in BERT\'s names or the family\'s own, each on its own', () => {
    const config = configOf('distilbert');
    expect(trainingTargets(config, ['q_lin', 'value', 'query'])).toEqual(['query', 'value']);
    expect(trainingTargets(config, ['lin1', 'typo'])).toEqual(['intermediate.dense', 'typo']);
    expect(trainingTargets(configOf('roberta'), ['query', 'q_lin'])).toEqual(['query', 'q_lin']);
  });
});

describe('merged checkpoints in each family\'s layout', () => {
  const roundTrip = async (model: FamilyFixture) => {
    const files = await loadFixtureModel(model);
    const written = writeBertCheckpoint(files.config, files.weights);
    const json = JSON.parse(written['config.json']);
    const tokenizerFiles = model === 'distilbert' ? ['vocab.txt', 'tokenizer_config.json'] : ['tokenizer.json', 'tokenizer_config.json'];
    const reloaded = await loadModelFiles(
      fileMapSource(
        new Map<string, Blob>([
          ['config.json', new Blob([written['config.json']])],
          ['model.safetensors', new Blob([written['model.safetensors'] as Uint8Array<ArrayBuffer>])],
          ...tokenizerFiles.map((n): [string, Blob] => [n, new Blob([readFileSync(join(fixtureModelDir(model), n))])]),
        ]),
      ),
    );
    for (const [name, t] of files.weights) expect(reloaded.weights.get(name)?.data, name).toEqual(t.data);
    expect(reloaded.config).toMatchObject({ family: files.config.family, positionOffset: files.config.positionOffset, hiddenSize: files.config.hiddenSize });
    return { json, names: readSafetensorsHeader(written['model.safetensors']).entries.map((e) => e.name) };
  };

  it('DistilBERT: DistilBertModel with dim/n_layers/… and transformer.layer names, no token types', async () => {
    const { json, names } = await roundTrip('distilbert');
    expect(json).toMatchObject({ architectures: ['DistilBertModel'], model_type: 'distilbert', dim: 32, n_layers: 3, n_heads: 2, hidden_dim: 72, activation: 'gelu', torch_dtype: 'float32' });
    expect(json).not.toHaveProperty('hidden_size');
    expect(json).not.toHaveProperty('type_vocab_size');
    expect(names).toEqual([...readSafetensorsHeader(new Uint8Array(readFileSync(join(fixtureModelDir('distilbert'), 'model.safetensors')))).entries.map((e) => e.name)]);
  });

  it('XLM-RoBERTa: an XLMRobertaModel without the task prefix, pad_token_id and type_vocab_size kept', async () => {
    const { json, names } = await roundTrip('xlm-roberta');
    expect(json).toMatchObject({ architectures: ['XLMRobertaModel'], model_type: 'xlm-roberta', hidden_size: 48, type_vocab_size: 1, pad_token_id: 1, bos_token_id: 0 });
    expect(names[0]).toBe('embeddings.word_embeddings.weight');
    expect(names.some((n) => n.startsWith('roberta.') || n.startsWith('lm_head.'))).toBe(false);
  });
});
