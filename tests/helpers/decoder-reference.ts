/** Float64 references for decoder tests: log-probabilities over the whole vocabulary from a sequence's own hidden states. */
import type { DecoderModel } from '../../src/model/decoder.ts';

/**
 * Runs `ids` alone through the model and returns log p(token | ids[0..t]) as a function of (t, token):
 * log softmax(hidden[t] · headᵀ) in float64, `head` being the LM head [V, H].
 */
export async function referenceLogProbs(model: DecoderModel, head: Float32Array, ids: number[]): Promise<(t: number, token: number) => number> {
  const result = model.forward({ inputIds: Uint32Array.from(ids), attentionMask: new Float32Array(ids.length).fill(1), batch: 1, seq: ids.length }, { train: false, seed: 0 });
  const hidden = await model.engine.readF32(result.hidden);
  model.releaseForward(result);
  const h = model.config.hiddenSize;
  const vocab = head.length / h;
  return (t, token) => {
    const logits = Array.from({ length: vocab }, (_, v) => {
      let s = 0;
      for (let k = 0; k < h; k++) s += hidden[t * h + k] * head[v * h + k];
      return s;
    });
    const max = Math.max(...logits);
    return logits[token] - max - Math.log(logits.reduce((acc, l) => acc + Math.exp(l - max), 0));
  };
}
