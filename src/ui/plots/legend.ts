/**
 * A colour key drawn inside an Observable Plot chart (top-right of the whole figure), so exported
 * SVG and PNG files carry it too.
 */
import * as Plot from '@observablehq/plot';

export function legendMarks(entries: readonly { label: string; colour: string }[]): Plot.Markish[] {
  return entries.map((entry, i) =>
    Plot.text([entry.label], {
      text: (d: string) => `■ ${d}`,
      fill: entry.colour,
      frameAnchor: 'top-right',
      textAnchor: 'end',
      dx: -6,
      dy: 8 + 15 * i,
      fontSize: 12,
      facet: 'super',
    }),
  );
}
