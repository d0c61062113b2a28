/**
 * Text generation with a DecoderModel (its adapters applied, dropout off): one prefill pass over the
 * prompt fills the per-layer KV cache, then each new token runs alone at its position against the
 * cache, and only the last position's logits are computed. Tokens come out one by one from an async
 * generator, so a caller can stream them and stop at any point (`break`, or the generator's
 * `return()`): the cache's GPU buffers are released then as at the end.
 */
import { Rng } from '../data/rng.ts';
import type { DecoderConfig } from './decoder-config.ts';
import type { DecoderTokenizer } from './decoder-tokenizer.ts';
import type { DecoderModel } from './decoder.ts';
import { checkSamplingOptions, pickToken } from './decoder-sampling.ts';

export interface GenerateOptions {
  /** The most tokens to generate (fewer when the model's positions run out first). */
  maxNewTokens: number;
  /** 0 (default): greedy; above 0: sampling at this temperature. */
  temperature?: number;
  /** Top-p nucleus of sampling (default 1: the whole vocabulary). */
  topP?: number;
  /** Seed of sampling's draws (default 0). */
  seed?: number;
  /** Tokens that end generation; the one met is yielded last. Default: config.json's eos ids (see stopTokensOf). */
  stopTokenIds?: readonly number[];
}

/** The stop tokens of a model folder: the tokenizer's eos_token (Llama 3 Instruct's <|eot_id|>) and config.json's eos_token_id(s). */
export function stopTokensOf(config: DecoderConfig, tokenizer: Pick<DecoderTokenizer, 'eosId'>): number[] {
  const ids = new Set(config.eosTokenIds);
  if (tokenizer.eosId !== null) ids.add(tokenizer.eosId);
  return [...ids];
}

/**
 * Generate tokens after `promptIds` (special tokens already in place, e.g. from the chat template).
 * Yields each new token id as soon as it is chosen. The last generated token is never run through
 * the model, so a prompt may fill every position but one before the last token it gets.
 */
export async function* generateTokens(model: DecoderModel, promptIds: readonly number[], options: GenerateOptions): AsyncGenerator<number, void, undefined> {
  const { config, engine } = model;
  const sampling = { temperature: options.temperature ?? 0, topP: options.topP ?? 1 };
  checkSamplingOptions(sampling);
  const { maxNewTokens } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  if (promptIds.length === 0) throw new Error('the prompt has no tokens');
  const badAt = promptIds.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= config.vocabSize);
  if (badAt >= 0) throw new Error(`prompt token ${badAt} is ${promptIds[badAt]}, not a token id below vocab_size ${config.vocabSize}`);
  const positions = config.maxSequenceLength;
  if (promptIds.length > positions) throw new Error(`the prompt has ${promptIds.length} tokens, more than the model's ${positions} positions`);
  const stops = new Set(options.stopTokenIds ?? config.eosTokenIds);
  const rng = new Rng(options.seed ?? 0);

  const count = Math.min(maxNewTokens, positions - promptIds.length + 1);
  const cache = model.createKvCache(promptIds.length + count - 1);
  try {
    let next: readonly number[] = promptIds;
    for (let n = 0; n < count; n++) {
      const hidden = model.forwardCached(cache, next);
      const logitsTensor = model.logits(hidden);
      engine.release(hidden);
      const logits = await engine.readF32(logitsTensor);
      engine.release(logitsTensor);
      const token = pickToken(logits, sampling, rng);
      yield token;
      if (stops.has(token)) return;
      next = [token];
    }
  } finally {
    model.releaseKvCache(cache);
  }
}
