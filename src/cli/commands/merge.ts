/** `qlora-lab merge`: fold adapters into the base and write a plain BERT checkpoint (no PEFT needed to load it). */
import { mergeAdapters } from '../../model/merge.ts';
import { writeBertCheckpoint } from '../../model/peft-files.ts';
import { parseOptions, required } from '../args.ts';
import { loraConfigOf, readAdapterDir } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { loadModelArgument } from '../model-source.ts';
import { checkOutputPath, writeOutputDir } from '../output.ts';

export const summary = 'merge adapters into the base model (W + scale·B·A) and write config.json + model.safetensors';

const USAGE = `usage: qlora-lab merge --model <dir|hub-id> --adapter <dir> [--adapter <dir> ...] --out <dir>
  adapters are merged in the order given (a domain adapter first, then a task adapter)`;

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(args, { model: { type: 'string' }, adapter: { type: 'string', multiple: true }, out: { type: 'string' } }, USAGE);
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const dirs = (values.adapter as string[] | undefined) ?? [];
  if (dirs.length === 0) throw new UsageError(`--adapter is required\n\n${USAGE}`);
  const files = await loadModelArgument(required(values, 'model', USAGE));
  const adapters = [];
  for (const dir of dirs) {
    const peft = await readAdapterDir(dir, files);
    adapters.push({ config: loraConfigOf(peft), tensors: peft.tensors, source: `adapter ${dir}` });
  }
  const checkpoint = writeBertCheckpoint(files.config, mergeAdapters(files.config, files.weights, adapters));
  await writeOutputDir(out, checkpoint);
  process.stderr.write(`merged ${dirs.length} adapter(s) into ${out} (config.json, model.safetensors; copy the tokenizer files from the base model)\n`);
}
