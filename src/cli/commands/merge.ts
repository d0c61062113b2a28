/**
 * `qlora-lab merge`: fold adapters into the base and write a complete sentence-transformers folder
 * (no PEFT needed to load it): weights with the pooler, config, tokenizer and the pooling modules.
 */
import { mergeAdapters } from '../../model/merge.ts';
import { type SentenceSettings, sentenceTransformersFolder } from '../../model/sentence-folder.ts';
import { parseOptions, required } from '../args.ts';
import { loraConfigOf, maxLengthOption, poolingOption, readAdapterDir, readAdapterSettingsFile } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { loadModelArgument } from '../model-source.ts';
import { checkOutputPath, writeOutputDir } from '../output.ts';

export const summary = 'merge adapters into the base model (W + scale·B·A) and write a sentence-transformers model folder';

const USAGE = `usage: qlora-lab merge --model <dir|hub-id> --adapter <dir> [--adapter <dir> ...] --out <dir> [options]
  adapters are merged in the order given (a domain adapter first, then a task adapter)
  --pooling mean|cls      sentence pooling          } default: what the last adapter was trained
  --normalize | --no-normalize  L2-normalise or not } with (its qlora_lab.json), else mean,
  --max-length N          tokens per text           } normalised, 128
writes config.json, model.safetensors, the base's tokenizer files, modules.json, 1_Pooling/config.json,
sentence_bert_config.json and config_sentence_transformers.json: SentenceTransformer(<out>) loads it`;

const DEFAULT_SENTENCE: SentenceSettings = { pooling: 'mean', normalize: true, maxLength: 128, prompts: {} };

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    {
      model: { type: 'string' },
      adapter: { type: 'string', multiple: true },
      out: { type: 'string' },
      pooling: { type: 'string' },
      normalize: { type: 'boolean' },
      'no-normalize': { type: 'boolean' },
      'max-length': { type: 'string' },
    },
    USAGE,
  );
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const dirs = (values.adapter as string[] | undefined) ?? [];
  if (dirs.length === 0) throw new UsageError(`--adapter is required\n\n${USAGE}`);
  if (values.normalize && values['no-normalize']) throw new UsageError('give --normalize or --no-normalize, not both');
  const trained = (await readAdapterSettingsFile(dirs[dirs.length - 1]))?.sentence ?? DEFAULT_SENTENCE;
  const sentence: SentenceSettings = {
    pooling: values.pooling === undefined ? trained.pooling : poolingOption(values.pooling),
    normalize: values.normalize ? true : values['no-normalize'] ? false : trained.normalize,
    maxLength: values['max-length'] === undefined ? trained.maxLength : maxLengthOption(values['max-length']),
    prompts: trained.prompts,
  };
  const files = await loadModelArgument(required(values, 'model', USAGE));
  const adapters = [];
  for (const dir of dirs) {
    const peft = await readAdapterDir(dir, files.config);
    adapters.push({ config: loraConfigOf(peft), tensors: peft.tensors, source: `adapter ${dir}` });
  }
  const weights = mergeAdapters(files.config, files.weights, adapters);
  await writeOutputDir(out, sentenceTransformersFolder(files.config, weights, files.tokenizerFiles, sentence));
  process.stderr.write(
    `merged ${dirs.length} adapter(s) into ${out}: a sentence-transformers folder (${sentence.pooling} pooling${sentence.normalize ? ', normalised' : ''}, max length ${sentence.maxLength})\n`,
  );
}
