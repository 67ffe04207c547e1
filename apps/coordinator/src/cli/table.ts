/** Plain-text tables for the admin CLI: columns padded to their widest cell, two spaces apart. */

/** Right-aligned columns are those whose every body cell reads as a number (or is empty / '—'). */
export function table(headers: string[], rows: (string | number)[][]): string[] {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => cells.length > 0 && cells.every((r) => /^(-?[\d,.]+( ?%| s| MiB)?|—|)$/.test(r[i] ?? '')));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)];
}

/** `n` with thousands separators; '—' when it is not a finite number. */
export function num(n: unknown, digits = 0): string {
  return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—';
}

/** A fraction as a percentage with two decimals; '—' when absent. */
export function pct(x: unknown): string {
  return typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(2)} %` : '—';
}
