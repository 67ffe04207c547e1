/**
 * Job lifecycle for the admin API: submit (validated, checkpoint 0 written), list, detail,
 * pause / resume / cancel, metrics, checkpoints, the exported model. Scheduling and rounds are
 * elsewhere (SchedulingService, KeeperService).
 */
import { Inject, Injectable } from '@nestjs/common';
import type { DbHandle } from '@gradpool/db';
import { parseJobSpec, type JobSpec } from '@gradpool/protocol';
import { randomUUID } from 'node:crypto';
import { assertGroupAccess, type Principal } from '../auth/principal.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { CheckpointRepository } from '../repositories/checkpoint.repository.js';
import { CreditRepository } from '../repositories/credit.repository.js';
import type { ActiveExclusion } from '../repositories/exclusion.repository.js';
import { JobRepository, type JobRow, type JobStatus } from '../repositories/job.repository.js';
import { MetricRepository } from '../repositories/metric.repository.js';
import { RosterRepository } from '../repositories/roster.repository.js';
import { RoundRepository } from '../repositories/round.repository.js';
import { ShardRepository } from '../repositories/shard.repository.js';
import { DATABASE, LOGGER } from '../tokens.js';
import { DatasetService } from './dataset.service.js';
import { JobCheckpointsService } from './job-checkpoints.service.js';
import { JobEventsService } from './job-events.service.js';
import { JobSpecsService } from './job-specs.service.js';
import { KeeperService } from './keeper.service.js';
import { SessionRegistry } from './session-registry.js';

export interface JobView {
  id: string;
  name: string;
  groupId: string | null;
  /** Null once the dataset was deleted (only an ended job can lose it; `spec.datasetId` keeps the id it ran on). */
  datasetId: string | null;
  status: JobStatus;
  statusReason: string;
  priority: number;
  epoch: number;
  /** The data state's epoch (0-based); it moves to the next as a pass ends, so a finished job of n epochs reads n. */
  dataEpoch: number;
  /** Passes over the training data the job runs (null when it is bounded by rounds only). */
  epochs: number | null;
  /** Last committed round (-1 before the first). */
  round: number;
  samplesProcessed: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** A worker kept out of a job (`GET /v1/jobs/:id/exclusions`). */
export interface JobExclusion {
  workerId: string;
  workerName: string;
  /** The fault that put it there: 'owner-audit' (a ban), 'runner-error', 'bad-chunk', … */
  kind: string;
  reason: string;
  since: string;
  /** When it may serve the job again; null: never, unless an admin readmits it. */
  until: string | null;
}

function exclusionView(e: ActiveExclusion): JobExclusion {
  return { workerId: e.workerId, workerName: e.workerName, kind: e.kind, reason: e.reason, since: e.since.toISOString(), until: e.until?.toISOString() ?? null };
}

export interface JobDetail extends JobView {
  spec: JobSpec;
  roster: { epoch: number; startRound: number; members: { workerId: string; name: string | null; index: number; samplesPerRound: number; share: number; speed: number }[] } | null;
  lastMetrics: Record<string, { round: number; value: number }>;
  /** Estimated rounds in total and seconds left (null until rounds have been timed). */
  totalRounds: number | null;
  etaSeconds: number | null;
  credits: { workerId: string; samples: number; computeMs: number; rounds: number }[];
  /** Workers kept out of the job now (as `GET /v1/jobs/:id/exclusions`). */
  exclusions: JobExclusion[];
}

/** Hooks the scheduler registers (kept apart so this service does not depend on it). */
export const JOB_KICK = Symbol('gradpool.jobKick');
export type JobKick = () => void;

@Injectable()
export class JobService {
  private readonly log: Logger;

  constructor(
    @Inject(DATABASE) private readonly handle: DbHandle,
    @Inject(LOGGER) logger: Logger,
    @Inject(JOB_KICK) private readonly kick: JobKick,
    private readonly jobs: JobRepository,
    private readonly rosters: RosterRepository,
    private readonly rounds: RoundRepository,
    private readonly checkpointRows: CheckpointRepository,
    private readonly metrics: MetricRepository,
    private readonly credits: CreditRepository,
    private readonly shards: ShardRepository,
    private readonly specs: JobSpecsService,
    private readonly blobs: JobCheckpointsService,
    private readonly events: JobEventsService,
    private readonly keepers: KeeperService,
    private readonly registry: SessionRegistry,
    private readonly datasets: DatasetService,
  ) {
    this.log = logger.child({ component: 'jobs' });
  }

  /** Validates, writes checkpoint 0 and the job row; the scheduler picks it up. */
  async submit(p: Principal, body: unknown): Promise<JobDetail> {
    if (p.role === 'viewer') throw new PermissionDeniedError('viewer keys are read-only');
    const groupId = body && typeof body === 'object' && 'groupId' in body ? (body as { groupId: unknown }).groupId : null;
    if (p.role === 'group-admin' && groupId !== p.groupId) throw new PermissionDeniedError('a group-admin key submits jobs of its own group only (set groupId)');
    const { spec, model } = await this.specs.validate(body);
    const id = randomUUID();
    try {
      await this.datasets.assertObjectsPresent(spec.datasetId);
    } catch (err) {
      model.dispose();
      throw err;
    }
    try {
      const cp = await this.keepers.storeInitialCheckpoint(id, spec, model.init(spec.seed));
      try {
        await this.handle.db.transaction(async (tx) => {
          await this.jobs.insert(
            { id, name: spec.name, groupId: spec.groupId, datasetId: spec.datasetId, spec: spec as unknown as Record<string, unknown>, priority: spec.priority, createdByKeyId: p.keyId },
            tx,
          );
          await this.checkpointRows.upsert(
            { jobId: id, round: 0, bucket: cp.bucket, objectKey: cp.key, bytes: cp.bytes, sha256: cp.sha256, paramHash: cp.paramHash },
            tx,
          );
        });
      } catch (err) {
        await this.blobs.destroy(id);
        // The dataset was deleted between validation and this insert (its foreign key check failed).
        if (violates(err, 'jobs_dataset_id_datasets_id_fk')) throw new InvalidArgumentError(`datasetId: dataset ${spec.datasetId} was deleted while the job was being submitted`, { cause: err });
        throw err;
      }
      this.specs.rememberParamCount(id, model.paramCount);
    } finally {
      model.dispose();
    }
    await this.events.record(id, 'job.state', { status: 'queued', by: p.name }, { groupId: spec.groupId });
    this.log.info({ jobId: id, name: spec.name }, 'job submitted');
    this.kick();
    return this.get(p, id);
  }

  async list(p: Principal, status?: JobStatus[]): Promise<JobView[]> {
    const rows = await this.jobs.list({ status });
    return rows.filter((j) => this.canRead(p, j)).map((j) => this.view(j));
  }

  private canRead(p: Principal, j: JobRow): boolean {
    return p.role !== 'group-admin' || j.groupId === null || j.groupId === p.groupId;
  }

  private async find(p: Principal, id: string, mode: 'read' | 'write'): Promise<JobRow> {
    const job = /^[0-9a-f-]{36}$/i.test(id) ? await this.jobs.findById(id) : undefined;
    if (!job || !this.canRead(p, job)) throw new NotFoundError(`no job ${id}`);
    if (mode === 'write') {
      if (job.groupId) assertGroupAccess(p, job.groupId, 'write');
      else if (p.role !== 'admin') throw new PermissionDeniedError('only admins steer public jobs');
    }
    return job;
  }

  async get(p: Principal, id: string): Promise<JobDetail> {
    const job = await this.find(p, id, 'read');
    const spec = parseJobSpec(job.spec);
    const latest = await this.rosters.latest(id);
    const keeper = this.keepers.get(id);
    let roster: JobDetail['roster'] = null;
    if (latest) {
      const names = new Map<string, string>();
      for (const m of latest.members) {
        const w = await this.handle.db.query.workers.findFirst({ where: (t, { eq }) => eq(t.id, m.workerId) });
        if (w) names.set(m.workerId, w.name);
      }
      roster = {
        epoch: latest.epoch,
        startRound: latest.startRound,
        members: latest.members.map((m) => ({
          workerId: m.workerId,
          name: names.get(m.workerId) ?? null,
          index: m.index,
          samplesPerRound: m.samplesPerRound,
          share: m.samplesPerRound / spec.globalBatch,
          speed: keeper?.speeds.get(m.workerId) ?? m.speed,
        })),
      };
    }
    // A job whose dataset was deleted has ended: its round count stays, its total is unknown.
    let totalRounds: number | null = null;
    if (job.datasetId !== null) {
      const train = await this.shards.listByDataset(job.datasetId, 'train');
      const trainSamples = train.reduce((a, s) => a + s.sampleCount, 0);
      const perEpoch = Math.ceil(trainSamples / spec.globalBatch);
      totalRounds = spec.rounds !== undefined ? Math.min(spec.rounds, spec.epochs !== undefined ? spec.epochs * perEpoch : Infinity) : (spec.epochs ?? 1) * perEpoch;
    }
    const recent = await this.rounds.recent(id, 20);
    let etaSeconds: number | null = null;
    if (totalRounds !== null && recent.length >= 2 && job.status === 'running') {
      const span = recent[0].committedAt.getTime() - recent[recent.length - 1].committedAt.getTime();
      const perRound = span / (recent.length - 1) / 1000;
      etaSeconds = Math.max(0, (totalRounds - job.round - 1) * perRound);
    }
    return {
      ...this.view(job),
      spec,
      roster,
      lastMetrics: await this.metrics.latest(id),
      totalRounds,
      etaSeconds,
      credits: (await this.credits.list(id)).map((c) => ({ workerId: c.workerId, samples: c.samples, computeMs: c.computeMs, rounds: c.rounds })),
      exclusions: (await this.keepers.exclusionsOf(id)).map(exclusionView),
    };
  }

  async pause(p: Principal, id: string): Promise<JobDetail> {
    const job = await this.find(p, id, 'write');
    const row = await this.jobs.transition(id, ['queued', 'running'], { status: 'paused', statusReason: `paused by ${p.name}` });
    if (!row) throw new FailedPreconditionError(`job ${job.name} is ${job.status}; only queued or running jobs pause`);
    await this.release(id, 'the job was paused', true);
    await this.events.record(id, 'job.state', { status: 'paused', by: p.name });
    return this.get(p, id);
  }

  async resume(p: Principal, id: string): Promise<JobDetail> {
    const job = await this.find(p, id, 'write');
    if (job.datasetId === null) throw new FailedPreconditionError(`job ${job.name} cannot resume: its dataset ${(job.spec as { datasetId?: string }).datasetId ?? ''} was deleted`);
    await this.datasets.assertObjectsPresent(job.datasetId);
    const row = await this.jobs.transition(id, ['paused'], { status: 'queued', statusReason: 'resumed; waiting for workers' });
    if (!row) throw new FailedPreconditionError(`job ${job.name} is ${job.status}; only paused jobs resume`);
    await this.events.record(id, 'job.state', { status: 'queued', by: p.name, resumed: true });
    this.kick();
    return this.get(p, id);
  }

  async cancel(p: Principal, id: string): Promise<JobDetail> {
    const job = await this.find(p, id, 'write');
    const row = await this.jobs.transition(id, ['queued', 'running', 'paused'], { status: 'cancelled', statusReason: `cancelled by ${p.name}`, finishedAt: new Date() });
    if (!row) throw new FailedPreconditionError(`job ${job.name} is ${job.status} already`);
    await this.release(id, 'the job was cancelled', true);
    await this.events.record(id, 'job.state', { status: 'cancelled', by: p.name });
    return this.get(p, id);
  }

  /**
   * Workers kept out of the job now (the scheduler does not offer it to them): for a while after
   * a fault in it (`until`), for good after a failed owner audit (`until` null), oldest first.
   */
  async exclusions(p: Principal, id: string): Promise<JobExclusion[]> {
    await this.find(p, id, 'read');
    return (await this.keepers.exclusionsOf(id)).map(exclusionView);
  }

  /**
   * Lets a worker back into the job at once: its exclusion is lifted (a ban too: an admin who
   * knows better overrules the audit) and recorded as a `job.readmitted` event. 404 when it is
   * not kept out.
   */
  async readmit(p: Principal, id: string, workerId: string): Promise<JobExclusion> {
    const job = await this.find(p, id, 'write');
    const kept = (await this.keepers.exclusionsOf(id)).find((e) => e.workerId === workerId);
    const lifted = kept ? await this.keepers.readmit(id, workerId) : undefined;
    if (!kept || !lifted) throw new NotFoundError(`worker ${workerId} is not kept out of job ${job.name}`);
    await this.events.record(id, 'job.readmitted', { kind: lifted.kind, reason: lifted.reason, until: lifted.until?.toISOString() ?? null, by: p.name }, { workerId });
    this.log.info({ jobId: id, workerId, kind: lifted.kind, by: p.name }, 'worker readmitted to the job');
    this.kick();
    return exclusionView({ ...lifted, workerName: kept.workerName });
  }

  /** Stops the keeper (checkpointing) and sends the members away. */
  private async release(id: string, reason: string, checkpoint: boolean): Promise<void> {
    await this.keepers.stop(id, checkpoint);
    const assigned = await this.rosters.assigned(id);
    await this.rosters.clearJob(id);
    for (const w of assigned) this.registry.send(w.id, { unassignment: { jobId: id, reason } });
  }

  /** Metrics by round: `[{round, loss, samples_per_s, …}]`. */
  async metricsByRound(p: Principal, id: string, from = 0): Promise<{ round: number; [name: string]: number }[]> {
    await this.find(p, id, 'read');
    const rows = await this.metrics.list(id, { from });
    const out = new Map<number, { round: number; [name: string]: number }>();
    for (const r of rows) {
      let e = out.get(r.round);
      if (!e) out.set(r.round, (e = { round: r.round }));
      e[r.name] = r.value;
    }
    return [...out.values()];
  }

  async checkpoints(p: Principal, id: string) {
    await this.find(p, id, 'read');
    return (await this.checkpointRows.list(id)).map((c) => ({ round: c.round, bucket: c.bucket, key: c.objectKey, bytes: c.bytes, sha256: c.sha256, paramHash: c.paramHash, createdAt: c.createdAt.toISOString() }));
  }

  /**
   * The TF.js model of the newest checkpoint (at or before `round` when given), as JSON: a
   * finished job's stored export, or one built in the keepers' thread (never on this event loop).
   */
  async model(p: Principal, id: string, round?: number): Promise<Record<string, unknown>> {
    const job = await this.find(p, id, 'read');
    const cp = await this.checkpointRows.latest(id, round);
    if (!cp) throw new NotFoundError(`job ${job.name} has no checkpoint${round !== undefined ? ` at or before round ${round}` : ''}`);
    if (job.status === 'completed' && cp.round === job.round + 1) {
      const stored = await this.blobs.getModel(id);
      if (stored) return { jobId: id, ...(JSON.parse(new TextDecoder().decode(stored)) as Record<string, unknown>) };
    }
    const bytes = await this.blobs.get(cp.bucket, cp.objectKey);
    if (!bytes) throw new NotFoundError(`checkpoint ${cp.objectKey} of job ${job.name} is missing from the object store`);
    return { jobId: id, ...(await this.keepers.exportModel(parseJobSpec(job.spec).model, bytes)) };
  }

  /** Checks read access for the events stream. */
  async assertReadable(p: Principal, id: string): Promise<JobRow> {
    return this.find(p, id, 'read');
  }

  async recentEvents(id: string, limit = 100) {
    const rows = await this.handle.db.query.events.findMany({
      where: (t, { eq }) => eq(t.jobId, id),
      orderBy: (t, { desc }) => [desc(t.id)],
      limit,
    });
    return rows.reverse().map((e) => ({ type: e.type, jobId: id, workerId: e.workerId, data: e.data, at: e.createdAt.toISOString() }));
  }

  private view(j: JobRow): JobView {
    return {
      id: j.id,
      name: j.name,
      groupId: j.groupId,
      datasetId: j.datasetId,
      status: j.status,
      statusReason: j.statusReason,
      priority: j.priority,
      epoch: j.epoch,
      dataEpoch: j.dataEpoch,
      epochs: (j.spec as { epochs?: number }).epochs ?? null,
      round: j.round,
      samplesProcessed: j.samplesProcessed,
      createdAt: j.createdAt.toISOString(),
      startedAt: j.startedAt?.toISOString() ?? null,
      finishedAt: j.finishedAt?.toISOString() ?? null,
    };
  }
}

/** Whether `err` (or an error it wraps: drizzle puts the pg error in `cause`) is a violation of `constraint`. */
function violates(err: unknown, constraint: string): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { constraint?: unknown }).constraint === constraint) return true;
  }
  return false;
}
