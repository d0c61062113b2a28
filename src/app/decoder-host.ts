/**
 * The decoder LLM the engine worker holds beside the encoder being trained: its files and base on
 * the GPU, an adapter to compare it with (stacked on the same base), and the answers side by side —
 * one prompt generated from the base and from the adapted model with the same settings and seed,
 * token by token in turn so both stream together, until each ends or Stop ends both. Every KV cache
 * is released when an answer ends, and at Stop. It also trains an adapter on CTD statements
 * (statement-run.ts), its step planned into the memory budget, which then becomes the adapted side
 * and the adapter to export, alone or merged into the base; and the clinical flow's domain adapter
 * on the user's notes and task adapter over it (clinical-run.ts), kept for export. No DOM: it runs
 * in the worker.
 */
import type { Engine } from '../engine/engine.ts';
import type { StoragePrecision } from '../engine/stored.ts';
import { describeDecoderPlan } from '../model/decoder-memory.ts';
import { formatBytes } from '../model/memory.ts';
import { type DecoderModelFiles, openDecoderModel } from '../model/decoder-checkpoint.ts';
import { generateTokens, stopTokensOf } from '../model/decoder-generate.ts';
import type { LabelledStatement } from '../data/labelled-statements.ts';
import type { NoteDocument } from '../data/notes.ts';
import type { CtdStatement } from '../data/statements.ts';
import { createDecoderAdapter } from '../model/decoder-lora.ts';
import { DEFAULT_SHARD_BYTES, mergedDecoderFolder } from '../model/decoder-merge.ts';
import { readDecoderPeftAdapter, writeDecoderPeftAdapter } from '../model/decoder-peft.ts';
import { decoderGlobalShapes, decoderLayerShapes } from '../model/decoder-weights.ts';
import { DecoderModel } from '../model/decoder.ts';
import type { ModelFileSource } from '../model/file-source.ts';
import type { GpuLoraModules } from '../model/lora.ts';
import { type PeftAdapter, type PeftAdapterFiles, describePeftAdapter, loraConfigOf } from '../model/peft-files.ts';
import { type ClinicalHooks, runDomainAdapter, runTaskAdapter } from './clinical-run.ts';
import type {
  Answer,
  AnswerEnd,
  AnswerPane,
  AnswersRequest,
  AnswersResult,
  ClinicalSettings,
  DecoderSummary,
  DomainRunSummary,
  SessionListener,
  StatementPlan,
  StatementRunSummary,
  TaskRunSummary,
} from './protocol.ts';
import { mergeProblem } from './merge-limit.ts';
import { type StatementRunSettings, checkStatementRunSettings, encodeStudyStatements, planStatementStep, runStatementStudy } from './statement-run.ts';

interface Stream {
  pane: AnswerPane;
  adapters: GpuLoraModules[];
  tokens: AsyncGenerator<number, void, undefined>;
  ids: number[];
  end: AnswerEnd | null;
}

export class DecoderHost {
  private adapter: GpuLoraModules | null = null;
  /** The adapter the last CTD statements run trained, for export. */
  private trained: PeftAdapter | null = null;
  /** The clinical flow's adapters: the domain adapter on the notes, the task adapter trained over it. */
  private readonly clinical: { domain: PeftAdapter | null; task: PeftAdapter | null } = { domain: null, task: null };
  private stopRequested = false;
  private generating = false;
  private training = false;

  private constructor(
    readonly label: string,
    readonly files: DecoderModelFiles,
    private base: { model: DecoderModel; baseParts: StoragePrecision; bytes: number },
    private readonly commit: string | undefined,
  ) {}

  /** Read the decoder folder from `source` and put its base on the GPU (NF4 or f32; a bitsandbytes 4-bit checkpoint as it is). */
  static async open(engine: Engine, source: ModelFileSource, label: string, quantization: 'nf4' | 'f32'): Promise<DecoderHost> {
    const files = await openDecoderModel(source);
    return new DecoderHost(label, files, await DecoderHost.upload(engine, files, quantization, 'f32'), await source.commit?.());
  }

  /** The base on the GPU, with the bytes it holds there (for the measured peak of a statements run). */
  private static async upload(engine: Engine, files: DecoderModelFiles, quantization: 'nf4' | 'f32', baseParts: StoragePrecision) {
    const before = engine.liveBytes;
    const model = await DecoderModel.create(engine, files.config, files.weights, { quantization, baseParts });
    return { model, baseParts, bytes: engine.liveBytes - before };
  }

  get model(): DecoderModel {
    return this.base.model;
  }

  /**
   * The memory plan of a statements run with `settings` on `data` under `budgetBytes` (planStatementStep),
   * in one line, and when it does not fit, what would.
   */
  planStatements(data: { train: CtdStatement[] }, settings: Pick<StatementRunSettings, 'batchSize'>, budgetBytes: number): StatementPlan {
    const train = encodeStudyStatements(this.files, data.train, 'training', this.label);
    const maxBufferBytes = this.model.engine.maxBindingBytes;
    const plan = planStatementStep(this.files, train, settings.batchSize, { quantization: this.model.quantization, budgetBytes, maxBufferBytes });
    const { microBatch, microBatches, checkpointEvery, baseParts, estimate, fits } = plan;
    // Micro-batches of one statement are among the layouts tried, so fewer statements per step cannot help; a larger budget can.
    const advice = fits
      ? null
      : estimate.largestActivationBuffer > maxBufferBytes
        ? `One of its buffers (${formatBytes(estimate.largestActivationBuffer)}) is over this device's largest binding (${formatBytes(maxBufferBytes)}): ${this.label} cannot train here; choose a smaller decoder.`
        : `The least it can take is ${formatBytes(estimate.total)}, laid out as above: raise the memory budget (Train, Advanced settings, GPU memory) to at least that, or choose a smaller decoder.`;
    return { description: describeDecoderPlan(plan, budgetBytes), fits, estimate, layout: { microBatch, microBatches, checkpointEvery, baseParts }, advice };
  }

  summary(): DecoderSummary {
    const c = this.files.config;
    let parameters = 0;
    const count = (shapes: Map<string, number[]>) => {
      for (const shape of shapes.values()) parameters += shape.reduce((a, b) => a * b, 1);
    };
    count(decoderGlobalShapes(c));
    for (let layer = 0; layer < c.numHiddenLayers; layer++) count(decoderLayerShapes(c, layer));
    return {
      label: this.label,
      family: c.family,
      layers: c.numHiddenLayers,
      hidden: c.hiddenSize,
      heads: c.numAttentionHeads,
      kvHeads: c.numKeyValueHeads,
      intermediate: c.intermediateSize,
      vocab: c.vocabSize,
      maxPositions: c.maxSequenceLength,
      parameters,
      quantization: this.model.quantization,
      chatTemplate: this.files.tokenizer.hasChatTemplate,
      ...(this.commit ? { commit: this.commit } : {}),
    };
  }

  /** The adapter the adapted answers use (a PEFT CAUSAL_LM folder's two files, checked against this decoder), or none. Returns its description. */
  setAdapter(files: PeftAdapterFiles | null, name: string): string | null {
    this.assertUsable('change the adapter');
    const peft = files ? readDecoderPeftAdapter(files, this.files.config) : null;
    this.useAdapter(peft);
    return peft ? `${name}: ${describePeftAdapter(peft)}` : null;
  }

  /** `peft` (or none) as the adapted answers' adapter, replacing the one before. */
  private useAdapter(peft: PeftAdapter | null): void {
    this.adapter?.release();
    this.adapter = null;
    if (!peft) return;
    // Inference only: LoRA dropout never applies, whatever the adapter's config says.
    this.adapter = createDecoderAdapter(this.model.engine, this.files.config, { ...loraConfigOf(peft), dropout: 0 }, peft.tensors, false);
  }

  /**
   * Train an adapter on the CTD statements with the study's preset, sending each step's loss and the
   * scoring's progress; Stop ends training early (what was trained is still evaluated). The adapter
   * becomes the adapted answers' and the one exportAdapterZip writes.
   */
  async trainStatements(
    data: { train: CtdStatement[]; test: CtdStatement[] },
    split: StatementRunSummary['split'],
    settings: StatementRunSettings,
    budgetBytes: number,
    listener: SessionListener,
  ): Promise<Omit<StatementRunSummary, 'fingerprint'>> {
    return this.whileTraining('train on statements', async () => {
      checkStatementRunSettings(settings);
      const plan = this.planStatements(data, settings, budgetBytes);
      if (!plan.fits) throw new Error(`This run does not fit the memory budget: ${plan.description}. ${plan.advice}`);
      // The plan may keep the embeddings and head in f16 to fit: the base is uploaded again so.
      if (plan.layout.baseParts !== this.base.baseParts) {
        const { engine, quantization } = this.model;
        this.model.destroy();
        this.base = await DecoderHost.upload(engine, this.files, quantization, plan.layout.baseParts);
      }
      const outcome = await runStatementStudy(
        this.model,
        this.files,
        this.label,
        data,
        settings,
        {
          onStep: (step, totalSteps, loss, stepBytes) => listener({ type: 'statement-step', step, totalSteps, loss, peakBytes: this.base.bytes + stepBytes }),
          onScored: (model, done, total) => listener({ type: 'statement-scoring', model, done, total }),
          onEmbedded: (done, total) => listener({ type: 'statement-embedding', done, total }),
          stopRequested: () => this.stopRequested,
        },
        plan.layout,
      );
      this.trained = outcome.adapter;
      this.useAdapter(outcome.adapter);
      const { losses, stopped, error, statements, result, maps } = outcome;
      const diseases = data.test.map((s) => s.disease);
      return { split, statements, losses, totalSteps: settings.steps, stopped, error, result, maps, diseases, adapter: `the adapter trained on CTD statements: ${describePeftAdapter(outcome.adapter)}` };
    });
  }

  /**
   * The clinical flow's domain adapter: next-token loss on the training notes, the held-out notes'
   * perplexity before and after; Stop ends training early. A new domain adapter drops the task
   * adapter trained over the one before.
   */
  async trainDomain(documents: NoteDocument[], settings: ClinicalSettings, listener: SessionListener): Promise<DomainRunSummary> {
    return this.whileTraining('train a domain adapter', async () => {
      const outcome = await runDomainAdapter(this.model, this.files, this.label, documents, settings, this.clinicalHooks('domain', listener));
      this.clinical.domain = outcome.adapter;
      this.clinical.task = null;
      return { ...outcome, adapter: `the domain adapter trained on ${outcome.documents.train.length} notes: ${describePeftAdapter(outcome.adapter)}` };
    });
  }

  /** The clinical flow's task adapter on labelled statements over the frozen domain adapter, compared without and with the domain adapter under it. */
  async trainTask(rows: LabelledStatement[], settings: ClinicalSettings, listener: SessionListener): Promise<TaskRunSummary> {
    const domain = this.clinical.domain;
    if (!domain) throw new Error('Train the domain adapter on your notes first: the task adapter trains over it.');
    return this.whileTraining('train a task adapter', async () => {
      const outcome = await runTaskAdapter(this.model, this.files, this.label, domain, rows, settings, this.clinicalHooks('task', listener));
      this.clinical.task = outcome.adapter;
      return { ...outcome, adapter: `the task adapter trained over the domain adapter: ${describePeftAdapter(outcome.adapter)}` };
    });
  }

  /** The clinical flow's domain or task adapter, as PEFT's CAUSAL_LM folder. */
  clinicalAdapterFiles(which: 'domain' | 'task'): PeftAdapterFiles {
    const adapter = this.clinical[which];
    if (!adapter) throw new Error(`No ${which} adapter has been trained on this decoder yet.`);
    return writeDecoderPeftAdapter(adapter, this.files.config);
  }

  private clinicalHooks(adapter: 'domain' | 'task', listener: SessionListener): ClinicalHooks {
    return {
      onStep: (step, totalSteps, loss) => listener({ type: 'clinical-step', adapter, step, totalSteps, loss }),
      onProgress: (stage, done, total) => listener({ type: 'clinical-progress', stage, done, total }),
      stopRequested: () => this.stopRequested,
    };
  }

  /** Run `work` as the decoder's training (Stop applies to it; answers and other runs wait). */
  private async whileTraining<T>(what: string, work: () => Promise<T>): Promise<T> {
    this.assertUsable(what);
    this.training = true;
    this.stopRequested = false;
    try {
      return await work();
    } finally {
      this.training = false;
    }
  }

  /** The adapter the last statements run trained, as PEFT's CAUSAL_LM folder (adapter_config.json, adapter_model.safetensors). */
  trainedAdapterFiles(): PeftAdapterFiles {
    return writeDecoderPeftAdapter(this.requireTrained(), this.files.config);
  }

  private requireTrained(): PeftAdapter {
    if (!this.trained) throw new Error('No adapter has been trained on this decoder yet: train it on CTD statements first.');
    return this.trained;
  }

  /**
   * The base with the last statements run's adapter folded in (decoder-merge.ts, as `qlora-lab
   * merge`): a Hugging Face folder of config.json, float32 safetensors and the tokenizer files.
   * A model too large to merge in this tab is refused first (merge-limit.ts).
   */
  async mergedModelFiles(deviceMemoryGiB: number | undefined, onProgress: (done: number, total: number) => void): Promise<Record<string, string | Uint8Array>> {
    const trained = this.requireTrained();
    const problem = mergeProblem(this.label, this.summary().parameters, deviceMemoryGiB);
    if (problem) throw new Error(problem);
    const adapter = { config: loraConfigOf(trained), tensors: trained.tensors, source: 'the adapter trained on CTD statements' };
    return mergedDecoderFolder(this.files, [adapter], DEFAULT_SHARD_BYTES, onProgress);
  }

  /**
   * Generate the answers, sending each pane's text so far after every token. The panes take turns,
   * one token each, on the one base (its adapter stack set for the pane's turn).
   */
  async answers(request: AnswersRequest, listener: SessionListener): Promise<AnswersResult> {
    this.assertUsable('start other answers');
    const { tokenizer, config } = this.files;
    if (request.prompt.trim() === '') throw new Error('Write a prompt first.');
    if (request.chat && !tokenizer.hasChatTemplate) throw new Error(`${this.label} has no chat template (tokenizer_config.json's chat_template): turn "as a chat message" off to continue the text as it is.`);
    const promptIds = request.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: request.prompt }], { addGenerationPrompt: true }).ids : tokenizer.encode(request.prompt);
    if (promptIds.length >= config.maxSequenceLength) throw new Error(`The prompt is ${promptIds.length} tokens; ${this.label} has ${config.maxSequenceLength} positions, so it leaves no room for an answer.`);
    const stops = stopTokensOf(config, tokenizer);
    const options = { maxNewTokens: request.maxNewTokens, temperature: request.temperature, topP: request.topP, seed: request.seed, stopTokenIds: stops };
    const panes: [AnswerPane, GpuLoraModules[]][] = [['base', []]];
    if (this.adapter) panes.push(['adapted', [this.adapter]]);
    const streams: Stream[] = panes.map(([pane, adapters]) => ({ pane, adapters, tokens: generateTokens(this.model, promptIds, options), ids: [], end: null }));

    this.generating = true;
    this.stopRequested = false;
    try {
      while (streams.some((s) => s.end === null)) {
        for (const s of streams.filter((x) => x.end === null)) {
          if (this.stopRequested) {
            s.end = 'stopped';
            continue;
          }
          this.model.adapters = s.adapters;
          const next = await s.tokens.next();
          if (next.done) s.end = 'length';
          else if (stops.includes(next.value)) s.end = 'stop token';
          else {
            s.ids.push(next.value);
            listener({ type: 'answer', pane: s.pane, text: this.text(s), tokens: s.ids.length });
          }
        }
      }
    } finally {
      // Ends the generators still waiting at a token, which releases their KV caches.
      for (const s of streams) await s.tokens.return(undefined);
      this.model.adapters = [];
      this.generating = false;
    }
    const answer = (s: Stream): Answer => ({ text: this.text(s), tokens: s.ids.length, end: s.end! });
    return { promptTokens: promptIds.length, base: answer(streams[0]), ...(streams[1] ? { adapted: answer(streams[1]) } : {}) };
  }

  /** Whether a statements run or a clinical adapter is training or evaluating the decoder now. */
  get isTraining(): boolean {
    return this.training;
  }

  /** End the answers being generated (each after its current token), or the training (after its current step). */
  stop(): void {
    this.stopRequested = this.generating || this.training;
  }

  /** The GPU memory of the base and the adapter. */
  destroy(): void {
    this.adapter?.release();
    this.adapter = null;
    this.model.destroy();
  }

  /** Throws when the decoder cannot `what` now: answers are being generated, or the device it is on was lost (a driver reset). */
  private assertUsable(what: string): void {
    if (this.model.engine.isLost) throw new Error(`The GPU device was lost since ${this.label} was loaded, and the decoder with it: load it again.`);
    this.assertNotGenerating(what);
  }

  private text(s: Stream): string {
    return this.files.tokenizer.decode(s.ids, { skipSpecialTokens: true });
  }

  /** Throws while answers are being generated or the decoder trains: the base and its adapter are in use. */
  assertNotGenerating(what: string): void {
    if (this.generating) throw new Error(`Cannot ${what} while answers are being generated; stop them first.`);
    if (this.training) throw new Error(`Cannot ${what} while the decoder trains; stop it first.`);
  }
}
