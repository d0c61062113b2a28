/**
 * A colour key drawn inside an Observable Plot chart, so exported SVG and PNG files carry it too:
 * in the top margin, right-aligned, where it cannot cover the data. Charts that use it reserve
 * `legendHeight(entries)` as their top margin.
 */
import * as Plot from '@observablehq/plot';

const LINE = 15;

export function legendHeight(entries: readonly unknown[]): number {
  return 12 + LINE * entries.length;
}

export function legendMarks(entries: readonly { label: string; colour: string }[]): Plot.Markish[] {
  return entries.map((entry, i) =>
    Plot.text([entry.label], {
      text: (d: string) => `■ ${d}`,
      fill: entry.colour,
      frameAnchor: 'top-right',
      textAnchor: 'end',
      dx: -6,
      dy: -legendHeight(entries) + 12 + LINE * i,
      fontSize: 12,
      facet: 'super',
    }),
  );
}
