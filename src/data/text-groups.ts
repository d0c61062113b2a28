/**
 * Leak-free splits: rows that say the same thing must land on the same side of a train/test split,
 * or the test score measures memorisation. "The same" is compared after normalising case and
 * whitespace (normaliseText); which rows share a group is the caller's rule (see builder.ts).
 */

/** Text as compared for grouping: lower case, each run of whitespace one space, no outer spaces. */
export function normaliseText(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Disjoint sets over 0..n-1 (path halving, union by size). */
export class UnionFind {
  private parent: Int32Array;
  private size: Int32Array;

  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, i) => i);
    this.size = new Int32Array(n).fill(1);
  }

  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]];
      x = p[x];
    }
    return x;
  }

  union(x: number, y: number): void {
    let a = this.find(x);
    let b = this.find(y);
    if (a === b) return;
    if (this.size[a] < this.size[b]) [a, b] = [b, a];
    this.parent[b] = a;
    this.size[a] += this.size[b];
  }
}

/** Dense ids for keys, in order of first appearance. */
export class KeyIds {
  private ids = new Map<string, number>();

  id(key: string): number {
    let id = this.ids.get(key);
    if (id === undefined) this.ids.set(key, (id = this.ids.size));
    return id;
  }

  get size(): number {
    return this.ids.size;
  }
}

export interface GroupSplit {
  /** 1 for each row on the test side. */
  inTest: Uint8Array;
  groups: number;
  /** Rows in the largest group. */
  largestGroup: number;
}

/**
 * Split rows so that no group straddles. `order` is a seeded shuffle of the row indices and
 * `groupOf` each row's group (any integers). Walking `order`, a group's side is decided at its
 * first row: test when the whole group fits in what test still lacks of `nTest` rows, else train.
 * With every group a single row this is exactly "the first nTest rows of the shuffle". When no
 * group fits, the smallest one goes to test so that both sides have rows. The caller checks that
 * there are at least 2 groups.
 */
export function splitByGroup(order: readonly number[], groupOf: ArrayLike<number>, nTest: number): GroupSplit {
  const sizes = new Map<number, number>();
  for (const r of order) sizes.set(groupOf[r], (sizes.get(groupOf[r]) ?? 0) + 1);
  const side = new Map<number, 0 | 1>();
  let testRows = 0;
  for (const r of order) {
    const g = groupOf[r];
    if (side.has(g)) continue;
    const size = sizes.get(g)!;
    const fits = testRows + size <= nTest;
    side.set(g, fits ? 1 : 0);
    if (fits) testRows += size;
  }
  if (testRows === 0) {
    let smallest = -1;
    for (const r of order) if (smallest < 0 || sizes.get(groupOf[r])! < sizes.get(smallest)!) smallest = groupOf[r];
    side.set(smallest, 1);
  }
  const inTest = new Uint8Array(groupOf.length);
  for (const r of order) inTest[r] = side.get(groupOf[r])!;
  let largestGroup = 0;
  for (const size of sizes.values()) largestGroup = Math.max(largestGroup, size);
  return { inTest, groups: sizes.size, largestGroup };
}
