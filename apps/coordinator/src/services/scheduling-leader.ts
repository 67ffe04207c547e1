/**
 * Scheduling leadership: a Postgres session-level advisory lock held on a dedicated connection.
 * Whoever holds it schedules and runs the keepers; losing the connection loses the lock, and the
 * holder must stop at once (another replica may take over).
 */
import pg from 'pg';

/** Advisory lock key of the scheduler ("gpsched" as a number). */
export const SCHEDULER_LOCK_KEY = 0x67707363686564;

export class LeaderLock {
  private client: pg.Client | null = null;
  private held = false;
  private lostHandlers: (() => void)[] = [];

  constructor(
    private readonly url: string,
    private readonly key = SCHEDULER_LOCK_KEY,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  onLost(handler: () => void): void {
    this.lostHandlers.push(handler);
  }

  /** Tries to take (or confirms) the lock; returns whether we hold it now. */
  async tryAcquire(): Promise<boolean> {
    try {
      if (!this.client) {
        const c = new pg.Client({ connectionString: this.url, application_name: 'gradpool-scheduler-lock' });
        c.on('error', () => this.lose());
        c.on('end', () => this.lose());
        await c.connect();
        this.client = c;
      }
      if (this.held) {
        // The connection still answers: we still hold the session lock.
        await this.client.query('select 1');
        return true;
      }
      const r = await this.client.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [this.key]);
      this.held = r.rows[0]?.ok === true;
      return this.held;
    } catch {
      this.lose();
      return false;
    }
  }

  private lose(): void {
    const was = this.held;
    this.held = false;
    const c = this.client;
    this.client = null;
    c?.end().catch(() => undefined);
    if (was) for (const h of this.lostHandlers) h();
  }

  async release(): Promise<void> {
    const c = this.client;
    this.client = null;
    const was = this.held;
    this.held = false;
    if (!c) return;
    if (was) await c.query('select pg_advisory_unlock($1)', [this.key]).catch(() => undefined);
    await c.end().catch(() => undefined);
  }
}
