/**
 * config.json of the Llama-architecture decoders, written from the fields each family documents
 * (small sizes, real keys): one canonical config, and a clear refusal of what the kernels do not compute.
 */
import { describe, expect, it } from 'vitest';
import { configModelKind, parseDecoderConfig } from '../../src/model/decoder-config.ts';

const base = {
  vocab_size: 128,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  hidden_act: 'silu',
};

describe('parseDecoderConfig', () => {
  it('Llama 3.2: llama3 rope scaling, tied head, several eos ids', () => {
    const config = parseDecoderConfig({
      ...base,
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
      rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      tie_word_embeddings: true,
      bos_token_id: 1,
      eos_token_id: [2, 3],
    });
    expect(config).toMatchObject({
      family: 'llama',
      headDim: 16,
      numKeyValueHeads: 2,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      tieWordEmbeddings: true,
      qkvBias: false,
      outputBias: false,
      qkNorm: false,
      fusedProjections: false,
      slidingWindow: null,
      maxSequenceLength: 256,
      bosTokenId: 1,
      eosTokenIds: [2, 3],
      quantization: null,
    });
  });

  it('accepts a pad_token_id past vocab_size (padding uses the tokenizer and is masked), but not such an eos_token_id', () => {
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', pad_token_id: base.vocab_size })).not.toThrow();
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', eos_token_id: base.vocab_size })).toThrow(/eos_token_id/);
  });

  it('reads the older "type" key and newer rope_parameters alike', () => {
    const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const old = parseDecoderConfig({ ...base, model_type: 'llama', rope_scaling: { type: 'llama3', ...scaling } });
    const nested = parseDecoderConfig({ ...base, model_type: 'llama', rope_parameters: { rope_type: 'llama3', rope_theta: 500000, ...scaling } });
    expect(old.ropeScaling).toEqual(nested.ropeScaling);
    expect([old.ropeTheta, nested.ropeTheta]).toEqual([10000, 500000]);
    expect(parseDecoderConfig({ ...base, model_type: 'llama', rope_scaling: { rope_type: 'default' } }).ropeScaling).toBeNull();
  });

  it('SmolLM2 is a llama without kv-head count: full multi-head attention', () => {
    const { num_key_value_heads: _, ...mha } = base;
    expect(parseDecoderConfig({ ...mha, model_type: 'llama', tie_word_embeddings: true })).toMatchObject({ numKeyValueHeads: 4, tieWordEmbeddings: true });
  });

  it('Qwen2.5: q/k/v biases, no o bias; the unused sliding window is ignored', () => {
    const config = parseDecoderConfig({ ...base, model_type: 'qwen2', sliding_window: 32, use_sliding_window: false, rope_theta: 1000000 });
    expect(config).toMatchObject({ family: 'qwen2', qkvBias: true, outputBias: false, slidingWindow: null, maxSequenceLength: 256, ropeTheta: 1000000 });
  });

  it('Qwen3: q/k norms and a head_dim other than hidden / heads', () => {
    const config = parseDecoderConfig({ ...base, model_type: 'qwen3', head_dim: 32, attention_bias: false });
    expect(config).toMatchObject({ family: 'qwen3', headDim: 32, qkNorm: true, qkvBias: false });
    expect(parseDecoderConfig({ ...base, model_type: 'qwen3' }).headDim).toBe(128);
  });

  it('Mistral: the sliding window is recorded and caps the sequence length', () => {
    const config = parseDecoderConfig({ ...base, model_type: 'mistral', sliding_window: 64 });
    expect(config).toMatchObject({ family: 'mistral', slidingWindow: 64, maxSequenceLength: 64 });
    expect(parseDecoderConfig({ ...base, model_type: 'mistral', sliding_window: null }).slidingWindow).toBeNull();
  });

  it('Phi-3: fused projections, its rms_norm_eps default; partial rotary and longrope are refused', () => {
    const { rms_norm_eps: _, ...noEps } = base;
    expect(parseDecoderConfig({ ...noEps, model_type: 'phi3', sliding_window: 2047 })).toMatchObject({ fusedProjections: true, rmsNormEps: 1e-5, slidingWindow: 2047, maxSequenceLength: 256 });
    expect(() => parseDecoderConfig({ ...base, model_type: 'phi3', partial_rotary_factor: 0.5 })).toThrow(/partial_rotary_factor 0.5 is not supported/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'phi3', rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [1] } })).toThrow(
      /rope_scaling type "longrope" is not supported/,
    );
  });

  it('finds the family from architectures when model_type is missing', () => {
    expect(parseDecoderConfig({ ...base, architectures: ['Qwen2ForCausalLM'] }).family).toBe('qwen2');
  });

  it('bitsandbytes 4-bit quantization_config: nf4 with double quantisation is read, the rest refused', () => {
    const bnb = { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true, llm_int8_skip_modules: ['lm_head'] };
    expect(parseDecoderConfig({ ...base, model_type: 'llama', quantization_config: bnb }).quantization).toEqual({ quantType: 'nf4', doubleQuant: true, skipModules: ['lm_head'] });
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', quantization_config: { ...bnb, bnb_4bit_quant_type: 'fp4' } })).toThrow(/"fp4" is not supported/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', quantization_config: { quant_method: 'gptq', bits: 4 } })).toThrow(/quant_method "gptq"/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', quantization_config: { quant_method: 'bitsandbytes', load_in_8bit: true } })).toThrow(/bitsandbytes 8-bit/);
  });

  it('refuses what the kernels do not compute, naming the field', () => {
    expect(() => parseDecoderConfig({ ...base, model_type: 'gemma' })).toThrow(/model_type "gemma" is not a supported decoder; qlora-lab loads model_type "llama", "qwen2", "qwen3", "mistral", "phi3"/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', hidden_act: 'gelu' })).toThrow(/hidden_act "gelu" is not supported/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/"yarn" is not supported/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(/rope_scaling.low_freq_factor/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', num_key_value_heads: 3 })).toThrow(/num_attention_heads 4 is not a multiple of num_key_value_heads 3/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', mlp_bias: true })).toThrow(/mlp_bias/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', eos_token_id: 500 })).toThrow(/"eos_token_id" must be a token id below vocab_size 128, got 500/);
    expect(() => parseDecoderConfig({ ...base, model_type: 'llama', hidden_size: 66 })).toThrow(/hidden_size 66 is not a multiple of num_attention_heads 4/);
  });
});

describe('configModelKind', () => {
  const bytes = (json: unknown) => new TextEncoder().encode(typeof json === 'string' ? json : JSON.stringify(json));
  it('says whether config.json names a supported decoder family, by model_type else architectures', () => {
    expect(configModelKind(bytes({ model_type: 'qwen2' }))).toBe('decoder');
    expect(configModelKind(bytes({ architectures: ['Phi3ForCausalLM'] }))).toBe('decoder');
    expect(configModelKind(bytes({ model_type: 'bert', architectures: ['LlamaForCausalLM'] }))).toBe('encoder');
    expect(configModelKind(bytes({ model_type: 'gpt2' }))).toBe('encoder');
  });
  it('says when the bytes are missing or not a JSON object', () => {
    for (const b of [null, bytes('{not json'), bytes('null'), bytes('3')]) expect(configModelKind(b)).toBe('unreadable');
  });
});
