import type { Logger } from './logger.js';

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
  const limit = new Promise<'limit'>((resolve) => {
    const tick = () => {
      if (performance.now() - t0 >= limitMs) return resolve('limit');
      report(false);
      timer = setTimeout(tick, 10_000);
    };
    timer = setTimeout(tick, Math.min(10_000, limitMs));
  });
  try {
    const outcome = await Promise.race([work.then(() => 'done' as const, (err: unknown) => (log.warn({ err, step }, 'shutdown step failed'), 'done' as const)), limit]);
    if (outcome === 'limit') report(true);
  } finally {
    clearTimeout(timer);
  }
}
