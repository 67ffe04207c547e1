import type { Logger } from '../logger.js';
import { shutdownPart } from '../shutdown.js';

/**
 * Runs `pass` every `periodMs`, one pass at a time (the next is timed from the end of the last);
 * a failed pass is logged as `<name> failed` and the next one runs as usual. `stop` waits for a
 * pass in progress, named `<name> in progress` among the pending parts of a shutdown.
 */
export class PeriodicPass {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly periodMs: number,
    private readonly pass: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await shutdownPart(`${this.name} in progress`, async () => this.running);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass()
        .then(
          () => undefined,
          (err: unknown) => this.log.warn({ err }, `${this.name} failed`),
        )
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.periodMs);
  }
}
