import { describe, expect, it } from 'vitest';
import { PALETTE, labelColours } from '../../src/ui/plots/palette.ts';

const colourOf = (labels: string[], label: string) => labelColours(labels).find((c) => c.label === label)?.colour;

describe('label colours', () => {
  it('gives each evaluation group the same colour in every plot, whatever else is shown', () => {
    expect(colourOf(['similar', 'different', 'negation'], 'different')).toBe(PALETTE[1]);
    expect(colourOf(['different'], 'different')).toBe(PALETTE[1]);
    expect(colourOf(['negation', 'similar'], 'negation')).toBe(PALETTE[2]);
    expect(colourOf(['not associated', 'associated'], 'associated')).toBe(PALETTE[3]);
  });

  it('gives other labels the colours the groups shown do not use, in order', () => {
    expect(labelColours(['valve', 'different', 'rhythm'])).toEqual([
      { label: 'different', colour: PALETTE[1] },
      { label: 'rhythm', colour: PALETTE[0] },
      { label: 'valve', colour: PALETTE[2] },
    ]);
    expect(labelColours(['b', 'a']).map((c) => c.colour)).toEqual([PALETTE[0], PALETTE[1]]);
  });
});
