/** The newest roster of one job, as the agent forwards them, with waits that take a signal. */
import type { RosterUpdate__Output } from '@gradpool/protocol';
import type { RunnerContext } from '../runner.js';

export class RosterWatch implements Disposable {
  private newest: RosterUpdate__Output | undefined;
  private readonly listeners = new Set<(r: RosterUpdate__Output) => void>();
  private readonly unsubscribe: () => void;

  constructor(context: Pick<RunnerContext, 'latestRoster' | 'onRoster'>, jobId: string) {
    this.unsubscribe = context.onRoster((r) => r.jobId === jobId && this.offer(r));
    const latest = context.latestRoster();
    if (latest && latest.jobId === jobId) this.offer(latest);
  }

  private offer(r: RosterUpdate__Output): void {
    if (this.newest && r.epoch <= this.newest.epoch) return;
    this.newest = r;
    for (const l of [...this.listeners]) l(r);
  }

  /** The newest roster with an epoch above `epoch`, if one has arrived. */
  newerThan(epoch: number): RosterUpdate__Output | undefined {
    return this.newest && this.newest.epoch > epoch ? this.newest : undefined;
  }

  /** Calls `listener` for each later roster; returns an unsubscribe function. */
  onNewer(listener: (r: RosterUpdate__Output) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the newest roster whose epoch is above `epoch` (−1: any); rejects when `signal` aborts. */
  wait(epoch: number, signal: AbortSignal): Promise<RosterUpdate__Output> {
    const have = this.newerThan(epoch);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        off();
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const off = this.onNewer((r) => {
        off();
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      });
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  [Symbol.dispose](): void {
    this.unsubscribe();
    this.listeners.clear();
  }
}
