/** `qlora-lab generate`: continue a prompt with a decoder LLM, the text streamed to stdout as the tokens come. */
import { SUPPORTED_DECODER_TYPES } from '../../model/decoder-config.ts';
import { generateTokens, stopTokensOf } from '../../model/decoder-generate.ts';
import { numberOption, parseOptions, required } from '../args.ts';
import { modelKind, openDecoder } from '../decoder.ts';
import { UsageError } from '../errors.ts';

export const summary = 'continue a prompt with a decoder LLM (greedy or sampled), streaming the text to stdout';

const USAGE = `usage: qlora-lab generate --model <dir|hub-id> --prompt TEXT [options]
  --model <dir|org/name[@revision]>  decoder LLM folder or Hugging Face repo id (required; model_type
                                      ${SUPPORTED_DECODER_TYPES.join(', ')})
  --prompt TEXT                       the text to continue, after the tokenizer's own special tokens (required)
  --chat                              send the prompt as a user message through the model's chat
                                      template, ending with the assistant's turn
  --max-new-tokens N                  the most tokens to generate (default 128; fewer if the model's
                                      positions run out)
  --temperature T                     0: greedy, the most probable token each time (default); above 0:
                                      sample at this temperature
  --top-p P                           sample from the smallest set of tokens whose probability reaches P
                                      (0 < P ≤ 1, default 1)
  --seed S                            seed of the sampling, an integer ≥ 0 (default 0)
  --base nf4|f32                      frozen base precision (default nf4)
  --adapter <dir>                     PEFT causal-LM adapter folder; repeat to stack adapters in order
  Generation ends at the tokenizer's eos_token or config.json's eos_token_id, which is not printed.`;

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    {
      model: { type: 'string' },
      prompt: { type: 'string' },
      chat: { type: 'boolean', default: false },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      base: { type: 'string', default: 'nf4' },
      adapter: { type: 'string', multiple: true },
    },
    USAGE,
  );
  const model = required(values, 'model', USAGE);
  const prompt = values.prompt;
  if (typeof prompt !== 'string') throw new UsageError(`--prompt is required\n\n${USAGE}`);
  const maxNewTokens = numberOption(values, 'max-new-tokens', 128, (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  const temperature = numberOption(values, 'temperature', 0, (n) => Number.isFinite(n) && n >= 0, 'a number ≥ 0 (0: greedy)');
  const topP = numberOption(values, 'top-p', 1, (n) => n > 0 && n <= 1, 'in (0, 1]');
  const seed = numberOption(values, 'seed', 0, (n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff, 'an integer in [0, 2³²)');
  if ((await modelKind(model)) === 'encoder') {
    throw new UsageError(`generate needs a decoder LLM (config.json model_type ${SUPPORTED_DECODER_TYPES.join(', ')}); ${model} is not one (encoders such as BERT do not generate text)`);
  }

  const { engine, files, model: decoder } = await openDecoder(values, (values.adapter as string[] | undefined) ?? []);
  try {
    const { tokenizer, config } = files;
    if (values.chat && !tokenizer.hasChatTemplate) throw new UsageError(`--chat: ${model} has no chat_template in tokenizer_config.json`);
    const ids = values.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }).ids : tokenizer.encode(prompt);
    if (ids.length === 0) throw new UsageError('--prompt gives no tokens (the text is empty and the tokenizer adds none)');
    if (ids.length > config.maxSequenceLength) throw new UsageError(`--prompt is ${ids.length} tokens, more than the model's ${config.maxSequenceLength} positions`);
    const stops = stopTokensOf(config, tokenizer);
    const started = performance.now();
    const generated: number[] = [];
    let printed = '';
    let stoppedBy: number | null = null;
    for await (const token of generateTokens(decoder, ids, { maxNewTokens, temperature, topP, seed, stopTokenIds: stops })) {
      if (stops.includes(token)) {
        stoppedBy = token;
        break;
      }
      generated.push(token);
      // The text of all tokens so far, printed from where the last write ended; held back while it
      // ends in a partial UTF-8 character (a byte-level token can carry part of one).
      const text = tokenizer.decode(generated, { skipSpecialTokens: true });
      if (!text.endsWith('\uFFFD')) {
        process.stdout.write(text.slice(printed.length));
        printed = text;
      }
    }
    const text = tokenizer.decode(generated, { skipSpecialTokens: true });
    process.stdout.write(`${text.slice(printed.length)}\n`);
    const seconds = (performance.now() - started) / 1000;
    const why = stoppedBy === null ? `--max-new-tokens or the model's ${config.maxSequenceLength} positions` : `stop token ${stoppedBy}`;
    process.stderr.write(`${ids.length} prompt tokens, ${generated.length} generated in ${seconds.toFixed(2)} s (${(generated.length / seconds).toFixed(1)} tokens/s); ended by ${why}\n`);
  } finally {
    engine.destroy();
  }
}
