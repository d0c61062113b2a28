/**
 * `qlora-lab check-grads` for decoders: the mean next-token loss over every predicted token of one
 * batch of texts (one per line; the first --batch-size), and every LoRA gradient of the last
 * --adapter under its PEFT key (Phi-3's fused modules as PEFT has them), dropout off, so a user can
 * compare this GPU with PyTorch on their own model and texts.
 */
import type { DecoderModelFiles } from '../model/decoder-checkpoint.ts';
import type { DecoderBatch } from '../model/decoder.ts';
import { decoderPeftGradients } from '../model/decoder-peft.ts';
import { writeSafetensors } from '../model/safetensors.ts';
import type { HostTensor } from '../model/state-dict.ts';
import { nextTokenTargets } from '../train/decoder-trainer.ts';
import { numberOption, parseOptions, required } from './args.ts';
import { maxLengthFor, openDecoder } from './decoder.ts';
import { UsageError } from './errors.ts';
import { checkOutputPath, writeOutputFile } from './output.ts';
import { readTextLines } from './text-lines.ts';

const USAGE = `usage: qlora-lab check-grads --model <decoder dir|hub-id> --data texts.txt --objective causal-lm --adapter <init-dir> --out grads.safetensors [options]
  --data FILE         one text per line (blank lines skipped)
  --objective causal-lm   next-token loss (the only objective for decoders here)
  --adapter DIR       PEFT adapter folder; repeat to stack (the last one gets the gradients)
  --base nf4|f32      frozen base precision (default nf4)
  --max-length N      tokens per text incl. the template's special ones (default 512, at most the model's positions)
  --batch-size N      the first N texts form the batch (default 8)`;

const DEFAULT_MAX_LENGTH = 512;

interface CausalLmBatch {
  batch: DecoderBatch;
  targets: Int32Array;
  /** Next tokens predicted (the loss is their mean). */
  tokens: number;
}

function causalLmBatch(files: DecoderModelFiles, texts: string[], maxLength: number): CausalLmBatch {
  const batch = files.tokenizer.encodeBatch(texts, maxLength);
  try {
    return { batch, ...nextTokenTargets(batch) };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export async function runDecoderCheckGrads(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    { model: { type: 'string' }, base: { type: 'string', default: 'nf4' }, data: { type: 'string' }, objective: { type: 'string' }, adapter: { type: 'string', multiple: true }, out: { type: 'string' }, 'max-length': { type: 'string' }, 'batch-size': { type: 'string' } },
    USAGE,
  );
  const objective = required(values, 'objective', USAGE);
  if (objective !== 'causal-lm') throw new UsageError(`--objective ${objective} is not one for decoders: give causal-lm`);
  const texts = await readTextLines('data', required(values, 'data', USAGE));
  const dirs = (values.adapter as string[] | undefined) ?? [];
  if (dirs.length === 0) throw new UsageError(`--adapter is required\n\n${USAGE}`);
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'file');
  const batchSize = numberOption(values, 'batch-size', 8, (n) => Number.isInteger(n) && n > 0);
  // The batch is tokenised and checked before the GPU starts.
  let prepared: CausalLmBatch | undefined;
  const cli = await openDecoder(values, dirs, {
    lastTrainable: true,
    loraDropout: false,
    check: (files) => {
      prepared = causalLmBatch(files, texts.slice(0, batchSize), maxLengthFor(files.config, values, DEFAULT_MAX_LENGTH));
    },
  });
  const { batch, targets, tokens: predicted } = prepared as CausalLmBatch;
  const { engine, files, model } = cli;
  const adapter = cli.adapters[cli.adapters.length - 1];
  adapter.zeroGrads();
  const result = model.forward(batch, { train: true, seed: 0 });
  const loss = model.loss(result, targets);
  model.backwardLoss(result, loss);
  const lossValue = (await engine.readF32(loss.loss))[0];
  const grads = new Map<string, HostTensor>();
  for (const [name, g] of adapter.grads) {
    grads.set(`${name}.lora_A`, { shape: [...g.da.shape], data: await engine.readF32(g.da) });
    grads.set(`${name}.lora_B`, { shape: [...g.db.shape], data: await engine.readF32(g.db) });
  }
  model.releaseLoss(loss);
  model.releaseForward(result);
  const tensors = new Map<string, HostTensor>([['loss', { shape: [1], data: Float32Array.of(lossValue) }], ...decoderPeftGradients(files.config, grads)]);
  await writeOutputFile(out, writeSafetensors(tensors, { loss: String(lossValue), objective, batch: String(batch.batch), tokens: String(predicted) }));
  process.stderr.write(`loss ${lossValue} over ${predicted} predicted tokens of ${batch.batch} texts; ${tensors.size - 1} gradients written to ${out}\n`);
  model.destroy();
  engine.destroy();
}
