/**
 * The training runner against a real nats-server with JetStream (a private one per file): two
 * and three runners in this process train a small MLP on a synthetic dataset from a hand-written
 * checkpoint, with a test keeper (GatherObserver + the same optimizer) that publishes the
 * committed updates to the updates stream the way the coordinator's keeper does.
 */
import { advanceDataState, decodeDataState, encodeDataState, encodeShard, planRound, samplesLeft, sha256Hex, ShardStore } from '@gradpool/datasets';
import { ensureUpdatesStream, GatherObserver, publishUpdate } from '@gradpool/exchange';
import {
  buckets,
  roundOptimizer,
  UPDATES_STREAM,
  type AssignedJobInput,
  type Assignment__Output,
  type JobFault,
  type NatsAccess__Output,
  type RosterUpdate__Output,
  type RoundReport,
} from '@gradpool/protocol';
import { buildModel, createOptimizer, decodeCheckpoint, encodeCheckpoint, selectBackend, type ModelSpecInput } from '@gradpool/training';
import * as tf from '@tensorflow/tfjs';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../logger.js';
import type { RunnerContext, RunnerProgress } from '../runner.js';
import { FaultKinds } from './faults.js';
import { ModelState } from './model-state.js';
import { TrainingRunner } from './training-runner.js';

const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** nats-server with JetStream on a free port, its store in a temp dir. */
async function startJetStream(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gp-runner-js-'));
  const proc: ChildProcess = spawn(NATS_SERVER_BIN, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const nc = await connect({ servers: url, reconnect: false });
      await nc.jetstreamManager();
      await nc.close();
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    stop: async () => {
      if (proc.exitCode === null) await new Promise<void>((resolve) => (proc.once('exit', () => resolve()), proc.kill('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const FEATURES = 8;
const CLASSES = 3;
const SHARD_SAMPLES = 60;
const MODEL: ModelSpecInput = { kind: 'mlp', inputShape: [FEATURES], hidden: [16], numClasses: CLASSES };
const OPTIMIZER = { kind: 'adam', lr: 0.01 } as const;

/** A learnable synthetic dataset: the label is the argmax of three fixed projections. */
function syntheticShard(index: number): Uint8Array {
  const features = new Float32Array(SHARD_SAMPLES * FEATURES);
  const labels = new Int32Array(SHARD_SAMPLES);
  let s = 12345 + index * 777;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  for (let i = 0; i < SHARD_SAMPLES; i++) {
    const x = features.subarray(i * FEATURES, (i + 1) * FEATURES);
    for (let j = 0; j < FEATURES; j++) x[j] = rnd();
    const scores = [x[0] + x[1], x[2] - x[3], x[4] + x[5] - x[6]];
    labels[i] = scores.indexOf(Math.max(...scores));
  }
  return encodeShard({ count: SHARD_SAMPLES, shape: [FEATURES], normalisation: 'none' }, features, labels);
}

interface Env {
  url: string;
  nc: NatsConnection;
  access: NatsAccess__Output;
  shardBucket: string;
  shards: { index: number; sha256: string; samples: number; bytes: number }[];
  cacheDir: string;
}

/** What the coordinator writes for a job: checkpoint 0, the updates stream; returns the Assignment. */
async function createJob(env: Env, overrides: Partial<AssignedJobInput['spec']> = {}): Promise<{ jobId: string; assignment: Assignment__Output; stream: string; paramCount: number }> {
  const jobId = randomUUID();
  const model = await buildModel(MODEL);
  const paramCount = model.paramCount;
  const params = model.init(7);
  model.dispose();
  const js = env.nc.jetstream();
  const bucket = buckets.checkpoints(jobId);
  const os = await js.views.os(bucket);
  const optimizerState = createOptimizer(roundOptimizer({ optimizer: OPTIMIZER, localSteps: 1, ...overrides }) as never, paramCount).state();
  await os.putBlob({ name: 'round-0' }, encodeCheckpoint({ params, optimizerState, round: 0 }));
  const stream = UPDATES_STREAM;
  await ensureUpdatesStream(await env.nc.jetstreamManager());
  const job: AssignedJobInput = {
    jobId,
    spec: {
      name: 'runner-test',
      model: MODEL as Record<string, unknown>,
      datasetId: randomUUID(),
      optimizer: OPTIMIZER,
      globalBatch: 20,
      rounds: 6,
      roundDeadlineMs: 400,
      seed: 11,
      ...overrides,
    },
    paramCount,
    dataset: { id: randomUUID(), name: 'synthetic', featureShape: [FEATURES], numClasses: CLASSES, train: env.shards },
    updatesStream: stream,
  };
  const assignment: Assignment__Output = { jobId, jobName: 'runner-test', specJson: JSON.stringify(job), checkpointBucket: bucket, checkpointKey: 'round-0', checkpointRound: '0', nats: null };
  return { jobId, assignment, stream, paramCount };
}

/**
 * The keeper's part: applies each observed round (and its samples, planned from the data state
 * with `membersIn(epoch)` shares of 10) to its own state and publishes it as a committed update.
 */
class TestKeeper {
  readonly hashes = new Map<number, string>();
  readonly dataStates = new Map<number, string>();
  /** Largest |element| of each round's averaged vector. */
  readonly meanMax = new Map<number, number>();
  private readonly observer: GatherObserver;
  private readonly done: Promise<void>;
  membersIn: (epoch: number) => number = () => 2;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jobId: string,
    private readonly state: ModelState,
  ) {
    this.observer = new GatherObserver({ nc, jobId });
    this.done = this.follow();
  }

  static async start(env: Env, jobId: string, paramCount: number, optimizer: Record<string, unknown> = OPTIMIZER): Promise<TestKeeper> {
    const os = await env.nc.jetstream().views.os(buckets.checkpoints(jobId));
    const cp = decodeCheckpoint((await os.getBlob('round-0'))!);
    return new TestKeeper(env.nc, jobId, ModelState.fromCheckpoint(cp, optimizer as never, paramCount, env.shards.length * SHARD_SAMPLES));
  }

  private async follow(): Promise<void> {
    const js = this.nc.jetstream();
    for await (const r of this.observer) {
      if (r.round !== this.state.round) continue;
      const k = this.membersIn(r.epoch);
      const plan = planRound(this.state.data, new Array<number>(k).fill(10));
      const total = 4 * SHARD_SAMPLES;
      const data = advanceDataState(this.state.data, plan, Array.from({ length: k }, (_, i) => r.contributors.includes(i)), total);
      this.meanMax.set(r.round, r.mean.reduce((m, x) => Math.max(m, Math.abs(x)), 0));
      this.state.apply(r.round, r.mean, data);
      const hash = this.state.hash();
      this.hashes.set(r.round, hash);
      this.dataStates.set(r.round, encodeDataState(data));
      await publishUpdate(js, this.jobId, r.round, r.mean, hash, encodeDataState(data));
    }
  }

  /** Waits until the keeper applied `round` (it follows the gathers asynchronously). */
  async applied(round: number, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.hashes.has(round)) {
      if (Date.now() > deadline) throw new Error(`keeper did not apply round ${round} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async stop(): Promise<void> {
    this.observer.close();
    await this.done;
  }
}

/** The agent's side of RunnerContext, recording what the runner says. */
class TestContext implements RunnerContext {
  readonly reports: RoundReport[] = [];
  readonly faults: JobFault[] = [];
  readonly states: RunnerProgress[] = [];
  private roster: RosterUpdate__Output | undefined;
  private readonly listeners = new Set<(r: RosterUpdate__Output) => void>();
  private waiters: (() => void)[] = [];
  onReport: (r: RoundReport) => void = () => undefined;
  onFault: (f: JobFault) => void = () => undefined;

  constructor(
    readonly workerId: string,
    readonly nats: NatsAccess__Output,
  ) {}
  readonly groupId = 'g';
  latestRoster = () => this.roster;
  jobNats = (): NatsAccess__Output | null => null;
  onRoster(l: (r: RosterUpdate__Output) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  deliver(r: RosterUpdate__Output): void {
    this.roster = r;
    for (const l of [...this.listeners]) l(r);
  }
  progress(p: RunnerProgress) {
    this.states.push(p);
  }
  report(r: RoundReport) {
    this.reports.push(r);
    this.onReport(r);
    this.wake();
  }
  fault(f: JobFault) {
    this.faults.push(f);
    this.onFault(f);
    this.wake();
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Waits (at most `ms`) until `check` holds after a report or fault. */
  async until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.workerId}: no ${what} within ${ms} ms (reports ${this.reports.map((r) => r.round).join(',')}, faults ${this.faults.map((f) => f.kind).join(',')})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }
  rounds(): number[] {
    return this.reports.map((r) => Number(r.round));
  }
  hashOf(round: number): string | undefined {
    return this.reports.findLast((r) => Number(r.round) === round)?.paramHash;
  }
}

function roster(jobId: string, epoch: number, startRound: number, members: string[]) {
  return (): RosterUpdate__Output => ({
    jobId,
    epoch,
    startRound: String(startRound),
    members: members.map((workerId, index) => ({ workerId, index, samplesPerRound: 10, ownedShards: [] })),
  });
}

describe('TrainingRunner on a real nats-server', () => {
  let server: Awaited<ReturnType<typeof startJetStream>>;
  let env: Env;

  beforeAll(async () => {
    // The worker process selects its backend before it takes assignments (join.ts).
    await selectBackend('wasm');
    server = await startJetStream();
    const nc = await connect({ servers: server.url });
    const shardBucket = `gp_shards_${randomUUID().slice(0, 8)}`;
    const store = await ShardStore.open(nc, { bucket: shardBucket });
    const shards = [];
    for (let i = 0; i < 4; i++) {
      const bytes = syntheticShard(i);
      await store.put(bytes);
      shards.push({ index: i, sha256: sha256Hex(bytes), samples: SHARD_SAMPLES, bytes: bytes.byteLength });
    }
    const cacheDir = mkdtempSync(join(tmpdir(), 'gp-runner-cache-'));
    env = { url: server.url, nc, access: { servers: [server.url], user: '', password: '', token: '', creds: '', inboxPrefix: '' }, shardBucket, shards, cacheDir };
  });

  afterAll(async () => {
    await env?.nc.close();
    await server?.stop();
    if (env) rmSync(env.cacheDir, { recursive: true, force: true });
  });

  function runner(): TrainingRunner {
    return new TrainingRunner({ logger: process.env.GP_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger(), cacheDir: env.cacheDir, shardBucket: env.shardBucket, gatherTimeoutMs: 1500, replayIdleTimeoutMs: 10_000 });
  }

  it('two members train in lockstep with the keeper; a third joins mid-job, catches up by replay and trains on', async () => {
    const { jobId, assignment, paramCount } = await createJob(env);
    const keeper = await TestKeeper.start(env, jobId, paramCount);
    const [a, b, c] = ['w-a', 'w-b', 'w-c'].map((id) => new TestContext(id, env.access));
    const first = roster(jobId, 1, 0, ['w-a', 'w-b']);
    // Made after round 1, starting a round ahead so that nobody need stop.
    const second = roster(jobId, 2, 3, ['w-a', 'w-b', 'w-c']);
    keeper.membersIn = (e) => (e === 1 ? 2 : 3);
    let delivered = false;
    b.onReport = (r) => {
      if (Number(r.round) === 1 && !delivered && a.rounds().includes(1)) {
        delivered = true;
        for (const ctx of [a, b, c]) ctx.deliver(second());
      }
    };
    a.onReport = (r) => {
      if (Number(r.round) === 1 && !delivered && b.rounds().includes(1)) {
        delivered = true;
        for (const ctx of [a, b, c]) ctx.deliver(second());
      }
    };
    a.deliver(first());
    b.deliver(first());
    const ctrl = new AbortController();
    const tensorsBefore = tf.memory().numTensors;
    const runs = [a, b, c].map((ctx) => runner().run(assignment, ctrl.signal, ctx));
    try {
      for (const ctx of [a, b, c]) await ctx.until('round 5', () => ctx.rounds().includes(5), 20_000);
      await keeper.applied(5);
      await keeper.stop();
      // Every member's hash equals the keeper's at every round it ran, and each round ran once.
      for (const ctx of [a, b]) expect(ctx.rounds()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(c.rounds()).toEqual([3, 4, 5]);
      for (const ctx of [a, b, c]) for (const r of ctx.rounds()) expect(ctx.hashOf(r), `${ctx.workerId} round ${r}`).toBe(keeper.hashes.get(r));
      for (const ctx of [a, b, c]) expect(ctx.faults).toEqual([]);
      // Round reports: contributors, and the data state (what is left to do) equal to the keeper's.
      const ra = a.reports.filter((r) => r.epoch === 2);
      expect(ra[0].contributors).toEqual(['w-a', 'w-b', 'w-c']);
      for (const ctx of [a, b, c]) for (const r of ctx.reports) expect(r.dataState, `${ctx.workerId} round ${r.round}`).toBe(keeper.dataStates.get(Number(r.round)));
      // 3 rounds of 2 × 10 samples, then 3 of 3 × 10, each sample once.
      expect(samplesLeft(decodeDataState(keeper.dataStates.get(5)!, 240))).toBe(240 - 60 - 90);
      expect(a.reports.every((r) => r.samples === 10 && Number.isFinite(r.loss) && Number(r.bytesSent) > 0)).toBe(true);
      // The loss goes down on this learnable problem.
      expect(Number(a.reports[5].loss)).toBeLessThan(Number(a.reports[0].loss));
      expect(c.states.some((s) => s.state === 'WORKER_STATE_SYNCING')).toBe(true);
      expect(a.states.some((s) => s.state === 'WORKER_STATE_TRAINING')).toBe(true);
    } finally {
      ctrl.abort();
      await Promise.all(runs);
    }
    // Runners stop cleanly on abort, and tensors do not outlive the rounds.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('with local steps (DiLoCo) members step on their own and exchange the change; the keeper applies the outer step, every hash equal', async () => {
    const outer = { kind: 'sgd', lr: 1 };
    const { jobId, assignment, paramCount } = await createJob(env, { localSteps: 4, outerOptimizer: outer });
    const keeper = await TestKeeper.start(env, jobId, paramCount, outer);
    const [a, b] = ['w-a', 'w-b'].map((id) => new TestContext(id, env.access));
    for (const ctx of [a, b]) ctx.deliver(roster(jobId, 1, 0, ['w-a', 'w-b'])());
    const ctrl = new AbortController();
    const runs = [a, b].map((ctx) => runner().run(assignment, ctrl.signal, ctx));
    try {
      for (const ctx of [a, b]) await ctx.until('round 5', () => ctx.rounds().includes(5), 20_000);
      await keeper.applied(5);
      await keeper.stop();
      for (const ctx of [a, b]) {
        expect(ctx.rounds()).toEqual([0, 1, 2, 3, 4, 5]);
        for (const r of ctx.rounds()) expect(ctx.hashOf(r), `${ctx.workerId} round ${r}`).toBe(keeper.hashes.get(r));
        expect(ctx.faults).toEqual([]);
        expect(ctx.reports.every((r) => r.samples === 10 && Number.isFinite(r.loss))).toBe(true);
      }
      // One Adam step moves a coordinate by about lr (0.01); the averaged change of round 0 is
      // four of them (outer SGD with lr 1 applies it as it is: the members' mean parameters).
      expect(keeper.meanMax.get(0)!).toBeGreaterThan(0.025);
      expect(Number(a.reports[5].loss)).toBeLessThan(Number(a.reports[0].loss));
    } finally {
      ctrl.abort();
      await Promise.all(runs);
    }
  });

  it('reports a missing owner, then re-runs the round in the next epoch with the gradient it kept', async () => {
    const { jobId, assignment, paramCount } = await createJob(env);
    const keeper = await TestKeeper.start(env, jobId, paramCount);
    const [a, b, c] = ['w-a', 'w-b', 'w-c'].map((id) => new TestContext(id, env.access));
    const first = roster(jobId, 1, 0, ['w-a', 'w-b', 'w-c']);
    keeper.membersIn = (e) => (e === 1 ? 3 : 2);
    for (const ctx of [a, b, c]) ctx.deliver(first());
    const ctrl = new AbortController();
    const killC = new AbortController();
    // c vanishes after round 1: rounds 0 and 1 are committed, round 2 has no owner for c's shards.
    c.onReport = (r) => Number(r.round) === 1 && killC.abort();
    const runs = [runner().run(assignment, ctrl.signal, a), runner().run(assignment, ctrl.signal, b), runner().run(assignment, killC.signal, c)];
    try {
      for (const ctx of [a, b]) await ctx.until('owner-missing fault', () => ctx.faults.some((f) => f.kind === FaultKinds.ownerMissing));
      for (const ctx of [a, b]) {
        const f = ctx.faults.find((x) => x.kind === FaultKinds.ownerMissing)!;
        expect(f.subjectWorkerId).toBe('w-c');
        expect(Number(f.round)).toBe(2);
        expect(f.epoch).toBe(1);
      }
      const second = roster(jobId, 2, 2, ['w-a', 'w-b']);
      for (const ctx of [a, b]) ctx.deliver(second());
      for (const ctx of [a, b]) await ctx.until('round 4', () => ctx.rounds().includes(4));
      await keeper.applied(4);
      await keeper.stop();
      for (const ctx of [a, b]) {
        // The members keep going until aborted, so a round 5 may have been reported too; the
        // keeper stopped after round 4, so the hashes are compared up to it.
        expect(ctx.rounds().slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
        for (const r of ctx.rounds().filter((x) => x <= 4)) expect(ctx.hashOf(r)).toBe(keeper.hashes.get(r));
        const r2 = ctx.reports.find((r) => Number(r.round) === 2)!;
        expect(r2.exchangeEpoch).toBe(2);
        expect(r2.contributors).toEqual(['w-a', 'w-b']);
      }
      // Nothing of c's lost: its unprocessed samples are planned for a and b (2 rounds of 3 × 10, then 3 of 2 × 10).
      for (const ctx of [a, b]) for (const r of ctx.reports.filter((x) => Number(x.round) <= 4)) expect(r.dataState).toBe(keeper.dataStates.get(Number(r.round)));
      expect(samplesLeft(decodeDataState(keeper.dataStates.get(4)!, 240))).toBe(240 - 60 - 60);
    } finally {
      ctrl.abort();
      await Promise.all(runs);
    }
  });

  it('a resync assignment (fresh run, same epoch) joins at the round after the keeper\'s newest update', async () => {
    const { jobId, assignment, paramCount } = await createJob(env);
    const keeper = await TestKeeper.start(env, jobId, paramCount);
    const [a, b] = ['w-a', 'w-b'].map((id) => new TestContext(id, env.access));
    const first = roster(jobId, 1, 0, ['w-a', 'w-b']);
    for (const ctx of [a, b]) ctx.deliver(first());
    const ctrl = new AbortController();
    const oldB = new AbortController();
    b.onReport = (r) => Number(r.round) === 2 && oldB.abort();
    const runs = [runner().run(assignment, ctrl.signal, a), runner().run(assignment, oldB.signal, b)];
    try {
      await runs[1];
      await keeper.applied(2);
      // The coordinator's resync: the same assignment (checkpoint 0) and the current roster (start 0).
      runs.push(runner().run(assignment, ctrl.signal, b));
      for (const ctx of [a, b]) await ctx.until('round 5', () => ctx.rounds().includes(5));
      await keeper.applied(5);
      await keeper.stop();
      expect(b.rounds()).toEqual([0, 1, 2, 3, 4, 5]);
      for (const ctx of [a, b]) for (const r of ctx.rounds()) expect(ctx.hashOf(r), `${ctx.workerId} round ${r}`).toBe(keeper.hashes.get(r));
      expect(a.faults).toEqual([]);
    } finally {
      ctrl.abort();
      await Promise.all(runs);
    }
  });

  it('reports a spec that does not validate as bad-spec and returns without training', async () => {
    const ctx = new TestContext('w-x', env.access);
    const { assignment } = await createJob(env);
    const spec = JSON.parse(assignment.specJson) as AssignedJobInput;
    (spec.spec as Record<string, unknown>).optimizer = { kind: 'rmsprop', lr: 1 };
    await runner().run({ ...assignment, specJson: JSON.stringify(spec) }, new AbortController().signal, ctx);
    await runner().run({ ...assignment, specJson: '{not json' }, new AbortController().signal, ctx);
    expect(ctx.faults.map((f) => f.kind)).toEqual([FaultKinds.badSpec, FaultKinds.badSpec]);
    expect(ctx.faults[0].message).toMatch(/optimizer/);
    expect(ctx.reports).toEqual([]);
  });

  it('reports a dealt shard whose bytes do not match its hash as bad-shard', async () => {
    const { assignment } = await createJob(env);
    const spec = JSON.parse(assignment.specJson) as AssignedJobInput;
    const wrong = sha256Hex(new Uint8Array([1, 2, 3]));
    const store = await ShardStore.open(env.nc, { bucket: env.shardBucket });
    await store.putUnchecked(wrong, syntheticShard(9));
    spec.dataset.train = [{ index: 0, sha256: wrong, samples: SHARD_SAMPLES, bytes: 1 }];
    const ctx = new TestContext('w-y', env.access);
    ctx.deliver(roster(spec.jobId, 1, 0, ['w-y'])());
    await runner().run({ ...assignment, specJson: JSON.stringify(spec) }, new AbortController().signal, ctx);
    expect(ctx.faults.map((f) => f.kind)).toEqual([FaultKinds.badShard]);
    expect(ctx.faults[0].message).toMatch(/verification/);
  });
});
