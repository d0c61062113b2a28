/**
 * BERT input embeddings (word + position + token type), forward only: the embedding tables are
 * frozen in QLoRA fine-tuning, so nothing needs their gradient. They may be stored in f16 and the
 * word table in row blocks (stored.ts).
 */
import source from '../../../shaders/embedding.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params } from '../engine.ts';
import { type StoredMatrix, singleBlock, storedView } from '../stored.ts';
import { type Tensor, shapeString } from '../tensor.ts';
import { expectDims, expectShape } from './check.ts';
import { halfWords } from './half.ts';
import { dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';

const kernel = kernelFamily('embedding', source);
const FORWARD = kernel('embedding_forward', ['read', 'read', 'read', 'read', 'read', 'read_write']);
const FORWARD_HALF = kernel('embedding_forward_half', ['read', 'read', 'read', 'read', 'read', 'read_write']);

/** A table as given (an f32 tensor [rows, hidden], or a stored matrix) checked against the hidden size. */
function asTable(op: string, name: string, table: Tensor | StoredMatrix, hidden: number): StoredMatrix {
  if (!('blocks' in table)) {
    if (table.shape.length !== 2 || table.shape[1] !== hidden) {
      throw new ShapeError(`${op}: ${name} has shape ${shapeString(table.shape)}, expected [rows, ${hidden}]`);
    }
    expectShape(op, name, table, table.shape);
    return storedView(name, table);
  }
  if (table.cols !== hidden) throw new ShapeError(`${op}: ${name} (${table.name}) has ${table.cols} columns, expected ${hidden}`);
  for (const block of table.blocks) {
    const shape = table.precision === 'f32' ? [block.rows, hidden] : [halfWords(block.rows * hidden)];
    expectShape(op, `${name} rows from ${block.firstRow}`, block.data, shape, table.precision === 'f32' ? 'f32' : 'u32');
  }
  return table;
}

/**
 * out[b, t] = wordEmb[inputIds[b, t]] + typeEmb[tokenTypeIds[b, t]] + posEmb[t] (positions 0..T-1).
 * inputIds and tokenTypeIds are u32 [B, T]; T must not exceed posEmb's rows. An id past the end of
 * its table is clamped to the table's last row (the GPU cannot raise an error; this keeps every read
 * in bounds), so callers validate ids on the host when they need an error instead.
 * Tables are f32 tensors or stored matrices (stored.ts), all three of one precision; the word table
 * may be split into row blocks (one dispatch each, same result as unsplit), the others may not.
 */
export function embeddingForward(
  engine: Engine,
  inputIds: Tensor,
  tokenTypeIds: Tensor,
  wordEmb: Tensor | StoredMatrix,
  posEmb: Tensor | StoredMatrix,
  typeEmb: Tensor | StoredMatrix,
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
  const word = asTable(op, 'wordEmb', wordEmb, hidden);
  const position = asTable(op, 'posEmb', posEmb, hidden);
  const type = asTable(op, 'typeEmb', typeEmb, hidden);
  if (position.precision !== word.precision || type.precision !== word.precision) {
    throw new ShapeError(`${op}: the tables must share one precision, got word ${word.precision}, position ${position.precision}, token type ${type.precision}`);
  }
  if (seq > position.rows) throw new ShapeError(`${op}: seq ${seq} exceeds the ${position.rows} positions of posEmb`);
  const positionData = singleBlock(op, position);
  const typeData = singleBlock(op, type);
  const blockData = word.blocks.map((b) => b.data);
  expectDistinct(op, { out }, { inputIds, tokenTypeIds, posEmb: positionData, typeEmb: typeData, ...Object.fromEntries(blockData.map((d, i) => [`wordEmb block ${i}`, d])) });
  const spec = word.precision === 'f32' ? FORWARD : FORWARD_HALF;
  for (const block of word.blocks) {
    const params = new Params().u32(batch * seq, seq, hidden, word.rows, type.rows, block.firstRow, block.rows).build();
    const buffers = [inputIds.buffer, tokenTypeIds.buffer, block.data.buffer, positionData.buffer, typeData.buffer, out.buffer];
    dispatchPerElement(engine, spec, params, buffers, batch * seq * hidden);
  }
}
