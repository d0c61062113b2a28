/** Explore's search: nearest texts by cosine, and the perplexity its maps use for small sets. */
import { describe, expect, it } from 'vitest';
import { nearestNeighbours } from '../../src/eval/neighbours.ts';
import { perplexityFor } from '../../src/eval/tsne.ts';

describe('nearestNeighbours', () => {
  const corpus = [
    { text: 'east', label: 'x', vector: [1, 0] },
    { text: 'north', label: 'y', vector: [0, 2] },
    { text: 'north-east', label: 'x', vector: [3, 3] },
    { text: 'west', label: 'y', vector: [-1, 0] },
  ];

  it('ranks by cosine (not length), nearest first, and keeps k', () => {
    const found = nearestNeighbours([1, 0.1], corpus, 3);
    expect(found.map((n) => n.text)).toEqual(['east', 'north-east', 'north']);
    expect(found[0]).toEqual({ text: 'east', label: 'x', cosine: expect.closeTo(1 / Math.hypot(1, 0.1), 12) });
    expect(nearestNeighbours([1, 0], corpus, 10)).toHaveLength(4);
  });

  it('refuses a k that is not a positive integer', () => {
    expect(() => nearestNeighbours([1, 0], corpus, 0)).toThrow('positive integer, got 0');
  });
});

describe('perplexityFor', () => {
  it('is 30 for large sets and stays below (n − 1) / 3 for small ones', () => {
    expect(perplexityFor(1000)).toBe(30);
    expect(perplexityFor(40)).toBe(13);
    expect(perplexityFor(5)).toBe(2);
  });
});
