/** The pre-download check of a decoder: files and download size, the plan against the device, and what would fit. */
import { describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { APP_DECODER_TRAINING, DECODER_PRESETS, type DeviceBudget, checkDecoderFit, decoderFilesToLoad } from '../../src/model/decoder-fit.ts';
import { describeDecoderPlan, planDecoderTraining } from '../../src/model/decoder-memory.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

const bnb = { _load_in_4bit: true, _load_in_8bit: false, bnb_4bit_compute_dtype: 'bfloat16', bnb_4bit_quant_storage: 'uint8', bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true, llm_int8_enable_fp32_cpu_offload: false, llm_int8_has_fp16_weight: false, llm_int8_skip_modules: null, llm_int8_threshold: 6.0, load_in_4bit: true, load_in_8bit: false, quant_method: 'bitsandbytes' };

/** The five presets' config.json as published (the unsloth *-bnb-4bit repositories; SmolLM2's as HuggingFaceTB publishes it). */
const PUBLISHED: Record<string, Record<string, unknown>> = {
  'unsloth/SmolLM2-135M-Instruct-bnb-4bit': {
    architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 2, head_dim: 64, hidden_act: 'silu', hidden_size: 576, initializer_range: 0.041666666666666664,
    intermediate_size: 1536, is_llama_config: true, max_position_embeddings: 8192, mlp_bias: false, model_type: 'llama', num_attention_heads: 9, num_hidden_layers: 30, num_key_value_heads: 3, pad_token_id: 2,
    pretraining_tp: 1, rms_norm_eps: 1e-5, rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, vocab_size: 49152, quantization_config: bnb,
  },
  'unsloth/SmolLM2-360M-Instruct-bnb-4bit': {
    architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 2, head_dim: 64, hidden_act: 'silu', hidden_size: 960, initializer_range: 0.02,
    intermediate_size: 2560, is_llama_config: true, max_position_embeddings: 8192, mlp_bias: false, model_type: 'llama', num_attention_heads: 15, num_hidden_layers: 32, num_key_value_heads: 5, pad_token_id: 2,
    pretraining_tp: 1, rms_norm_eps: 1e-5, rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, vocab_size: 49152, quantization_config: bnb,
  },
  'unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit': {
    architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu', hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864,
    max_position_embeddings: 32768, max_window_layers: 21, model_type: 'qwen2', num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, pad_token_id: 151665, rms_norm_eps: 1e-6,
    rope_scaling: null, rope_theta: 1000000.0, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false, vocab_size: 151936, quantization_config: bnb,
  },
  'unsloth/Llama-3.2-1B-Instruct-bnb-4bit': {
    architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], head_dim: 64, hidden_act: 'silu', hidden_size: 2048,
    initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false, model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8,
    pad_token_id: 128004, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, vocab_size: 128256, quantization_config: bnb,
  },
  'unsloth/Phi-3-mini-4k-instruct-bnb-4bit': {
    architectures: ['MistralForCausalLM'], attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 32000, hidden_act: 'silu', hidden_size: 3072, initializer_range: 0.02, intermediate_size: 8192,
    max_position_embeddings: 4096, model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32, pad_token_id: 32000, rms_norm_eps: 1e-5, rope_theta: 10000.0,
    sliding_window: 2048, tie_word_embeddings: false, torch_dtype: 'bfloat16', use_cache: true, vocab_size: 32064, quantization_config: bnb,
  },
};

/** A roomy GPU's limits with the app's default 1.5 GiB budget. */
const device = (budgetGiB = 1.5, binding = 2 * GiB): DeviceBudget => ({ budgetBytes: budgetGiB * GiB, maxBufferSize: binding, maxStorageBufferBindingSize: binding });

/** A one-file checkpoint repository: the weights of `weightBytes`, a tokenizer and the usual extras. */
const repoFiles = (weightBytes: number) =>
  new Map([
    ['config.json', 1200],
    ['generation_config.json', 200],
    ['tokenizer.json', 3_500_000],
    ['tokenizer_config.json', 4000],
    ['special_tokens_map.json', 500],
    ['README.md', 5000],
    ['.gitattributes', 1500],
    ['model.safetensors', weightBytes],
  ]);

/** The plan decoder-memory.ts makes for a published config under `d`, as the check must request it. */
const directPlan = (json: Record<string, unknown>, d: DeviceBudget, seq = APP_DECODER_TRAINING.seq) =>
  planDecoderTraining({
    config: parseDecoderConfig(json),
    lora: APP_DECODER_TRAINING.lora,
    shape: { sequences: APP_DECODER_TRAINING.sequences, seq },
    base: { quantization: 'nf4', doubleQuant: true },
    budgetBytes: d.budgetBytes,
    maxBufferBytes: d.maxStorageBufferBindingSize,
    storages: ['f32', 'f16'],
  });

describe('decoder presets', () => {
  it('each preset is a bnb-4bit repository whose config fields are the published ones', () => {
    expect(DECODER_PRESETS.map((p) => p.id)).toEqual(Object.keys(PUBLISHED));
    for (const preset of DECODER_PRESETS) {
      const { raw: _ours, ...ours } = parseDecoderConfig(preset.config);
      const { raw: _published, ...published } = parseDecoderConfig(PUBLISHED[preset.id]);
      // Token ids and norm epsilon do not change memory; everything the plan reads must agree.
      for (const field of ['family', 'vocabSize', 'hiddenSize', 'numHiddenLayers', 'numAttentionHeads', 'numKeyValueHeads', 'headDim', 'intermediateSize', 'maxSequenceLength', 'tieWordEmbeddings', 'qkvBias', 'quantization'] as const) {
        expect(ours[field], `${preset.id} ${field}`).toEqual(published[field]);
      }
    }
  });
});

describe('decoder fit before download', () => {
  it('plans each preset as decoder-memory does, and counts only the files it would download', () => {
    const d = device(1.5);
    for (const [id, json] of Object.entries(PUBLISHED)) {
      const fit = checkDecoderFit(id, json, repoFiles(100 * MiB), d);
      const plan = directPlan(json, d);
      expect(fit.plan, id).toEqual(plan);
      expect(fit.description).toBe(describeDecoderPlan(plan, d.budgetBytes));
      expect(fit.files).toEqual(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'model.safetensors']);
      expect(fit.downloadBytes).toBe(1200 + 3_500_000 + 4000 + 500 + 200 + 100 * MiB);
      expect(fit.prequantized).toBe(true);
    }
  });

  it('at 1.5 GiB: SmolLM2 and Qwen2.5 fit at 8 × 256; Phi-3 mini does not, and says why and which preset would', () => {
    const d = device(1.5);
    const fits = Object.fromEntries(Object.entries(PUBLISHED).map(([id, json]) => [id, checkDecoderFit(id, json, repoFiles(1), d)]));
    for (const id of ['unsloth/SmolLM2-135M-Instruct-bnb-4bit', 'unsloth/SmolLM2-360M-Instruct-bnb-4bit', 'unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit']) {
      expect(fits[id].fits, fits[id].description).toBe(true);
      expect(fits[id].problems).toEqual([]);
      expect(fits[id].suggestion).toBeNull();
    }
    const phi = fits['unsloth/Phi-3-mini-4k-instruct-bnb-4bit'];
    expect(phi.fits).toBe(false);
    expect(phi.plan.fits).toBe(false);
    // Its 4-bit layers alone exceed the budget, so no sequence length helps: a smaller preset does.
    expect(phi.plan.estimate.baseWeights).toBeGreaterThan(d.budgetBytes);
    expect(phi.problems).toEqual([expect.stringMatching(/^Training 8 sequences of 256 tokens per step needs about [\d.]+ GiB of GPU memory even with the smallest layout, more than the 1\.5 GiB budget\.$/)]);
    const largestFitting = Object.keys(PUBLISHED).filter((id) => id !== 'unsloth/Phi-3-mini-4k-instruct-bnb-4bit' && directPlan(PUBLISHED[id], d).fits).at(-1);
    const label = DECODER_PRESETS.find((p) => p.id === largestFitting)!.label;
    expect(phi.suggestion).toMatch(new RegExp(`^What would fit: the smaller preset ${label} at 256 tokens \\(about [\\d.]+ [MG]iB\\)\\.$`));
    expect(phi.description).toMatch(/over the 1\.5 GiB budget even so/);
  });

  it('suggests the longest shorter sequence that fits, checked against the plan at that length', () => {
    const id = 'unsloth/Llama-3.2-1B-Instruct-bnb-4bit';
    const json = PUBLISHED[id];
    // A budget between the smallest layouts at 128 and at 256 tokens (a budget nothing fits gets the smallest).
    const smallest = (seq: number) => directPlan(json, device(0.01), seq).estimate.total;
    const budget = (smallest(128) + smallest(256)) / 2 / GiB;
    const fit = checkDecoderFit(id, json, repoFiles(1), device(budget));
    if (directPlan(json, device(budget)).fits) throw new Error('the budget was meant to be too small for 256 tokens');
    expect(fit.fits).toBe(false);
    expect(directPlan(json, device(budget), 128).fits).toBe(true);
    expect(fit.suggestion).toMatch(/^What would fit: sequences of 128 tokens \(about [\d.]+ GiB\), or the smaller preset Qwen2\.5 0\.5B Instruct at 256 tokens/);
  });

  it('a budget nothing fits says so', () => {
    const fit = checkDecoderFit('unsloth/SmolLM2-135M-Instruct-bnb-4bit', PUBLISHED['unsloth/SmolLM2-135M-Instruct-bnb-4bit'], repoFiles(1), device(0.05));
    expect(fit.fits).toBe(false);
    expect(fit.suggestion).toBe('Nothing among the presets fits a 51.2 MiB budget at 256 tokens; a larger budget (if this GPU has the memory) would.');
  });

  it("a buffer over the device's binding limit does not fit", () => {
    const id = 'unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit';
    // Qwen2.5's tied embedding table is split into row blocks within the binding; a 1 MiB binding still cannot hold its activations.
    const fit = checkDecoderFit(id, PUBLISHED[id], repoFiles(1), device(64, MiB));
    expect(fit.fits).toBe(false);
    expect(fit.plan.estimate.total).toBeLessThan(64 * GiB);
    expect(fit.problems).toEqual([expect.stringMatching(/^The largest buffer needs \d+ bytes, over this GPU's maxStorageBufferBindingSize of 1048576: lower the batch size or the maximum length\.$/), expect.stringMatching(/maxBufferSize of 1048576/)]);
  });

  it('a sequence longer than the model takes is capped at its positions (Phi-3 mini: the 2048-token window)', () => {
    const id = 'unsloth/Phi-3-mini-4k-instruct-bnb-4bit';
    const fit = checkDecoderFit(id, PUBLISHED[id], repoFiles(1), device(64), { ...APP_DECODER_TRAINING, seq: 4096 });
    expect(fit.settings).toEqual({ sequences: 8, seq: 2048 });
  });

  it('refuses a model of another family, or without safetensors weights or tokenizer.json, naming what is wrong', () => {
    expect(() => checkDecoderFit('openai-community/gpt2', { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }, repoFiles(1), device())).toThrow(
      'openai-community/gpt2 has model_type "gpt2": qlora-lab trains decoders of model_type llama, qwen2, qwen3, mistral, phi3 (and BERT-family encoders)',
    );
    expect(() => checkDecoderFit('x/y', { architectures: ['GemmaForCausalLM'] }, repoFiles(1), device())).toThrow('x/y has no model_type (architectures GemmaForCausalLM): qlora-lab trains decoders');
    const id = 'unsloth/SmolLM2-135M-Instruct-bnb-4bit';
    const bin = new Map([...repoFiles(1)].filter(([f]) => f !== 'model.safetensors')).set('pytorch_model.bin', 1);
    const noWeights = checkDecoderFit(id, PUBLISHED[id], bin, device());
    expect(noWeights.fits).toBe(false);
    expect(noWeights.problems).toEqual([`${id} has no safetensors weights (model.safetensors or model.safetensors.index.json); decoders are loaded from safetensors only.`]);
    const noTokenizer = checkDecoderFit(id, PUBLISHED[id], new Map([...repoFiles(1)].filter(([f]) => f !== 'tokenizer.json')), device());
    expect(noTokenizer.problems).toEqual([`${id} has no tokenizer.json; decoders are loaded with tokenizer.json only.`]);
  });

  it('a sharded checkpoint downloads its index and every shard, nothing else', () => {
    const files = new Set(['config.json', 'tokenizer.json', 'model.safetensors.index.json', 'model-00002-of-00002.safetensors', 'model-00001-of-00002.safetensors', 'pytorch_model.bin', 'original/consolidated.00.pth']);
    expect(decoderFilesToLoad(files)).toEqual(['config.json', 'tokenizer.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(decoderFilesToLoad(new Set(['config.json', 'pytorch_model.bin']))).toBeNull();
  });
});
