/**
 * The decoder LLM the engine worker holds beside the encoder being trained: its files and base on
 * the GPU, an adapter to compare it with (stacked on the same base), and the answers side by side —
 * one prompt generated from the base and from the adapted model with the same settings and seed,
 * token by token in turn so both stream together, until each ends or Stop ends both. Every KV cache
 * is released when an answer ends, and at Stop. It also trains an adapter on CTD statements
 * (statement-run.ts), which then becomes the adapted side and the adapter to export. No DOM: it runs
 * in the worker.
 */
import type { Engine } from '../engine/engine.ts';
import { type DecoderModelFiles, openDecoderModel } from '../model/decoder-checkpoint.ts';
import { generateTokens, stopTokensOf } from '../model/decoder-generate.ts';
import type { CtdStatement } from '../data/statements.ts';
import { createDecoderAdapter } from '../model/decoder-lora.ts';
import { readDecoderPeftAdapter, writeDecoderPeftAdapter } from '../model/decoder-peft.ts';
import { decoderGlobalShapes, decoderLayerShapes } from '../model/decoder-weights.ts';
import { DecoderModel } from '../model/decoder.ts';
import type { ModelFileSource } from '../model/file-source.ts';
import type { GpuLoraModules } from '../model/lora.ts';
import { type PeftAdapter, type PeftAdapterFiles, describePeftAdapter, loraConfigOf } from '../model/peft-files.ts';
import type { Answer, AnswerEnd, AnswerPane, AnswersRequest, AnswersResult, DecoderSummary, SessionListener, StatementRunSummary } from './protocol.ts';
import { type StatementRunSettings, runStatementStudy } from './statement-run.ts';

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
  private stopRequested = false;
  private generating = false;
  private training = false;

  private constructor(
    readonly label: string,
    readonly files: DecoderModelFiles,
    readonly model: DecoderModel,
    private readonly commit: string | undefined,
  ) {}

  /** Read the decoder folder from `source` and put its base on the GPU (NF4 or f32; a bitsandbytes 4-bit checkpoint as it is). */
  static async open(engine: Engine, source: ModelFileSource, label: string, quantization: 'nf4' | 'f32'): Promise<DecoderHost> {
    const files = await openDecoderModel(source);
    const model = await DecoderModel.create(engine, files.config, files.weights, { quantization });
    return new DecoderHost(label, files, model, await source.commit?.());
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
  async trainStatements(data: { train: CtdStatement[]; test: CtdStatement[] }, split: StatementRunSummary['split'], settings: StatementRunSettings, listener: SessionListener): Promise<Omit<StatementRunSummary, 'fingerprint'>> {
    this.assertUsable('train on statements');
    this.training = true;
    this.stopRequested = false;
    try {
      const outcome = await runStatementStudy(this.model, this.files, this.label, data, settings, {
        onStep: (step, totalSteps, loss) => listener({ type: 'statement-step', step, totalSteps, loss }),
        onScored: (model, done, total) => listener({ type: 'statement-scoring', model, done, total }),
        onEmbedded: (done, total) => listener({ type: 'statement-embedding', done, total }),
        stopRequested: () => this.stopRequested,
      });
      this.trained = outcome.adapter;
      this.useAdapter(outcome.adapter);
      const { losses, stopped, error, statements, result, maps } = outcome;
      const diseases = data.test.map((s) => s.disease);
      return { split, statements, losses, totalSteps: settings.steps, stopped, error, result, maps, diseases, adapter: `the adapter trained on CTD statements: ${describePeftAdapter(outcome.adapter)}` };
    } finally {
      this.training = false;
    }
  }

  /** The adapter the last statements run trained, as PEFT's CAUSAL_LM folder (adapter_config.json, adapter_model.safetensors). */
  trainedAdapterFiles(): PeftAdapterFiles {
    if (!this.trained) throw new Error('No adapter has been trained on this decoder yet: train it on CTD statements first.');
    return writeDecoderPeftAdapter(this.trained, this.files.config);
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

  /** Whether a statements run is training or evaluating the decoder now. */
  get isTraining(): boolean {
    return this.training;
  }

  /** End the answers being generated (each after its current token), or the statements run (after its current step). */
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
    if (this.training) throw new Error(`Cannot ${what} while the decoder trains on statements; stop it first.`);
  }
}
