/**
 * pino loggers of the worker agent. Logs go to stderr so that stdout holds only the CLI's own
 * output (the live status line, `doctor`'s table).
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where JSON lines go; stderr (synchronously, so nothing is lost on exit) by default. */
  destination?: DestinationStream;
}

/** The agent's root logger; components take named children (`logger.child({ component: 'agent' })`). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino({ name: 'gradpool-worker', level: options.level ?? 'info', base: { pid: process.pid } }, destination);
}

/** A logger that drops everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v']);

/**
 * Turns one pino JSON line into a short human line for a terminal:
 * `14:03:07 INFO  registered workerId=w_1 groupId=g_1`. Lines that are not JSON pass through.
 */
export function formatLogLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 19) : '--:--:--';
  const level = (LEVELS[rec.level as number] ?? String(rec.level)).padEnd(5);
  const fields = Object.entries(rec)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [time, level, String(rec.msg ?? ''), ...fields].join(' ').trimEnd();
}
