/**
 * `qlora-lab merge`: fold adapters into the base and write a complete sentence-transformers folder
 * (no PEFT needed to load it): weights with the pooler, config, tokenizer and the pooling modules.
 * A decoder --model goes to decoder-merge.ts (a Hugging Face causal-LM folder).
 */
import { POOLING_MODES } from '../../engine/ops/pooling-modes.ts';
import { loraConfigOf } from '../../model/peft-files.ts';
import type { SentenceSettings } from '../../model/sentence-config.ts';
import { mergedModelFolder } from '../../model/sentence-folder.ts';
import { parseOptions, required } from '../args.ts';
import { runDecoderMerge } from '../decoder-merge.ts';
import { modelArgument, modelKind } from '../decoder.ts';
import { SENTENCE_OPTIONS, cliSentenceSettings, encoderOverrides, readAdapterDir, readAdapterSettingsFile } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { loadModelArgument } from '../model-source.ts';
import { checkOutputPath, writeOutputDir } from '../output.ts';

export const summary = 'merge adapters into the base model (W + scale·B·A) and write a sentence-transformers model folder';

const USAGE = `usage: qlora-lab merge --model <dir|hub-id> --adapter <dir> [--adapter <dir> ...] --out <dir> [options]
  adapters are merged in the order given (a domain adapter first, then a task adapter)
  default for the next five: what the last adapter was trained with (its qlora_lab.json), else the
  base folder's sentence-transformers files, else mean, normalised, 128, no prompts
  --pooling ${POOLING_MODES.join('|')}
  --normalize | --no-normalize        L2-normalise or not
  --max-length N                      tokens per text
  --prompt-query TEXT                 prepended to queries
  --prompt-passage TEXT               prepended to passages
writes config.json, model.safetensors, the base's tokenizer files, modules.json, 1_Pooling/config.json,
sentence_bert_config.json and config_sentence_transformers.json: SentenceTransformer(<out>) loads it
a decoder LLM as --model gives a Hugging Face causal-LM folder instead: qlora-lab merge --model <decoder> --help`;

export async function run(args: string[]): Promise<void> {
  const model = modelArgument(args);
  if (model && (await modelKind(model)) === 'decoder') return runDecoderMerge(args);
  const { values } = parseOptions(
    args,
    {
      model: { type: 'string' },
      adapter: { type: 'string', multiple: true },
      out: { type: 'string' },
      ...SENTENCE_OPTIONS,
    },
    USAGE,
  );
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const dirs = (values.adapter as string[] | undefined) ?? [];
  if (dirs.length === 0) throw new UsageError(`--adapter is required\n\n${USAGE}`);
  const overrides = encoderOverrides(values);
  const trained = (await readAdapterSettingsFile(dirs[dirs.length - 1]))?.sentence;
  const files = await loadModelArgument(required(values, 'model', USAGE));
  const sentence: SentenceSettings = trained
    ? { ...trained, ...overrides, prompts: { ...trained.prompts, ...overrides.prompts } }
    : cliSentenceSettings(files.sentence, overrides).settings;
  const adapters = [];
  for (const dir of dirs) {
    const peft = await readAdapterDir(dir, files);
    adapters.push({ config: loraConfigOf(peft), tensors: peft.tensors, source: `adapter ${dir}` });
  }
  await writeOutputDir(out, mergedModelFolder(files, adapters, sentence));
  process.stderr.write(
    `merged ${dirs.length} adapter(s) into ${out}: a sentence-transformers folder (${sentence.pooling} pooling${sentence.normalize ? ', normalised' : ''}, max length ${sentence.maxLength})\n`,
  );
}
