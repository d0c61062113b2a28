/** Text exports: CSV (RFC 4180) and the TensorBoard Embedding Projector's vectors.tsv + metadata.tsv. */

export type Cell = string | number | boolean | null | undefined;

function csvCell(value: Cell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let text = String(value);
  // A leading = + - @ makes spreadsheets evaluate the cell as a formula: keep it text.
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Rows → CSV with a header; columns default to the keys of the first row. */
export function toCsv(rows: readonly Record<string, Cell>[], columns: readonly string[] = rows.length ? Object.keys(rows[0]) : []): string {
  const lines = [columns.map(csvCell).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** Tabs and line breaks would split a TSV field: they become spaces. */
function tsvField(value: Cell): string {
  return value === null || value === undefined ? '' : String(value).replace(/[\t\r\n]+/g, ' ');
}

/**
 * Files for projector.tensorflow.org: vectors.tsv (one vector per line, tab-separated, no header)
 * and metadata.tsv (a header row of column names when there is more than one column, as the
 * Projector expects; a single column has none).
 */
export function projectorTsv(vectors: readonly ArrayLike<number>[], metadata: readonly Record<string, Cell>[]): { vectors: string; metadata: string } {
  if (metadata.length !== vectors.length) throw new Error(`projector export: ${vectors.length} vectors but ${metadata.length} metadata rows`);
  const width = vectors.length ? vectors[0].length : 0;
  const vectorLines = vectors.map((v, i) => {
    if (v.length !== width) throw new Error(`projector export: vector ${i} has ${v.length} values, vector 0 has ${width}`);
    return Array.from(v, (x) => String(x)).join('\t');
  });
  const columns = metadata.length ? Object.keys(metadata[0]) : [];
  const metaLines = metadata.map((row) => columns.map((c) => tsvField(row[c])).join('\t'));
  if (columns.length > 1) metaLines.unshift(columns.map(tsvField).join('\t'));
  return { vectors: vectorLines.join('\n') + '\n', metadata: metaLines.join('\n') + '\n' };
}
