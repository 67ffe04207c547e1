import { Inject, Injectable } from '@nestjs/common';
import type { DbHandle } from '@gradpool/db';
import type { Heartbeat__Output, WorkerMessage__Output } from '@gradpool/protocol';
import type { CoordinatorConfig } from '../config.js';
import { UnauthenticatedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { CoordinatorMetrics } from '../metrics.js';
import { EventRepository } from '../repositories/event.repository.js';
import { WorkerRepository, type WorkerStatus } from '../repositories/worker.repository.js';
import { isUuid, secretMatches } from '../secrets.js';
import { CONFIG, DATABASE, LOGGER } from '../tokens.js';
import { SessionRegistry, type SessionChannel } from './session-registry.js';

const STATE_NAMES: Record<string, string> = {
  WORKER_STATE_IDLE: 'idle',
  WORKER_STATE_SYNCING: 'syncing',
  WORKER_STATE_TRAINING: 'training',
  WORKER_STATE_DRAINING: 'draining',
};

export interface OpenedSession {
  workerId: string;
  groupId: string;
  heartbeatIntervalMs: number;
  leaseMs: number;
}

/** Worker sessions: authentication, heartbeats, drain, and liveness (offline after silence). */
@Injectable()
export class SessionService {
  private readonly log: Logger;

  constructor(
    @Inject(CONFIG) private readonly config: CoordinatorConfig,
    @Inject(LOGGER) logger: Logger,
    @Inject(DATABASE) private readonly handle: DbHandle,
    private readonly workers: WorkerRepository,
    private readonly events: EventRepository,
    private readonly registry: SessionRegistry,
    private readonly metrics: CoordinatorMetrics,
  ) {
    this.log = logger.child({ component: 'sessions' });
  }

  /** How long a worker may stay silent before it is marked offline. */
  get silenceMs(): number {
    return this.config.heartbeat.intervalMs * this.config.heartbeat.misses;
  }

  /**
   * Authenticates a session (worker id + session secret, lease still running), marks the worker
   * online and makes `channel` its live session. UnauthenticatedError otherwise.
   */
  async open(workerId: string, secret: string, channel: SessionChannel): Promise<OpenedSession> {
    if (!workerId || !secret) throw new UnauthenticatedError('missing session credentials (x-gradpool-worker-id, x-gradpool-session-secret)');
    const row = isUuid(workerId) ? await this.workers.findById(workerId) : undefined;
    if (!row || !secretMatches(secret, row.secretHash)) throw new UnauthenticatedError('unknown worker or wrong session secret');
    if (row.status === 'drained') throw new UnauthenticatedError('this worker has drained; register again');
    if (!row.leaseExpiresAt || row.leaseExpiresAt.getTime() <= Date.now()) {
      throw new UnauthenticatedError('the worker lease has expired; register again');
    }
    const seen = await this.workers.heartbeat(workerId, { leaseMs: this.config.leaseMs });
    if (!seen) throw new UnauthenticatedError('this worker has drained; register again');
    this.registry.attach(workerId, channel);
    this.metrics.sessions.set(this.registry.size);
    await this.recordTransition(workerId, seen.groupId, seen.before, seen.after);
    channel.send({ accepted: { workerId, heartbeatIntervalMs: this.config.heartbeat.intervalMs, leaseMs: this.config.leaseMs } });
    // A drain asked for while the worker was away (or through another replica) is delivered now.
    if (seen.after === 'draining') this.registry.requestDrain(workerId, 'drain requested by an admin');
    this.log.info({ workerId, groupId: seen.groupId, status: seen.after }, 'session opened');
    return { workerId, groupId: seen.groupId, heartbeatIntervalMs: this.config.heartbeat.intervalMs, leaseMs: this.config.leaseMs };
  }

  /** Handles one message of a live session. Messages of a superseded stream are ignored. */
  async handleMessage(workerId: string, channel: SessionChannel, msg: WorkerMessage__Output): Promise<void> {
    if (!this.registry.isCurrent(workerId, channel)) return;
    switch (msg.body) {
      case 'heartbeat':
        if (msg.heartbeat) await this.heartbeat(workerId, msg.heartbeat);
        return;
      case 'drain':
        await this.drained(workerId, channel, msg.drain?.reason ?? '');
        return;
      case 'roundReport':
        if (msg.roundReport) this.registry.emit('roundReport', workerId, msg.roundReport);
        return;
      case 'fault':
        if (msg.fault) this.registry.emit('fault', workerId, msg.fault);
        return;
      default:
        this.log.warn({ workerId }, 'empty worker message ignored');
    }
  }

  /** The worker's stream ended or failed. Its status is left to the liveness loop (it may reconnect). */
  closed(workerId: string, channel: SessionChannel): void {
    if (this.registry.detach(workerId, channel)) {
      this.metrics.sessions.set(this.registry.size);
      this.log.info({ workerId }, 'session closed by the worker');
    }
  }

  /** Marks offline every worker silent for interval × misses and ends its stream. Returns their ids. */
  async markSilentOffline(): Promise<string[]> {
    // The status and the event that says why are committed together: no reader sees one without the other.
    const gone = await this.handle.db.transaction(async (tx) => {
      const rows = await this.workers.markSilentOffline(this.silenceMs, tx);
      await this.events.insert(rows.map((w) => ({ type: 'worker.offline', workerId: w.id, groupId: w.groupId, data: { silenceMs: this.silenceMs } })), tx);
      return rows;
    });
    if (gone.length === 0) return [];
    for (const w of gone) {
      this.registry.close(w.id, 'silent', `no heartbeat for ${this.silenceMs} ms`);
      this.metrics.workerTransitions.inc({ status: 'offline' });
      this.log.info({ workerId: w.id, groupId: w.groupId, durationMs: this.silenceMs }, 'worker offline: missed heartbeats');
    }
    this.metrics.sessions.set(this.registry.size);
    return gone.map((w) => w.id);
  }

  private async heartbeat(workerId: string, hb: Heartbeat__Output): Promise<void> {
    this.metrics.heartbeats.inc();
    const seen = await this.workers.heartbeat(workerId, {
      leaseMs: this.config.leaseMs,
      state: STATE_NAMES[hb.state] ?? 'idle',
      statusText: hb.status.slice(0, 256),
    });
    if (!seen) return;
    await this.recordTransition(workerId, seen.groupId, seen.before, seen.after);
    if (seen.after === 'draining') this.registry.requestDrain(workerId, 'drain requested by an admin');
  }

  private async drained(workerId: string, channel: SessionChannel, reason: string): Promise<void> {
    const row = await this.workers.markDrained(workerId);
    if (row) {
      await this.events.insert({ type: 'worker.drained', workerId, groupId: row.groupId, data: { reason } });
      this.metrics.workerTransitions.inc({ status: 'drained' });
    }
    channel.send({ drainAck: {} });
    this.registry.close(workerId, 'drained', 'drained');
    this.metrics.sessions.set(this.registry.size);
    this.log.info({ workerId, reason }, 'worker drained');
  }

  private async recordTransition(workerId: string, groupId: string, before: WorkerStatus, after: WorkerStatus): Promise<void> {
    if (before === after) return;
    await this.events.insert({ type: `worker.${after}`, workerId, groupId, data: { from: before } });
    this.metrics.workerTransitions.inc({ status: after });
    this.log.info({ workerId, groupId, from: before, to: after }, `worker ${after}`);
  }
}
