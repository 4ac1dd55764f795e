/** Markdown tables and summary statistics (mean and sample standard deviation over seeds). */

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Sample standard deviation (n - 1); 0 for a single value. */
export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** "98.71 ± 0.05" in percent from fractions, or "98.71" for a single seed. */
export function pctMeanStd(xs: number[], digits = 2): string {
  if (!xs.length) return '—';
  const m = (100 * mean(xs)).toFixed(digits);
  return xs.length > 1 ? `${m} ± ${(100 * std(xs)).toFixed(digits)}` : m;
}

export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
