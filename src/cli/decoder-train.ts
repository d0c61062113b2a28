/**
 * `qlora-lab train` for decoders: LoRA on a decoder LLM with the causal-LM objective (mean next-token
 * loss) over a texts file or the training side of a notes folder (note-files.ts), or the statement
 * objective over labelled statements (the correct answer's tokens after the question `score` asks);
 * AdamW with linear warmup and decay (the encoder's schedule and defaults), each epoch a seeded
 * shuffle of the examples, each step planned into the memory budget (micro-batches, checkpointing,
 * storage of the embeddings and head: planDecoderTraining); writes the PEFT adapter folder (task_type CAUSAL_LM, the checkpoint's
 * module names) that PeftModel.from_pretrained and --adapter here load.
 */
import { type NoteDocument, chunkText } from '../data/notes.ts';
import { Rng } from '../data/rng.ts';
import { initDecoderLora } from '../model/decoder-lora-layout.ts';
import { type DecoderMemoryPlan, describeDecoderPlan, planDecoderTraining } from '../model/decoder-memory.ts';
import { writeDecoderPeftAdapter } from '../model/decoder-peft.ts';
import { allLinearTargets } from '../model/decoder-weights.ts';
import type { TrainingLoraConfig } from '../model/lora.ts';
import { peftConfigOf } from '../model/peft-files.ts';
import { CLI_TRAIN_DEFAULTS as D, DEFAULT_TRAIN_CONFIG } from '../train/defaults.ts';
import { encodeStatement } from '../model/statement-prompt.ts';
import { type DecoderStepReport, DecoderTrainer } from '../train/decoder-trainer.ts';
import { NonFiniteLossError } from '../train/trainer.ts';
import { readFile } from 'node:fs/promises';
import { numberOption, parseOptions, required } from './args.ts';
import { maxLengthFor, openDecoder } from './decoder.ts';
import { STATEMENT_PROMPT_OPTIONS, STATEMENT_PROMPT_USAGE, statementPromptOf } from './decoder-statements.ts';
import { baseOption } from './encoder.ts';
import { UsageError } from './errors.ts';
import { NOTES_OPTIONS, NOTES_USAGE, notesSplitOf } from './note-files.ts';
import { checkOutputPath, writeOutputDir } from './output.ts';
import { type LabelledStatement, parseStatementLines } from './statement-file.ts';
import { readTextLines } from './text-lines.ts';
import { LORA_TRAIN_OPTIONS } from './train-options.ts';

const BATCH_SIZE = 8;
const MAX_LENGTH = 512;
/** The encoder's `train` default: a discrete GPU's share, not a clinic iGPU's (the app plans into 1.5 GiB). */
const MEMORY_BUDGET_GIB = 4;

const USAGE = `usage: qlora-lab train --model <decoder dir|hub-id> (--data texts.txt | --notes <dir|file>) --objective causal-lm --out <adapter dir> [options]
       qlora-lab train --model <decoder dir|hub-id> --data statements.tsv --objective statements --out <adapter dir> [options]
  --objective causal-lm next-token loss over every token of each text
  --data FILE           one text per line (blank lines skipped)
${NOTES_USAGE}
                        train takes the training notes, cut into sequences of at most --max-length
                        tokens at paragraph, sentence or word boundaries
  --objective statements
                        the loss of the correct answer's tokens after the question about each
                        statement, as qlora-lab score asks it (the CTD study's objective)
  --data FILE           one statement per line: the statement, a tab, its label (true/false, yes/no, 1/0)
${STATEMENT_PROMPT_USAGE}
 both:
  --base nf4|f32        frozen base precision (default nf4: QLoRA)
  --r N                 LoRA rank (default ${D.r})
  --alpha A             LoRA alpha (default ${D.alpha})
  --lora-dropout P      dropout on the LoRA input (default ${D.loraDropout})
  --rslora              scale alpha/sqrt(r) instead of alpha/r
  --targets a,b         PEFT target modules in the checkpoint's names (default: every linear layer)
  --stack <dir>         a frozen adapter under the new one (repeatable, applied in order)
  --epochs N            passes over the texts or statements (default ${D.epochs})
  --batch-size N        texts or statements per optimizer step (default ${BATCH_SIZE})
  --max-length N        causal-lm: tokens per text incl. the template's special ones (default ${MAX_LENGTH},
                        at most the model's positions)
  --lr LR               peak learning rate (default ${D.learningRate})
  --warmup-ratio F      fraction of steps of linear warmup (default ${D.warmupRatio})
  --weight-decay W      AdamW weight decay (default ${D.weightDecay})
  --max-grad-norm N     global gradient-norm clip, 0 = off (default ${D.maxGradNorm})
  --seed N              seed for the adapter init, shuffling and dropout (default ${D.seed})
  --memory-budget GIB   GPU memory the memory plan fits a step into (default ${MEMORY_BUDGET_GIB}; WebGPU does not
                        report a GPU's memory)
  --micro-batch N       examples per forward and backward, the step's gradients accumulated over them
                        (default: the memory plan's choice)
  --checkpoint-every-layers N
                        recompute 1 decoder layer in N inside backward instead of keeping its
                        activations (the same gradients, less memory, a slower step); 0 = off
                        (default: the memory plan's choice)`;

const round = (x: number) => Number(x.toPrecision(6));

/** What an objective trains on: how many examples, and an optimizer step over some of them. */
interface TrainingExamples {
  count: number;
  /** "texts", "statements". */
  noun: string;
  /** Tokens of the longest sequence a step can hold: the memory plan's sequence length. */
  seq: number;
  /** One optimizer step over the examples `micro`, a micro-batch each. */
  step(trainer: DecoderTrainer, micro: number[][]): Promise<DecoderStepReport>;
}

/** Options only one objective reads, refused for the other. */
const CAUSAL_LM_ONLY = ['max-length', ...Object.keys(NOTES_OPTIONS)];
const STATEMENTS_ONLY = Object.keys(STATEMENT_PROMPT_OPTIONS);

async function readStatementData(path: string): Promise<LabelledStatement[]> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new UsageError(`cannot read --data ${path}: ${e.message}`);
  });
  return parseStatementLines(text, path);
}

/** The training notes cut into sequences of at most maxLength tokens, said on stderr with what was held out. */
function notesTexts(notes: { train: NoteDocument[]; heldOut: NoteDocument[] }, maxLength: number, count: (text: string) => number): string[] {
  let texts: string[];
  try {
    texts = notes.train.flatMap((doc) => chunkText(doc.text, maxLength, count));
  } catch (e) {
    throw new UsageError(`--notes: ${(e as Error).message}`);
  }
  const held = notes.heldOut.map((d) => d.name);
  process.stderr.write(`notes: ${notes.train.length} documents in ${texts.length} sequences of at most ${maxLength} tokens; ${held.length} held out${held.length ? ` (${held.join(', ')})` : ''}\n`);
  return texts;
}

export async function runDecoderTrain(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    { ...LORA_TRAIN_OPTIONS, ...NOTES_OPTIONS, ...STATEMENT_PROMPT_OPTIONS, model: { type: 'string' }, base: { type: 'string', default: 'nf4' }, objective: { type: 'string' }, targets: { type: 'string' }, 'max-length': { type: 'string' }, 'checkpoint-every-layers': { type: 'string' }, 'micro-batch': { type: 'string' }, 'memory-budget': { type: 'string' } },
    USAGE,
  );
  const objective = required(values, 'objective', USAGE);
  if (objective !== 'causal-lm' && objective !== 'statements') throw new UsageError(`--objective ${objective} is not one for decoders: give causal-lm or statements`);
  const statementsObjective = objective === 'statements';
  const given = values as Record<string, unknown>;
  const stray = (statementsObjective ? CAUSAL_LM_ONLY : STATEMENTS_ONLY).find((name) => given[name] !== undefined);
  if (stray) throw new UsageError(`--${stray} does not apply to --objective ${objective}`);
  const prompt = statementsObjective ? statementPromptOf(values) : null;
  const notes = statementsObjective ? null : await notesSplitOf(values, 'data');
  const statements = statementsObjective ? await readStatementData(required(values, 'data', USAGE)) : null;
  // Notes are cut into sequences, and statements put as questions, by the model's tokenizer once it is read.
  let texts = notes || statements ? [] : await readTextLines('data', required(values, 'data', USAGE));
  let examples: TrainingExamples | null = null;
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const positive = (n: number) => n > 0 && Number.isFinite(n);
  const count = (n: number) => Number.isInteger(n) && n > 0;
  const r = numberOption(values, 'r', D.r, count);
  const lora: Omit<TrainingLoraConfig, 'targetModules'> = { r, alpha: numberOption(values, 'alpha', D.alpha, positive), dropout: numberOption(values, 'lora-dropout', D.loraDropout, (p) => p >= 0 && p < 1), rslora: Boolean(values.rslora) };
  const epochs = numberOption(values, 'epochs', D.epochs, count);
  const batchSize = numberOption(values, 'batch-size', BATCH_SIZE, count);
  const seed = numberOption(values, 'seed', D.seed, Number.isInteger);
  const maxGradNorm = numberOption(values, 'max-grad-norm', D.maxGradNorm, (n) => n >= 0 && Number.isFinite(n));
  const learningRate = numberOption(values, 'lr', D.learningRate, positive);
  const warmupRatio = numberOption(values, 'warmup-ratio', D.warmupRatio, (f) => f >= 0 && f <= 1);
  const settings = {
    weightDecay: numberOption(values, 'weight-decay', D.weightDecay, (w) => w >= 0 && Number.isFinite(w)),
    beta1: DEFAULT_TRAIN_CONFIG.beta1,
    beta2: DEFAULT_TRAIN_CONFIG.beta2,
    eps: DEFAULT_TRAIN_CONFIG.eps,
    maxGradNorm: maxGradNorm === 0 ? null : maxGradNorm,
    seed,
  };
  const wholeAtLeast = (min: number) => (n: number) => Number.isInteger(n) && n >= min;
  const budgetBytes = numberOption(values, 'memory-budget', MEMORY_BUDGET_GIB, positive) * 2 ** 30;
  const fixedMicroBatch = values['micro-batch'] === undefined ? undefined : numberOption(values, 'micro-batch', 0, wholeAtLeast(1));
  const fixedCheckpointEvery = values['checkpoint-every-layers'] === undefined ? undefined : numberOption(values, 'checkpoint-every-layers', 0, wholeAtLeast(0));
  const targetsArg = values.targets as string | undefined;
  let targetModules: string[] = [];
  let plan: DecoderMemoryPlan | undefined;
  const cli = await openDecoder(values, (values.stack as string[] | undefined) ?? [], {
    check: (files) => {
      const { tokenizer } = files;
      if (statements && prompt) {
        if (prompt.chat && !tokenizer.hasChatTemplate) throw new UsageError(`--chat: ${String(values.model)} has no chat_template in tokenizer_config.json`);
        const encoded = statements.map((row, i) => encodeStatement(tokenizer, prompt, row.statement, i));
        examples = {
          count: statements.length,
          noun: 'statements',
          seq: Math.max(...encoded.map((e) => e.prompt.length + Math.max(e.true.length, e.false.length))),
          step: (trainer, micro) => trainer.statementStep(micro.map((indices) => ({ statements: indices.map((i) => encoded[i]), labels: indices.map((i) => statements[i].label) })), tokenizer.padId),
        };
        return;
      }
      const maxLength = maxLengthFor(files.config, values, MAX_LENGTH);
      if (notes) texts = notesTexts(notes, maxLength, (text) => tokenizer.encode(text).length);
      examples = { count: texts.length, noun: 'texts', seq: maxLength, step: (trainer, micro) => trainer.trainStep(micro.map((indices) => tokenizer.encodeBatch(indices.map((i) => texts[i]), maxLength))) };
    },
    newAdapter: (config) => {
      const targets = targetsArg ? targetsArg.split(',').map((t) => t.trim()).filter(Boolean) : allLinearTargets(config);
      let init: ReturnType<typeof initDecoderLora>;
      try {
        init = initDecoderLora(config, r, targets, seed);
      } catch (e) {
        throw new UsageError(`--targets: ${(e as Error).message}`);
      }
      targetModules = init.targetModules as string[];
      return { lora: { ...lora, targetModules }, tensors: init.tensors };
    },
    // Planned before the base is built: the plan's storage of the embeddings and head is the base's.
    baseParts: (modelFiles, engine) => {
      plan = planDecoderTraining({
        config: modelFiles.config,
        lora: { ...lora, targetModules },
        shape: { sequences: batchSize, seq: (examples as TrainingExamples | null)?.seq ?? MAX_LENGTH },
        base: { quantization: baseOption(values) },
        budgetBytes,
        maxBufferBytes: engine.limits.maxStorageBufferBindingSize,
        storages: ['f32', 'f16'],
        microBatch: fixedMicroBatch,
        checkpointEvery: fixedCheckpointEvery,
      });
      return plan.baseParts;
    },
  });
  const { engine, files, model } = cli;
  const data = examples as TrainingExamples | null;
  if (!data || !plan) throw new Error('the training examples and memory plan were not prepared');
  const { microBatch } = plan;
  const stepsPerEpoch = Math.ceil(data.count / batchSize);
  const totalSteps = epochs * stepsPerEpoch;
  const optimizer = { ...settings, learningRate, warmupSteps: Math.round(totalSteps * warmupRatio), totalSteps };
  const trainer = new DecoderTrainer(model, { ...optimizer, checkpointEvery: plan.checkpointEvery });
  const rng = new Rng(seed ^ 0x5bd1e995);
  process.stderr.write(`training LoRA r${r} α${lora.alpha} on ${targetsArg ?? allLinearTargets(files.config).join(',')}: ${data.count} ${data.noun}, ${totalSteps} steps of ${batchSize}\n`);
  process.stderr.write(`${describeDecoderPlan(plan, budgetBytes)}\n`);
  let stopped: string | null = null;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = rng.shuffle(Array.from({ length: data.count }, (_, i) => i));
      for (let s = 0; s < stepsPerEpoch; s++) {
        const step = order.slice(s * batchSize, (s + 1) * batchSize);
        const micro: number[][] = [];
        for (let m = 0; m < step.length; m += microBatch) micro.push(step.slice(m, m + microBatch));
        const report = await data.step(trainer, micro);
        process.stderr.write(`${JSON.stringify({ step: report.step, of: totalSteps, epoch: epoch + 1, loss: round(report.loss), lr: report.learningRate, grad_norm: round(report.gradNorm), tokens: report.tokens })}\n`);
      }
    }
  } catch (e) {
    if (!(e instanceof NonFiniteLossError)) throw e;
    stopped = e.message;
  }
  const adapter = cli.adapters[cli.adapters.length - 1];
  const config = peftConfigOf({ ...lora, targetModules }, { id: String(values.model) });
  await writeOutputDir(out, writeDecoderPeftAdapter({ config, tensors: await adapter.download() }, files.config));
  process.stderr.write(`${stopped ? `${stopped}\nthe adapter of the last good step` : 'adapter'} written to ${out} (PEFT, task_type CAUSAL_LM)\n`);
  trainer.release();
  model.destroy();
  engine.destroy();
  if (stopped) throw new UsageError(stopped);
}
