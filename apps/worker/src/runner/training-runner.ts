/**
 * The training runner (docs/jobs-protocol.md, "A round"): for one assignment it re-validates
 * the spec, connects to the data plane, loads the checkpoint and replays the committed updates
 * since, then follows the job's rosters and runs rounds — gradient over its next samples,
 * all-reduce through NATS, the optimizer step on the mean, a report — until the assignment is
 * withdrawn (`signal`).
 */
import { advanceDataState, encodeDataState, decodeDataState, EpochOrder, gatherBatch, hash32, planRound, ShardCache, type Piece, type RoundPlan } from '@gradpool/datasets';
import {
  OwnerMissingError,
  parseCodecSpec,
  QuorumNotMetError,
  RoundAbortedError,
  RoundExchange,
  type AllReduceResult,
  type CodecSpec,
  type Roster,
} from '@gradpool/exchange';
import {
  parseAssignedJob,
  quorumFor,
  roundOptimizer,
  WorkerState,
  type AssignedJob,
  type Assignment__Output,
  type RosterUpdate__Output,
} from '@gradpool/protocol';
import { buildModel, createOptimizer, OptimizerConfigSchema, type Model, type Optimizer, type OptimizerConfig } from '@gradpool/training';
import type { NatsConnection } from 'nats';
import type { Logger } from 'pino';
import type { AssignmentRunner, RunnerContext } from '../runner.js';
import { FaultKinds, RunnerFault } from './faults.js';
import { CheckpointReader, ModelState } from './model-state.js';
import { connectDataPlane } from './nats-connect.js';
import { MicroBatcher } from './micro-batch.js';
import { latestUpdate, replayUpdates } from './replay.js';
import { RosterWatch } from './roster-watch.js';
import { ShardSource } from './shard-source.js';

export interface TrainingRunnerOptions {
  logger: Logger;
  /** Directory of the shard cache (shared between jobs and agents on this machine); null: none. */
  cacheDir: string | null;
  /** Size cap of the shard cache in bytes (default 2 GiB). */
  cacheMaxBytes?: number;
  /** Longest wait for the next message of the keeper's updates stream while catching up (default 60 s). */
  replayIdleTimeoutMs?: number;
  /** A member waits this long for every averaged shard of a round (default: the exchange's, 2·deadline + 1 s). */
  gatherTimeoutMs?: number;
  /** Object-store bucket of the dataset shards when the assignment names none (default `buckets.shards`; tests use their own). */
  shardBucket?: string;
  /** Longest synchronous compute step in ms; larger batches run as micro-batches (default 250). */
  stepBudgetMs?: number;
}

/** The gradient of one round, kept until a mean that includes it (or a newer round) replaces it. */
interface Held {
  round: number;
  dataEpoch: number;
  grad: Float32Array;
  samples: number;
  loss: number;
  slices: Piece[];
  computeMs: number;
}

type EpochOutcome =
  /** A newer roster re-runs a round at or before the one we are at: switch to it now. */
  | { kind: 'switch'; held: Held | null }
  /** This epoch cannot go on (a missing owner, no quorum, no samples, not a member): wait for the next roster. */
  | { kind: 'stalled'; held: Held | null };

/** Runs the rounds of training jobs (the agent's default runner). */
export class TrainingRunner implements AssignmentRunner {
  private cache: Promise<ShardCache> | null = null;

  constructor(private readonly opts: TrainingRunnerOptions) {}

  private shardCache(): Promise<ShardCache> | null {
    if (this.opts.cacheDir === null) return null;
    this.cache ??= ShardCache.open({ dir: this.opts.cacheDir, maxBytes: this.opts.cacheMaxBytes });
    return this.cache;
  }

  async run(assignment: Assignment__Output, signal: AbortSignal, context: RunnerContext): Promise<void> {
    const run = new JobRun(assignment, signal, context, this.opts, this.shardCache());
    try {
      await run.run();
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof RunnerFault) {
        run.log.error({ kind: err.kind, err: err.message }, 'job fault; stopping this job');
        context.fault({ jobId: assignment.jobId, epoch: run.epoch, round: run.round, kind: err.kind, message: err.message, subjectWorkerId: err.subjectWorkerId });
        return;
      }
      throw err;
    } finally {
      await run.close();
    }
  }
}

/** One assignment's work. */
class JobRun {
  readonly log: Logger;
  private job!: AssignedJob;
  private model: Model | null = null;
  private nc: NatsConnection | null = null;
  private state: ModelState | null = null;
  private checkpoints!: CheckpointReader;
  private shards!: ShardSource;
  private exchange: RoundExchange | null = null;
  /** Epoch positions → shard pieces, for the current data epoch. */
  private order: EpochOrder | null = null;
  private trainSamples = 0;
  private readonly micro: MicroBatcher;
  private codec!: CodecSpec;
  /** Applied to each round's averaged vector (the keeper's too): roundOptimizer(spec). */
  private optimizer!: OptimizerConfig;
  /** Local steps (spec.localSteps > 1): the optimizer of the inner steps, and its state, which
   * stays on this member from round to round (DiLoCo) and starts afresh with a checkpoint. */
  private innerConfig: OptimizerConfig | null = null;
  private inner: Optimizer | null = null;
  /** Whether this run has applied a round of its own yet (a fresh run may join an epoch late). */
  private trained = false;
  /** Contributions this member scaled down as an owner, by round, until that round's report. */
  private readonly scaled = new Map<number, { workerId: string; shard: number; norm: number; bound: number }[]>();
  /** Epoch and round for faults. */
  epoch = 0;
  round = 0;

  constructor(
    private readonly a: Assignment__Output,
    private readonly signal: AbortSignal,
    private readonly ctx: RunnerContext,
    private readonly opts: TrainingRunnerOptions,
    private readonly cache: Promise<ShardCache> | null,
  ) {
    this.log = opts.logger.child({ component: 'runner', jobId: a.jobId, workerId: ctx.workerId });
    this.round = Number(a.checkpointRound) || 0;
    this.micro = new MicroBatcher({ budgetMs: opts.stepBudgetMs });
  }

  async run(): Promise<void> {
    this.progress(WorkerState.WORKER_STATE_SYNCING, 'checking the job spec');
    await this.prepare();
    this.signal.throwIfAborted();
    using rosters = new RosterWatch(this.ctx, this.a.jobId);
    this.progress(WorkerState.WORKER_STATE_SYNCING, 'loading the checkpoint');
    await this.loadCheckpoint(this.a.checkpointKey);
    this.progress(WorkerState.WORKER_STATE_SYNCING, 'waiting for a roster');
    let roster = await rosters.wait(-1, this.signal);
    let held: Held | null = null;
    for (;;) {
      const outcome = await this.runEpoch(roster, held, rosters);
      held = outcome.held;
      const newer = rosters.newerThan(roster.epoch);
      if (outcome.kind === 'switch' && newer) roster = newer;
      else {
        this.progress(WorkerState.WORKER_STATE_SYNCING, `waiting for a roster after epoch ${roster.epoch}`);
        roster = await rosters.wait(roster.epoch, this.signal);
      }
    }
  }

  /** Spec, model, codec and data plane; a spec that does not hold is a 'bad-spec' fault. */
  private async prepare(): Promise<void> {
    const bad = (why: string) => new RunnerFault(FaultKinds.badSpec, why);
    try {
      this.job = parseAssignedJob(this.a.specJson);
    } catch (err) {
      throw bad(`the assignment's spec is invalid: ${(err as Error).message}`);
    }
    const { spec } = this.job;
    if (this.job.jobId !== this.a.jobId) throw bad(`the spec is for job ${this.job.jobId}, the assignment for ${this.a.jobId}`);
    const opt = OptimizerConfigSchema.safeParse(roundOptimizer(spec));
    const name = spec.localSteps > 1 ? 'outerOptimizer' : 'optimizer';
    if (!opt.success) throw bad(`${name}: ${opt.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    this.optimizer = opt.data;
    if (spec.localSteps > 1) {
      const inner = OptimizerConfigSchema.safeParse(spec.optimizer);
      if (!inner.success) throw bad(`optimizer: ${inner.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      this.innerConfig = inner.data;
    }
    try {
      this.codec = parseCodecSpec(spec.codec);
    } catch (err) {
      throw bad(`codec: ${(err as Error).message}`);
    }
    try {
      this.model = await buildModel(spec.model);
    } catch (err) {
      throw bad((err as Error).message);
    }
    if (this.model.paramCount !== this.job.paramCount) {
      throw bad(`the model has ${this.model.paramCount} parameters here, the coordinator built ${this.job.paramCount}`);
    }
    if (!this.a.checkpointBucket || !this.a.checkpointKey) throw bad('the assignment names no checkpoint');
    this.trainSamples = this.job.dataset.train.reduce((a, s) => a + s.samples, 0);
    if (!(this.trainSamples > 0)) throw bad('the train split has no samples');
    // The assignment's access (a NATS user limited to this job) when the coordinator issues them.
    this.nc = await connectDataPlane(this.ctx.jobNats() ?? this.a.nats ?? this.ctx.nats, `gradpool-worker ${this.ctx.workerId} job ${this.a.jobId}`, () => this.ctx.jobNats());
    this.checkpoints = new CheckpointReader(this.nc, this.a.checkpointBucket, {
      onRetry: (attempt, err) => this.log.warn({ attempt, err: err.message }, 'checkpoint read failed transiently; retrying'),
    });
    this.shards = new ShardSource({
      nc: this.nc,
      shards: this.job.dataset.train,
      featureSize: this.job.dataset.featureShape.reduce((p, d) => p * d, 1),
      // The dataset's bucket as the coordinator names it (its own, or the shared one).
      bucket: this.job.dataset.bucket ?? this.opts.shardBucket,
      cache: this.cache ? await this.cache : null,
    });
  }

  private async loadCheckpoint(key: string): Promise<void> {
    const cp = await this.checkpoints.read(key);
    this.state = ModelState.fromCheckpoint(cp, this.optimizer, this.model!.paramCount, this.trainSamples);
    this.inner = null;
    this.round = cp.round;
    this.log.info({ key, round: cp.round }, 'checkpoint loaded');
  }

  /**
   * The round this member runs first in an epoch that starts at `start`. A member that has been
   * training runs `start` (re-running rounds it applied in an older epoch). A fresh run (a new
   * or resync assignment) joins where the job is: the epoch may have been running for a while,
   * and the keeper's newest published update says how far. A member ahead of `start` keeps its
   * rounds only if the keeper committed them too (same hash).
   */
  private async entryRound(start: number): Promise<number> {
    const state = this.state!;
    if (this.trained && state.round <= start) return start;
    const latest = await latestUpdate(this.nc!, this.job.updatesStream, this.a.jobId);
    let first = Math.max(start, latest ? latest.round + 1 : 0);
    if (!this.trained) first = Math.max(first, state.round);
    if (state.round === first && latest && latest.round === first - 1 && latest.paramHash && latest.paramHash !== state.hash()) {
      // Our state is at the right round but not the keeper's: rebuild it.
      this.log.warn({ round: first }, 'our parameters differ from the keeper\'s; reloading');
      await this.loadCheckpoint(this.a.checkpointKey);
    }
    return first;
  }

  /**
   * Brings the state to `target` (the round the next update is for): replays the committed
   * updates when behind; from the newest checkpoint at or before `target` when ahead (we applied
   * a round the job re-runs) or when the stream no longer has what we need.
   */
  private async syncTo(target: number): Promise<void> {
    const state = this.state!;
    if (state.round === target) return;
    this.progress(WorkerState.WORKER_STATE_SYNCING, `catching up from round ${state.round} to ${target}`);
    const newest = (await this.checkpoints.rounds().catch(() => [] as number[])).filter((r) => r <= target).pop();
    if (state.round < target) {
      // A checkpoint newer than our state saves replaying the rounds before it (a late joiner
      // must be ready before the others reach its first round).
      if (newest !== undefined && newest > state.round) await this.loadCheckpoint(`round-${newest}`);
      try {
        await this.replay(target);
        return;
      } catch (err) {
        if (!(err instanceof RunnerFault) || err.kind !== FaultKinds.replayGap || newest === undefined || newest === this.state!.round) throw err;
        this.log.warn({ err: err.message }, 'replay from our state failed; trying the newest checkpoint');
      }
    }
    if (newest === undefined) throw new RunnerFault(FaultKinds.badCheckpoint, `no checkpoint at or before round ${target} in ${this.checkpoints.bucket}`);
    await this.loadCheckpoint(`round-${newest}`);
    await this.replay(target);
  }

  private async replay(target: number): Promise<void> {
    const state = this.state!;
    const from = state.round;
    const t0 = performance.now();
    for await (const u of replayUpdates({
      nc: this.nc!,
      stream: this.job.updatesStream,
      jobId: this.a.jobId,
      size: this.model!.paramCount,
      from,
      to: target,
      signal: this.signal,
      idleTimeoutMs: this.opts.replayIdleTimeoutMs ?? 60_000,
    })) {
      if (!u.dataState) throw new RunnerFault(FaultKinds.replayGap, `the update of round ${u.round} carries no data state`);
      let data;
      try {
        data = decodeDataState(u.dataState, this.trainSamples);
      } catch (err) {
        throw new RunnerFault(FaultKinds.replayGap, `the update of round ${u.round}: ${(err as Error).message}`);
      }
      state.apply(u.round, u.mean, data);
      this.round = state.round;
      if (u.paramHash && u.paramHash !== state.hash()) {
        throw new RunnerFault(FaultKinds.replayGap, `after replaying round ${u.round} our parameters differ from the keeper's (${u.paramHash.slice(0, 12)}…)`);
      }
    }
    this.log.info({ from, to: target, durationMs: Math.round(performance.now() - t0) }, 'caught up from the updates stream');
  }

  /** Rounds of one roster epoch, from its startRound until a newer roster takes over or it stalls. */
  private async runEpoch(roster: RosterUpdate__Output, heldIn: Held | null, rosters: RosterWatch): Promise<EpochOutcome> {
    const { spec } = this.job;
    const workerId = this.ctx.workerId;
    const start = Number(roster.startRound);
    this.epoch = roster.epoch;
    const log = this.log.child({ epoch: roster.epoch });
    const members = [...roster.members].sort((x, y) => x.index - y.index);
    const self = members.find((m) => m.workerId === workerId);
    if (!self || members.some((m, i) => m.index !== i)) {
      log.warn({ members: members.map((m) => m.workerId) }, self ? 'roster indexes are not 0..K-1; waiting for another' : 'this worker is not in the roster; waiting for another');
      return { kind: 'stalled', held: null };
    }
    const first = await this.entryRound(start);
    await this.syncTo(first);
    const state = this.state!;
    const selfIndex = members.indexOf(self);
    const shares = members.map((m) => m.samplesPerRound);
    // A kept gradient is reused only for the same round over the same samples (checked below).
    let held = heldIn && heldIn.round === first ? heldIn : null;
    const exRoster: Roster = { epoch: roster.epoch, members: members.map((m) => m.workerId), selfId: workerId, startRound: first };
    this.exchange ??= new RoundExchange({
      nc: this.nc!,
      jobId: this.a.jobId,
      size: this.model!.paramCount,
      roster: exRoster,
      codec: this.codec,
      deadlineMs: spec.roundDeadlineMs,
      gatherTimeoutMs: this.opts.gatherTimeoutMs,
      quorum: (k) => quorumFor(spec, k),
      clipNormRatio: spec.aggregation.kind === 'clipped-mean' ? spec.aggregation.ratio : undefined,
      onReject: (sender, reason) => log.warn({ sender, reason }, 'rejected data-plane message'),
      onClip: (sender, info) => {
        log.info({ sender, ...info }, 'contribution scaled down to the norm bound');
        const list = this.scaled.get(info.round) ?? [];
        list.push({ workerId: sender, shard: info.shard, norm: info.norm, bound: info.bound });
        this.scaled.set(info.round, list);
      },
    });
    log.info({ startRound: start, firstRound: first, members: exRoster.members, samplesPerRound: self.samplesPerRound, dataEpoch: state.data.epoch }, 'training in epoch');

    for (let r = first; ; r++) {
      this.signal.throwIfAborted();
      this.round = r;
      const newer = rosters.newerThan(roster.epoch);
      if (newer && Number(newer.startRound) <= r) return { kind: 'switch', held };
      if ((spec.rounds !== undefined && r >= spec.rounds) || (spec.epochs !== undefined && state.data.epoch >= spec.epochs)) {
        this.progress(WorkerState.WORKER_STATE_SYNCING, `all ${spec.rounds !== undefined && r >= spec.rounds ? `${spec.rounds} rounds` : `${spec.epochs} epochs`} done; waiting for the coordinator`);
        return { kind: 'stalled', held: null };
      }
      this.progress(WorkerState.WORKER_STATE_TRAINING, `round ${r}: computing`);
      // Every member plans the round from the same data state and shares: no dealing needed.
      const plan = planRound(state.data, shares);
      const mine = this.orderFor(plan.epoch).pieces(plan.ranges[selfIndex]);
      if (held && !(held.dataEpoch === plan.epoch && sameSlices(mine, held.slices))) {
        log.info({ round: r }, 'the kept gradient is not for these samples; recomputing');
        held = null;
      }
      if (!held) held = await this.compute(r, plan, selfIndex, shares);
      this.progress(WorkerState.WORKER_STATE_TRAINING, `round ${r}: exchanging`);
      const g: Held = held;
      let res: AllReduceResult;
      const superseded = new AbortController();
      const offRoster = rosters.onNewer((nr) => Number(nr.startRound) <= r && superseded.abort());
      // A roster that arrived while we computed (before the listener) takes over as well: without
      // this check we would wait for the old epoch's round until its gather timeout.
      const arrived = rosters.newerThan(roster.epoch);
      if (arrived && Number(arrived.startRound) <= r) {
        offRoster();
        return { kind: 'switch', held: g };
      }
      try {
        res = await this.exchange.allReduce(r, g.grad, g.samples, { signal: AbortSignal.any([this.signal, superseded.signal]), roster: exRoster });
      } catch (err) {
        if (this.signal.aborted) throw err;
        if (err instanceof RoundAbortedError || superseded.signal.aborted) return { kind: 'switch', held: g };
        if (err instanceof OwnerMissingError) {
          for (const owner of err.owners) this.fault(FaultKinds.ownerMissing, err.message, owner);
          return { kind: 'stalled', held: g };
        }
        if (err instanceof QuorumNotMetError) {
          // Not a fault of ours (the coordinator removes members that fault): too few members
          // were on time. The coordinator's next roster (a departure, a re-deal) re-runs it.
          log.warn({ round: r, err: err.message }, 'round without quorum; waiting for the next roster');
          return { kind: 'stalled', held: g };
        }
        throw err;
      } finally {
        offRoster();
      }
      // The samples of the members whose gradients are in the mean (in every shard) are done.
      const data = advanceDataState(state.data, plan, members.map((m) => res.contributors.includes(m.workerId)), this.trainSamples);
      state.apply(r, res.mean, data);
      // Applied: the exchange writes a later round's mean into this memory (no P fresh floats per round).
      this.exchange.recycle(res.mean);
      this.trained = true;
      held = null;
      const exchangeMs = Math.round(res.timings.publishMs);
      const paramHash = state.hash();
      this.ctx.report({
        jobId: this.a.jobId,
        epoch: roster.epoch,
        round: r,
        loss: g.loss,
        samples: g.samples,
        contributors: res.contributors,
        paramHash,
        computeMs: Math.round(g.computeMs),
        exchangeMs,
        waitMs: Math.max(0, Math.round(res.timings.totalMs) - exchangeMs),
        bytesSent: res.bytesSent,
        bytesReceived: res.bytesReceived,
        exchangeEpoch: res.epoch,
        dataState: encodeDataState(data),
        scaled: this.scaled.get(r) ?? [],
      });
      // Scaled contributions of this round (and of attempts of earlier ones) are reported or moot.
      for (const k of [...this.scaled.keys()]) if (k <= r) this.scaled.delete(k);
      log.debug(
        { round: r, loss: g.loss, contributors: res.contributors.length, totalSamples: res.totalSamples, paramHash, computeMs: Math.round(g.computeMs), exchangeMs, totalMs: Math.round(res.timings.totalMs) },
        'round done',
      );
      this.progress(WorkerState.WORKER_STATE_TRAINING, `round ${r} done, loss ${g.loss.toFixed(4)}`);
    }
  }

  private orderFor(dataEpoch: number): EpochOrder {
    if (this.order?.epoch !== dataEpoch) {
      const shards = this.job.dataset.train.map((s) => ({ index: s.index, samples: s.samples }));
      this.order = new EpochOrder(shards, this.job.spec.seed, dataEpoch);
    }
    return this.order;
  }

  /**
   * Our gradient of `round` over our samples of `plan` (none in a data epoch's short last round
   * when our lane is empty: a zero gradient of weight 0, so the owners need not wait for us).
   */
  private async compute(round: number, plan: RoundPlan, selfIndex: number, shares: number[]): Promise<Held> {
    const order = this.orderFor(plan.epoch);
    const slices = order.pieces(plan.ranges[selfIndex]);
    const t0 = performance.now();
    if (slices.length === 0) {
      return { round, dataEpoch: plan.epoch, grad: new Float32Array(this.model!.paramCount), samples: 0, loss: 0, slices, computeMs: 0 };
    }
    // Our samples of the next round if everyone contributes to this one: fetched while we compute.
    const after = advanceDataState(this.state!.data, plan, shares.map(() => true), this.trainSamples);
    const nextPlan = planRound(after, shares);
    const next = nextPlan.epoch === plan.epoch ? order.pieces(nextPlan.ranges[selfIndex]) : [];
    this.shards.retain([...slices, ...next].map((s) => s.shard));
    await this.shards.ensure(slices.map((s) => s.shard));
    this.shards.prefetch(next.map((s) => s.shard));
    const { spec } = this.job;
    const batch = gatherBatch(slices, (i) => this.shards.get(i), { seed: spec.seed, epoch: plan.epoch });
    if (spec.localSteps > 1) return this.localSteps(round, plan, slices, batch, t0);
    const step = await this.micro.step(
      this.model!,
      this.state!.params,
      { x: batch.features, y: batch.labels, n: batch.count },
      (k) => hash32(spec.seed, round, this.ctx.workerId, k),
      this.signal,
    );
    if (!Number.isFinite(step.loss)) this.log.warn({ round, loss: step.loss }, 'non-finite loss');
    return { round, dataEpoch: plan.epoch, grad: step.grad, samples: step.samples, loss: step.loss, slices, computeMs: performance.now() - t0 };
  }

  /**
   * Local steps (DiLoCo): `spec.localSteps` steps of the inner optimizer over consecutive parts of
   * our samples, from the round's parameters; what we exchange is the pseudo-gradient
   * (parameters before − after), weighted by all the samples.
   */
  private async localSteps(round: number, plan: RoundPlan, slices: Piece[], batch: { features: Float32Array; labels: Int32Array; count: number }, t0: number): Promise<Held> {
    const { spec } = this.job;
    const H = spec.localSteps;
    const start = this.state!.params;
    const theta = Float32Array.from(start);
    const inner = (this.inner ??= createOptimizer(this.innerConfig!, theta.length));
    const n = batch.count;
    const dim = batch.features.length / n;
    let lossSum = 0;
    for (let k = 0; k < H; k++) {
      const lo = Math.floor((k * n) / H);
      const hi = Math.floor(((k + 1) * n) / H);
      if (hi === lo) continue;
      const part = { x: batch.features.subarray(lo * dim, hi * dim), y: batch.labels.subarray(lo, hi), n: hi - lo };
      const step = await this.micro.step(this.model!, theta, part, (j) => hash32(spec.seed, round, this.ctx.workerId, k * 65_536 + j), this.signal);
      inner.step(theta, step.grad, round * H + k);
      lossSum += step.loss * (hi - lo);
    }
    const delta = new Float32Array(theta.length);
    for (let i = 0; i < delta.length; i++) delta[i] = start[i] - theta[i];
    const loss = lossSum / n;
    if (!Number.isFinite(loss)) this.log.warn({ round, loss }, 'non-finite loss');
    return { round, dataEpoch: plan.epoch, grad: delta, samples: n, loss, slices, computeMs: performance.now() - t0 };
  }

  private fault(kind: string, message: string, subjectWorkerId = ''): void {
    this.ctx.fault({ jobId: this.a.jobId, epoch: this.epoch, round: this.round, kind, message, subjectWorkerId });
  }

  private progress(state: RunnerState, status: string): void {
    this.ctx.progress({ state, round: String(this.round), status });
  }

  async close(): Promise<void> {
    await this.exchange?.close().catch(() => undefined);
    this.exchange = null;
    if (this.nc && !this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    this.nc = null;
    this.model?.dispose();
    this.model = null;
  }
}

function sameSlices(a: readonly Piece[], b: readonly Piece[]): boolean {
  return a.length === b.length && a.every((p, i) => p.shard === b[i].shard && p.start === b[i].start && p.end === b[i].end);
}

type RunnerState = Parameters<RunnerContext['progress']>[0]['state'];
