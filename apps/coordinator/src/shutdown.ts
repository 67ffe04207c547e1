import type { Logger } from './logger.js';

/** Shutdown hooks (and their parts) running now, by name: what a stuck close is waiting for. */
const pending = new Map<string, number>();

/** Runs one part of a shutdown, named among the pending ones until it ends. */
export async function shutdownPart<T>(name: string, work: () => Promise<T>): Promise<T> {
  pending.set(name, (pending.get(name) ?? 0) + 1);
  try {
    return await work();
  } finally {
    const n = (pending.get(name) ?? 1) - 1;
    if (n > 0) pending.set(name, n);
    else pending.delete(name);
  }
}

/** The parts of shutdowns in this process that have not ended. */
export function pendingShutdownParts(): string[] {
  return [...pending.keys()];
}

/**
 * Awaits one step of a shutdown. A step that takes more than 10 s is reported (an error log line
 * and a process warning, which reach stderr whatever the log level, with what is still open),
 * again every 10 s, and given up after `limitMs` so that a stop always ends.
 */
export async function shutdownStep(log: Logger, step: string, work: Promise<unknown>, limitMs: number, detail: () => object = () => ({})): Promise<void> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const report = (final: boolean) => {
    const info = { step, waitedMs: Math.round(performance.now() - t0), ...detail(), open: process.getActiveResourcesInfo() };
    const what = final ? `shutdown: gave up waiting for ${step}` : `shutdown: still waiting for ${step}`;
    log.error(info, what);
    process.emitWarning(`${what} after ${info.waitedMs} ms (${JSON.stringify(detail())}; open: ${info.open.join(', ')})`, 'GradpoolShutdownWarning');
  };
  // Counted in the timers' own durations, not by reading the clock when one fires: a Node timer
  // can fire a fraction of a millisecond before its duration has passed on performance.now().
  let planned = 0;
  const limit = new Promise<'limit'>((resolve) => {
    const schedule = () => {
      const d = Math.min(10_000, limitMs - planned);
      planned += d;
      timer = setTimeout(() => {
        if (planned >= limitMs) return resolve('limit');
        report(false);
        schedule();
      }, d);
    };
    schedule();
  });
  try {
    const outcome = await Promise.race([work.then(() => 'done' as const, (err: unknown) => (log.warn({ err, step }, 'shutdown step failed'), 'done' as const)), limit]);
    if (outcome === 'limit') report(true);
  } finally {
    clearTimeout(timer);
  }
}
