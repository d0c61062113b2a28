import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesToLoad, loadModelFiles } from '../../src/model/checkpoint.ts';
import { hubSource } from '../../src/model/hub.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type SentenceConfig, describeSettings, readSentenceConfig, sentenceSettings, sentenceTransformersFiles } from '../../src/model/sentence-config.ts';
import { fixtureModelDir } from '../helpers/fixtures.ts';
import { type HubServer, folderContents, startHubServer } from '../helpers/hub-server.ts';
import { SENTENCE_FIXTURES, sentenceModelDir, sentenceReference } from '../helpers/sentence-fixtures.ts';

const OPTION_NAMES = { pooling: '--pooling', normalize: '--normalize', maxLength: '--max-length', query: '--query-prompt', passage: '--passage-prompt' };

/** A read function over in-memory files (JSON values are serialised). */
function filesOf(files: Record<string, unknown>) {
  return async (path: string) => (path in files ? new TextEncoder().encode(typeof files[path] === 'string' ? (files[path] as string) : JSON.stringify(files[path])) : null);
}

const MODULES = [
  { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
  { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
];

const read = (files: Record<string, unknown>) => readSentenceConfig(filesOf(files), 16);

describe('sentence-transformers folders', () => {
  it.each(SENTENCE_FIXTURES)('%s: the folder decides pooling, normalisation, length, lower-casing and prompts', async (name) => {
    const files = await loadModelFiles(localDirSource(sentenceModelDir(name)));
    const { settings: expected } = sentenceReference(name);
    const { sentence } = files;
    expect(sentence.pooling).toBe(expected.pooling);
    expect(sentence.normalize).toBe(expected.normalize);
    expect(sentence.maxSeqLength).toBe(expected.max_seq_length);
    expect(sentence.lowercase).toBe(expected.do_lower_case);
    expect(sentence.includePrompt).toBe(expected.include_prompt);
    expect(sentence.unsupported).toEqual([]);
    expect(files.source.files).toEqual(expect.arrayContaining(['modules.json', '1_Pooling/config.json', 'sentence_bert_config.json', 'config_sentence_transformers.json']));
    const { settings, origins } = sentenceSettings(sentence, {}, 128, OPTION_NAMES);
    expect(settings).toMatchObject({ pooling: expected.pooling, normalize: expected.normalize, maxLength: expected.max_seq_length });
    expect(origins).toMatchObject({ pooling: '1_Pooling/config.json', normalize: 'modules.json', maxLength: 'sentence_bert_config.json' });
    const reference = sentenceReference(name).roles;
    expect(settings.prompts).toEqual({ query: reference.query.prompt ?? '', passage: reference.passage.prompt ?? '' });
  });

  it('E5 prompts by role, INSTRUCTOR-style default prompt and "document" as the passage prompt', async () => {
    const e5 = (await loadModelFiles(localDirSource(sentenceModelDir('e5')))).sentence;
    expect(sentenceSettings(e5, {}, 128, OPTION_NAMES).settings.prompts).toEqual({ query: 'query: ', passage: 'passage: ' });
    const instructor = (await loadModelFiles(localDirSource(sentenceModelDir('instructor')))).sentence;
    expect(instructor.defaultPromptName).toBe('query');
    expect(sentenceSettings(instructor, {}, 128, OPTION_NAMES).settings.prompts).toEqual({ query: 'Represent the question: ', passage: 'Represent the document: ' });
  });

  it('a plain Hugging Face folder has no sentence-transformers files: fallbacks, named "default"', async () => {
    const files = await loadModelFiles(localDirSource(fixtureModelDir('tiny')));
    expect(files.sentence).toMatchObject({ pooling: null, normalize: null, maxSeqLength: null, lowercase: false, prompts: {}, files: [] });
    const { settings, origins } = sentenceSettings(files.sentence, {}, 128, OPTION_NAMES);
    expect(settings).toEqual({ pooling: 'mean', normalize: true, maxLength: 128, prompts: { query: '', passage: '' } });
    expect(Object.values(origins).every((o) => o === 'default')).toBe(true);
  });

  it('explicit options win over the folder, and the description names where each setting came from', async () => {
    const bge = (await loadModelFiles(localDirSource(sentenceModelDir('bge')))).sentence;
    const { settings, origins } = sentenceSettings(bge, { pooling: 'max', normalize: false, prompts: { query: 'q: ' } }, 128, OPTION_NAMES);
    expect(settings).toEqual({ pooling: 'max', normalize: false, maxLength: 512, prompts: { query: 'q: ', passage: '' } });
    expect(describeSettings(settings, origins)).toBe(
      'pooling max (--pooling), not normalised (--normalize), max length 512 (sentence_bert_config.json), query prompt "q: " (--query-prompt), passage prompt none (default)',
    );
    expect(describeSettings(settings)).toBe('pooling max, not normalised, max length 512, query prompt "q: ", passage prompt none');
  });

  it('writes the files it reads: settings survive a round trip through sentenceTransformersFiles', async () => {
    const settings = { pooling: 'last-token', normalize: false, maxLength: 77, prompts: { query: 'query: ', passage: '' } } as const;
    const files = sentenceTransformersFiles(settings, { hiddenSize: 16, lowercase: true, includePrompt: false });
    const config = await read(files);
    expect(config).toMatchObject({ pooling: 'last-token', normalize: false, maxSeqLength: 77, lowercase: true, includePrompt: false, prompts: { query: 'query: ' } });
    expect(sentenceSettings(config, {}, 128, OPTION_NAMES).settings).toEqual(settings);
    expect(await read(sentenceTransformersFiles({ ...settings, normalize: true }, { hiddenSize: 16, lowercase: false, includePrompt: true }))).toMatchObject({ normalize: true, includePrompt: true });
  });

  it('reads the pooling_mode string, legacy flag sets (mean on by default) and leaves concatenations unapplied', async () => {
    expect((await read({ 'modules.json': MODULES, '1_Pooling/config.json': { pooling_mode: 'lasttoken' } })).pooling).toBe('last-token');
    expect((await read({ 'modules.json': MODULES, '1_Pooling/config.json': { word_embedding_dimension: 16 } })).pooling).toBe('mean');
    const both = await read({ 'modules.json': MODULES, '1_Pooling/config.json': { pooling_mode_cls_token: true } });
    expect(both.pooling).toBeNull();
    expect(both.unsupported).toEqual(['pooling that concatenates cls + mean (1_Pooling/config.json)']);
    const dense = await read({
      'modules.json': [...MODULES, { idx: 2, name: '2', path: '2_Dense', type: 'sentence_transformers.models.Dense' }, { idx: 3, name: '3', path: '3_Normalize', type: 'sentence_transformers.models.Normalize' }],
      '1_Pooling/config.json': {},
    });
    expect(dense).toMatchObject({ normalize: true, unsupported: ['the Dense module (2_Dense) listed in modules.json'] });
  });

  it('logs what it does not apply when loading a folder', async () => {
    const log: string[] = [];
    const files = folderContents(sentenceModelDir('e5'));
    files['modules.json'] = new TextEncoder().encode(JSON.stringify([...MODULES, { idx: 2, name: '2', path: '2_Dense', type: 'sentence_transformers.models.Dense' }]));
    const source = { kind: 'local' as const, id: 'dense-model', read: async (path: string) => files[path] ?? null };
    await loadModelFiles(source, { log: (m) => log.push(m) });
    expect(log).toContain("dense-model: the Dense module (2_Dense) listed in modules.json is not applied, so its embeddings will differ from sentence-transformers'");
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['modules.json not a list', { 'modules.json': { a: 1 } }, /modules\.json must be a list of modules/],
    ['a module without a type', { 'modules.json': [MODULES[0], { path: '1_Pooling' }] }, /modules\.json entry 1 needs a "type" and a "path"/],
    ['a Pooling path outside the folder', { 'modules.json': [MODULES[0], { ...MODULES[1], path: '../x' }] }, /the Pooling module's path "\.\.\/x" must be a folder inside the model folder/],
    ['the Pooling config missing', { 'modules.json': MODULES }, /modules\.json lists a Pooling module in 1_Pooling\/, but the folder has no 1_Pooling\/config\.json/],
    ['a pooling width other than hidden_size', { 'modules.json': MODULES, '1_Pooling/config.json': { word_embedding_dimension: 384 } }, /1_Pooling\/config\.json: word_embedding_dimension 384 does not match config\.json's hidden_size 16/],
    ['every mode off', { 'modules.json': MODULES, '1_Pooling/config.json': { pooling_mode_mean_tokens: false } }, /1_Pooling\/config\.json turns every pooling mode off/],
    ['a flag that is not boolean', { 'modules.json': MODULES, '1_Pooling/config.json': { pooling_mode_cls_token: 'yes' } }, /"pooling_mode_cls_token" must be true or false, got "yes"/],
    ['an unknown pooling_mode', { 'modules.json': MODULES, '1_Pooling/config.json': { pooling_mode: 'median' } }, /pooling_mode "median" is not one of cls, mean, max/],
    ['invalid JSON', { 'sentence_bert_config.json': '{max_seq_length: 1' }, /sentence_bert_config\.json is not valid JSON/],
    ['a bad max_seq_length', { 'sentence_bert_config.json': { max_seq_length: 1.5 } }, /max_seq_length must be an integer ≥ 2 or null, got 1\.5/],
    ['a bad do_lower_case', { 'sentence_bert_config.json': { do_lower_case: 1 } }, /do_lower_case must be true or false, got 1/],
    ['a prompt that is not text', { 'config_sentence_transformers.json': { prompts: { query: 3 } } }, /prompt "query" must be a text, got 3/],
    ['a default prompt it does not have', { 'config_sentence_transformers.json': { prompts: { query: 'q: ' }, default_prompt_name: 'passage' } }, /default_prompt_name "passage" is not one of its prompts \(query\)/],
  ])('refuses %s with a message naming the file', async (_, files, message) => {
    await expect(read(files)).rejects.toThrow(message);
  });
});

describe('sentence-transformers files from the Hub', () => {
  const withSentence = folderContents(sentenceModelDir('e5'));
  const plain = folderContents(fixtureModelDir('tiny'));
  let server: HubServer;
  beforeAll(async () => {
    server = await startHubServer({
      'test-org/e5': { main: withSentence },
      'test-org/plain': { main: { 'config.json': plain['config.json'], 'model.safetensors': plain['model.safetensors'], 'vocab.txt': plain['vocab.txt'] } },
    });
  });
  afterAll(() => server?.close());

  it('reads them, the Pooling folder included, and counts them in the download', async () => {
    const source = hubSource('test-org/e5', { baseUrl: server.baseUrl, cache: null });
    const files = await loadModelFiles(source);
    expect(files.sentence.prompts).toEqual({ query: 'query: ', passage: 'passage: ' });
    expect(files.sentence.pooling).toBe('mean');
    const { files: listed } = await source.resolve();
    expect(filesToLoad(new Set(listed.keys()))).toEqual(expect.arrayContaining(['modules.json', '1_Pooling/config.json', 'sentence_bert_config.json', 'config_sentence_transformers.json']));
  });

  it('never asks for the optional files a repository does not list (no 404s)', async () => {
    const before = server.requests.length;
    const files = await loadModelFiles(hubSource('test-org/plain', { baseUrl: server.baseUrl, cache: null }));
    expect(files.sentence).toMatchObject({ pooling: null, files: [] } satisfies Partial<SentenceConfig>);
    expect(server.requests.slice(before).some((r) => /modules\.json|sentence_bert_config|config_sentence_transformers|Pooling/.test(r))).toBe(false);
  });
});
