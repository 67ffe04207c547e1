/**
 * The keeper of one running job (shared/DESIGN.md "keeper"): follows the job's gathers, applies
 * each round's mean to the authoritative parameters with the job's optimizer, and commits the
 * round in Postgres exactly once and in order, with metrics, credit and shard progress; compares
 * members' hashes, writes checkpoints, evaluates, publishes committed updates for late joiners,
 * and finishes the job.
 */
import type { DbHandle } from '@gradpool/db';
import { advanceDataState, decodeDataState, encodeDataState, EpochOrder, freshDataState, planRound, type DataState, type ShardStore } from '@gradpool/datasets';
import { type AuditResult, purgeUpdateRound, purgeUpdates, purgeUpdatesBefore, ReplayError } from '@gradpool/exchange';
import { buckets, roundOptimizer, UPDATES_STREAM, type JobSpec, type RoundReport__Output } from '@gradpool/protocol';
import { buildModel, type Model } from '@gradpool/training';
import type { NatsConnection } from 'nats';
import type { Logger } from '../logger.js';
import { decodeEvalSet, evaluateSet } from './eval-set.js';
import type { EvalThread } from './eval-thread.js';
import { KeeperState } from './keeper-state.js';
import type { ObservedRoundInfo } from './round-watch.js';
import type { CheckpointRepository } from '../repositories/checkpoint.repository.js';
import type { CreditRepository } from '../repositories/credit.repository.js';
import type { JobRepository, JobRow } from '../repositories/job.repository.js';
import type { MetricRepository } from '../repositories/metric.repository.js';
import type { RosterRepository } from '../repositories/roster.repository.js';
import type { RoundRepository } from '../repositories/round.repository.js';
import type { ShardRow } from '../repositories/shard.repository.js';
import { checkpointKey, type JobCheckpointsService } from '../services/job-checkpoints.service.js';
import type { JobEventsService } from '../services/job-events.service.js';
import { tfReady } from '../services/job-specs.service.js';
import { exportModelJson } from './model-export.js';
import { proportionalShares, type EpochInfo, type JobRosterService, type RosterChange } from '../services/job-roster.service.js';
import { shutdownPart } from '../shutdown.js';

/** Longest wait for an evaluation or a model export before the keeper goes on without it. */
const EVAL_LIMIT_MS = 60_000;

/** `p`, or a rejection naming `what` after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A contribution scaled down from at least this many times its shard's norm bound is recorded as a `job.scaled` event. */
const FLAGRANT_SCALE = 10;

/** Rounds of an epoch between checks of the shares against measured speeds. */
export const REBALANCE_EVERY = 50;

/**
 * Observed rounds (and their means, kept by the state) waiting for the commit loop: at most 64,
 * and at most what OBSERVED_BYTES of means hold (a large model's 64 means would be gigabytes), at
 * least 4. A keeper further behind sees that it missed rounds and resyncs its members.
 */
const MAX_OBSERVED = 64;
const MIN_OBSERVED = 4;
const OBSERVED_BYTES = 2 * 1024 ** 3;

/** How many observed rounds a keeper of `paramCount` parameters keeps waiting. */
export function observedRoundsKept(paramCount: number): number {
  return Math.max(MIN_OBSERVED, Math.min(MAX_OBSERVED, Math.floor(OBSERVED_BYTES / (Math.max(1, paramCount) * 4))));
}

/** Commits over which `samples_per_s` is measured. */
const RATE_WINDOW = 10;

export interface KeeperDeps {
  handle: DbHandle;
  nc: NatsConnection;
  /** Where the keeper's own thread connects (NATS_URL, NATS_CREDS) to watch the job's data plane. */
  natsServers: string[];
  natsCredsFile?: string;
  jobs: JobRepository;
  rosters: RosterRepository;
  rounds: RoundRepository;
  checkpoints: CheckpointRepository;
  metrics: MetricRepository;
  credits: CreditRepository;
  blobs: JobCheckpointsService;
  events: JobEventsService;
  roster: JobRosterService;
  /** The store of a dataset's validation and test shards (its own eval bucket or the shared one). */
  shardStore: (datasetId: string) => Promise<ShardStore>;
  /** Train/validation/test shard rows of the job's dataset. */
  shardsOf: (datasetId: string, split: 'train' | 'validation' | 'test') => Promise<ShardRow[]>;
  groupOf: (workerId: string) => Promise<string | undefined>;
  /** Keeps a worker out of this job for a while (it misbehaved in it), or for good (`forever`: it lied, with proof). */
  exclude: (workerId: string, kind: string, reason: string, forever?: boolean) => Promise<void>;
  /** The shared evaluation thread, or null (evaluate inline). */
  evalThread: () => EvalThread | null;
  /** Called when the job reached its end (completed) so the service can clean up. */
  onFinished: (jobId: string) => void;
  /** Called when this keeper gave up (a failed commit); a fresh one restores from Postgres. */
  onBroken: (jobId: string, keeper: JobKeeper) => void;
  logger: Logger;
}

export interface KeeperOptions {
  /** How long a committed round waits for its contributors' reports after the gather (default min(2 s, deadline)). */
  reportGraceMs?: number;
  /** Samples per evaluation batch (default 1000). */
  evalBatch?: number;
  /** How long a worker's first runner error keeps it out of the job (doubled at each repeat; default 30 s). */
  runnerErrorExclusionMs?: number;
  /**
   * Shards of each round whose owner's gather the keeper recomputes from the reduce messages
   * (owner audit, clipped-mean jobs only; 0: off). Each costs the keeper K·P/S elements of extra
   * inbound per round. Default 'auto': as many as 8 MiB of reduce messages a round allow, at
   * least one (every shard of a small model).
   */
  auditShardsPerRound?: number | 'auto';
  /** The share of the keeper thread's time audits may take (default 0.1; OwnerAuditOptions.cpuShare). */
  auditCpuShare?: number;
  /** Test seam: awaited when a job has completed, just before its keeper stops itself. */
  beforeFinishStop?: (jobId: string) => Promise<void>;
  /** Test seam: awaited by a validation of round `round` before it evaluates (beside the commit loop). */
  beforeValidation?: (jobId: string, round: number) => Promise<void>;
}

interface PendingReport {
  workerId: string;
  report: RoundReport__Output;
}

/** One job's authoritative state and commit loop. `start()` restores, `stop()` checkpoints. */
export class JobKeeper {
  /** Built only to evaluate or export inline (no evaluation thread) or to initialise parameters. */
  private model: Promise<Model> | null = null;
  /** Parameters and optimizer state (in their own thread in the built coordinator). */
  private state: KeeperState | null = null;
  /** Last committed round (-1 before the first). */
  committed = -1;
  /** Newest round whose gather was observed. */
  observed = -1;
  /** Rounds the watch observed (their means stay with the state), in order, until handled. */
  private readonly observedRounds: ObservedRoundInfo[] = [];
  private wakeLoop: (() => void) | null = null;
  /** Why the watch is gone (its thread or connection died): the keeper restarts. */
  private watchFailed: Error | null = null;
  /** Passed owner audits by round, until the round commits (its `audited_shards` metric). */
  private readonly audits = new Map<number, { passed: number }>();
  /** Owners already removed for a failed audit, by epoch (one removal however many shards failed). */
  private readonly auditRemoved = new Set<string>();
  /** A failed audit's epoch and round: that epoch's rounds from there on are never committed. */
  private veto: { epoch: number; round: number } | null = null;
  private readonly epochs = new Map<number, EpochInfo>();
  private readonly reports = new Map<number, PendingReport[]>();
  /** Committed rounds' parameter hash, data state and the exchange epoch the round came from (-1: unknown, after a restore). */
  private readonly hashes = new Map<number, { hash: string; data: string; epoch: number }>();
  private readonly reportWaiters = new Map<number, () => void>();
  /** The data state after the last committed round (which samples of the data epoch are still to do). */
  private data!: DataState;
  private trainTotal = 0;
  private order: EpochOrder | null = null;
  private train: ShardRow[] = [];
  /** samples/s per worker (EMA of reports). */
  readonly speeds = new Map<string, number>();
  private lastCommitAt = performance.now();
  /** The last commits (time, samples), for a samples/s that bursts of commits do not spike. */
  private readonly recentCommits: { at: number; samples: number }[] = [];
  private stopped = false;
  private loop: Promise<void> | null = null;
  private finishing = false;
  private lastCheckpointSeq = 0;
  /** Checkpoints being stored beside the commit loop, in order (`startCheckpoint`). */
  private checkpointing: Promise<void> = Promise.resolve();
  /** The validation running beside the commit loop (`startValidation`), and the round it is of. */
  private evaluating: { round: number; done: Promise<void> } | null = null;
  private resyncFrom = -1;
  /** The parameters hold an update that is not committed. */
  private dirty = false;
  private stopping: Promise<void> | null = null;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly abort = new AbortController();

  constructor(
    private job: JobRow,
    private readonly spec: JobSpec,
    private readonly deps: KeeperDeps,
    private readonly opts: KeeperOptions = {},
  ) {
    this.log = deps.logger.child({ component: 'keeper', jobId: job.id });
  }

  get jobId(): string {
    return this.job.id;
  }

  /** Restores params from the latest checkpoint + replay up to jobs.round, then follows gathers. */
  async start(): Promise<void> {
    const { deps } = this;
    // Only an ended job can lose its dataset (deleting one is refused while a live job uses it).
    if (this.job.datasetId === null) throw new Error(`the dataset of job ${this.job.id} was deleted`);
    this.train = await deps.shardsOf(this.job.datasetId, 'train');
    this.trainTotal = this.train.reduce((a, s) => a + s.sampleCount, 0);
    this.data = this.job.dataState ? decodeDataState(this.job.dataState, this.trainTotal) : freshDataState(this.trainTotal);
    this.committed = this.job.round;
    this.observed = this.job.round;
    const cpRow = await deps.checkpoints.latest(this.job.id, this.committed + 1);
    const conn = { conn: { nc: deps.nc, servers: deps.natsServers, credsFile: deps.natsCredsFile } };
    if (cpRow) {
      // The state reads the checkpoint and the updates after it itself (in its thread: the bytes never reach this loop).
      this.state = await KeeperState.open(roundOptimizer(this.spec) as never, { stored: { bucket: cpRow.bucket, key: cpRow.objectKey } }, conn);
      if (cpRow.round <= this.committed) await this.state.replay(this.job.id, cpRow.round, this.committed + 1);
    } else {
      if (this.committed >= 0) throw new ReplayError(`job ${this.job.id} has committed rounds but no checkpoint`);
      this.state = await KeeperState.open(roundOptimizer(this.spec) as never, { params: (await this.modelOf()).init(this.spec.seed) }, conn);
    }
    const [last] = this.committed >= 0 ? await deps.rounds.recent(this.job.id, 1) : [];
    this.hashes.set(this.committed, { hash: await this.state.hash(), data: encodeDataState(this.data), epoch: last?.round === this.committed ? last.epoch : -1 });
    // An update published just before a crash, whose round never committed, must not be replayed.
    await purgeUpdateRound(await deps.nc.jetstreamManager(), this.job.id, this.committed + 1).catch(() => undefined);
    const auditShards = this.opts.auditShardsPerRound ?? 'auto';
    const audit = this.spec.aggregation.kind === 'clipped-mean' && auditShards !== 0 ? { codec: this.spec.codec, clipNormRatio: this.spec.aggregation.ratio, shardsPerRound: auditShards, cpuShare: this.opts.auditCpuShare } : null;
    const kept = observedRoundsKept(this.state.paramCount);
    await this.state.watch(
      { jobId: this.job.id, audit, maxPending: 8, maxKept: kept },
      {
        onRound: (o) => {
          this.observedRounds.push(o);
          // A keeper this far behind resyncs its members anyway (`handle`: missed rounds).
          while (this.observedRounds.length > kept) this.observedRounds.shift();
          this.wakeLoop?.();
        },
        onAudit: (r) => this.onAudit(r),
        onFailure: (err) => {
          this.watchFailed ??= err;
          this.wakeLoop?.();
        },
      },
    );
    for (const r of await deps.rosters.list(this.job.id)) {
      const full = await deps.rosters.get(this.job.id, r.epoch);
      if (full) this.putEpoch(deps.roster.epochInfo(this.job.id, full));
    }
    this.armWatchdog(true);
    this.loop = this.run().catch((err) => {
      if (!this.stopped) this.log.error({ err }, 'keeper loop failed');
    });
    this.log.info({ round: this.committed, params: this.state.paramCount }, 'keeper started');
  }

  private modelOf(): Promise<Model> {
    this.model ??= tfReady().then(() => buildModel(this.spec.model));
    return this.model;
  }

  private orderFor(dataEpoch: number): EpochOrder {
    if (this.order?.epoch !== dataEpoch) {
      this.order = new EpochOrder(this.train.map((s) => ({ index: s.index, samples: s.sampleCount })), this.spec.seed, dataEpoch);
    }
    return this.order;
  }

  /** A new epoch of this job (from the roster service). */
  onEpoch(e: EpochInfo): void {
    this.putEpoch(e);
    this.armWatchdog();
  }

  /** Records an epoch, and tells the watch's audit its roster. */
  private putEpoch(e: EpochInfo): void {
    this.epochs.set(e.epoch, e);
    this.state?.setEpoch({ epoch: e.epoch, members: e.members, startRound: e.startRound });
  }

  /**
   * No round completed for a long while (members stalled: no quorum at a deadline, a lost
   * roster): a new epoch of the same members re-runs the next round.
   */
  private armWatchdog(afterStart = false): void {
    clearTimeout(this.watchdog);
    if (this.stopped) return;
    // Right after a (re)start, members that kept training while the coordinator was away may
    // already be past the keeper's rounds, or done: no gather will come, so do not wait long.
    const ms = afterStart ? Math.max(10_000, 2 * this.spec.roundDeadlineMs) : Math.max(60_000, 3 * this.spec.roundDeadlineMs + 10_000);
    this.watchdog = setTimeout(() => {
      if (this.stopped) return;
      const next = this.committed + 1;
      this.log.warn({ round: next, waitedMs: ms }, 'no round completed; a new epoch re-runs it');
      // The keeper's committed state is the truth: the new epoch starts at its next round, not at
      // the newest round members reported (after a coordinator restart they ran rounds nobody
      // committed), and members ahead of it resync (checkpoint + replay) before re-running it.
      const cur = [...this.epochs.values()].reduce<EpochInfo | undefined>((a, e) => (!a || e.epoch > a.epoch ? e : a), undefined);
      void this.deps.roster
        .change(this.job.id, { reason: 'stalled', startRound: next, resync: cur?.members ?? [], force: true })
        .catch((err) => this.log.error({ err }, 'roster change failed'));
      this.armWatchdog();
    }, ms);
    this.watchdog.unref();
  }

  /**
   * An epoch about to be made: from now on no round ≥ startRound is taken from an older epoch
   * (members re-run it in the new one). Its members are filled in by `onEpoch`.
   */
  onPending(epoch: number, startRound: number): void {
    if (!this.epochs.has(epoch)) this.epochs.set(epoch, { jobId: this.job.id, epoch, startRound, members: [], samplesPerRound: [] });
  }

  onCancelled(epoch: number): void {
    if (this.epochs.get(epoch)?.members.length === 0) this.epochs.delete(epoch);
  }

  /** The next round the watch observed; null once stopped. Throws when the watch failed. */
  private async nextObserved(): Promise<ObservedRoundInfo | null> {
    for (;;) {
      if (this.stopped) return null;
      if (this.watchFailed) throw this.watchFailed;
      const o = this.observedRounds.shift();
      if (o) return o;
      await new Promise<void>((resolve) => (this.wakeLoop = resolve));
      this.wakeLoop = null;
    }
  }

  /**
   * An owner audit's verdict (OwnerAuditor). A violation is proof that the owner published a
   * mean that is not the clipped mean of the contributions it lists: the owner is removed from
   * the job and banned from it for good (KeeperService reads the ban back from the `job.fault`
   * event that names it). The round is not committed (audits finish before the keeper commits their round:
   * the audit runs as the shard's gather arrives, the commit after the whole round's and the
   * reports): a new epoch without the owner re-runs it, and the members, which applied its mean,
   * roll back to the committed state first (resync).
   */
  private onAudit(r: AuditResult): void {
    if (this.stopped) return;
    if (r.verdict === 'ok' && r.round > this.committed) {
      const a = this.audits.get(r.round) ?? { passed: 0 };
      a.passed++;
      this.audits.set(r.round, a);
    }
    if (r.verdict !== 'violation') return;
    const key = `${r.epoch}:${r.owner}`;
    if (this.auditRemoved.has(key)) return;
    this.auditRemoved.add(key);
    this.log.warn({ workerId: r.owner, round: r.round, shard: r.shard, reason: r.reason }, 'shard owner failed its audit; removing it for good');
    const message = `gathered a mean that is not the clipped mean of what it lists: ${r.reason}`;
    void this.deps.events.record(this.job.id, 'job.fault', { round: r.round, kind: 'owner-audit', shard: r.shard, epoch: r.epoch, message }, { workerId: r.owner }).catch(() => undefined);
    const ep = this.epochs.get(r.epoch);
    let change: RosterChange = { remove: [r.owner], reason: 'owner-audit' };
    if (r.round > this.committed && ep) {
      if (!this.veto || r.epoch > this.veto.epoch || (r.epoch === this.veto.epoch && r.round < this.veto.round)) this.veto = { epoch: r.epoch, round: r.round };
      const stay = ep.members.filter((id) => id !== r.owner);
      change = { ...change, startRound: r.round, resync: stay, force: true };
    }
    // Banned (stored) before it is removed, so that no scheduling pass offers it the job again.
    void this.deps
      .exclude(r.owner, 'owner-audit', message, true)
      .catch((err) => this.log.error({ err, workerId: r.owner }, 'could not store the ban'))
      .then(() => this.deps.roster.change(this.job.id, change))
      .catch((err) => this.log.error({ err }, 'roster change failed'));
  }

  /** A member's round report (from the session layer). */
  onReport(workerId: string, report: RoundReport__Output): void {
    const round = Number(report.round);
    // A member finished this round: later epochs must start after it (see JobRosterService). Not
    // a round a newer epoch owns: after a forced epoch (a resync to the keeper's next round) the
    // older epoch's later rounds are re-run, and counting them made every following roster start
    // beyond rounds nobody could reach (a livelock seen in CI after the keeper missed rounds).
    const owner = this.owner(round);
    if (!owner || owner.epoch === (report.exchangeEpoch || report.epoch)) this.observed = Math.max(this.observed, round);
    if (round <= this.committed) {
      this.checkHash(workerId, round, report, report.exchangeEpoch || report.epoch);
      return;
    }
    const list = this.reports.get(round) ?? [];
    list.push({ workerId, report });
    this.reports.set(round, list);
    this.reportWaiters.get(round)?.();
  }

  /** The epoch that owns round r: the newest with startRound ≤ r. */
  private owner(round: number): EpochInfo | undefined {
    let best: EpochInfo | undefined;
    for (const e of this.epochs.values()) if (e.startRound <= round && (!best || e.epoch > best.epoch)) best = e;
    return best;
  }

  private async run(): Promise<void> {
    for (;;) {
      let o: ObservedRoundInfo | null = null;
      try {
        o = await this.nextObserved();
        if (!o || this.stopped) return;
        this.log.debug({ round: o.round, epoch: o.epoch, contributors: o.contributors }, 'gather observed');
        await this.handle(o);
      } catch (err) {
        if (this.stopped) return;
        // The parameters may be ahead of what is committed: start over from Postgres and the
        // checkpoint (the scheduler starts a fresh keeper).
        this.log.error({ err, round: o?.round }, this.watchFailed ? 'the watch on the data plane failed; the keeper restarts' : 'commit failed; the keeper restarts');
        this.dirty = true;
        await this.stop(false, true);
        this.deps.onBroken(this.job.id, this);
        return;
      }
      if (this.finishing) return;
    }
  }

  private async handle(o: ObservedRoundInfo): Promise<void> {
    const ep = this.owner(o.round);
    // (An epoch still pending has no members yet; its members cannot have heard of it either.)
    if (!ep || ep.epoch !== o.epoch || ep.members.length === 0) {
      this.log.info({ round: o.round, epoch: o.epoch, owner: ep?.epoch }, 'gather of a superseded epoch ignored');
      return;
    }
    if (o.round <= this.committed) return;
    if (this.veto && o.epoch === this.veto.epoch && o.round >= this.veto.round) {
      this.log.warn({ round: o.round, epoch: o.epoch }, 'round not committed: a shard owner failed its audit; a new epoch re-runs it');
      return;
    }
    if (o.round > this.committed + 1) {
      // We missed a round (restart): members are ahead of the authoritative state.
      this.log.warn({ round: o.round, committed: this.committed }, 'keeper missed rounds; members resync');
      const next = this.committed + 1;
      if (this.resyncFrom !== next) {
        this.resyncFrom = next;
        void this.deps.roster.change(this.job.id, { reason: 'keeper-missed-rounds', startRound: next, resync: ep.members, force: true }).catch((err) => this.log.error({ err }, 'resync roster failed'));
      }
      return;
    }
    this.observed = Math.max(this.observed, o.round);
    this.armWatchdog();
    const r = o.round;
    this.dirty = true;
    const info = await this.state!.stepObserved(o.epoch, r);
    const hash = info.hash;
    const contributors = o.contributors.map((i) => ep.members[i]).filter((x): x is string => !!x);
    // The round's samples as every member planned them; the samples a contributor claimed in the
    // exchange must be its planned count (a volunteer cannot weigh its gradient up).
    const plan = planRound(this.data, ep.samplesPerRound);
    const next = advanceDataState(this.data, plan, ep.members.map((_, i) => o.contributors.includes(i)), this.trainTotal);
    const perSamples = new Map<string, number>();
    const misreported: string[] = [];
    for (const i of o.contributors) {
      perSamples.set(ep.members[i], plan.counts[i]);
      if (o.shards.some((sh) => sh.contributors.includes(i) && sh.contributorSamples[sh.contributors.indexOf(i)] !== plan.counts[i])) misreported.push(ep.members[i]);
    }
    const roundSamples = o.contributors.reduce((a, i) => a + plan.counts[i], 0);

    await this.waitReports(r, contributors, o.epoch);
    const reps = (this.reports.get(r) ?? []).filter((p) => contributors.includes(p.workerId));
    const byWorker = new Map<string, RoundReport__Output>();
    // Only reports of this attempt of the round (a superseded epoch's attempt has other slices).
    for (const p of reps) if ((p.report.exchangeEpoch || p.report.epoch) === o.epoch) byWorker.set(p.workerId, p.report);

    let lossSum = 0;
    let lossN = 0;
    let bytes = 0;
    let maxMs = 0;
    for (const [id, rep] of byWorker) {
      const n = perSamples.get(id) ?? Number(rep.samples);
      if (Number.isFinite(rep.loss)) {
        lossSum += rep.loss * n;
        lossN += n;
      }
      bytes += Number(rep.bytesSent);
      maxMs = Math.max(maxMs, rep.computeMs + rep.exchangeMs + rep.waitMs);
      if (rep.computeMs > 0) {
        const s = n / (rep.computeMs / 1000);
        const prev = this.speeds.get(id);
        this.speeds.set(id, prev === undefined ? s : 0.7 * prev + 0.3 * s);
      }
    }
    // Shard progress: the contributors' samples count now the round is committed.
    const order = this.orderFor(plan.epoch);
    const touched = new Map<number, string>();
    for (const i of o.contributors) for (const p of order.pieces(plan.ranges[i])) touched.set(p.shard, ep.members[i]);
    const perShard = order.processedPerShard(next.epoch === plan.epoch ? next : { epoch: plan.epoch, todo: [] });
    const now = performance.now();
    const wallMs = now - this.lastCommitAt;
    if (this.recentCommits.length === 0) this.recentCommits.push({ at: this.lastCommitAt, samples: 0 });
    this.lastCommitAt = now;
    // samples/s over the last RATE_WINDOW commits: the keeper may commit several queued rounds in a
    // burst (after an evaluation or a checkpoint), and one round over a few ms read as ~10× the rate.
    this.recentCommits.push({ at: now, samples: roundSamples });
    if (this.recentCommits.length > RATE_WINDOW + 1) this.recentCommits.shift();
    const first = this.recentCommits[0];
    const windowMs = now - first.at;
    const windowSamples = this.recentCommits.reduce((a, c) => a + c.samples, 0) - first.samples;
    const metrics: { name: string; value: number }[] = [
      { name: 'samples', value: roundSamples },
      { name: 'samples_per_s', value: windowMs > 0 ? windowSamples / (windowMs / 1000) : NaN },
      { name: 'bytes_per_round', value: bytes },
      { name: 'lr', value: info.lr },
      { name: 'grad_norm', value: info.gradNorm },
      { name: 'contributors', value: contributors.length },
    ];
    if (lossN > 0) metrics.push({ name: 'loss', value: lossSum / lossN });
    // Robust aggregation: contributions the owners scaled down to their shard's norm bound. One
    // far beyond it is worth an admin's look (an event naming the sender; the owner reported it).
    if (this.spec.aggregation.kind === 'clipped-mean') {
      let scaled = 0;
      // One event per sender and round: in how many shards, and the largest norm / bound.
      const flagrant = new Map<string, { shards: number; worst: number; reportedBy: Set<string> }>();
      for (const [owner, rep] of byWorker) {
        for (const sc of rep.scaled ?? []) {
          scaled++;
          if (!(sc.norm >= FLAGRANT_SCALE * sc.bound)) continue;
          const f = flagrant.get(sc.workerId) ?? { shards: 0, worst: 0, reportedBy: new Set<string>() };
          f.shards++;
          f.worst = Math.max(f.worst, sc.norm / sc.bound);
          f.reportedBy.add(owner);
          flagrant.set(sc.workerId, f);
        }
      }
      for (const [workerId, f] of flagrant) {
        void this.deps.events
          .record(this.job.id, 'job.scaled', { round: r, shards: f.shards, worstNormOverBound: f.worst, reportedBy: [...f.reportedBy].sort() }, { workerId })
          .catch(() => undefined);
      }
      metrics.push({ name: 'scaled_contributions', value: scaled });
      const audited = this.audits.get(r);
      if (audited) metrics.push({ name: 'audited_shards', value: audited.passed });
    }
    for (const k of this.audits.keys()) if (k <= r) this.audits.delete(k);
    const groups = new Map<string, string>();
    for (const id of contributors) groups.set(id, (await this.deps.groupOf(id)) ?? '00000000-0000-0000-0000-000000000000');

    // Published before the commit: a committed round is always replayable (a crash in between
    // leaves an uncommitted update, which the next keeper purges at start).
    const dataText = encodeDataState(next);
    await this.state!.publishObserved(r, hash, dataText);
    const ok = await this.deps.handle.db.transaction(async (tx) => {
      if (!(await this.deps.jobs.advanceRound(this.job.id, r, roundSamples, { epoch: next.epoch, state: dataText }, tx))) return false;
      await this.deps.rounds.insert(
        {
          jobId: this.job.id,
          round: r,
          epoch: o.epoch,
          dataEpoch: plan.epoch,
          loss: lossN > 0 ? lossSum / lossN : null,
          samples: roundSamples,
          contributors,
          paramHash: hash,
          durationMs: Math.round(maxMs || wallMs),
          bytesExchanged: bytes,
        },
        tx,
      );
      await this.deps.metrics.insert(metrics.map((m) => ({ jobId: this.job.id, round: r, ...m })), tx);
      await this.deps.credits.add(
        this.job.id,
        contributors.map((id) => ({ workerId: id, groupId: groups.get(id)!, samples: perSamples.get(id) ?? 0, computeMs: byWorker.get(id)?.computeMs ?? 0, rounds: 1 })),
        tx,
      );
      const totals = new Map(this.train.map((s) => [s.index, s.sampleCount]));
      await this.deps.rounds.setProgress(
        this.job.id,
        plan.epoch,
        [...touched].map(([shard, workerId]) => ({ shard, processed: perShard.get(shard) ?? 0, total: totals.get(shard) ?? 0, workerId })),
        r,
        tx,
      );
      return true;
    });
    if (!ok) {
      // Someone else committed this round: another keeper owns the job. Stop; never double-commit.
      this.log.error({ round: r }, 'round already committed elsewhere; this keeper stops');
      await this.stop(false);
      return;
    }
    this.committed = r;
    this.data = next;
    this.dirty = false;
    this.hashes.set(r, { hash, data: dataText, epoch: o.epoch });
    for (const k of this.hashes.keys()) if (k < r - 64) this.hashes.delete(k);
    for (const k of this.reports.keys()) if (k <= r) this.reports.delete(k);
    for (const p of reps) this.checkHash(p.workerId, r, p.report, p.report.exchangeEpoch || p.report.epoch);
    for (const id of misreported) {
      this.log.warn({ workerId: id, round: r }, 'member claimed another sample count than its plan; removing it');
      const message = 'claimed another sample count than the round plan gives it';
      void this.deps.events.record(this.job.id, 'job.fault', { round: r, kind: 'misreported-samples', message }, { workerId: id }).catch(() => undefined);
      void this.deps
        .exclude(id, 'misreported-samples', message)
        .catch((err) => this.log.error({ err, workerId: id }, 'could not store the exclusion'))
        .then(() => this.deps.roster.change(this.job.id, { remove: [id], reason: 'misreported-samples' }))
        .catch((err) => this.log.error({ err }, 'roster change failed'));
    }

    this.deps.events.publish({
      type: 'job.round',
      jobId: this.job.id,
      data: { round: r, epoch: o.epoch, dataEpoch: plan.epoch, loss: lossN > 0 ? lossSum / lossN : null, samples: roundSamples, contributors: contributors.length },
      at: new Date().toISOString(),
    });

    const roundsDone = this.spec.rounds !== undefined && r + 1 >= this.spec.rounds;
    const epochsDone = this.spec.epochs !== undefined && next.epoch >= this.spec.epochs;
    // The last round is evaluated by finish(), with the test split.
    if (this.spec.evalEvery > 0 && (r + 1) % this.spec.evalEvery === 0 && !roundsDone && !epochsDone) this.startValidation(r);
    if (roundsDone || epochsDone) {
      await this.finish(r);
      return;
    }
    if ((r + 1) % this.spec.checkpointEvery === 0) await this.startCheckpoint(r + 1);
    const cur = [...this.epochs.values()].reduce<EpochInfo | undefined>((a, e) => (!a || e.epoch > a.epoch ? e : a), undefined);
    if (cur && cur.epoch === ep.epoch) {
      if (this.shouldRebalance(ep, r)) {
        // Shares follow observed speed, so fast and slow members finish a round together.
        void this.deps.roster.change(this.job.id, { reason: 'rebalance', lookahead: true }).catch((err) => this.log.error({ err }, 'roster change failed'));
      }
    }
  }

  /** Every REBALANCE_EVERY rounds of an epoch: do measured speeds call for shares ≥ 25 % off the current ones? */
  private shouldRebalance(ep: EpochInfo, r: number): boolean {
    if (ep.members.length < 2 || (r - ep.startRound + 1) % REBALANCE_EVERY !== 0) return false;
    const speeds = ep.members.map((id) => this.speeds.get(id));
    if (speeds.some((x) => x === undefined || !(x > 0))) return false;
    const ideal = proportionalShares(speeds as number[], this.spec.globalBatch);
    return ideal.some((x, i) => Math.abs(x - ep.samplesPerRound[i]) >= Math.max(2, 0.25 * ep.samplesPerRound[i]));
  }

  private waitReports(round: number, contributors: string[], epoch: number): Promise<void> {
    const grace = this.opts.reportGraceMs ?? Math.min(2000, this.spec.roundDeadlineMs);
    const have = () => {
      const got = new Set((this.reports.get(round) ?? []).filter((p) => (p.report.exchangeEpoch || p.report.epoch) === epoch).map((p) => p.workerId));
      return contributors.every((c) => got.has(c));
    };
    if (have()) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, grace);
      const onAbort = () => done();
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.reportWaiters.set(round, () => {
        if (have()) {
          this.reportWaiters.delete(round);
          this.abort.signal.removeEventListener('abort', onAbort);
          done();
        }
      });
    });
  }

  /**
   * Compares a member's hash after `round` with ours. Only a report of the exchange epoch the
   * round was committed from counts: a member may also report an attempt of the round in an
   * epoch that was superseded (e.g. reports queued while the coordinator was away).
   */
  private checkHash(workerId: string, round: number, report: RoundReport__Output, epoch: number): void {
    const c = this.hashes.get(round);
    const reported = report.paramHash;
    if (!c || !reported || c.epoch < 0 || epoch !== c.epoch) return;
    const sameData = !report.dataState || report.dataState === c.data;
    if (reported === c.hash && sameData) return;
    const mine = c.hash;
    this.log.warn({ workerId, round, reported, keeper: mine, dataState: report.dataState, keeperDataState: c.data }, 'member state differs from the keeper\'s; resyncing it');
    void this.deps.events
      .record(this.job.id, 'job.hash-mismatch', { round, reported, keeper: mine, ...(sameData ? {} : { dataState: report.dataState, keeperDataState: c.data }) }, { workerId })
      .catch(() => undefined);
    void this.deps.roster.resync(this.job.id, workerId).catch((err) => this.log.error({ err }, 'resync failed'));
  }

  /**
   * Takes the checkpoint whose next round is `round` (the state's copy, in its thread) and stores
   * it beside the commit loop, after any still being stored: the upload, its row and the replay
   * stream's trim no longer hold the commits (they did, for 0.4 s at the demo's size, and
   * seconds for a large model).
   */
  private async startCheckpoint(round: number): Promise<void> {
    const snap = await this.snapshot(round);
    this.checkpointing = this.checkpointing.then(() => this.store(round, snap)).catch((err) => this.log.error({ err, round }, 'checkpoint failed'));
  }

  /** Writes the checkpoint whose next round is `round` (object + row), and trims the replay stream; waits for those under way. */
  async checkpoint(round: number): Promise<void> {
    await this.checkpointing;
    await this.store(round, await this.snapshot(round));
  }

  /** The checkpoint's bytes, and where the replay stream stood: updates from there on are for later rounds. */
  private async snapshot(round: number): Promise<{ hash: string; nextSeq: number | undefined }> {
    // The data state after the last applied round travels with the parameters.
    const { hash } = await this.state!.snapshot(round, { jobId: this.job.id, dataState: encodeDataState(this.data) });
    const jsm = await this.deps.nc.jetstreamManager();
    const last = (await jsm.streams.info(UPDATES_STREAM).catch(() => null))?.state.last_seq;
    return { hash, nextSeq: last === undefined ? undefined : last + 1 };
  }

  private async store(round: number, { hash, nextSeq }: { hash: string; nextSeq: number | undefined }): Promise<void> {
    const at = { bucket: buckets.checkpoints(this.job.id), key: checkpointKey(round) };
    const { bytes, sha256 } = await this.state!.storeSnapshot(round, at);
    await this.deps.checkpoints.upsert({ jobId: this.job.id, round, bucket: at.bucket, objectKey: at.key, bytes, sha256, paramHash: hash });
    await this.deps.events.record(this.job.id, 'job.checkpoint', { round, key: at.key, bytes, paramHash: hash });
    // Updates before the previous checkpoint are no longer needed by anyone (a joiner loads this one or that one).
    if (this.lastCheckpointSeq > 0) {
      const jsm = await this.deps.nc.jetstreamManager();
      await purgeUpdatesBefore(jsm, this.job.id, this.lastCheckpointSeq).catch(() => undefined);
    }
    if (nextSeq !== undefined) this.lastCheckpointSeq = nextSeq;
  }

  /**
   * Evaluates the parameters after round `r` on the validation split beside the commit loop: an
   * evaluation takes from under a second to a minute, and a commit loop that waited for it fell
   * behind the members by as many rounds, past what the gather observer queues (the keeper then
   * missed rounds and every member had to resync). Its metrics land on round `r` when it ends; an
   * evaluation still running when the next is due makes that one skipped (logged).
   */
  private startValidation(r: number): void {
    if (this.evaluating) {
      this.log.info({ round: r, running: this.evaluating.round }, 'validation of an earlier round still running; this one is skipped');
      return;
    }
    // Asked now, before the next round's step changes them. (Handled at once: the evaluation
    // uses it only after the test seam, and a rejection left unhandled meanwhile would end the process.)
    const params = this.state!.params();
    params.catch(() => undefined);
    const t0 = performance.now();
    const done = (async () => {
      await this.opts.beforeValidation?.(this.job.id, r);
      const res = await within(
        params.then((p) => this.evaluate('validation', p)),
        EVAL_LIMIT_MS,
        'validation',
      );
      if (!res || this.stopped) return;
      const metrics = [{ name: 'val_loss', value: res.loss }];
      if (res.accuracy !== undefined) metrics.push({ name: 'val_accuracy', value: res.accuracy });
      await this.deps.metrics.insert(metrics.map((m) => ({ jobId: this.job.id, round: r, ...m })));
      this.deps.events.publish({
        type: 'job.eval',
        jobId: this.job.id,
        data: { round: r, split: 'validation', loss: res.loss, accuracy: res.accuracy ?? null, samples: res.samples, durationMs: Math.round(performance.now() - t0) },
        at: new Date().toISOString(),
      });
    })()
      .catch((err: unknown) => {
        if (!this.stopped) this.log.warn({ err, round: r }, 'validation failed');
      })
      .finally(() => {
        if (this.evaluating?.done === done) this.evaluating = null;
      });
    this.evaluating = { round: r, done };
  }

  /**
   * Mean loss and accuracy on a split (validation or test): in the evaluation thread when there
   * is one (off the coordinator's event loop: the thread decodes the split's shards once and keeps
   * them, so later evaluations send only the parameters), else inline between yields.
   */
  async evaluate(split: 'validation' | 'test', params?: Float32Array): Promise<{ loss: number; accuracy?: number; samples: number } | null> {
    if (this.job.datasetId === null) return null;
    const p = params ?? (await this.state!.params());
    const rows = await this.deps.shardsOf(this.job.datasetId, split);
    if (!rows.length) return null;
    const store = await this.deps.shardStore(this.job.datasetId);
    const batch = this.opts.evalBatch ?? 1000;
    const thread = this.deps.evalThread();
    if (thread) {
      const specJson = JSON.stringify(this.spec.model);
      const key = `${this.job.datasetId}/${split}`;
      const ask = async (withShards: boolean) =>
        thread.evaluate({
          specJson,
          // A copy each time: the buffer is transferred to the thread (detached here).
          params: p.slice().buffer as ArrayBuffer,
          // Copies of the stored bytes, transferred to the thread.
          data: withShards ? { key, shards: await Promise.all(rows.map(async (row) => (await store.get(row.sha256)).slice().buffer as ArrayBuffer)) } : { key },
          batch,
        });
      const res = await ask(false)
        .then((r) => (r.missingData ? ask(true) : r))
        .catch((err: unknown) => {
          this.log.warn({ err }, 'evaluation thread failed; evaluating inline');
          return null;
        });
      if (res && !res.missingData) {
        const count = res.samples ?? 0;
        if (!count) return null;
        return { loss: res.lossSum! / count, accuracy: res.correct === null || res.correct === undefined ? undefined : res.correct / count, samples: count };
      }
    }
    const shards = [];
    for (const row of rows) shards.push(await store.get(row.sha256));
    const set = decodeEvalSet(shards);
    if (!set.count) return null;
    // Let the event loop breathe between batches.
    const { lossSum, correct } = await evaluateSet(await this.modelOf(), p, set, batch, () => new Promise((r) => setImmediate(r)));
    return { loss: lossSum / set.count, accuracy: correct === null ? undefined : correct / set.count, samples: set.count };
  }

  private async finish(r: number): Promise<void> {
    this.finishing = true;
    await this.checkpoint(r + 1);
    // Its metrics belong before the final ones (it is bounded by EVAL_LIMIT_MS).
    await this.evaluating?.done;
    // A job completes even if an evaluation or the export never answers (bounded waits).
    const test = await within(this.evaluate('test'), EVAL_LIMIT_MS, 'test evaluation').catch((err) => {
      this.log.error({ err }, 'test evaluation failed');
      return null;
    });
    const val = await within(this.evaluate('validation'), EVAL_LIMIT_MS, 'validation').catch((err) => {
      this.log.error({ err }, 'validation failed');
      return null;
    });
    const final: { name: string; value: number }[] = [];
    if (test) {
      final.push({ name: 'test_loss', value: test.loss });
      if (test.accuracy !== undefined) final.push({ name: 'test_accuracy', value: test.accuracy });
    }
    if (val) {
      final.push({ name: 'val_loss', value: val.loss });
      if (val.accuracy !== undefined) final.push({ name: 'val_accuracy', value: val.accuracy });
    }
    await this.deps.metrics.insert(final.map((m) => ({ jobId: this.job.id, round: r, ...m })));
    let model: { bucket: string; key: string } | null = null;
    try {
      const thread = this.deps.evalThread();
      const exported = await within(
        thread
          ? (async () => thread.exportModel({ specJson: JSON.stringify(this.spec.model), source: { params: (await this.state!.params()).buffer as ArrayBuffer, round: r + 1 } }))()
          : (async () => exportModelJson(await this.modelOf(), await this.state!.params(), r + 1))(),
        EVAL_LIMIT_MS,
        'model export',
      );
      model = await this.deps.blobs.putModel(this.job.id, JSON.stringify(exported));
    } catch (err) {
      this.log.error({ err }, 'model export failed');
    }
    const row = await this.deps.jobs.transition(this.job.id, ['running'], { status: 'completed', statusReason: `finished after round ${r}`, finishedAt: new Date() });
    if (row) {
      await this.deps.events.record(this.job.id, 'job.state', { status: 'completed', round: r, testAccuracy: test?.accuracy, model });
    }
    this.log.info({ round: r, testAccuracy: test?.accuracy }, 'job completed');
    await this.opts.beforeFinishStop?.(this.job.id);
    await this.stop(false, true);
    const jsm = await this.deps.nc.jetstreamManager();
    await purgeUpdates(jsm, this.job.id).catch(() => undefined);
    this.deps.onFinished(this.job.id);
  }

  /**
   * Stops following. With `checkpoint`, lets the round in hand commit, then writes the state after
   * the last committed round (never a state that holds an uncommitted update). `fromLoop`: called
   * by the round loop itself (a job that completed, a failed commit), which must not wait for a
   * stop already under way: that one waits for the loop, and each would wait for the other.
   */
  stop(checkpoint = true, fromLoop = false): Promise<void> {
    if (this.stopping) return fromLoop ? Promise.resolve() : this.stopping;
    this.stopped = true;
    clearTimeout(this.watchdog);
    this.abort.abort();
    this.wakeLoop?.();
    const part = (what: string, work: () => Promise<unknown>) => shutdownPart(`keeper ${this.job.id}: ${what}`, work);
    this.stopping = (async () => {
      if (checkpoint) {
        await part('round loop', async () => this.loop);
        if (this.state && this.committed >= 0 && !this.dirty) {
          await part('final checkpoint', () => this.checkpoint(this.committed + 1).catch((err) => this.log.error({ err }, 'final checkpoint failed')));
        }
      }
      await part('checkpoints', () => this.checkpointing);
      // An evaluation uses the model (inline) and the state's copy of the parameters; it ends by
      // itself within EVAL_LIMIT_MS, and its results are dropped once stopped.
      if (this.evaluating) await part('validation', () => within(this.evaluating!.done, 5000, 'validation').catch(() => undefined));
      await part('state thread', async () => this.state?.close());
      if (this.model) await part('model', async () => (await this.model!.catch(() => null))?.dispose());
    })();
    return this.stopping;
  }
}
