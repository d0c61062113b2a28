/** `qlora-lab embed`: sentence embeddings of a text file (one text per line) as a .npy matrix. */
import { defaultPrompt } from '../../model/sentence-config.ts';
import { parseOptions, required } from '../args.ts';
import { modelKind } from '../decoder.ts';
import { DECODER_EMBED_USAGE, embedWithDecoderCli } from '../decoder-embed.ts';
import { ENCODER_OPTIONS, ENCODER_USAGE, openEncoder } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { encodeNpyFloat32 } from '../npy.ts';
import { checkOutputPath, writeOutputFile } from '../output.ts';
import { readTextLines } from '../text-lines.ts';

export const summary = 'embed texts (one per line) with a model [+ adapters] into a float32 .npy';

const USAGE = `usage: qlora-lab embed --model <dir|hub-id> --input texts.txt --out emb.npy [options]
${ENCODER_USAGE}
  --adapter <dir>                     PEFT adapter folder; repeat to stack adapters in order
  --role query|passage                embed the texts as queries or passages, with that prompt (default:
                                      neither, with the folder's default prompt if it has one)
  --batch-size N                      texts per GPU batch (default 32)
${DECODER_EMBED_USAGE}`;

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    { ...ENCODER_OPTIONS, input: { type: 'string' }, out: { type: 'string' }, adapter: { type: 'string', multiple: true }, role: { type: 'string' }, 'batch-size': { type: 'string', default: '32' } },
    USAGE,
  );
  const input = required(values, 'input', USAGE);
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'file');
  const batchSize = Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`--batch-size must be a positive integer`);
  const role = values.role;
  if (role !== undefined && role !== 'query' && role !== 'passage') throw new UsageError(`--role must be query or passage, got ${String(role)}`);
  const texts = await readTextLines('input', input);
  // Throughput counts from when the model is loaded.
  let started = 0;
  const onLoaded = () => (started = performance.now());
  const embed = (await modelKind(required(values, 'model', USAGE))) === 'decoder' ? embedWithDecoderCli : embedWithEncoder;
  const embeddings = await embed(values, texts, batchSize, onLoaded);
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(`\n${texts.length} texts in ${seconds.toFixed(2)} s (${(texts.length / seconds).toFixed(1)} embeddings/s)\n`);
  const h = embeddings[0].length;
  const matrix = new Float32Array(texts.length * h);
  embeddings.forEach((e, i) => matrix.set(e, i * h));
  await writeOutputFile(out, encodeNpyFloat32(matrix, [texts.length, h]));
  process.stderr.write(`wrote ${out} [${texts.length}, ${h}]\n`);
}

async function embedWithEncoder(values: Record<string, unknown>, texts: string[], batchSize: number, onLoaded: () => void): Promise<Float32Array[]> {
  const role = values.role;
  const cli = await openEncoder(values, (values.adapter as string[] | undefined) ?? []);
  onLoaded();
  const prompt = role === undefined ? defaultPrompt(cli.files.sentence) : cli.encoder.prompt(role as 'query' | 'passage');
  if (prompt !== '') process.stderr.write(`prompt ${JSON.stringify(prompt)}${role === undefined ? ' (the folder\'s default prompt)' : ` (${role})`}\n`);
  const embeddings = await cli.encoder.embed(texts, { prompt, batchSize, onProgress: (done) => process.stderr.write(`\rembedded ${done}/${texts.length}`) });
  cli.engine.destroy();
  return embeddings;
}
