/** Terminal output helpers for the demo: colour only on a TTY, aligned tables. */
const tty = process.stdout.isTTY === true && !process.env.NO_COLOR;
const wrap = (open: number, close: number) => (s: string) => (tty ? `\x1b[${open}m${s}\x1b[${close}m` : s);
export const bold = wrap(1, 22);
export const dim = wrap(2, 22);
export const green = wrap(32, 39);

/** Formats rows under headers with aligned columns, indented by two spaces. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => '  ' + r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [bold(line(headers)), ...cells.slice(1).map(line)].join('\n');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** Rewrites the current terminal line (a plain line per call when not a TTY). */
export function liveLine(text: string): void {
  if (tty) process.stdout.write(`\r\x1b[2K${text}`);
  else console.log(text);
}

export function endLiveLine(): void {
  if (tty) process.stdout.write('\n');
}
