/**
 * `qlora-lab check-grads`: loss and LoRA gradients of one batch (dropout off) under PEFT's names
 * (the model's own module names), so a user can compare this GPU with PyTorch on their own model and data.
 * A decoder --model goes to decoder-check-grads.ts (texts, causal-LM loss).
 */
import { peftTensorKey } from '../../model/peft-files.ts';
import { writeSafetensors } from '../../model/safetensors.ts';
import type { HostTensor } from '../../model/state-dict.ts';
import { type Objective, encodeExamples, recordMicroBatch } from '../../train/objective.ts';
import { numberOption, parseOptions, required } from '../args.ts';
import { runDecoderCheckGrads } from '../decoder-check-grads.ts';
import { modelArgument, modelKind } from '../decoder.ts';
import { ENCODER_OPTIONS, ENCODER_USAGE, openEncoder } from '../encoder.ts';
import { checkOutputPath, writeOutputFile } from '../output.ts';
import { PAIR_OPTIONS, PAIR_USAGE, pairOptionsOf, readPairFile } from '../pair-file.ts';

export const summary = 'loss and LoRA gradients of one batch, as PEFT-named safetensors (compare with PyTorch)';

const USAGE = `usage: qlora-lab check-grads --model <dir|hub-id> --data pairs.(csv|tsv|jsonl) --adapter <init-dir> --out grads.safetensors [options]
${ENCODER_USAGE}
  --batch-size N      the first N rows of the file form the batch (default 8)
  --scale S           InfoNCE scale for (anchor, positive) data (default 20)
  --symmetric         symmetric InfoNCE
${PAIR_USAGE}
a decoder LLM as --model takes texts and --objective causal-lm instead: qlora-lab check-grads --model <decoder> --help`;

export async function run(args: string[]): Promise<void> {
  const model = modelArgument(args);
  if (model && (await modelKind(model)) === 'decoder') return runDecoderCheckGrads(args);
  const { values } = parseOptions(
    args,
    { ...ENCODER_OPTIONS, ...PAIR_OPTIONS, data: { type: 'string' }, adapter: { type: 'string' }, out: { type: 'string' }, 'batch-size': { type: 'string' }, scale: { type: 'string' }, symmetric: { type: 'boolean', default: false } },
    USAGE,
  );
  const data = await readPairFile(required(values, 'data', USAGE), pairOptionsOf(values));
  const adapterDir = required(values, 'adapter', USAGE);
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'file');
  const batchSize = numberOption(values, 'batch-size', 8, (n) => Number.isInteger(n) && n > 0);
  const objective: Objective =
    data.layout === 'labelled' ? { kind: 'cosine-pairs' } : { kind: 'infonce', scale: numberOption(values, 'scale', 20), symmetric: Boolean(values.symmetric) };
  const cli = await openEncoder(values, [adapterDir], true);
  const [adapter] = cli.adapters;
  const examples = data.examples.slice(0, batchSize);
  adapter.zeroGrads();
  const loss = recordMicroBatch(cli.encoder, objective, encodeExamples(cli.encoder, objective, examples), { train: true, hiddenDropout: 0, seed: 0 }, 1);
  const lossValue = (await cli.engine.readF32(loss))[0];
  const { grads, names } = adapter.parameters();
  const tensors = new Map<string, HostTensor>([['loss', { shape: [1], data: Float32Array.of(lossValue) }]]);
  for (let i = 0; i < names.length; i++) {
    tensors.set(peftTensorKey(cli.files.config, names[i]), { shape: [...grads[i].shape], data: await cli.engine.readF32(grads[i]) });
  }
  await writeOutputFile(out, writeSafetensors(tensors, { loss: String(lossValue), objective: objective.kind, batch: String(examples.length) }));
  process.stderr.write(`loss ${lossValue} over ${examples.length} examples; ${names.length} gradients written to ${out}\n`);
  cli.engine.destroy();
}
