/**
 * The options both model benchmarks take: `--quick` (BGE-small shape at seq 16 only), `--models`,
 * `--seqs`, `--reps` (timed runs per cell, at most), `--budget-s` (seconds per cell, after which
 * it stops repeating) and `--profile`.
 */
import { parseArgs } from 'node:util';
import { BENCH_SHAPES, type BenchShape, BGE_SMALL, shapeByKey } from './shapes.ts';

export interface BenchOptions {
  shapes: BenchShape[];
  seqs: number[];
  timing: { reps: number; budgetMs: number };
  /** Also replay one run of each cell kernel by kernel (bench/lib/profile.ts) and print where the time goes. */
  profile: boolean;
}

const QUICK_SEQ = 16;

function list(value: string, name: string): string[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new Error(`--${name} needs a comma-separated list`);
  return items;
}

function positiveInt(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

export function parseBenchOptions(args: string[], defaultBudgetS: number): BenchOptions {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      models: { type: 'string' },
      seqs: { type: 'string' },
      reps: { type: 'string', default: '3' },
      'budget-s': { type: 'string', default: String(defaultBudgetS) },
      profile: { type: 'boolean', default: false },
    },
  });
  const models = values.models ?? (values.quick ? BGE_SMALL.key : BENCH_SHAPES.map((s) => s.key).join(','));
  const seqs = values.seqs ?? (values.quick ? String(QUICK_SEQ) : '16,64');
  return {
    shapes: list(models, 'models').map(shapeByKey),
    seqs: list(seqs, 'seqs').map((s) => positiveInt(s, 'seqs')),
    timing: { reps: positiveInt(values.reps!, 'reps'), budgetMs: positiveInt(values['budget-s']!, 'budget-s') * 1000 },
    profile: values.profile!,
  };
}
