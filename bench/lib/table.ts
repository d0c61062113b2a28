/** A Markdown table for the benchmarks' readable output. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
