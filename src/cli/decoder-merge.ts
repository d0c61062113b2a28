/**
 * `qlora-lab merge` for decoders: adapters folded into the base on the host (decoder-merge.ts) and
 * written as a Hugging Face model folder that AutoModelForCausalLM (and --model here) loads without PEFT.
 */
import { openDecoderModel } from '../model/decoder-checkpoint.ts';
import { mergedDecoderFolder } from '../model/decoder-merge.ts';
import { loraConfigOf } from '../model/peft-files.ts';
import { parseOptions, required } from './args.ts';
import { readDecoderAdapterDir } from './decoder.ts';
import { UsageError } from './errors.ts';
import { modelSource } from './model-source.ts';
import { checkOutputPath, writeOutputDir } from './output.ts';

const USAGE = `usage: qlora-lab merge --model <decoder dir|hub-id> --adapter <dir> [--adapter <dir> ...] --out <dir>
  adapters are merged in the order given (a domain adapter first, then a task adapter)
writes config.json, model.safetensors (sharded with model.safetensors.index.json past 2 GiB, f32) and
the base's tokenizer files; a bitsandbytes 4-bit base is dequantised first, so the result is unquantised`;

export async function runDecoderMerge(args: string[]): Promise<void> {
  const { values } = parseOptions(args, { model: { type: 'string' }, adapter: { type: 'string', multiple: true }, out: { type: 'string' } }, USAGE);
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const dirs = (values.adapter as string[] | undefined) ?? [];
  if (dirs.length === 0) throw new UsageError(`--adapter is required\n\n${USAGE}`);
  const files = await openDecoderModel(modelSource(required(values, 'model', USAGE)));
  const adapters = [];
  for (const dir of dirs) {
    const peft = await readDecoderAdapterDir(dir, files.config);
    adapters.push({ config: loraConfigOf(peft), tensors: peft.tensors, source: `adapter ${dir}` });
  }
  await writeOutputDir(out, await mergedDecoderFolder(files, adapters));
  const dequantised = files.config.quantization ? '; the 4-bit base was dequantised, so the merged weights are unquantised f32' : '';
  process.stderr.write(`merged ${dirs.length} adapter(s) into ${out}: a Hugging Face ${files.config.architectures[0] ?? files.config.family} folder${dequantised}\n`);
}
