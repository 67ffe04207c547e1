/**
 * Rosters: every membership change of a job makes a new epoch (rosters + roster_members rows,
 * jobs.epoch) with each member's share of the global batch, pushed to the members over their
 * sessions (docs/jobs-protocol.md). Nothing is dealt here: each round's samples are planned by the
 * members and the keeper from the job's data state. Changes of one job are serialised.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { DbHandle } from '@gradpool/db';
import { parseJobSpec, wireSpec, type JobSpec } from '@gradpool/protocol';
import { EventEmitter } from 'node:events';
import type { Logger } from '../logger.js';
import { WorkerNatsAccessService } from './worker-nats-access.service.js';
import { CheckpointRepository } from '../repositories/checkpoint.repository.js';
import { DatasetRepository } from '../repositories/dataset.repository.js';
import { JobRepository, type JobRow } from '../repositories/job.repository.js';
import { RosterRepository, type RosterWithMembers } from '../repositories/roster.repository.js';
import { ShardRepository } from '../repositories/shard.repository.js';
import { DATABASE, LOGGER } from '../tokens.js';
import { JobEventsService } from './job-events.service.js';
import { JobSpecsService } from './job-specs.service.js';
import { SessionRegistry } from './session-registry.js';

export interface RosterChange {
  add?: string[];
  remove?: string[];
  /** Workers to send a fresh Assignment (resync from checkpoint + replay). */
  resync?: string[];
  reason: string;
  /** First round of the new epoch; default: the next round not yet observed (+ lookahead when only adding). */
  startRound?: number;
  /** Start a few rounds ahead so that no member need stop (shares or membership grow only). */
  lookahead?: boolean;
  /** Use `startRound` even if members finished later rounds (the keeper missed rounds: they roll back). */
  force?: boolean;
  /** Only if the job is still in this epoch (several triggers for the same re-deal make one epoch). */
  ifEpoch?: number;
}

/** What the keeper needs of a new epoch. */
export interface EpochInfo {
  jobId: string;
  epoch: number;
  startRound: number;
  /** Worker ids in roster order. */
  members: string[];
  samplesPerRound: number[];
}

/** The job left queued/running while a roster change was being made. */
export class JobNotRunnableError extends Error {
  override name = 'JobNotRunnableError';
}

/** Rounds ahead of the newest observed one at which an epoch that only adds members starts, at least. */
export const ADD_LOOKAHEAD = 3;


/** Splits `total` into integer parts ∝ weights, each ≥ 1 (largest remainder). */
export function proportionalShares(weights: number[], total: number): number[] {
  const k = weights.length;
  if (k === 0) return [];
  if (total < k) throw new RangeError(`cannot give ${k} members at least one of ${total} samples`);
  const w = weights.map((x) => (Number.isFinite(x) && x > 0 ? x : 1));
  const sum = w.reduce((a, b) => a + b, 0);
  const rest = total - k;
  const exact = w.map((x) => (x / sum) * rest);
  const out = exact.map((x) => 1 + Math.floor(x));
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, f: x - Math.floor(x) })).sort((a, b) => b.f - a.f || a.i - b.i);
  for (let j = 0; left > 0; j = (j + 1) % k, left--) out[order[j].i]++;
  return out;
}

@Injectable()
export class JobRosterService {
  private readonly log: Logger;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly changes = new EventEmitter();
  /** Newest round observed (gathered) by the keeper of a job, when one runs here. */
  private observedRound: (jobId: string) => number | undefined = () => undefined;
  /** Measured samples/s of a worker in a job, when known. */
  private speedOf: (jobId: string, workerId: string) => number | undefined = () => undefined;
  private keeperReady: (jobId: string) => Promise<unknown> = async () => undefined;

  constructor(
    @Inject(DATABASE) private readonly handle: DbHandle,
    @Inject(LOGGER) logger: Logger,
    private readonly jobs: JobRepository,
    private readonly rosters: RosterRepository,
    private readonly checkpoints: CheckpointRepository,
    private readonly datasets: DatasetRepository,
    private readonly shards: ShardRepository,
    private readonly specs: JobSpecsService,
    private readonly registry: SessionRegistry,
    private readonly events: JobEventsService,
    private readonly natsAccess: WorkerNatsAccessService,
  ) {
    this.log = logger.child({ component: 'rosters' });
  }

  setProbes(probes: {
    observedRound: (jobId: string) => number | undefined;
    speed: (jobId: string, workerId: string) => number | undefined;
    /** Starts the job's keeper if needed; awaited before members hear of an epoch, so it sees their first gather. */
    keeperReady: (jobId: string) => Promise<unknown>;
  }): void {
    this.observedRound = probes.observedRound;
    this.speedOf = probes.speed;
    this.keeperReady = probes.keeperReady;
  }

  onEpoch(listener: (e: EpochInfo) => void): () => void {
    this.changes.on('epoch', listener);
    return () => this.changes.off('epoch', listener);
  }

  /** An epoch about to be made (`pending`, before its rows exist) or abandoned (`cancelled`). */
  onPending(listener: (e: { jobId: string; epoch: number; startRound: number }) => void, cancelled: (e: { jobId: string; epoch: number }) => void): () => void {
    this.changes.on('pending', listener);
    this.changes.on('cancelled', cancelled);
    return () => {
      this.changes.off('pending', listener);
      this.changes.off('cancelled', cancelled);
    };
  }

  /** Runs `fn` after every earlier change of the same job (one at a time per job). */
  serialise<T>(jobId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(jobId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.locks.set(jobId, settled);
    void settled.then(() => {
      if (this.locks.get(jobId) === settled) this.locks.delete(jobId);
    });
    return next;
  }

  /** Applies a membership change (or a re-deal); returns the new epoch, or null when none was made. */
  change(jobId: string, c: RosterChange): Promise<EpochInfo | null> {
    return this.serialise(jobId, () =>
      this.changeNow(jobId, c).catch((err: unknown) => {
        if (err instanceof JobNotRunnableError) return null;
        throw err;
      }),
    );
  }

  private async changeNow(jobId: string, c: RosterChange): Promise<EpochInfo | null> {
    const job = await this.jobs.findById(jobId);
    if (!job || !['queued', 'running'].includes(job.status)) return null;
    if (c.ifEpoch !== undefined && job.epoch !== c.ifEpoch) return null;
    const spec = parseJobSpec(job.spec);
    const before = await this.rosters.assigned(jobId);
    const remove = new Set(c.remove ?? []);
    const beforeIds = before.map((w) => w.id);
    const added = (c.add ?? []).filter((id) => !beforeIds.includes(id));
    const removed = beforeIds.filter((id) => remove.has(id));
    const ids = [...beforeIds.filter((id) => !remove.has(id)), ...added];
    // A removal of someone already gone (several members report the same missing owner) is a no-op.
    if (c.remove?.length && !removed.length && !added.length && !c.resync?.length) return null;
    if (c.add?.length && !added.length && !c.remove?.length) return null;
    // A live job's dataset cannot be deleted (DatasetService), so this is a bug, not a user error.
    const dataset = job.datasetId ? await this.datasets.findById(job.datasetId) : undefined;
    if (!dataset || !job.datasetId) throw new Error(`the dataset of job ${jobId} is gone`);
    const train = await this.shards.listByDataset(job.datasetId, 'train');

    if (ids.length < spec.minWorkers) {
      // Not enough workers: the job waits (its state is in Postgres and the latest checkpoint).
      await this.handle.db.transaction(async (tx) => {
        await this.rosters.setAssignment(added, jobId, tx);
        if (job.status === 'running' || ids.length === 0) {
          await this.rosters.clearJob(jobId, tx);
        }
        const row = await this.jobs.transition(jobId, ['queued', 'running'], { status: 'queued', statusReason: `waiting for workers: ${ids.length} of minWorkers ${spec.minWorkers}` }, tx);
        if (!row) throw new JobNotRunnableError(`job ${jobId} is no longer queued or running`);
      });
      if (job.status === 'running') {
        for (const id of [...ids, ...removed]) this.registry.send(id, { unassignment: { jobId, reason: 'not enough workers; the job waits' } });
        await this.events.record(jobId, 'job.state', { status: 'queued', reason: `waiting for workers: ${ids.length} of ${spec.minWorkers}` });
        this.changes.emit('waiting', jobId);
      } else if (added.length) {
        // Not started yet: keep nothing reserved.
        await this.rosters.clearJob(jobId);
      }
      return null;
    }

    const latest = await this.rosters.latest(jobId);
    const epoch = (latest?.epoch ?? 0) + 1;
    // The start round is chosen and announced to the keeper without an await in between: every
    // round a member has finished is ≤ lastSeen, and from now on the keeper takes no round
    // ≥ startRound from an older epoch (it would be re-run in this one).
    const lastSeen = Math.max(job.round, this.observedRound(jobId) ?? -1);
    const onlyAdds = removed.length === 0 && job.status === 'running';
    const lookahead = c.lookahead || (onlyAdds && added.length > 0) ? ADD_LOOKAHEAD - 1 : 0;
    const startRound = c.force && c.startRound !== undefined ? c.startRound : Math.max(c.startRound ?? 0, lastSeen + 1 + lookahead);
    this.changes.emit('pending', { jobId, epoch, startRound });
    try {
      return await this.finishChange(jobId, c, { job, spec, before, added, removed, ids, dataset, train, latest, epoch, startRound });
    } catch (err) {
      this.changes.emit('cancelled', { jobId, epoch });
      throw err;
    }
  }

  private async finishChange(
    jobId: string,
    c: RosterChange,
    x: {
      job: JobRow;
      spec: JobSpec;
      before: Awaited<ReturnType<RosterRepository['assigned']>>;
      added: string[];
      removed: string[];
      ids: string[];
      dataset: NonNullable<Awaited<ReturnType<DatasetRepository['findById']>>>;
      train: Awaited<ReturnType<ShardRepository['listByDataset']>>;
      latest: RosterWithMembers | undefined;
      epoch: number;
      startRound: number;
    },
  ): Promise<EpochInfo> {
    const { job, spec, before, added, removed, ids, dataset, train, latest, epoch, startRound } = x;
    const maxMembers = Math.min(ids.length, spec.globalBatch);
    const paramCount = await this.specs.paramCount(jobId, spec);
    const speeds = new Map<string, number>();
    const all = [...before, ...(await this.workerRows(added))];
    for (const id of ids) {
      const measured = this.speedOf(jobId, id);
      const prev = latest?.members.find((m) => m.workerId === id)?.speed;
      const gflops = all.find((w) => w.id === id)?.capabilities.gflops ?? 1;
      // gflops → samples/s: forward + backward ≈ 3 × the forward FLOPs (≈ 6 × P per sample for dense nets).
      speeds.set(id, measured ?? (prev && prev > 0 ? prev : (gflops * 1e9) / (6 * paramCount)));
    }
    // Every member needs a share of at least one sample; beyond globalBatch members wait.
    const members = ids.slice(0, maxMembers);
    const shares = proportionalShares(members.map((id) => speeds.get(id)!), spec.globalBatch);

    await this.handle.db.transaction(async (tx) => {
      await this.rosters.insert(
        { jobId, epoch, startRound, reason: c.reason },
        members.map((id, i) => ({ jobId, epoch, workerId: id, index: i, samplesPerRound: shares[i], speed: speeds.get(id)! })),
        tx,
      );
      await this.rosters.setAssignment(added, jobId, tx);
      if (removed.length) await this.rosters.setAssignment(removed, null, tx);
      // Only a queued or running job gets an epoch: one that completed, paused or was cancelled
      // meanwhile stays so (the transaction rolls back).
      const row = await this.jobs.transition(jobId, ['queued', 'running'], { epoch, status: 'running', statusReason: '', startedAt: job.startedAt ?? new Date() }, tx);
      if (!row) throw new JobNotRunnableError(`job ${jobId} is no longer queued or running`);
    });
    const info: EpochInfo = { jobId, epoch, startRound, members, samplesPerRound: shares };
    this.log.info({ jobId, epoch, startRound, members: members.length, added: added.length, removed: removed.length, reason: c.reason }, 'new roster');
    this.changes.emit('epoch', info);
    await this.keeperReady(jobId).catch((err) => this.log.error({ err, jobId }, 'keeper not ready'));

    for (const id of removed) this.registry.send(id, { unassignment: { jobId, reason: `removed from the roster: ${c.reason}` } });
    const fresh = new Set([...added, ...(c.resync ?? [])]);
    if (job.status !== 'running') for (const id of ids) fresh.add(id);
    if (fresh.size) {
      const assignment = await this.assignment({ ...job, epoch }, spec, dataset, train);
      for (const id of fresh) if (ids.includes(id)) this.registry.send(id, { assignment: { ...assignment, nats: await this.natsAccess.forJob(id, jobId) } });
    }
    const update = this.rosterUpdate(info);
    for (const id of ids) this.registry.send(id, { roster: update });
    await this.events.record(jobId, 'job.roster', {
      epoch,
      startRound,
      reason: c.reason,
      members: members.map((id, i) => ({ workerId: id, samplesPerRound: shares[i], speed: speeds.get(id) })),
      benched: ids.filter((id) => !members.includes(id)),
      added,
      removed,
    });
    if (job.status !== 'running') await this.events.record(jobId, 'job.state', { status: 'running' });
    return info;
  }

  /** A fresh Assignment + the current RosterUpdate for one member (hash mismatch, reconnect). */
  async resync(jobId: string, workerId: string): Promise<void> {
    const job = await this.jobs.findById(jobId);
    const latest = await this.rosters.latest(jobId);
    if (!job || !latest || job.status !== 'running') return;
    const spec = parseJobSpec(job.spec);
    const dataset = job.datasetId ? await this.datasets.findById(job.datasetId) : undefined;
    if (!dataset || !job.datasetId) return;
    const train = await this.shards.listByDataset(job.datasetId, 'train');
    this.registry.send(workerId, { assignment: { ...(await this.assignment(job, spec, dataset, train)), nats: await this.natsAccess.forJob(workerId, jobId) } });
    this.registry.send(workerId, { roster: this.rosterUpdate(this.epochInfo(jobId, latest)) });
  }

  /** Sends a reconnected worker the current roster of its job (it may have missed it while away). */
  async resendRoster(workerId: string): Promise<void> {
    const [w] = await this.handle.db.query.workers.findMany({ where: (t, { eq }) => eq(t.id, workerId) });
    if (!w?.currentJobId) return;
    const job = await this.jobs.findById(w.currentJobId);
    const latest = job?.status === 'running' ? await this.rosters.latest(job.id) : undefined;
    if (!latest) return;
    this.registry.send(workerId, { roster: this.rosterUpdate(this.epochInfo(latest.jobId, latest)) });
  }

  epochInfo(jobId: string, r: RosterWithMembers): EpochInfo {
    return {
      jobId,
      epoch: r.epoch,
      startRound: r.startRound,
      members: r.members.map((m) => m.workerId),
      samplesPerRound: r.members.map((m) => m.samplesPerRound),
    };
  }

  private async workerRows(ids: string[]) {
    const out = [];
    for (const id of ids) {
      const [w] = await this.handle.db.query.workers.findMany({ where: (t, { eq }) => eq(t.id, id) });
      if (w) out.push(w);
    }
    return out;
  }

  private async assignment(job: JobRow, spec: JobSpec, dataset: NonNullable<Awaited<ReturnType<DatasetRepository['findById']>>>, train: Awaited<ReturnType<ShardRepository['listByDataset']>>) {
    const cp = await this.checkpoints.latest(job.id);
    const assigned = await this.specs.assignedJob(job.id, spec, dataset, train);
    return {
      jobId: job.id,
      jobName: job.name,
      specJson: JSON.stringify({ ...assigned, spec: wireSpec(assigned.spec) }),
      checkpointBucket: cp?.bucket ?? '',
      checkpointKey: cp?.objectKey ?? '',
      checkpointRound: cp?.round ?? 0,
    };
  }

  private rosterUpdate(info: EpochInfo) {
    return {
      jobId: info.jobId,
      epoch: info.epoch,
      startRound: info.startRound,
      members: info.members.map((id, i) => ({ workerId: id, index: i, samplesPerRound: info.samplesPerRound[i], ownedShards: [] })),
    };
  }
}
