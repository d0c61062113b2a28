/**
 * Makes the bundled demo model: a tiny BERT with RANDOM weights (a smoke test for the pipeline, not
 * a trained model) in Hugging Face layout, with a WordPiece vocabulary built from the given text
 * files so the demo texts tokenize into real words. Same inputs and seed → the same bytes.
 *
 *   node --import tsx scripts/make-demo-model.ts [--out public/models/demo-bert] [--seed 1] [--vocab-size 2000] FILE...
 *
 * FILE: .txt (text), .csv/.tsv (every cell after the header row), .json/.jsonl (every string value).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '../src/data/rng.ts';
import { parseBertConfig } from '../src/model/config.ts';
import { writeBertCheckpoint } from '../src/model/peft-files.ts';
import { sentenceTransformersFiles } from '../src/model/sentence-config.ts';
import { type StateDict, bertWeightShapes } from '../src/model/state-dict.ts';
import { bertTokenizerJson } from '../src/model/tokenizer.ts';

export const DEMO_SHAPE = { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, max_position_embeddings: 128 };
/** The demo as a sentence-transformers folder: mean pooling, normalised, 64 tokens (short texts, quick runs). */
const DEMO_SENTENCE = { pooling: 'mean', normalize: true, maxLength: 64, prompts: { query: '', passage: '' } } as const;
const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

/** BERT-uncased-style words: accents stripped, lowercased, split on whitespace and punctuation. */
export function basicWords(text: string): string[] {
  const normalised = text.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
  return normalised.match(/[\p{P}\p{S}]|[^\s\p{P}\p{S}]+/gu) ?? [];
}

/**
 * Specials, every character seen (word-initial and "##" continuation, so any seen word can be
 * pieced), then the most frequent words seen at least twice, up to `size` entries.
 */
export function buildVocab(texts: string[], size: number): string[] {
  const counts = new Map<string, number>();
  for (const text of texts) for (const word of basicWords(text)) counts.set(word, (counts.get(word) ?? 0) + 1);
  const chars = new Set<string>();
  for (const word of counts.keys()) for (const ch of word) chars.add(ch);
  const sortedChars = [...chars].sort();
  const base = [...SPECIALS, ...sortedChars, ...sortedChars.map((c) => `##${c}`)];
  if (base.length > size) throw new Error(`the texts use ${chars.size} distinct characters; a vocabulary of ${size} cannot hold them and the special tokens`);
  const inBase = new Set(base);
  const words = [...counts]
    .filter(([word, n]) => n >= 2 && !inBase.has(word))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, size - base.length)
    .map(([word]) => word);
  return [...base, ...words];
}

/** Texts from a file by its extension. */
export function textsFromFile(name: string, content: string): string[] {
  const ext = extname(name).toLowerCase();
  const strings = (value: unknown): string[] =>
    typeof value === 'string' ? [value] : typeof value === 'object' && value !== null ? Object.values(value).flatMap(strings) : [];
  if (ext === '.jsonl') return content.split('\n').filter((l) => l.trim() !== '').flatMap((l) => strings(JSON.parse(l)));
  if (ext === '.json') return strings(JSON.parse(content));
  if (ext === '.csv' || ext === '.tsv') {
    // Cells only matter for their words; quotes and separators are punctuation to basicWords.
    return content.split('\n').slice(1);
  }
  return [content];
}

export interface DemoModelOptions {
  seed: number;
  vocabSize: number;
  /** Names of the source files, for the README. */
  sources: string[];
}

/** All files of the demo model folder, by name. */
export function makeDemoModel(texts: string[], options: DemoModelOptions): Record<string, string | Uint8Array> {
  const vocab = buildVocab(texts, options.vocabSize);
  const config = parseBertConfig({
    architectures: ['BertModel'],
    model_type: 'bert',
    vocab_size: vocab.length,
    ...DEMO_SHAPE,
    type_vocab_size: 2,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
    initializer_range: 0.02,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
  });
  // BERT's initialisation: N(0, 0.02) matrices, zero biases, unit LayerNorm, zero [PAD] embedding.
  const rng = new Rng(options.seed);
  const weights: StateDict = new Map();
  for (const [name, shape] of bertWeightShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith('LayerNorm.weight')) data.fill(1);
    else if (name.endsWith('.weight')) for (let i = 0; i < n; i++) data[i] = 0.02 * rng.normal();
    if (name === 'embeddings.word_embeddings.weight') data.fill(0, 0, config.hiddenSize);
    weights.set(name, { shape, data });
  }
  const tokenizerConfig = { tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: DEMO_SHAPE.max_position_embeddings };
  const checkpoint = writeBertCheckpoint(config, weights);
  return {
    ...checkpoint,
    'vocab.txt': vocab.map((t) => `${t}\n`).join(''),
    'tokenizer_config.json': `${JSON.stringify(tokenizerConfig, null, 2)}\n`,
    'tokenizer.json': `${JSON.stringify(bertTokenizerJson(vocab.join('\n'), tokenizerConfig), null, 2)}\n`,
    // Every file the loader asks for exists, so the offline app finds each one in the service worker's cache.
    'special_tokens_map.json': `${JSON.stringify({ unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]' }, null, 2)}\n`,
    ...sentenceTransformersFiles(DEMO_SENTENCE, { hiddenSize: config.hiddenSize, lowercase: false, includePrompt: true }),
    'README.md': readme(vocab.length, options),
  };
}

function readme(vocabSize: number, options: DemoModelOptions): string {
  const { hidden_size, num_hidden_layers, num_attention_heads, intermediate_size } = DEMO_SHAPE;
  return `# demo-bert: a random-weights smoke-test model

**This is not a trained model.** Its weights are random (BERT's initialisation, seed ${options.seed}), so
its embeddings carry no meaning and no evaluation figure obtained with it says anything about a real
model. It exists so the app and the tests can run the whole pipeline (load, quantise, train LoRA,
evaluate, export) offline and in seconds. For real work pick a Hub model (BioLinkBERT, PubMedBERT,
BGE, MiniLM...).

- Architecture: BertModel, hidden ${hidden_size}, ${num_hidden_layers} layers, ${num_attention_heads} heads, intermediate ${intermediate_size}.
- Sentence embeddings (sentence-transformers files): mean pooling, L2-normalised, ${DEMO_SENTENCE.maxLength} tokens per text.
- Vocabulary: ${vocabSize} WordPiece tokens (uncased): the special tokens, every character of the
  source texts, and their most frequent words, built from: ${options.sources.join(', ') || '(no files)'}.
- Made by \`scripts/make-demo-model.ts\`; rerunning it with the same files and seed rewrites the same bytes.
`;
}

function main(argv: string[]): void {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { out: { type: 'string', default: 'public/models/demo-bert' }, seed: { type: 'string', default: '1' }, 'vocab-size': { type: 'string', default: '2000' } },
    allowPositionals: true,
  });
  const seed = Number(values.seed);
  const vocabSize = Number(values['vocab-size']);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);
  if (!Number.isInteger(vocabSize) || vocabSize < 16) throw new Error(`--vocab-size must be an integer ≥ 16, got ${values['vocab-size']}`);
  if (positionals.length === 0) throw new Error('give the text files to build the vocabulary from');
  const texts = positionals.flatMap((file) => {
    try {
      return textsFromFile(file, readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  });
  const files = makeDemoModel(texts, { seed, vocabSize, sources: positionals.map((f) => basename(f)) });
  mkdirSync(values.out, { recursive: true });
  let total = 0;
  for (const [name, content] of Object.entries(files)) {
    const path = join(values.out, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    total += typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
  }
  console.error(`wrote ${Object.keys(files).length} files (${(total / 1e6).toFixed(2)} MB) to ${values.out}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2));
