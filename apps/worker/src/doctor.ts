/** `gradpool-worker doctor`: which compute backends load here, why the others do not, and how fast each is. */
import { activateBackend, BACKEND_ORDER, measureMatmulGflops, type BackendName } from '@gradpool/training';

export interface DoctorRow {
  backend: BackendName;
  ok: boolean;
  /** Why it did not load (when !ok) or why it could not be measured. */
  reason?: string;
  gflops?: number;
}

/** Tries every backend, best first, and measures the ones that load. */
export async function runDoctor(measure: () => Promise<number> = () => measureMatmulGflops()): Promise<DoctorRow[]> {
  const rows: DoctorRow[] = [];
  for (const backend of BACKEND_ORDER) {
    const probe = await activateBackend(backend);
    if (!probe.ok) {
      rows.push({ backend, ok: false, reason: probe.reason });
      continue;
    }
    try {
      rows.push({ backend, ok: true, gflops: await measure() });
    } catch (err) {
      rows.push({ backend, ok: true, reason: `loaded, but the benchmark failed: ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  return rows;
}

/** The table `doctor` prints, and which backend `--backend auto` would pick. */
export function formatDoctorReport(rows: readonly DoctorRow[]): string {
  const lines = ['backend  loads  GFLOP/s  notes'];
  for (const r of rows) {
    const gflops = r.gflops === undefined ? '-' : r.gflops.toFixed(1);
    lines.push(`${r.backend.padEnd(8)} ${(r.ok ? 'yes' : 'no').padEnd(6)} ${gflops.padStart(7)}  ${r.reason ?? ''}`.trimEnd());
  }
  const best = rows.find((r) => r.ok);
  lines.push(best ? `--backend auto picks: ${best.backend}` : 'no backend loads: the worker cannot run here');
  return `${lines.join('\n')}\n`;
}
