/**
 * The matrix products a BERT training step runs through the tunable matmul kernels: each encoder
 * linear's forward and input gradient at a number of token rows. The autotuner times these shapes.
 */
import type { Product } from '../engine/ops/matmul-variants.ts';
import type { BaseQuantization } from './bert.ts';
import type { BertConfig } from './config.ts';
import { LINEAR_SUFFIXES, moduleName, moduleShape } from './lora.ts';

export function linearProducts(config: BertConfig, rows: number, quantization: BaseQuantization): Product[] {
  const shapes = new Map<string, { in: number; out: number }>();
  for (const suffix of LINEAR_SUFFIXES) {
    const shape = moduleShape(config, moduleName(0, suffix));
    shapes.set(`${shape.in}x${shape.out}`, shape);
  }
  const forward = quantization === 'nf4' ? 'nf4Matmul' : 'matmul';
  return [...shapes.values()].flatMap((s): Product[] => [
    { op: forward, batch: 1, M: rows, N: s.out, K: s.in, transA: false, transB: true },
    quantization === 'nf4'
      ? { op: 'nf4MatmulInputGrad', batch: 1, M: rows, N: s.in, K: s.out, transA: false, transB: false }
      : { op: 'matmul', batch: 1, M: rows, N: s.in, K: s.out, transA: false, transB: false },
  ]);
}
