/**
 * Open a decoder LLM in Hugging Face layout from any file source: config.json, the tokenizer
 * (tokenizer.json and tokenizer_config.json, with its chat template) and a layer-by-layer weight
 * reader. No weight is read here, only the index or headers that say where each one lies, so the
 * caller can quantise layer by layer.
 */
import { type DecoderConfig, parseDecoderConfig } from './decoder-config.ts';
import { type DecoderTokenizer, loadDecoderTokenizer } from './decoder-tokenizer.ts';
import { type DecoderWeightReader, openDecoderWeights } from './decoder-weights.ts';
import type { ModelFileSource } from './file-source.ts';

export interface DecoderModelFiles {
  config: DecoderConfig;
  tokenizer: DecoderTokenizer;
  /** The tokenizer files as read, by name, for a merged model folder to copy. */
  tokenizerFiles: Map<string, Uint8Array>;
  weights: DecoderWeightReader;
}

/** Tokenizer files a decoder folder carries besides tokenizer.json; copied when present. */
export const TOKENIZER_EXTRAS = ['tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

export async function openDecoderModel(source: ModelFileSource): Promise<DecoderModelFiles> {
  const where = source.revision ? `${source.id}@${source.revision}` : source.id;
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const configBytes = await source.read('config.json');
  if (!configBytes) throw new Error(`${where} has no config.json, so it is not a Hugging Face model folder`);
  let json: unknown;
  try {
    json = JSON.parse(text(configBytes));
  } catch (e) {
    throw new Error(`${where}/config.json is not valid JSON (${(e as Error).message})`);
  }
  const config = parseDecoderConfig(json);

  const tokenizerFiles = new Map<string, Uint8Array>();
  for (const name of ['tokenizer.json', ...TOKENIZER_EXTRAS]) {
    const bytes = await source.read(name);
    if (bytes) tokenizerFiles.set(name, bytes);
  }
  const tokenizerJson = tokenizerFiles.get('tokenizer.json');
  if (!tokenizerJson) throw new Error(`${where} has no tokenizer.json (decoders are loaded from tokenizer.json only)`);
  const tokenizerConfig = tokenizerFiles.get('tokenizer_config.json');
  const tokenizer = loadDecoderTokenizer({ tokenizerJson: text(tokenizerJson), tokenizerConfig: tokenizerConfig && text(tokenizerConfig) });
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new Error(`${where}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json says vocab_size ${config.vocabSize}; they are not from the same model`);
  }
  return { config, tokenizer, tokenizerFiles, weights: await openDecoderWeights(source, config, where) };
}
