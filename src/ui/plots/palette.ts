/**
 * Okabe & Ito's colour-blind-safe palette (2008), ordered for contrast on white; yellow and black
 * last. Labels past the eighth reuse colours in order.
 */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#56B4E9', '#CC79A7', '#F0E442', '#000000'] as const;

export function colourAt(index: number): string {
  return PALETTE[index % PALETTE.length];
}

/** Groups of the evaluation sets, each with a fixed colour (its index in PALETTE) in every plot. */
const KNOWN_ORDER = ['similar', 'different', 'negation', 'associated', 'not associated'];

/**
 * Distinct labels (known evaluation groups first, then sorted), each with its colour: a known group
 * always gets its own colour, so "similar" is the same blue in the histogram and on the maps; other
 * labels take the colours left over, in order.
 */
export function labelColours(labels: readonly string[]): { label: string; colour: string }[] {
  const rank = (label: string) => (KNOWN_ORDER.includes(label) ? KNOWN_ORDER.indexOf(label) : KNOWN_ORDER.length);
  const distinct = [...new Set(labels)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  const taken = new Set(distinct.filter((l) => KNOWN_ORDER.includes(l)).map((l) => KNOWN_ORDER.indexOf(l)));
  let next = 0;
  return distinct.map((label) => {
    if (KNOWN_ORDER.includes(label)) return { label, colour: colourAt(KNOWN_ORDER.indexOf(label)) };
    while (taken.has(next % PALETTE.length) && taken.size < PALETTE.length) next++;
    return { label, colour: colourAt(next++) };
  });
}
