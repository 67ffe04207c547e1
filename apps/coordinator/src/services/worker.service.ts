import { Inject, Injectable } from '@nestjs/common';
import type { WorkerCapabilities } from '@gradpool/db';
import { FailedPreconditionError, NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import { CoordinatorMetrics } from '../metrics.js';
import { EventRepository } from '../repositories/event.repository.js';
import { ExclusionRepository } from '../repositories/exclusion.repository.js';
import { WorkerRepository, type WorkerRow, type WorkerStatus } from '../repositories/worker.repository.js';
import { LOGGER } from '../tokens.js';
import { SessionRegistry } from './session-registry.js';

export interface WorkerView {
  id: string;
  groupId: string;
  name: string;
  status: WorkerStatus;
  /** Agent-reported state: idle, syncing, training, draining. */
  state: string;
  statusText: string;
  capabilities: WorkerCapabilities;
  currentJobId: string | null;
  reputation: number;
  registeredAt: string;
  lastSeenAt: string | null;
  leaseExpiresAt: string | null;
  /** Whether its session stream is open on this coordinator. */
  connected: boolean;
}

/** `GET /v1/workers/:id`: also the jobs it is kept out of now (`until` null: for good). */
export interface WorkerDetail extends WorkerView {
  keptOutOf: { jobId: string; jobName: string; kind: string; reason: string; since: string; until: string | null }[];
}

@Injectable()
export class WorkerService {
  private readonly log: Logger;

  constructor(
    @Inject(LOGGER) logger: Logger,
    private readonly workers: WorkerRepository,
    private readonly events: EventRepository,
    private readonly exclusions: ExclusionRepository,
    private readonly registry: SessionRegistry,
    private readonly metrics: CoordinatorMetrics,
  ) {
    this.log = logger.child({ component: 'workers' });
  }

  toView(w: WorkerRow): WorkerView {
    return {
      id: w.id,
      groupId: w.groupId,
      name: w.name,
      status: w.status,
      state: w.state,
      statusText: w.statusText,
      capabilities: w.capabilities,
      currentJobId: w.currentJobId,
      reputation: w.reputation,
      registeredAt: w.registeredAt.toISOString(),
      lastSeenAt: w.lastSeenAt?.toISOString() ?? null,
      leaseExpiresAt: w.leaseExpiresAt?.toISOString() ?? null,
      connected: this.registry.has(w.id),
    };
  }

  /** Refreshes the per-status worker gauge (called before a metrics scrape). */
  async refreshGauges(): Promise<void> {
    for (const [status, n] of Object.entries(await this.workers.countByStatus())) this.metrics.workers.set({ status }, n);
  }

  async list(filter: { groupId?: string; status?: WorkerStatus }): Promise<WorkerView[]> {
    return (await this.workers.list(filter)).map((w) => this.toView(w));
  }

  async get(id: string): Promise<WorkerDetail> {
    const view = this.toView(await this.require(id));
    const kept = await this.exclusions.ofWorker(id);
    return { ...view, keptOutOf: kept.map((e) => ({ jobId: e.jobId, jobName: e.jobName, kind: e.kind, reason: e.reason, since: e.since.toISOString(), until: e.until?.toISOString() ?? null })) };
  }

  /** The raw row (for authorisation by group). */
  async require(id: string): Promise<WorkerRow> {
    const row = await this.workers.findById(id);
    if (!row) throw new NotFoundError(`worker ${id} not found`);
    return row;
  }

  /**
   * Asks an online worker to drain: marks it draining and sends a DrainRequest on its session
   * (now if its stream is here, else on its next heartbeat). The worker answers with a
   * DrainNotice and is then drained.
   */
  async requestDrain(id: string, reason = 'drain requested by an admin'): Promise<WorkerView> {
    const row = await this.require(id);
    if (row.status === 'draining' || row.status === 'drained') return this.toView(row);
    const updated = await this.workers.markDraining(id);
    if (!updated) throw new FailedPreconditionError(`worker ${id} is ${row.status}; only an online worker can be drained`);
    await this.events.insert({ type: 'worker.draining', workerId: id, groupId: updated.groupId, data: { reason } });
    this.metrics.workerTransitions.inc({ status: 'draining' });
    const sent = this.registry.requestDrain(id, reason);
    this.log.info({ workerId: id, sent }, 'drain requested');
    return this.toView(updated);
  }
}
