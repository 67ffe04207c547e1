/**
 * A job's event log: rows in `events` (durable, for the API and after restarts) and an
 * in-process feed for the server-sent events of `GET /v1/jobs/:id/events`.
 */
import { Injectable } from '@nestjs/common';
import type { DbOrTx } from '@gradpool/db';
import { EventEmitter } from 'node:events';
import { EventRepository } from '../repositories/event.repository.js';

export interface JobEvent {
  /** `job.state`, `job.roster`, `job.round`, `job.checkpoint`, `job.fault`, `job.eval`, `job.hash-mismatch`, … */
  type: string;
  jobId: string;
  workerId?: string | null;
  data: Record<string, unknown>;
  at: string;
}

@Injectable()
export class JobEventsService {
  private readonly feed = new EventEmitter();

  constructor(private readonly events: EventRepository) {
    this.feed.setMaxListeners(0);
  }

  /** Writes the event (in `tx` when given) and publishes it to live listeners. */
  async record(jobId: string, type: string, data: Record<string, unknown> = {}, opts: { workerId?: string | null; groupId?: string | null; tx?: DbOrTx; durable?: boolean } = {}): Promise<void> {
    if (opts.durable !== false) {
      await this.events.insert({ jobId, type, data, workerId: opts.workerId ?? null, groupId: opts.groupId ?? null }, opts.tx);
    }
    this.publish({ type, jobId, workerId: opts.workerId ?? null, data, at: new Date().toISOString() });
  }

  /** `job.fault` events of `kind` of a worker in a job since it was last readmitted (EventRepository). */
  faultsSinceReadmit(jobId: string, workerId: string, kind: string): Promise<number> {
    return this.events.faultsSinceReadmit(jobId, workerId, kind);
  }

  /** Live only (no row): per-round progress that the rounds table already records. */
  publish(e: JobEvent): void {
    this.feed.emit(e.jobId, e);
  }

  subscribe(jobId: string, listener: (e: JobEvent) => void): () => void {
    this.feed.on(jobId, listener);
    return () => this.feed.off(jobId, listener);
  }
}
