/**
 * BERT input embeddings (word + position + token type), forward only: the embedding tables are
 * frozen in QLoRA fine-tuning, so nothing needs their gradient.
 */
import source from '../../../shaders/embedding.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params } from '../engine.ts';
import { type Tensor, shapeString } from '../tensor.ts';
import { expectDims, expectShape } from './check.ts';
import { dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';

const kernel = kernelFamily('embedding', source);
const FORWARD = kernel('embedding_forward', ['read', 'read', 'read', 'read', 'read', 'read_write']);

function tableRows(op: string, name: string, table: Tensor, hidden: number): number {
  if (table.shape.length !== 2 || table.shape[1] !== hidden) {
    throw new ShapeError(`${op}: ${name} has shape ${shapeString(table.shape)}, expected [rows, ${hidden}]`);
  }
  expectShape(op, name, table, table.shape);
  return table.shape[0];
}

/**
 * out[b, t] = wordEmb[inputIds[b, t]] + typeEmb[tokenTypeIds[b, t]] + posEmb[t] (positions 0..T-1).
 * inputIds and tokenTypeIds are u32 [B, T]; T must not exceed posEmb's rows. An id past the end of
 * its table is clamped to the table's last row (the GPU cannot raise an error; this keeps every read
 * in bounds), so callers validate ids on the host when they need an error instead.
 */
export function embeddingForward(
  engine: Engine,
  inputIds: Tensor,
  tokenTypeIds: Tensor,
  wordEmb: Tensor,
  posEmb: Tensor,
  typeEmb: Tensor,
  out: Tensor,
): void {
  const op = 'embeddingForward';
  if (inputIds.shape.length !== 2) throw new ShapeError(`${op}: inputIds must be [batch, seq], got shape ${shapeString(inputIds.shape)}`);
  const [batch, seq] = inputIds.shape;
  if (out.shape.length !== 3) throw new ShapeError(`${op}: out must be [batch, seq, hidden], got shape ${shapeString(out.shape)}`);
  const hidden = out.shape[2];
  expectDims(op, { batch, seq, hidden });
  expectShape(op, 'inputIds', inputIds, [batch, seq], 'u32');
  expectShape(op, 'tokenTypeIds', tokenTypeIds, [batch, seq], 'u32');
  expectShape(op, 'out', out, [batch, seq, hidden]);
  const vocab = tableRows(op, 'wordEmb', wordEmb, hidden);
  const positions = tableRows(op, 'posEmb', posEmb, hidden);
  const typeVocab = tableRows(op, 'typeEmb', typeEmb, hidden);
  if (seq > positions) throw new ShapeError(`${op}: seq ${seq} exceeds the ${positions} positions of posEmb`);
  expectDistinct(op, { out }, { inputIds, tokenTypeIds, wordEmb, posEmb, typeEmb });
  const params = new Params().u32(batch * seq, seq, hidden, vocab, typeVocab).build();
  const buffers = [inputIds.buffer, tokenTypeIds.buffer, wordEmb.buffer, posEmb.buffer, typeEmb.buffer, out.buffer];
  dispatchPerElement(engine, FORWARD, params, buffers, batch * seq * hidden);
}
