/**
 * Host-side tensors and the canonical BertModel weight names. Checkpoints come in several
 * spellings (`bert.`/`roberta.`/`distilbert.`-prefixed task models, DistilBERT's own names, TF-era
 * `LayerNorm.gamma/beta`); `canonicalBertWeights` maps them onto one set of names and checks every
 * shape against the config.
 */
import type { BertConfig } from './config.ts';
import { FAMILIES, canonicalName as familyCanonicalName } from './families.ts';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export type StateDict = Map<string, HostTensor>;

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** Every tensor a BertModel has, by canonical name (no prefix), with its shape. */
export function bertWeightShapes(config: BertConfig): Map<string, number[]> {
  const { hiddenSize: h, intermediateSize: i, vocabSize, maxPositionEmbeddings, typeVocabSize } = config;
  const shapes = new Map<string, number[]>([
    ['embeddings.word_embeddings.weight', [vocabSize, h]],
    ['embeddings.position_embeddings.weight', [maxPositionEmbeddings, h]],
    ['embeddings.token_type_embeddings.weight', [typeVocabSize, h]],
    ['embeddings.LayerNorm.weight', [h]],
    ['embeddings.LayerNorm.bias', [h]],
  ]);
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    const p = `encoder.layer.${layer}.`;
    for (const proj of ['query', 'key', 'value']) {
      shapes.set(`${p}attention.self.${proj}.weight`, [h, h]);
      shapes.set(`${p}attention.self.${proj}.bias`, [h]);
    }
    shapes.set(`${p}attention.output.dense.weight`, [h, h]);
    shapes.set(`${p}attention.output.dense.bias`, [h]);
    shapes.set(`${p}attention.output.LayerNorm.weight`, [h]);
    shapes.set(`${p}attention.output.LayerNorm.bias`, [h]);
    shapes.set(`${p}intermediate.dense.weight`, [i, h]);
    shapes.set(`${p}intermediate.dense.bias`, [i]);
    shapes.set(`${p}output.dense.weight`, [h, i]);
    shapes.set(`${p}output.dense.bias`, [h]);
    shapes.set(`${p}output.LayerNorm.weight`, [h]);
    shapes.set(`${p}output.LayerNorm.bias`, [h]);
  }
  return shapes;
}

/**
 * BertModel's pooler, which checkpoints may or may not have (add_pooling_layer). The engine never runs
 * it, but it is kept so that a merged model carries it, with any LoRA put on it folded in.
 */
export function poolerWeightShapes(config: BertConfig): Map<string, number[]> {
  const h = config.hiddenSize;
  return new Map([
    ['pooler.dense.weight', [h, h]],
    ['pooler.dense.bias', [h]],
  ]);
}

export function hasPooler(weights: StateDict): boolean {
  return weights.has('pooler.dense.weight');
}

/** Buffers that checkpoints carry besides the encoder; dropped on load, but listed (so are the family's task heads). */
const IGNORED_NAMES = [/^embeddings\.position_ids$/, /^embeddings\.token_type_ids$/];

const TOKEN_TYPES = 'embeddings.token_type_embeddings.weight';

/** BertModel's name of a checkpoint tensor; BertModel's own names pass through, so canonical weights read back as they are. */
function canonicalName(config: BertConfig, name: string): string {
  const { prefix } = FAMILIES[config.family];
  const unprefixed = name.startsWith(prefix) ? name.slice(prefix.length) : name;
  return familyCanonicalName(FAMILIES[config.family], unprefixed)
    .replace(/\.LayerNorm\.gamma$/, '.LayerNorm.weight')
    .replace(/\.LayerNorm\.beta$/, '.LayerNorm.bias');
}

export function canonicalBertWeights(config: BertConfig, raw: StateDict): { weights: StateDict; ignored: string[] } {
  const family = FAMILIES[config.family];
  const required = bertWeightShapes(config);
  const pooler = poolerWeightShapes(config);
  const expected = new Map([...required, ...pooler]);
  const ignoredNames = [...IGNORED_NAMES, ...family.heads];
  const weights: StateDict = new Map();
  const ignored: string[] = [];
  const unexpected: string[] = [];
  const misshaped: string[] = [];
  const duplicated: string[] = [];
  const originalName = new Map<string, string>();
  for (const [name, tensor] of raw) {
    const canonical = canonicalName(config, name);
    if (ignoredNames.some((re) => re.test(canonical))) {
      ignored.push(name);
      continue;
    }
    const shape = expected.get(canonical);
    if (!shape) {
      unexpected.push(`${name} ${fmt(tensor.shape)}`);
      continue;
    }
    if (weights.has(canonical)) {
      duplicated.push(`${originalName.get(canonical)} and ${name}`);
      continue;
    }
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, k) => d !== shape[k])) {
      misshaped.push(`${name}: expected ${fmt(shape)}, got ${fmt(tensor.shape)}`);
    } else if (tensor.data.length !== shapeSize(shape)) {
      misshaped.push(`${name}: shape ${fmt(shape)} needs ${shapeSize(shape)} values, has ${tensor.data.length}`);
    }
    weights.set(canonical, tensor);
    originalName.set(canonical, name);
  }
  // A family without token types (DistilBERT) reads type 0 from one all-zero row.
  if (!family.tokenTypes && !weights.has(TOKEN_TYPES)) weights.set(TOKEN_TYPES, { shape: [1, config.hiddenSize], data: new Float32Array(config.hiddenSize) });
  // The pooler is optional, but whole: a weight without its bias (or the reverse) is a broken checkpoint.
  const needed = [...pooler.keys()].some((name) => weights.has(name)) ? expected : required;
  const missing = [...needed].filter(([name]) => !weights.has(name)).map(([name, shape]) => `${name} ${fmt(shape)}`);
  const problems = [
    ...listing('missing', missing),
    ...listing('unexpected', unexpected),
    ...listing('wrong shape', misshaped),
    ...listing(`given twice (two names for one weight: with and without the ${family.prefix} prefix, or ${family.label}'s and BertModel's)`, duplicated),
  ];
  if (problems.length > 0) {
    const dims = `hidden ${config.hiddenSize}, ${config.numHiddenLayers} layers, intermediate ${config.intermediateSize}, vocab ${config.vocabSize}`;
    throw new Error(`checkpoint does not match a ${family.architecture} with this config (${dims}):\n${problems.join('\n')}`);
  }
  // Keep the canonical order (embeddings, then layer by layer, then the pooler), whatever the file's order.
  return { weights: new Map([...needed.keys()].map((name) => [name, weights.get(name) as HostTensor])), ignored };
}

function listing(what: string, items: string[]): string[] {
  const shown = 40;
  if (items.length === 0) return [];
  const more = items.length > shown ? [`  … and ${items.length - shown} more`] : [];
  return [`${what} (${items.length}):`, ...items.slice(0, shown).map((s) => `  ${s}`), ...more];
}
