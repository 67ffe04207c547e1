/** Starting the keeper's worker threads (keeper-state.worker.ts, eval.worker.ts). */
import { Worker } from 'node:worker_threads';

/**
 * A worker thread running the built file at `url`, with this process's node options, less the
 * source condition a test runner may have set (the thread runs built JavaScript). A thread
 * refuses V8 and process-wide options (`--expose-gc`, `--max-old-space-size`, …): where the
 * process has some, the thread gets only its `--conditions`.
 */
export function startThread(url: URL): Worker {
  const execArgv = process.execArgv.filter((a, i, all) => a !== '@gradpool/source' && !(a === '--conditions' && all[i + 1] === '@gradpool/source'));
  try {
    return new Worker(url, { execArgv });
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
    const conditions = execArgv.flatMap((a, i) => (a === '--conditions' || a === '-C' ? [a, execArgv[i + 1]] : a.startsWith('--conditions=') ? [a] : []));
    return new Worker(url, { execArgv: conditions });
  }
}
