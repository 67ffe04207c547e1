/**
 * Runs a JobKeeper for every running job this (leading) coordinator schedules, feeds them round
 * reports, and turns members' faults and departures into roster changes.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { DbHandle } from '@gradpool/db';
import { ensureUpdatesStream } from '@gradpool/exchange';
import { buckets, parseJobSpec, roundOptimizer, type JobFault__Output, type JobSpec } from '@gradpool/protocol';
import { buildModel, decodeCheckpoint } from '@gradpool/training';
import type { NatsConnection } from 'nats';
import { EvalThread } from '../keeper/eval-thread.js';
import { exportModelJson } from '../keeper/model-export.js';
import { JobKeeper, type KeeperOptions } from '../keeper/job-keeper.js';
import { KeeperState } from '../keeper/keeper-state.js';
import type { Logger } from '../logger.js';
import { CheckpointRepository } from '../repositories/checkpoint.repository.js';
import { CreditRepository } from '../repositories/credit.repository.js';
import { JobRepository, type JobRow } from '../repositories/job.repository.js';
import { MetricRepository } from '../repositories/metric.repository.js';
import { RosterRepository } from '../repositories/roster.repository.js';
import { RoundRepository } from '../repositories/round.repository.js';
import { ShardRepository } from '../repositories/shard.repository.js';
import { WorkerRepository } from '../repositories/worker.repository.js';
import { CONFIG, DATABASE, LOGGER, NATS } from '../tokens.js';
import type { CoordinatorConfig } from '../config.js';
import { DatasetService } from './dataset.service.js';
import { checkpointKey, JobCheckpointsService } from './job-checkpoints.service.js';
import { JobEventsService } from './job-events.service.js';
import { JobRosterService } from './job-roster.service.js';
import { tfReady } from './job-specs.service.js';
import { SessionRegistry } from './session-registry.js';
import { ExclusionRepository, type ActiveExclusion, type ExclusionRow } from '../repositories/exclusion.repository.js';
import { shutdownPart } from '../shutdown.js';

/** How long a worker that faulted in a job is not offered that job again. */
const FAULT_EXCLUSION_MS = 5 * 60_000;
/**
 * A worker whose own runner failed in a job ('runner-error': often transient, e.g. a NATS request
 * timing out on a loaded machine) is kept out of it for this long the first time, twice as long at
 * each repeat, up to FAULT_EXCLUSION_MS: one timeout must not stall a small pool for 5 minutes.
 */
const RUNNER_ERROR_EXCLUSION_MS = 30_000;

export const KEEPER_OPTIONS = Symbol('gradpool.keeperOptions');

@Injectable()
export class KeeperService {
  private readonly keepers = new Map<string, JobKeeper>();
  private readonly starting = new Map<string, Promise<JobKeeper | null>>();
  private readonly log: Logger;
  private streamReady: Promise<void> | null = null;
  private thread: EvalThread | null | undefined;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    @Inject(DATABASE) private readonly handle: DbHandle,
    @Inject(NATS) private readonly nc: NatsConnection,
    @Inject(CONFIG) private readonly config: CoordinatorConfig,
    @Inject(LOGGER) logger: Logger,
    @Inject(KEEPER_OPTIONS) private readonly options: KeeperOptions,
    private readonly jobs: JobRepository,
    private readonly rosters: RosterRepository,
    private readonly rounds: RoundRepository,
    private readonly checkpoints: CheckpointRepository,
    private readonly metrics: MetricRepository,
    private readonly credits: CreditRepository,
    private readonly shards: ShardRepository,
    private readonly workers: WorkerRepository,
    private readonly datasets: DatasetService,
    private readonly blobs: JobCheckpointsService,
    private readonly events: JobEventsService,
    private readonly roster: JobRosterService,
    private readonly registry: SessionRegistry,
    private readonly exclusions: ExclusionRepository,
  ) {
    this.log = logger.child({ component: 'keepers' });
    roster.setProbes({
      observedRound: (jobId) => this.keepers.get(jobId)?.observed,
      speed: (jobId, workerId) => this.keepers.get(jobId)?.speeds.get(workerId),
      keeperReady: async (jobId) => {
        const job = await this.jobs.findById(jobId);
        if (job?.status === 'running') await this.ensure(job);
      },
    });
    this.unsubscribe.push(
      roster.onEpoch((e) => this.keepers.get(e.jobId)?.onEpoch(e)),
      roster.onPending(
        (e) => this.keepers.get(e.jobId)?.onPending(e.epoch, e.startRound),
        (e) => this.keepers.get(e.jobId)?.onCancelled(e.epoch),
      ),
      registry.on('roundReport', (workerId, report) => this.keepers.get(report.jobId)?.onReport(workerId, report)),
      registry.on('fault', (workerId, fault) => void this.onFault(workerId, fault).catch((err) => this.log.error({ err }, 'fault handling failed'))),
    );
  }

  /**
   * Keeps `workerId` out of `jobId` (ExclusionRepository): for `ms`, or for good (null: it
   * failed an owner audit, proof that it published a false mean). Awaited before the worker is
   * removed from the roster, so no scheduling pass offers it the job again in between.
   */
  async exclude(jobId: string, workerId: string, kind: string, reason: string, ms: number | null): Promise<void> {
    await this.exclusions.put({ jobId, workerId, kind, reason, until: ms === null ? null : new Date(Date.now() + ms) });
  }

  /**
   * The `job/worker` pairs kept out now, for one scheduling pass (every replica's and an admin's
   * changes included). Read after the pass's idle workers: a worker is removed from a roster only
   * after its exclusion is stored.
   */
  keptOut(): Promise<Set<string>> {
    return this.exclusions.activeKeys();
  }

  /** Whether `workerId` may be offered `jobId` now. */
  async mayServe(jobId: string, workerId: string): Promise<boolean> {
    return !(await this.keptOut()).has(`${jobId}/${workerId}`);
  }

  /** The job's exclusions in force, with worker names. */
  exclusionsOf(jobId: string): Promise<ActiveExclusion[]> {
    return this.exclusions.active(jobId);
  }

  /**
   * An admin lets a worker back into a job: its exclusion (even a ban) is removed. Its runner
   * errors count from zero again once JobService records the `job.readmitted` event. What was
   * lifted, or undefined when it was not kept out.
   */
  async readmit(jobId: string, workerId: string): Promise<ExclusionRow | undefined> {
    return this.exclusions.remove(jobId, workerId);
  }

  get(jobId: string): JobKeeper | undefined {
    return this.keepers.get(jobId);
  }

  running(): string[] {
    return [...this.keepers.keys()];
  }

  /** Starts the keeper of a running job if none runs here. */
  ensure(job: JobRow): Promise<JobKeeper | null> {
    const have = this.keepers.get(job.id);
    if (have) return Promise.resolve(have);
    let p = this.starting.get(job.id);
    if (!p) {
      p = this.startKeeper(job).finally(() => this.starting.delete(job.id));
      this.starting.set(job.id, p);
    }
    return p;
  }

  private async startKeeper(job: JobRow): Promise<JobKeeper | null> {
    this.streamReady ??= this.nc.jetstreamManager().then((jsm) => ensureUpdatesStream(jsm));
    await this.streamReady.catch((err) => {
      this.streamReady = null;
      throw err;
    });
    const keeper = new JobKeeper(job, parseJobSpec(job.spec), {
      handle: this.handle,
      nc: this.nc,
      natsServers: [...this.config.natsServers],
      natsCredsFile: this.config.natsCredsFile,
      jobs: this.jobs,
      rosters: this.rosters,
      rounds: this.rounds,
      checkpoints: this.checkpoints,
      metrics: this.metrics,
      credits: this.credits,
      blobs: this.blobs,
      events: this.events,
      roster: this.roster,
      // Evaluation reads the validation and test splits.
      shardStore: (datasetId) => this.datasets.storeOfDataset(datasetId, 'validation'),
      shardsOf: (datasetId, split) => this.shards.listByDataset(datasetId, split),
      groupOf: async (workerId) => (await this.workers.findById(workerId))?.groupId,
      exclude: (workerId, kind, reason, forever) => this.exclude(job.id, workerId, kind, reason, forever ? null : FAULT_EXCLUSION_MS),
      evalThread: () => this.evalThread(),
      onFinished: (jobId) => void this.finished(jobId),
      onBroken: (jobId, k) => {
        if (this.keepers.get(jobId) === k) this.keepers.delete(jobId);
      },
      logger: this.log,
    }, this.options);
    try {
      await keeper.start();
    } catch (err) {
      this.log.error({ err, jobId: job.id }, 'keeper could not restore the job');
      await keeper.stop(false);
      await this.jobs.transition(job.id, ['running', 'queued'], { status: 'failed', statusReason: `keeper could not restore the job: ${(err as Error).message}`, finishedAt: new Date() });
      await this.events.record(job.id, 'job.state', { status: 'failed', reason: (err as Error).message });
      return null;
    }
    this.keepers.set(job.id, keeper);
    return keeper;
  }

  /**
   * Stores a new job's checkpoint 0: `params` with a zero optimizer state for `spec` (stored
   * explicitly so every reader restores the same bytes). Encoded, hashed and uploaded by a
   * keeper state of its own (its thread in the built coordinator): for a large model that is
   * seconds of work the API's event loop no longer does (docs/bench/keeper.md).
   */
  async storeInitialCheckpoint(jobId: string, spec: JobSpec, params: Float32Array): Promise<{ bucket: string; key: string; bytes: number; sha256: string; paramHash: string }> {
    const state = await KeeperState.open(roundOptimizer(spec) as never, { params }, { conn: { nc: this.nc, servers: [...this.config.natsServers], credsFile: this.config.natsCredsFile } });
    try {
      const { hash } = await state.snapshot(0, { jobId });
      const at = { bucket: buckets.checkpoints(jobId), key: checkpointKey(0) };
      const { bytes, sha256 } = await state.storeSnapshot(0, at);
      return { ...at, bytes, sha256, paramHash: hash };
    } finally {
      await state.close();
    }
  }

  /** Stops a job's keeper (checkpointing the last committed state unless told not to). */
  async stop(jobId: string, checkpoint = true): Promise<void> {
    const starting = this.starting.get(jobId);
    if (starting) await starting.catch(() => undefined);
    const k = this.keepers.get(jobId);
    if (!k) return;
    this.keepers.delete(jobId);
    await k.stop(checkpoint);
  }

  async stopAll(checkpoint = true): Promise<void> {
    await Promise.all([...this.keepers.keys()].map((id) => shutdownPart(`keeper ${id} stopping`, () => this.stop(id, checkpoint))));
  }

  private async finished(jobId: string): Promise<void> {
    this.keepers.delete(jobId);
    await this.sendAway(jobId, 'the job completed');
  }

  /** Clears the job's roster and tells its members they are no longer in it. */
  private async sendAway(jobId: string, reason: string): Promise<void> {
    const assigned = await this.rosters.assigned(jobId);
    await this.rosters.clearJob(jobId);
    for (const w of assigned) this.registry.send(w.id, { unassignment: { jobId, reason } });
  }

  /**
   * A member could not fetch or verify a shard. When the object store has lost some of the
   * dataset's shards, no member could: the job is paused (its committed state kept) with a
   * reason that says what to do, instead of removing one member after another. Returns whether
   * it was.
   */
  private async pauseIfShardsMissing(job: JobRow): Promise<boolean> {
    if (!job.datasetId) return false;
    const problem = await this.datasets.missingObjectsProblem(job.datasetId);
    if (!problem) return false;
    const reason = problem.message;
    const row = await this.jobs.transition(job.id, ['running'], { status: 'paused', statusReason: `paused: ${reason}` });
    if (!row) return true;
    this.log.error({ jobId: job.id, datasetId: job.datasetId, missing: problem.missing.length }, 'shards missing from the object store: job paused');
    await this.stop(job.id, true);
    await this.sendAway(job.id, 'the job was paused: its dataset has shards missing from the object store');
    await this.events.record(job.id, 'job.state', { status: 'paused', reason, missingShards: problem.missing.slice(0, 20) });
    return true;
  }

  /** A member's fault: a missing owner is removed; a member that cannot go on is removed and not offered the job for a while. */
  private async onFault(workerId: string, fault: JobFault__Output): Promise<void> {
    const jobId = fault.jobId;
    const job = jobId ? await this.jobs.findById(jobId).catch(() => undefined) : undefined;
    if (!job) return;
    await this.events.record(jobId, 'job.fault', { kind: fault.kind, message: fault.message, round: Number(fault.round), epoch: fault.epoch, subject: fault.subjectWorkerId || undefined }, { workerId });
    if (job.status !== 'running') return;
    if (fault.kind === 'owner-missing') {
      const subject = fault.subjectWorkerId;
      if (!subject) return;
      const assigned = (await this.rosters.assigned(jobId)).map((w) => w.id);
      if (!assigned.includes(subject)) return;
      await this.roster.change(jobId, { remove: [subject], reason: `owner-missing: ${subject}`, startRound: Number(fault.round) });
      return;
    }
    if (fault.kind === 'quorum-not-met') {
      // Too few members were on time; re-run the round in a new epoch (once per epoch).
      if (fault.epoch < job.epoch) return;
      await this.roster.change(jobId, { reason: `quorum-not-met in round ${Number(fault.round)}`, startRound: Number(fault.round), ifEpoch: fault.epoch });
      return;
    }
    if (fault.kind === 'bad-shard' && (await this.pauseIfShardsMissing(job))) return;
    let ms = FAULT_EXCLUSION_MS;
    if (fault.kind === 'runner-error') {
      // Counted from the fault events (this one is recorded above), so every replica agrees.
      const n = Math.max(1, await this.events.faultsSinceReadmit(jobId, workerId, 'runner-error').catch(() => 1));
      ms = Math.min(FAULT_EXCLUSION_MS, (this.options.runnerErrorExclusionMs ?? RUNNER_ERROR_EXCLUSION_MS) * 2 ** (n - 1));
    }
    // Removed even if the exclusion could not be stored (it may then be offered the job again).
    await this.exclude(jobId, workerId, fault.kind, fault.message, ms).catch((err) => this.log.error({ err, jobId, workerId }, 'could not store the exclusion'));
    await this.roster.change(jobId, { remove: [workerId], reason: `fault: ${fault.kind}` });
  }

  /** A worker's session ended: it leaves any job it was in. */
  async workerGone(workerId: string, reason: string): Promise<void> {
    const w = await this.workers.findById(workerId);
    if (!w?.currentJobId) return;
    await this.roster.change(w.currentJobId, { remove: [workerId], reason: `worker ${reason}` });
  }

  /**
   * The TF.js model JSON of a checkpoint's parameters, built in the evaluation thread (inline only
   * where there is none: running from sources).
   */
  async exportModel(modelSpec: unknown, checkpoint: Uint8Array): Promise<Record<string, unknown>> {
    const thread = this.evalThread();
    if (thread) {
      const copy = checkpoint.slice();
      return thread.exportModel({ specJson: JSON.stringify(modelSpec), source: { checkpoint: copy.buffer } });
    }
    const state = decodeCheckpoint(checkpoint);
    await tfReady();
    const model = await buildModel(modelSpec as never);
    try {
      return await exportModelJson(model, state.params, state.round);
    } finally {
      model.dispose();
    }
  }

  /** The evaluation thread (started on first use), or null where it cannot run (from sources). */
  private evalThread(): EvalThread | null {
    if (this.thread?.failed) {
      // A thread that died (e.g. its file could not load) is replaced on the next use.
      this.log.warn({ err: this.thread.failed }, 'the evaluation thread is gone; starting another');
      this.thread = undefined;
    }
    if (this.thread === undefined) {
      try {
        this.thread = EvalThread.start();
      } catch (err) {
        this.log.warn({ err }, 'no evaluation thread; evaluating inline');
        this.thread = null;
      }
    }
    return this.thread;
  }

  dispose(): void {
    for (const u of this.unsubscribe) u();
    void this.thread?.close();
    this.thread = null;
  }
}
