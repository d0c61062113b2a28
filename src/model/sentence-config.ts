/**
 * What a sentence-transformers model folder says about turning token states into a sentence
 * embedding: modules.json (which modules, in order: a Pooling module's folder, a Normalize module),
 * the Pooling module's config.json (mode, include_prompt), sentence_bert_config.json
 * (max_seq_length, do_lower_case) and config_sentence_transformers.json (prompts,
 * default_prompt_name). Every file is optional: a plain Hugging Face folder has none of them.
 * Then the settings a run uses: the folder's choices unless an explicit option overrides them.
 */
import { POOLING_MODES, type PoolingMode } from '../engine/ops/pooling-modes.ts';

/** The folder's own choices, as read; null where the folder says nothing. */
export interface SentenceConfig {
  /** From the Pooling module's config.json; null without one (or with concatenated modes, see unsupported). */
  pooling: PoolingMode | null;
  /** That config.json, e.g. "1_Pooling/config.json". */
  poolingFile: string | null;
  /** include_prompt: false leaves the prompt's tokens out of the pooling. */
  includePrompt: boolean;
  /** Whether modules.json lists a Normalize module; null without modules.json. */
  normalize: boolean | null;
  maxSeqLength: number | null;
  /** Texts are lower-cased before tokenisation (sentence_bert_config.json do_lower_case). */
  lowercase: boolean;
  prompts: Record<string, string>;
  defaultPromptName: string | null;
  /** The sentence-transformers files that were read. */
  files: string[];
  /** What the folder asks for that qlora-lab does not do (its embeddings will differ from sentence-transformers'). */
  unsupported: string[];
}

export const NO_SENTENCE_CONFIG: SentenceConfig = {
  pooling: null,
  poolingFile: null,
  includePrompt: true,
  normalize: null,
  maxSeqLength: null,
  lowercase: false,
  prompts: {},
  defaultPromptName: null,
  files: [],
  unsupported: [],
};

/** The files readSentenceConfig reads at the top of a folder (the Pooling module's config.json is named by modules.json). */
export const SENTENCE_FILES = ['modules.json', 'sentence_bert_config.json', 'config_sentence_transformers.json'];

/** The Pooling module's config.json as sentence-transformers saves it (for download sizes before modules.json is read). */
export const POOLING_CONFIG_FILE = /^\d+_Pooling\/config\.json$/;

/** 1_Pooling/config.json's flag of each mode. */
const MODE_FLAGS: Record<PoolingMode, string> = {
  cls: 'pooling_mode_cls_token',
  mean: 'pooling_mode_mean_tokens',
  max: 'pooling_mode_max_tokens',
  'mean-sqrt-len': 'pooling_mode_mean_sqrt_len_tokens',
  'weighted-mean': 'pooling_mode_weightedmean_tokens',
  'last-token': 'pooling_mode_lasttoken',
};

/** The Pooling module's `pooling_mode` names (it overrides the flags when present). */
const MODE_NAMES: Record<string, PoolingMode> = {
  cls: 'cls',
  mean: 'mean',
  max: 'max',
  mean_sqrt_len_tokens: 'mean-sqrt-len',
  weightedmean: 'weighted-mean',
  lasttoken: 'last-token',
};

/** sentence-transformers' `pooling_mode` name of a mode (what models.Pooling takes). */
export function stPoolingMode(mode: PoolingMode): string {
  return Object.keys(MODE_NAMES).find((name) => MODE_NAMES[name] === mode)!;
}

type Read = (path: string) => Promise<Uint8Array | null>;

/** Read the sentence-transformers files of a folder through `read` (null: no such file). */
export async function readSentenceConfig(read: Read, hiddenSize: number): Promise<SentenceConfig> {
  const config: SentenceConfig = { ...NO_SENTENCE_CONFIG, prompts: {}, files: [], unsupported: [] };
  const readJson = async (path: string): Promise<unknown> => {
    const bytes = await read(path);
    if (!bytes) return undefined;
    config.files.push(path);
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new Error(`${path} is not valid JSON (${(e as Error).message})`);
    }
  };

  const modules = await readJson('modules.json');
  if (modules !== undefined) {
    const pooling = readModules(modules, config);
    if (pooling !== null) {
      const path = `${pooling}/config.json`;
      const poolingConfig = await readJson(path);
      if (poolingConfig === undefined) throw new Error(`modules.json lists a Pooling module in ${pooling}/, but the folder has no ${path}`);
      config.poolingFile = path;
      readPooling(poolingConfig, path, hiddenSize, config);
    }
  }
  const bertConfig = await readJson('sentence_bert_config.json');
  if (bertConfig !== undefined) readSentenceBertConfig(bertConfig, config);
  const stConfig = await readJson('config_sentence_transformers.json');
  if (stConfig !== undefined) readPrompts(stConfig, config);
  return config;
}

function expectObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** Records Normalize and unsupported modules; returns the Pooling module's folder, or null. */
function readModules(json: unknown, config: SentenceConfig): string | null {
  if (!Array.isArray(json)) throw new Error('modules.json must be a list of modules');
  let pooling: string | null = null;
  config.normalize = false;
  json.forEach((entry, i) => {
    const module = expectObject(entry, `modules.json entry ${i}`);
    const { type, path } = module;
    if (typeof type !== 'string' || typeof path !== 'string') throw new Error(`modules.json entry ${i} needs a "type" and a "path" (text)`);
    // Class names moved between packages over sentence-transformers versions; the class is what counts.
    const kind = type.slice(type.lastIndexOf('.') + 1);
    if (i === 0) return; // the input module: this folder's own transformer
    if (kind === 'Pooling' && pooling === null) {
      if (path === '' || path.startsWith('/') || path.split('/').some((s) => s === '..' || s === '.')) {
        throw new Error(`modules.json: the Pooling module's path ${JSON.stringify(path)} must be a folder inside the model folder`);
      }
      pooling = path.replace(/\/+$/, '');
    } else if (kind === 'Normalize') config.normalize = true;
    else config.unsupported.push(`the ${kind} module${path ? ` (${path})` : ''} listed in modules.json`);
  });
  return pooling;
}

function readPooling(json: unknown, path: string, hiddenSize: number, config: SentenceConfig): void {
  const raw = expectObject(json, path);
  const dimension = raw.word_embedding_dimension;
  if (dimension !== undefined && dimension !== hiddenSize) {
    throw new Error(`${path}: word_embedding_dimension ${JSON.stringify(dimension)} does not match config.json's hidden_size ${hiddenSize}`);
  }
  const flag = (key: string, fallback: boolean): boolean => {
    const value = raw[key] ?? fallback;
    if (typeof value !== 'boolean') throw new Error(`${path}: "${key}" must be true or false, got ${JSON.stringify(value)}`);
    return value;
  };
  config.includePrompt = flag('include_prompt', true);
  let modes: PoolingMode[];
  if (raw.pooling_mode !== undefined && raw.pooling_mode !== null) {
    const mode = typeof raw.pooling_mode === 'string' ? MODE_NAMES[raw.pooling_mode.toLowerCase()] : undefined;
    if (!mode) throw new Error(`${path}: pooling_mode ${JSON.stringify(raw.pooling_mode)} is not one of ${Object.keys(MODE_NAMES).join(', ')}`);
    modes = [mode];
  } else {
    // sentence-transformers' Pooling defaults: mean on, every other mode off.
    modes = POOLING_MODES.filter((m) => flag(MODE_FLAGS[m], m === 'mean'));
  }
  if (modes.length === 1) config.pooling = modes[0];
  else if (modes.length === 0) throw new Error(`${path} turns every pooling mode off`);
  else config.unsupported.push(`pooling that concatenates ${modes.join(' + ')} (${path})`);
}

function readSentenceBertConfig(json: unknown, config: SentenceConfig): void {
  const raw = expectObject(json, 'sentence_bert_config.json');
  const maxSeqLength = raw.max_seq_length ?? null;
  if (maxSeqLength !== null && (typeof maxSeqLength !== 'number' || !Number.isInteger(maxSeqLength) || maxSeqLength < 2)) {
    throw new Error(`sentence_bert_config.json: max_seq_length must be an integer ≥ 2 or null, got ${JSON.stringify(maxSeqLength)}`);
  }
  const lowercase = raw.do_lower_case ?? false;
  if (typeof lowercase !== 'boolean') throw new Error(`sentence_bert_config.json: do_lower_case must be true or false, got ${JSON.stringify(lowercase)}`);
  config.maxSeqLength = maxSeqLength;
  config.lowercase = lowercase;
}

function readPrompts(json: unknown, config: SentenceConfig): void {
  const where = 'config_sentence_transformers.json';
  const raw = expectObject(json, where);
  const prompts = expectObject(raw.prompts ?? {}, `${where}: "prompts"`);
  for (const [name, prompt] of Object.entries(prompts)) {
    if (typeof prompt !== 'string') throw new Error(`${where}: prompt "${name}" must be a text, got ${JSON.stringify(prompt)}`);
  }
  const defaultName = raw.default_prompt_name ?? null;
  if (defaultName !== null && (typeof defaultName !== 'string' || !Object.hasOwn(prompts, defaultName))) {
    throw new Error(`${where}: default_prompt_name ${JSON.stringify(defaultName)} is not one of its prompts (${Object.keys(prompts).join(', ') || 'none'})`);
  }
  config.prompts = prompts as Record<string, string>;
  config.defaultPromptName = defaultName;
}

/**
 * The sentence-transformers files of a folder that embeds with `settings` (what readSentenceConfig
 * reads back): modules.json (Transformer, Pooling in 1_Pooling, Normalize when normalised),
 * 1_Pooling/config.json, sentence_bert_config.json and config_sentence_transformers.json (the
 * role prompts as "query" and "passage", when set).
 */
export function sentenceTransformersFiles(
  settings: SentenceSettings,
  model: { hiddenSize: number; lowercase: boolean; includePrompt: boolean },
): Record<string, string> {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  const module = (idx: number, path: string, kind: string) => ({ idx, name: String(idx), path, type: `sentence_transformers.models.${kind}` });
  const modules = [module(0, '', 'Transformer'), module(1, '1_Pooling', 'Pooling'), ...(settings.normalize ? [module(2, '2_Normalize', 'Normalize')] : [])];
  const pooling = Object.fromEntries(POOLING_MODES.map((m) => [MODE_FLAGS[m], m === settings.pooling]));
  const prompts = Object.fromEntries(Object.entries(settings.prompts).filter(([, prompt]) => prompt !== ''));
  return {
    'modules.json': json(modules),
    '1_Pooling/config.json': json({ word_embedding_dimension: model.hiddenSize, ...pooling, include_prompt: model.includePrompt }),
    'sentence_bert_config.json': json({ max_seq_length: settings.maxLength, do_lower_case: model.lowercase }),
    'config_sentence_transformers.json': json({ prompts, default_prompt_name: null, similarity_fn_name: 'cosine' }),
  };
}

// ---------------------------------------------------------------- effective settings

/** Texts play one of two roles: queries (anchors of training pairs) and passages (their positives, a corpus). */
export type TextRole = 'query' | 'passage';

export interface RolePrompts {
  query: string;
  passage: string;
}

/** How a run turns texts into embeddings: what the CLI prints, the app shows and a run records. */
export interface SentenceSettings {
  pooling: PoolingMode;
  normalize: boolean;
  /** Tokens per text, [CLS] and [SEP] included. */
  maxLength: number;
  /** Prepended to each text of that role (sentence-transformers' prompts, e.g. E5's "query: "). */
  prompts: RolePrompts;
}

/** Explicit choices (CLI options, app fields); what is left out comes from the folder. */
export interface SentenceOverrides {
  pooling?: PoolingMode;
  normalize?: boolean;
  maxLength?: number;
  prompts?: Partial<RolePrompts>;
}

/** Where each setting came from, e.g. "1_Pooling/config.json" or "--pooling", for display. */
export type SettingOrigins = Record<'pooling' | 'normalize' | 'maxLength' | 'query' | 'passage', string>;

/** Used where neither the folder nor an option decides. */
export const FALLBACK_POOLING: PoolingMode = 'mean';
export const FALLBACK_NORMALIZE = true;

/** sentence-transformers' encode_document takes the first of these prompts the model has. */
const PASSAGE_PROMPT_NAMES = ['document', 'passage', 'corpus'];

/** The prompt a text without a role gets (encode()): the default prompt, or none. */
export function defaultPrompt(config: SentenceConfig): string {
  return config.defaultPromptName === null ? '' : config.prompts[config.defaultPromptName];
}

/** The folder's prompt of each role, as encode_query / encode_document choose it. */
export function folderPrompts(config: SentenceConfig): { prompts: RolePrompts; names: Record<TextRole, string | null> } {
  const query = Object.hasOwn(config.prompts, 'query') ? 'query' : config.defaultPromptName;
  const passage = PASSAGE_PROMPT_NAMES.find((n) => Object.hasOwn(config.prompts, n)) ?? config.defaultPromptName;
  const prompt = (name: string | null) => (name === null ? '' : config.prompts[name]);
  return { prompts: { query: prompt(query), passage: prompt(passage) }, names: { query, passage } };
}

/**
 * The settings a run uses: each override where given, else the folder's choice, else the fallback
 * (`fallbackMaxLength` for the length: the folder may not say, and the CLI and the app differ).
 */
export function sentenceSettings(config: SentenceConfig, overrides: SentenceOverrides, fallbackMaxLength: number, optionNames: Record<keyof SettingOrigins, string>): { settings: SentenceSettings; origins: SettingOrigins } {
  const folder = folderPrompts(config);
  const pick = <T>(key: keyof SettingOrigins, override: T | undefined, fromFolder: T | null, file: string | null, fallback: T): [T, string] => {
    if (override !== undefined) return [override, optionNames[key]];
    if (fromFolder !== null && file !== null) return [fromFolder, file];
    return [fallback, 'default'];
  };
  const stConfig = 'config_sentence_transformers.json';
  const [pooling, poolingOrigin] = pick('pooling', overrides.pooling, config.pooling, config.poolingFile, FALLBACK_POOLING);
  const [normalize, normalizeOrigin] = pick('normalize', overrides.normalize, config.normalize, 'modules.json', FALLBACK_NORMALIZE);
  const [maxLength, maxLengthOrigin] = pick('maxLength', overrides.maxLength, config.maxSeqLength, 'sentence_bert_config.json', fallbackMaxLength);
  const [query, queryOrigin] = pick('query', overrides.prompts?.query, folder.names.query === null ? null : folder.prompts.query, stConfig, '');
  const [passage, passageOrigin] = pick('passage', overrides.prompts?.passage, folder.names.passage === null ? null : folder.prompts.passage, stConfig, '');
  return {
    settings: { pooling, normalize, maxLength, prompts: { query, passage } },
    origins: { pooling: poolingOrigin, normalize: normalizeOrigin, maxLength: maxLengthOrigin, query: queryOrigin, passage: passageOrigin },
  };
}

/** One line naming each setting and, with `origins`, where it came from. */
export function describeSettings(settings: SentenceSettings, origins?: SettingOrigins): string {
  const from = (key: keyof SettingOrigins) => (origins ? ` (${origins[key]})` : '');
  const prompt = (p: string) => (p === '' ? 'none' : JSON.stringify(p));
  return [
    `pooling ${settings.pooling}${from('pooling')}`,
    `${settings.normalize ? 'L2-normalised' : 'not normalised'}${from('normalize')}`,
    `max length ${settings.maxLength}${from('maxLength')}`,
    `query prompt ${prompt(settings.prompts.query)}${from('query')}`,
    `passage prompt ${prompt(settings.prompts.passage)}${from('passage')}`,
  ].join(', ');
}
