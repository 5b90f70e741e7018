/** The summary row every benchmark contributes, and the text and Markdown tables they are printed in. */
export interface SummaryRow {
  benchmark: string;
  metric: string;
  tusgate: string;
  baseline: string;
  ratio: string;
  target: string;
  result: 'PASS' | 'MISS' | 'info' | 'n/a';
}

export const verdict = (ok: boolean | undefined): SummaryRow['result'] => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS');

export function textTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function mdTable(headers: string[], rows: Array<Array<string | number>>): string {
  const esc = (v: string | number) => String(v).replace(/\|/g, '\\|');
  return [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}
