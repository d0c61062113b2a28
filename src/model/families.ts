/**
 * The encoder families qlora-lab loads, described as data: BERT, RoBERTa, XLM-RoBERTa and DistilBERT
 * are all post-LayerNorm BERT encoders, so the engine runs one canonical layout (BertModel's weight
 * and module names) and each family differs only in how its checkpoints spell things:
 *
 * - config.json keys (DistilBERT: dim, n_layers, n_heads, hidden_dim, activation);
 * - weight and module names (DistilBERT: transformer.layer.N.attention.q_lin, sa_layer_norm, ffn.lin1…)
 *   and the prefix task models put before the encoder (bert., roberta., distilbert.);
 * - positions: RoBERTa counts them from padding_idx + 1 (fairseq's make_positions), so the first token
 *   reads row pad_token_id + 1 of position_embeddings; the engine uploads the table from that row on;
 * - token types: DistilBERT has none, so the canonical layout gets one all-zero row.
 *
 * Names are mapped to the canonical layout on load and back on export (merged checkpoints, PEFT
 * adapters), so kernels and training never branch on the family.
 */
import type { BertConfig } from './config.ts';
import { LINEAR_SUFFIXES, type LinearSuffix, type LoraConfig, linearModules, targetsModule } from './lora.ts';
import type { StateDict } from './state-dict.ts';

export type FamilyName = 'bert' | 'roberta' | 'xlm-roberta' | 'distilbert';

/** The config.json keys of the sizes BertConfig reads, where a family names them its own way. */
interface ConfigKeys {
  hiddenSize: string;
  numHiddenLayers: string;
  numAttentionHeads: string;
  intermediateSize: string;
  hiddenAct: string;
}

export interface ModelFamily {
  name: FamilyName;
  /** As people write it, for messages. */
  label: string;
  /** The bare encoder's class, written into exported config.json files. */
  architecture: string;
  /** Class-name prefix of the family's architectures (for configs without model_type). */
  classPrefix: string;
  /** What the family's task models (…ForMaskedLM, …ForSequenceClassification) call the encoder. */
  prefix: string;
  /** Task heads those checkpoints carry besides the encoder, dropped on load. */
  heads: RegExp[];
  keys: ConfigKeys;
  /** pad_token_id when config.json has none (the family's config class default). */
  defaultPadTokenId: number;
  /** LayerNorm eps from config.json (default 1e-12), or the value the family's code fixes. */
  fixedLayerNormEps?: number;
  /** Whether the checkpoint has token_type_embeddings. */
  tokenTypes: boolean;
  /** Positions start at padding_idx + 1 (RoBERTa) instead of 0. */
  positionsAfterPadding: boolean;
  /** The layer list's name ('encoder.layer' in BertModel). */
  layers: string;
  /** Per-layer module names that differ from BertModel's, canonical suffix → the family's. */
  layerModules: Readonly<Record<string, string>>;
  /** The names PEFT users give each linear in target_modules (the module's own last name or path). */
  targetNames: Readonly<Record<LinearSuffix, string>>;
}

const BERT_KEYS: ConfigKeys = {
  hiddenSize: 'hidden_size',
  numHiddenLayers: 'num_hidden_layers',
  numAttentionHeads: 'num_attention_heads',
  intermediateSize: 'intermediate_size',
  hiddenAct: 'hidden_act',
};

const BERT_TARGETS: Record<LinearSuffix, string> = {
  'attention.self.query': 'query',
  'attention.self.key': 'key',
  'attention.self.value': 'value',
  'attention.output.dense': 'attention.output.dense',
  'intermediate.dense': 'intermediate.dense',
  'output.dense': 'output.dense',
};

/** RobertaModel and XLMRobertaModel: BertModel's names, other positions. */
const robertaLike = (name: FamilyName, label: string, classPrefix: string): ModelFamily => ({
  name,
  label,
  architecture: `${classPrefix}Model`,
  classPrefix,
  prefix: 'roberta.',
  heads: [/^lm_head\./, /^classifier\./, /^qa_outputs\./],
  keys: BERT_KEYS,
  defaultPadTokenId: 1,
  tokenTypes: true,
  positionsAfterPadding: true,
  layers: 'encoder.layer',
  layerModules: {},
  targetNames: BERT_TARGETS,
});

export const FAMILIES: Readonly<Record<FamilyName, ModelFamily>> = {
  bert: {
    name: 'bert',
    label: 'BERT',
    architecture: 'BertModel',
    classPrefix: 'Bert',
    prefix: 'bert.',
    heads: [/^cls\./, /^classifier\./, /^qa_outputs\./],
    keys: BERT_KEYS,
    defaultPadTokenId: 0,
    tokenTypes: true,
    positionsAfterPadding: false,
    layers: 'encoder.layer',
    layerModules: {},
    targetNames: BERT_TARGETS,
  },
  roberta: robertaLike('roberta', 'RoBERTa', 'Roberta'),
  'xlm-roberta': robertaLike('xlm-roberta', 'XLM-RoBERTa', 'XLMRoberta'),
  distilbert: {
    name: 'distilbert',
    label: 'DistilBERT',
    architecture: 'DistilBertModel',
    classPrefix: 'DistilBert',
    prefix: 'distilbert.',
    heads: [/^vocab_transform\./, /^vocab_layer_norm\./, /^vocab_projector\./, /^pre_classifier\./, /^classifier\./, /^qa_outputs\./],
    keys: { hiddenSize: 'dim', numHiddenLayers: 'n_layers', numAttentionHeads: 'n_heads', intermediateSize: 'hidden_dim', hiddenAct: 'activation' },
    defaultPadTokenId: 0,
    fixedLayerNormEps: 1e-12, // nn.LayerNorm(dim, eps=1e-12) in the embeddings and every block
    tokenTypes: false,
    positionsAfterPadding: false,
    layers: 'transformer.layer',
    layerModules: {
      'attention.self.query': 'attention.q_lin',
      'attention.self.key': 'attention.k_lin',
      'attention.self.value': 'attention.v_lin',
      'attention.output.dense': 'attention.out_lin',
      'attention.output.LayerNorm': 'sa_layer_norm',
      'intermediate.dense': 'ffn.lin1',
      'output.dense': 'ffn.lin2',
      'output.LayerNorm': 'output_layer_norm',
    },
    targetNames: {
      'attention.self.query': 'q_lin',
      'attention.self.key': 'k_lin',
      'attention.self.value': 'v_lin',
      'attention.output.dense': 'out_lin',
      'intermediate.dense': 'lin1',
      'output.dense': 'lin2',
    },
  },
};

/**
 * The family a config.json declares: its model_type, or for very old configs without one the class
 * names in architectures (as transformers does). Undefined when it is none of ours.
 */
export function familyOf(modelType: unknown, architectures: readonly string[]): ModelFamily | undefined {
  if (modelType !== undefined) return Object.values(FAMILIES).find((f) => f.name === modelType);
  if (architectures.length === 0) return undefined;
  // Longest prefix first: XLMRoberta… is not Roberta…, DistilBert… is not Bert….
  const byPrefix = Object.values(FAMILIES).sort((a, b) => b.classPrefix.length - a.classPrefix.length);
  const family = (arch: string) => byPrefix.find((f) => arch.startsWith(f.classPrefix));
  const first = family(architectures[0]);
  return first && architectures.every((a) => family(a) === first) ? first : undefined;
}

export const SUPPORTED_MODEL_TYPES = Object.keys(FAMILIES) as FamilyName[];

/** The row of position_embeddings that holds the first token's position. */
export function positionOffset(family: ModelFamily, padTokenId: number): number {
  return family.positionsAfterPadding ? padTokenId + 1 : 0;
}

const CANONICAL_LAYER = /^encoder\.layer\.(\d+)\.(.+)$/;
const CANONICAL_LAYER_PREFIX = /^encoder\.layer\.\d+\./;

/** A module or weight name of the family's encoder (no task prefix) → BertModel's; unknown names are returned as they are. */
export function canonicalName(family: ModelFamily, name: string): string {
  const m = new RegExp(`^${family.layers.replaceAll('.', '\\.')}\\.(\\d+)\\.(.+)$`).exec(name);
  if (!m) return name;
  for (const [canonical, own] of Object.entries(family.layerModules)) {
    if (m[2] === own || m[2].startsWith(`${own}.`)) return `encoder.layer.${m[1]}.${canonical}${m[2].slice(own.length)}`;
  }
  return family.layers === 'encoder.layer' ? name : `encoder.layer.${m[1]}.${m[2]}`;
}

/** BertModel's name of a module or weight → the family's (the inverse of canonicalName). */
export function familyName(family: ModelFamily, name: string): string {
  const m = CANONICAL_LAYER.exec(name);
  if (!m) return name;
  for (const [canonical, own] of Object.entries(family.layerModules)) {
    if (m[2] === canonical || m[2].startsWith(`${canonical}.`)) return `${family.layers}.${m[1]}.${own}${m[2].slice(canonical.length)}`;
  }
  return `${family.layers}.${m[1]}.${m[2]}`;
}

// ---------------------------------------------------------------- LoRA target modules

/**
 * target_modules as PEFT matched them on the family's model (its module names, under the wrapped
 * model's prefix; a list or a regular expression) → canonical targets selecting the same linear
 * modules, so that the target rule (targetsModule) and the adapter check work on BertModel's names.
 * Identical names (BERT, RoBERTa, XLM-RoBERTa) pass unchanged; targets that select nothing are kept
 * as they are, so later checks name them.
 */
export function canonicalTargets(config: BertConfig, rule: Pick<LoraConfig, 'targetModules' | 'modulePrefix'>): string[] | string {
  const family = FAMILIES[config.family];
  if (!renamesModules(family)) return rule.targetModules;
  const selected = renamedLinears(config).filter((m) => targetsModule(rule, familyName(family, m)));
  return selected.length === 0 ? rule.targetModules : expressTargets(config, new Set(selected), FAMILIES.bert);
}

/**
 * Targets a person names for training (CLI, app): BERT's names select the same linears in every
 * family, and the family's own (DistilBERT's q_lin, lin2 …) are taken too, each on its own.
 */
export function trainingTargets(config: BertConfig, targets: string[]): string[] {
  return [...new Set(targets.flatMap((t) => canonicalTargets(config, { targetModules: [t] })))];
}

/** Canonical target_modules → the names PEFT needs on the family's model (the inverse of canonicalTargets). */
export function familyTargets(config: BertConfig, targets: string[]): string[];
export function familyTargets(config: BertConfig, targets: string[] | string): string[] | string;
export function familyTargets(config: BertConfig, targets: string[] | string): string[] | string {
  const family = FAMILIES[config.family];
  if (!renamesModules(family)) return targets;
  const selected = renamedLinears(config).filter((m) => targetsModule({ targetModules: targets }, m));
  return selected.length === 0 ? targets : expressTargets(config, new Set(selected), family);
}

/** Whether the family's module names differ from BertModel's (DistilBERT's do; RoBERTa's are the same). */
function renamesModules(family: ModelFamily): boolean {
  return family.layers !== 'encoder.layer' || Object.keys(family.layerModules).length > 0;
}

/** The linears of a family whose names differ from BertModel's (DistilBERT, which has no pooler). */
function renamedLinears(config: BertConfig): string[] {
  return linearModules(config, { pooler: false });
}
/**
 * The shortest target list, in `family`'s names, that selects exactly `selected` (canonical modules):
 * a linear's usual target name where every layer's is selected and the name matches nothing else
 * (BERT's `output.dense` also matches `attention.output.dense`), else the selected modules' full names.
 */
function expressTargets(config: BertConfig, selected: ReadonlySet<string>, family: ModelFamily): string[] {
  const all = renamedLinears(config);
  const targets: string[] = [];
  for (const suffix of LINEAR_SUFFIXES) {
    const ofKind = all.filter((m) => m.replace(CANONICAL_LAYER_PREFIX, '') === suffix);
    const chosen = ofKind.filter((m) => selected.has(m));
    if (chosen.length === 0) continue;
    const name = family.targetNames[suffix];
    const exact = chosen.length === ofKind.length && all.every((m) => selected.has(m) || !targetsModule({ targetModules: [name] }, familyName(family, m)));
    targets.push(...(exact ? [name] : chosen.map((m) => familyName(family, m))));
  }
  return targets;
}

// ---------------------------------------------------------------- export

/** The config.json fields of an exported bare encoder, under the family's own keys. */
export function familyConfigJson(config: BertConfig): Record<string, unknown> {
  const family = FAMILIES[config.family];
  const { keys } = family;
  return {
    architectures: [family.architecture],
    model_type: family.name,
    vocab_size: config.vocabSize,
    [keys.hiddenSize]: config.hiddenSize,
    [keys.numHiddenLayers]: config.numHiddenLayers,
    [keys.numAttentionHeads]: config.numAttentionHeads,
    [keys.intermediateSize]: config.intermediateSize,
    max_position_embeddings: config.maxPositionEmbeddings,
    ...(family.tokenTypes ? { type_vocab_size: config.typeVocabSize } : {}),
    ...(family.fixedLayerNormEps === undefined ? { layer_norm_eps: config.layerNormEps } : {}),
    [keys.hiddenAct]: config.hiddenAct,
    pad_token_id: config.padTokenId,
  };
}

/** Canonical weights under the family's names, as its bare encoder saves them (DistilBERT: no token types). */
export function familyWeights(config: BertConfig, weights: StateDict): StateDict {
  const family = FAMILIES[config.family];
  const out: StateDict = new Map();
  for (const [name, tensor] of weights) {
    if (!family.tokenTypes && name === 'embeddings.token_type_embeddings.weight') continue;
    out.set(familyName(family, name), tensor);
  }
  return out;
}
