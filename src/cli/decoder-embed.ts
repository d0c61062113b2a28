/**
 * `qlora-lab embed` for a decoder --model: the encoder options that mean something for a decoder are
 * read here (--pooling mean|last, --normalize, --max-length), the prompt ones are refused (a decoder
 * embeds the text as it is); --adapter folders are PEFT causal-LM adapters, stacked in order.
 */
import { DECODER_POOLINGS, type DecoderEmbedOptions, type DecoderPooling, embedDecoderTexts } from '../model/decoder-embed.ts';
import { numberOption } from './args.ts';
import { openDecoder } from './decoder.ts';
import { UsageError } from './errors.ts';

export const DECODER_EMBED_USAGE = `  For a decoder LLM --model (Llama, Qwen2/3, Mistral, Phi-3, SmolLM2):
  --pooling mean|last                 mean of the last hidden states over the text's tokens, or the last
                                      token's state (default mean)
  --normalize                         L2-normalise (default: the raw pooled states)
  --max-length N                      tokens per text incl. special ones (default: the model's positions)`;

function decoderPooling(value: unknown): DecoderPooling {
  if (value === undefined) return 'mean';
  if (!(DECODER_POOLINGS as readonly unknown[]).includes(value)) throw new UsageError(`--pooling for a decoder must be ${DECODER_POOLINGS.join(' or ')}, got ${String(value)}`);
  return value as DecoderPooling;
}

/** How a decoder embeds (pooling, normalisation, tokens per text) from the encoder options that apply to one; the prompt ones are refused. */
export function decoderEmbedOptions(values: Record<string, unknown>): DecoderEmbedOptions & { maxLength?: number } {
  for (const name of ['prompt-query', 'prompt-passage', 'role']) {
    if (values[name] !== undefined) throw new UsageError(`--${name} does not apply to a decoder model: a decoder embeds each text as it is, without prompts`);
  }
  if (values.normalize && values['no-normalize']) throw new UsageError('--normalize and --no-normalize contradict each other');
  const pooling = decoderPooling(values.pooling);
  const maxLength = values['max-length'] === undefined ? undefined : numberOption(values, 'max-length', 0, (n) => Number.isInteger(n) && n > 1);
  return { pooling, normalize: values.normalize === true, maxLength };
}

/** The line saying how a decoder embeds, printed before it does. */
export function describeDecoderEmbedding(options: DecoderEmbedOptions): string {
  return `decoder embeddings: ${options.pooling} pooling of the last hidden states${options.normalize ? ', L2-normalised' : ''}`;
}

/** The texts' embeddings from the decoder --model names; `batchSize` texts per pass, `onLoaded` once the model is. */
export async function embedWithDecoderCli(values: Record<string, unknown>, texts: string[], batchSize: number, onLoaded: () => void): Promise<Float32Array[]> {
  const options = decoderEmbedOptions(values);
  const cli = await openDecoder(values, (values.adapter as string[] | undefined) ?? []);
  onLoaded();
  process.stderr.write(`${describeDecoderEmbedding(options)}\n`);
  try {
    return await embedDecoderTexts(cli.model, cli.files.tokenizer, texts, {
      ...options,
      batchSize,
      onProgress: (done) => process.stderr.write(`\rembedded ${done}/${texts.length}`),
    });
  } finally {
    cli.model.destroy();
    cli.engine.destroy();
  }
}
