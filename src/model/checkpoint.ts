/**
 * Load a BERT checkpoint in Hugging Face layout from any file source: config.json, the weights
 * (model.safetensors, sharded model.safetensors.index.json, pytorch_model.bin or its sharded
 * index, in that order of preference), the tokenizer (tokenizer.json, else vocab.txt) and, when
 * the folder is a sentence-transformers model, its pooling, normalisation, length and prompts.
 */
import { type BertConfig, parseBertConfig } from './config.ts';
import type { ModelFileSource, OnProgress } from './file-source.ts';
import { readTorchCheckpoint } from './pickle-checkpoint.ts';
import { parseSafetensors } from './safetensors.ts';
import { POOLING_CONFIG_FILE, SENTENCE_FILES, type SentenceConfig, readSentenceConfig } from './sentence-config.ts';
import { type StateDict, canonicalBertWeights } from './state-dict.ts';
import { type Tokenizer, loadTokenizer } from './tokenizer.ts';

export interface ModelSourceDescription {
  kind: 'hub' | 'local' | 'bundled';
  id: string;
  revision?: string;
  /** The commit the revision resolved to (Hub models), for reproducible runs. */
  commit?: string;
  /** The files that were read, in order. */
  files: string[];
}

export interface ModelFiles {
  config: BertConfig;
  weights: StateDict;
  tokenizer: Tokenizer;
  /** The tokenizer files as read, by name: what a merged model folder copies so other tools tokenise alike. */
  tokenizerFiles: Map<string, Uint8Array>;
  /** The sentence-transformers files' choices (all null/empty for a plain Hugging Face folder). */
  sentence: SentenceConfig;
  source: ModelSourceDescription;
}

export interface LoadOptions {
  onProgress?: OnProgress;
  /** Notes worth showing the user (e.g. which head tensors were dropped). */
  log?: (message: string) => void;
}

export async function loadModelFiles(source: ModelFileSource, options: LoadOptions = {}): Promise<ModelFiles> {
  const files: string[] = [];
  const where = source.revision ? `${source.id}@${source.revision}` : source.id;
  const read = async (path: string) => {
    const bytes = await source.read(path, options.onProgress);
    if (bytes) files.push(path);
    return bytes;
  };
  const config = await readConfig(read, where);

  const raw = await readWeights(read, where);
  const { weights, ignored } = canonicalBertWeights(config, raw);
  if (ignored.length > 0) options.log?.(`ignored ${ignored.length} tensors that are not part of BertModel: ${ignored.join(', ')}`);

  const tokenizerFiles = new Map<string, Uint8Array>();
  const text = async (path: string) => {
    const bytes = await read(path);
    if (bytes) tokenizerFiles.set(path, bytes);
    return bytes ? new TextDecoder().decode(bytes) : undefined;
  };
  const tokenizerConfig = await text('tokenizer_config.json');
  const tokenizerJson = await text('tokenizer.json');
  const vocabTxt = tokenizerJson === undefined ? await text('vocab.txt') : undefined;
  // Not needed here, but part of the tokenizer other tools load (older models name [CLS] etc. only there).
  await text('special_tokens_map.json');
  if (tokenizerJson === undefined && vocabTxt === undefined) throw new Error(`${where} has no tokenizer: neither tokenizer.json nor vocab.txt`);
  const tokenizer = loadTokenizer({ tokenizerJson, vocabTxt, tokenizerConfig });
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new Error(`${where}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json says vocab_size ${config.vocabSize}; they are not from the same model`);
  }
  const sentence = await readSentenceConfig(read, config.hiddenSize);
  for (const note of sentence.unsupported) options.log?.(`${where}: ${note} is not applied, so its embeddings will differ from sentence-transformers'`);
  const commit = await source.commit?.();
  return { config, weights, tokenizer, tokenizerFiles, sentence, source: { kind: source.kind, id: source.id, revision: source.revision, ...(commit ? { commit } : {}), files } };
}

/** Only config.json and the sentence-transformers files, no weights: the model and how it embeds texts (e.g. for a run export). */
export async function loadModelConfigs(source: ModelFileSource): Promise<Pick<ModelFiles, 'config' | 'sentence'>> {
  const read = (path: string) => source.read(path);
  const config = await readConfig(read, source.revision ? `${source.id}@${source.revision}` : source.id);
  return { config, sentence: await readSentenceConfig(read, config.hiddenSize) };
}

type Read = (path: string) => Promise<Uint8Array | null>;

async function readConfig(read: Read, where: string): Promise<BertConfig> {
  const bytes = await read('config.json');
  if (!bytes) throw new Error(`${where} has no config.json, so it is not a Hugging Face model folder`);
  return parseBertConfig(parseJson(bytes, 'config.json'));
}

const parseSafetensorsTensors = (bytes: Uint8Array, name: string) => parseSafetensors(bytes, name).tensors;

/** Weight files in the loader's order of preference; an index names shards like `shard`. */
const WEIGHT_FILES = [
  { name: 'model.safetensors', parse: parseSafetensorsTensors },
  { name: 'model.safetensors.index.json', parse: parseSafetensorsTensors, shard: /^model-\d+-of-\d+\.safetensors$/ },
  { name: 'pytorch_model.bin', parse: readTorchCheckpoint },
  { name: 'pytorch_model.bin.index.json', parse: readTorchCheckpoint, shard: /^pytorch_model-\d+-of-\d+\.bin$/ },
];

async function readWeights(read: Read, where: string): Promise<StateDict> {
  for (const { name, parse, shard } of WEIGHT_FILES) {
    const bytes = await read(name);
    if (bytes) return shard ? readShards(read, bytes, name, parse) : parse(bytes, name);
  }
  throw new Error(`${where} has no weights: looked for ${WEIGHT_FILES.map((w) => w.name).join(', ')}`);
}

/**
 * The files loadModelFiles would read from a repository holding `available`, without reading any:
 * what a download will cost. Shards are those named in the usual `-0000k-of-0000n` way.
 */
export function filesToLoad(available: ReadonlySet<string>): string[] {
  const weights = WEIGHT_FILES.find((w) => available.has(w.name));
  const shards = weights?.shard ? [...available].filter((f) => weights.shard.test(f)).sort() : [];
  const tokenizer = available.has('tokenizer.json') ? 'tokenizer.json' : 'vocab.txt';
  const pooling = [...available].filter((f) => POOLING_CONFIG_FILE.test(f)).sort();
  return ['config.json', ...(weights ? [weights.name] : []), ...shards, 'tokenizer_config.json', tokenizer, 'special_tokens_map.json', ...SENTENCE_FILES, ...pooling].filter((f) => available.has(f));
}

/** A sharded checkpoint: the index's weight_map says which shard holds each tensor. */
async function readShards(read: Read, indexBytes: Uint8Array, indexName: string, parse: (bytes: Uint8Array, name: string) => StateDict): Promise<StateDict> {
  const index = parseJson(indexBytes, indexName) as { weight_map?: unknown };
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((v) => typeof v === 'string')) {
    throw new Error(`${indexName}: "weight_map" must map tensor names to shard file names`);
  }
  const weightMap = map as Record<string, string>;
  const shards = [...new Set(Object.values(weightMap))];
  for (const shard of shards) {
    if (shard.includes('/') || shard.includes('\\') || shard.startsWith('.')) throw new Error(`${indexName}: shard name "${shard}" must be a plain file name`);
  }
  const out: StateDict = new Map();
  const origin = new Map<string, string>();
  for (const shard of shards) {
    const bytes = await read(shard);
    if (!bytes) throw new Error(`${indexName} lists shard ${shard}, which is missing`);
    for (const [name, tensor] of parse(bytes, shard)) {
      if (out.has(name)) throw new Error(`tensor ${name} is in more than one shard (again in ${shard})`);
      out.set(name, tensor);
      origin.set(name, shard);
    }
  }
  const misplaced = Object.entries(weightMap).filter(([name, shard]) => origin.get(name) !== shard);
  if (misplaced.length > 0) {
    throw new Error(`${indexName} lists tensors its shards do not contain: ${misplaced.map(([name, shard]) => `${name} (in ${shard})`).join(', ')}`);
  }
  return out;
}

function parseJson(bytes: Uint8Array, name: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${name} is not valid JSON (${(e as Error).message})`);
  }
}
