/**
 * What the donor sees: a one-line live status redrawn in place when stdout is a terminal,
 * plain log lines (one per phase change) when it is not.
 */
import type { Logger } from 'pino';

export type AgentPhase =
  | 'starting'
  | 'registering'
  | 'connecting'
  | 'online'
  | 'reconnecting'
  | 'draining'
  | 'drained'
  | 'stopped';

/** The agent's state as shown to the donor. */
export interface AgentSnapshot {
  phase: AgentPhase;
  coordinator: string;
  backend: string;
  workerId?: string;
  heartbeatsSent: number;
  /** Wall-clock ms of the last message received from the coordinator. */
  lastContactAtMs?: number;
  jobId?: string;
  round?: string;
  /** Why we are where we are: the last error, the next retry, … */
  detail?: string;
}

export interface StatusSink {
  update(snapshot: AgentSnapshot): void;
}

const PHASE_MARK: Record<AgentPhase, string> = {
  starting: '…',
  registering: '…',
  connecting: '…',
  online: '●',
  reconnecting: '○',
  draining: '◐',
  drained: '■',
  stopped: '■',
};

/** "3s", "2m05s", "1h02m" (age of the last contact). */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/**
 * One status line, at most `width` characters:
 * `● online  coordinator=host:50051  backend=wasm  heartbeats=12  last contact 2s ago  job=-`.
 */
export function formatStatusLine(s: AgentSnapshot, nowMs: number, width = 120): string {
  const parts = [
    `${PHASE_MARK[s.phase]} ${s.phase}`,
    `coordinator=${s.coordinator}`,
    `backend=${s.backend}`,
    `heartbeats=${s.heartbeatsSent}`,
    s.lastContactAtMs === undefined ? 'no contact yet' : `last contact ${formatAge(nowMs - s.lastContactAtMs)} ago`,
    s.jobId ? `job=${s.jobId}${s.round !== undefined ? ` round=${s.round}` : ''}` : 'job=-',
  ];
  if (s.detail) parts.push(s.detail);
  const line = parts.join('  ');
  if (width <= 1) return '';
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}

export interface TerminalLike {
  write(text: string): unknown;
  columns?: number;
}

/**
 * Redraws the status line in place on a terminal. Log lines are printed above it through
 * `printAbove`, so that they do not tear the line.
 */
export class TtyStatusDisplay implements StatusSink {
  private last?: AgentSnapshot;
  private ticker?: ReturnType<typeof setInterval>;

  constructor(
    private readonly out: TerminalLike,
    private readonly now: () => number = Date.now,
  ) {}

  update(snapshot: AgentSnapshot): void {
    this.last = snapshot;
    this.draw();
    // Keep "last contact Ns ago" honest between updates.
    if (!this.ticker) {
      this.ticker = setInterval(() => this.draw(), 1000);
      this.ticker.unref();
    }
  }

  printAbove(text: string): void {
    this.out.write(`\r\x1b[2K${text.endsWith('\n') ? text : `${text}\n`}`);
    this.draw();
  }

  /** Leaves the last status on its own line and stops redrawing. */
  close(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    if (this.last) this.out.write('\n');
    this.last = undefined;
  }

  private draw(): void {
    if (!this.last) return;
    // columns is 0 or undefined when the terminal does not say its size.
    const width = Math.max(20, (this.out.columns || 120) - 1);
    this.out.write(`\r\x1b[2K${formatStatusLine(this.last, this.now(), width)}`);
  }
}

/** Without a terminal: one log line per change of phase, worker or job (not per heartbeat). */
export class LogStatusSink implements StatusSink {
  private key?: string;

  constructor(private readonly logger: Logger) {}

  update(s: AgentSnapshot): void {
    const key = `${s.phase}|${s.workerId ?? ''}|${s.jobId ?? ''}`;
    if (key === this.key) return;
    this.key = key;
    this.logger.info(
      { phase: s.phase, coordinator: s.coordinator, backend: s.backend, workerId: s.workerId, jobId: s.jobId, detail: s.detail },
      `status: ${s.phase}`,
    );
  }
}
