/** Seeded stratified splits: each class is shuffled, then dealt out, so every part keeps the class mix. */
import { Rng } from '../data/rng.ts';

function byClass(labels: ArrayLike<number>, rng: Rng): number[][] {
  const classes = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    let list = classes.get(labels[i]);
    if (!list) classes.set(labels[i], (list = []));
    list.push(i);
  }
  return [...classes.keys()].sort((a, b) => a - b).map((c) => rng.shuffle(classes.get(c)!));
}

/** Fold (0..k−1) of each unit; within each class, units are dealt round-robin after a shuffle. */
export function stratifiedFolds(labels: ArrayLike<number>, k: number, seed: number): Int32Array {
  if (!Number.isInteger(k) || k < 2) throw new Error(`folds must be an integer ≥ 2, got ${k}`);
  const fold = new Int32Array(labels.length);
  let dealt = 0;
  for (const members of byClass(labels, new Rng(seed))) for (const i of members) fold[i] = dealt++ % k;
  return fold;
}

/** Train and test indices; each class contributes round(testFraction · its size) test units. */
export function stratifiedSplit(labels: ArrayLike<number>, testFraction: number, seed: number): { train: Int32Array; test: Int32Array } {
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`test fraction must be in (0, 1), got ${testFraction}`);
  const train: number[] = [];
  const test: number[] = [];
  for (const members of byClass(labels, new Rng(seed))) {
    const cut = Math.round(members.length * testFraction);
    test.push(...members.slice(0, cut));
    train.push(...members.slice(cut));
  }
  const sorted = (a: number[]) => Int32Array.from(a).sort();
  return { train: sorted(train), test: sorted(test) };
}
