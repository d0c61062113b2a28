/**
 * The page's state of the decoder LLM loaded beside the model being trained, and of its answers side
 * by side: the prompt and sampling settings, the two panes as the engine worker streams them, Stop.
 * Generation runs in the worker; each 'answer' event only replaces a pane's text.
 */
import type { AnswerEnd, AnswerPane, AnswersRequest, AnswersResult, DecoderSummary, SessionEvent } from '../app/protocol.ts';
import type { DecoderFamilyName } from '../model/decoder-config.ts';
import type { ModelRef } from '../model/model-ref.ts';
import { modelLabel } from '../train/run-config.ts';
import { readPickedAdapter } from './adapter-files.ts';
import type { RemoteSession } from './engine-client.ts';
import type { Phase } from './lab.svelte.ts';

/** The bundled random-weights decoder (public/models/demo-decoder, made by scripts/make-demo-decoder.ts). */
export const BUNDLED_DEMO_DECODER: ModelRef = { kind: 'bundled', id: 'demo-decoder' };

const FAMILY_NAMES: Record<DecoderFamilyName, string> = { llama: 'Llama', qwen2: 'Qwen2', qwen3: 'Qwen3', mistral: 'Mistral', phi3: 'Phi-3' };

export interface PaneView {
  text: string;
  tokens: number;
  /** Set when the answer has ended. */
  end: AnswerEnd | null;
}

export class DecoderAnswers {
  phase = $state<Phase>('idle');
  decoder = $state<DecoderSummary | null>(null);
  /** Where the loaded decoder came from. */
  ref = $state<ModelRef | null>(null);
  error = $state<string | null>(null);
  adapter = $state<string | null>(null);
  adapterError = $state<string | null>(null);

  /** Greedy by default: the same prompt gives the same answers every time. */
  settings = $state<AnswersRequest>({ prompt: '', chat: true, maxNewTokens: 48, temperature: 0, topP: 1, seed: 0 });
  generating = $state(false);
  stopping = $state(false);
  panes = $state<Partial<Record<AnswerPane, PaneView>>>({});
  answersError = $state<string | null>(null);

  constructor(
    private readonly session: () => RemoteSession,
    /** Told each decoder loaded, so what depends on it (the statements form) starts afresh. */
    private readonly onLoaded: (ref: ModelRef) => void = () => {},
  ) {}

  /** Load a decoder (the bundled demo, a Hub repo or a picked folder) in the engine worker; the one loaded before stays if this fails. */
  async load(ref: ModelRef, quantization: 'nf4' | 'f32', localFiles?: Map<string, File>): Promise<void> {
    this.phase = 'busy';
    this.error = null;
    try {
      this.decoder = await this.session().loadDecoder(ref, quantization, localFiles, new URL(import.meta.env.BASE_URL, location.href).href);
      this.ref = ref;
      this.settings.chat = this.decoder.chatTemplate;
      this.adapter = null;
      this.panes = {};
      this.phase = 'ready';
      this.onLoaded(ref);
    } catch (e) {
      const kept = this.ref ? `\n${modelLabel(this.ref)} stays loaded.` : '';
      this.error = `${modelLabel(ref)} could not be loaded as a decoder: ${(e as Error).message}${kept}`;
      this.phase = this.decoder ? 'ready' : 'error';
    }
  }

  /** The loaded decoder as a share link names it (a Hub one at the commit it resolved to), with its quantization; null before one. */
  sharedRef(): { model: ModelRef; quantization: 'nf4' | 'f32' } | null {
    const [ref, decoder] = [$state.snapshot(this.ref), this.decoder];
    if (!ref || !decoder) return null;
    return { model: ref.kind === 'hub' && decoder.commit ? { ...ref, revision: decoder.commit } : ref, quantization: decoder.quantization };
  }

  /** The adapter the adapted answers come from (a PEFT CAUSAL_LM adapter's two files), or none. */
  async setAdapter(files: File[] | null): Promise<void> {
    this.adapterError = null;
    try {
      const picked = files ? await readPickedAdapter(files) : null;
      this.adapter = await this.session().setDecoderAdapter(picked && { ...picked.files, name: picked.name });
      this.panes = {};
    } catch (e) {
      this.adapterError = (e as Error).message;
    }
  }

  async generate(): Promise<void> {
    const request = $state.snapshot(this.settings);
    this.answersError = null;
    this.panes = { base: { text: '', tokens: 0, end: null }, ...(this.adapter ? { adapted: { text: '', tokens: 0, end: null } } : {}) };
    this.generating = true;
    this.stopping = false;
    try {
      const result: AnswersResult = await this.session().answers({ ...request, prompt: request.prompt.trim() });
      this.panes = { base: result.base, ...(result.adapted ? { adapted: result.adapted } : {}) };
    } catch (e) {
      this.answersError = (e as Error).message;
      this.panes = {};
    } finally {
      this.generating = false;
      this.stopping = false;
    }
  }

  stop(): void {
    this.stopping = true;
    void this.session().stopAnswers();
  }

  onAnswer(event: Extract<SessionEvent, { type: 'answer' }>): void {
    const pane = this.panes[event.pane];
    if (!pane || !this.generating) return;
    pane.text = event.text;
    pane.tokens = event.tokens;
  }

  /** "demo-decoder (bundled smoke-test model): a Llama decoder LLM, 2 layers, hidden 32, 21,632 parameters, NF4". */
  describe(): string {
    const d = this.decoder;
    if (!d || !this.ref) return '';
    return `${modelLabel(this.ref)}: a ${FAMILY_NAMES[d.family]} decoder LLM, ${d.layers} layers, hidden ${d.hidden}, ${d.parameters.toLocaleString('en')} parameters, ${d.quantization.toUpperCase()}`;
  }
}
