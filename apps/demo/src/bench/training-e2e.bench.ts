/**
 * Training end to end on this machine: samples/s and time to the target validation accuracy on
 * MNIST for 1, 2 and 4 worker processes (real coordinator, keeper, NATS, Postgres), next to a
 * single process training the same model with the same global batch, optimizer and data without
 * Gradpool (libs/training directly), measured in the same run; bytes exchanged per round; and
 * where a round's time goes.
 *
 *   npx tsc -b apps/demo apps/coordinator apps/worker && node apps/demo/dist/bench/training-e2e.bench.js \
 *     [--workers 1,2,4] [--epochs 3] [--batch 1000] [--lr 0.005] [--eval-every 10] [--target 0.97] [--timeout-s 900] [--json out.json] [--dump DIR]
 *   npm run bench training-e2e
 *
 * Needs Postgres and NATS on localhost (or DATABASE_URL / NATS_URL); each run uses a fresh
 * database that it drops at the end. Timings:
 * - time to target: from the job's start (jobs.started_at) to the commit of the first round after
 *   which the TEST accuracy reaches the target. The job writes a checkpoint every `--eval-every`
 *   rounds; after the job the bench reads each checkpoint from the object store and evaluates it
 *   on the test split (so evaluation costs the job nothing). The baseline evaluates at the same
 *   rounds and does not count its evaluation time;
 * - samples/s: samples of rounds 1..N-1 over the time between the commits of round 0 and N-1;
 * - a round's time: compute (the members' RoundReport.computeMs, summed in credits), the round as
 *   the slowest member saw it (rounds.duration_ms = max of compute + exchange + wait; mean), and the
 *   interval between commits (median; stalls > 2 s counted apart); publish (encode + hand own chunks
 *   to NATS) and wait (until the last averaged shard arrived), means over members and rounds from the
 *   workers' debug 'round done' logs. The coordinator keeps no separate exchange/wait split: the
 *   keeper folds RoundReport's exchangeMs and waitMs into rounds.duration_ms.
 */
import { createRng, decodeShard, permutation, ShardStore } from '@gradpool/datasets';
import { Cluster, TEST_DATABASE_URL, TEST_NATS_URL, withDatabase, type ClusterDataset } from '@gradpool/testing';
import { activateBackend, buildModel, createOptimizer, decodeCheckpoint, type Model } from '@gradpool/training';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { connect } from 'nats';
import pg from 'pg';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : def;
}

const WORKERS = arg('workers', '1,2,4').split(',').filter(Boolean).map(Number);
const EPOCHS = Number(arg('epochs', '3'));
const BATCH = Number(arg('batch', '1000'));
const LR = Number(arg('lr', '0.005'));
const EVAL_EVERY = Number(arg('eval-every', '10'));
const TARGET = Number(arg('target', '0.97'));
const JSON_OUT = arg('json', '');
const TIMEOUT_S = Number(arg('timeout-s', '900'));
/** Where to write the coordinator's and workers' logs at the end (for diagnosing stalls). */
const DUMP = arg('dump', '');
const DATABASE_URL = process.env.DATABASE_URL || TEST_DATABASE_URL;
const NATS_URL = process.env.NATS_URL || TEST_NATS_URL;
const MODEL = { kind: 'mlp', inputShape: [28, 28, 1], hidden: [256, 128], activation: 'relu', numClasses: 10 } as const;
const SEED = 7;

interface Row {
  setup: string;
  workers: number;
  rounds: number;
  wallS: number;
  samplesPerS: number;
  timeToTargetS: number | null;
  roundAtTarget: number | null;
  testAccuracy: number | null;
  bytesPerRound: number | null;
  computeMs: number | null;
  roundMs: number | null;
  intervalMs: number | null;
  /** From the workers' per-round debug logs: encode + publish own chunks, then waiting for the averaged shards. */
  publishMs: number | null;
  waitMs: number | null;
  /** Time in commit gaps longer than 2 s (roster changes, resyncs, re-deals), and how many. */
  stallS: number;
  stalls: number;
  /** Roster epochs and job.hash-mismatch events of the job. */
  epochs: number;
  mismatches: number;
  load: string;
}

const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

async function withFreshDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `gradpool_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  try {
    return await fn(withDatabase(DATABASE_URL, name));
  } finally {
    await admin.query(`drop database if exists "${name}" with (force)`).catch(() => undefined);
    await admin.end();
  }
}

/** The train/validation/test arrays of the imported dataset, read from the shard store. */
async function loadSplits(ds: ClusterDataset) {
  const nc = await connect({ servers: NATS_URL });
  try {
    const store = await ShardStore.open(nc, { readOnly: true });
    const read = async (split: 'train' | 'validation' | 'test') => {
      const shards = ds.splits![split].shards;
      const parts = [];
      for (const s of shards) parts.push(decodeShard(await store.get(s.sha256)));
      const n = parts.reduce((a, p) => a + p.count, 0);
      const dim = parts[0].dim;
      const x = new Float32Array(n * dim);
      const y = new Int32Array(n);
      let at = 0;
      for (const p of parts) {
        x.set(p.features, at * dim);
        y.set(p.labels, at);
        at += p.count;
      }
      return { x, y, n, dim };
    };
    return { train: await read('train'), validation: await read('validation'), test: await read('test') };
  } finally {
    await nc.close();
  }
}

/** The same model, optimizer, global batch and data in one process, without Gradpool. */
type Splits = Awaited<ReturnType<typeof loadSplits>>;

function accuracy(model: Model, params: Float32Array, split: Splits['test']): number {
  let correct = 0;
  for (let i = 0; i < split.n; i += 1000) {
    const m = Math.min(1000, split.n - i);
    const r = model.evaluate(params, { x: split.x.subarray(i * split.dim, (i + m) * split.dim), y: split.y.subarray(i, i + m), n: m });
    correct += r.correct ?? (r.accuracy ?? 0) * m;
  }
  return correct / split.n;
}

/** Test accuracy after each checkpointed round of a job: [{round (last applied), accuracy}]. */
async function checkpointAccuracies(cluster: Cluster, jobId: string, data: Splits): Promise<{ round: number; accuracy: number }[]> {
  const rows = await cluster.sql<{ round: string; bucket: string; object_key: string }>('select round, bucket, object_key from checkpoints where job_id = $1 and round > 0 order by round', [jobId]);
  const nc = await connect({ servers: NATS_URL });
  const model = await buildModel(MODEL);
  try {
    const out: { round: number; accuracy: number }[] = [];
    for (const r of rows) {
      const bytes = await (await nc.jetstream().views.os(r.bucket)).getBlob(r.object_key);
      if (!bytes) continue;
      out.push({ round: Number(r.round) - 1, accuracy: accuracy(model, decodeCheckpoint(bytes).params, data.test) });
    }
    return out;
  } finally {
    model.dispose();
    await nc.close();
  }
}

async function baseline(data: Splits): Promise<Row> {
  const model = await buildModel(MODEL);
  const opt = createOptimizer({ kind: 'adam', lr: LR }, model.paramCount);
  const params = model.init(SEED);
  const evaluate = (split: Splits['test']) => accuracy(model, params, split);
  const { train } = data;
  const xb = new Float32Array(BATCH * train.dim);
  const yb = new Int32Array(BATCH);
  let round = 0;
  let trainMs = 0;
  let timeToTarget: number | null = null;
  let roundAtTarget: number | null = null;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const order = permutation(train.n, createRng(SEED, epoch));
    for (let i = 0; i < train.n; i += BATCH) {
      const m = Math.min(BATCH, train.n - i);
      const s0 = performance.now();
      for (let j = 0; j < m; j++) {
        const k = order[i + j];
        xb.set(train.x.subarray(k * train.dim, (k + 1) * train.dim), j * train.dim);
        yb[j] = train.y[k];
      }
      const step = model.step(params, { x: xb.subarray(0, m * train.dim), y: yb.subarray(0, m), n: m }, { seed: round });
      opt.step(params, step.grad, round);
      trainMs += performance.now() - s0;
      round++;
      if (EVAL_EVERY > 0 && round % EVAL_EVERY === 0 && timeToTarget === null && evaluate(data.test) >= TARGET) {
        timeToTarget = trainMs / 1000;
        roundAtTarget = round - 1;
      }
    }
  }
  const wallS = trainMs / 1000;
  const testAccuracy = evaluate(data.test);
  model.dispose();
  return {
    setup: 'single process (no Gradpool)',
    workers: 1,
    rounds: round,
    wallS,
    samplesPerS: (EPOCHS * train.n) / (trainMs / 1000),
    timeToTargetS: timeToTarget,
    roundAtTarget,
    testAccuracy,
    bytesPerRound: 0,
    computeMs: trainMs / round,
    roundMs: trainMs / round,
    intervalMs: trainMs / round,
    publishMs: 0,
    waitMs: 0,
    stallS: 0,
    stalls: 0,
    epochs: 0,
    mismatches: 0,
    load: load(),
  };
}

async function gradpool(cluster: Cluster, ds: ClusterDataset, data: Splits, n: number): Promise<Row> {
  // Debug logs carry each round's timings ('round done': computeMs, exchangeMs = publish, totalMs).
  const ws = Array.from({ length: n }, () => cluster.startWorker({ logLevel: 'debug' }));
  await cluster.waitForWorkers(n, { idle: true, timeoutMs: 180_000 });
  const loadBefore = load();
  const job = await cluster.submitJob({
    name: `bench-${n}w`,
    datasetId: ds.id,
    model: MODEL,
    optimizer: { kind: 'adam', lr: LR },
    globalBatch: BATCH,
    epochs: EPOCHS,
    minWorkers: n,
    maxWorkers: n,
    roundDeadlineMs: 30_000,
    checkpointEvery: EVAL_EVERY,
    evalEvery: 0,
    seed: SEED,
  });
  // A job that does not finish in time is cancelled and reported with what it committed.
  let note = '';
  const end = await cluster.waitForEnd(job.id, TIMEOUT_S * 1000).catch(async (err: Error) => {
    log(`${n} worker(s): ${err.message.split('\n')[0]}; cancelling`);
    await cluster.api.post(`/v1/jobs/${job.id}/cancel`).catch(() => undefined);
    return cluster.job(job.id);
  });
  if (end.status !== 'completed') note = ` (${end.status === 'cancelled' ? `unfinished after ${TIMEOUT_S} s` : end.status})`;
  for (const w of ws) w.interrupt('SIGINT');
  await Promise.all(ws.map((w) => w.exited(60_000).catch(() => w.kill())));

  const rounds = await cluster.rounds(job.id);
  const metrics = await cluster.metrics(job.id);
  const [{ started_at: startedAt }] = await cluster.sql<{ started_at: Date }>('select started_at from jobs where id = $1', [job.id]);
  const credits = await cluster.sql<{ compute_ms: string; rounds: number }>('select compute_ms, rounds from credits where job_id = $1', [job.id]);
  const commitAt = new Map(rounds.map((r) => [r.round, r.committedAt.getTime()]));
  const hit = (await checkpointAccuracies(cluster, job.id, data)).find((c) => c.accuracy >= TARGET);
  if (rounds.length < 2) throw new Error(`the ${n}-worker job committed ${rounds.length} rounds${note}\n${cluster.trouble()}`);
  const last = rounds.at(-1)!;
  const done = ws.flatMap((w) => w.logs().filter((l) => l.msg === 'round done' && l.jobId === job.id));
  const publish = done.map((l) => Number(l.exchangeMs));
  const wait = done.map((l) => Number(l.totalMs) - Number(l.exchangeMs));
  const span = (last.committedAt.getTime() - rounds[0].committedAt.getTime()) / 1000;
  const intervals = rounds.slice(1).map((r, i) => r.committedAt.getTime() - rounds[i].committedAt.getTime());
  return {
    setup: `Gradpool, ${n} worker${n > 1 ? 's' : ''}${note}`,
    workers: n,
    rounds: rounds.length,
    wallS: (last.committedAt.getTime() - startedAt.getTime()) / 1000,
    samplesPerS: rounds.slice(1).reduce((s, r) => s + r.samples, 0) / span,
    timeToTargetS: hit ? (commitAt.get(hit.round)! - startedAt.getTime()) / 1000 : null,
    roundAtTarget: hit?.round ?? null,
    testAccuracy: metrics.find((m) => Number.isFinite(m.test_accuracy))?.test_accuracy ?? null,
    bytesPerRound: rounds.reduce((s, r) => s + r.bytesExchanged, 0) / rounds.length,
    computeMs: credits.reduce((s, c) => s + Number(c.compute_ms), 0) / Math.max(1, credits.reduce((s, c) => s + c.rounds, 0)),
    roundMs: mean(rounds.flatMap((r) => (r.durationMs === null ? [] : [r.durationMs]))),
    intervalMs: median(intervals),
    publishMs: done.length ? mean(publish) : null,
    waitMs: done.length ? mean(wait) : null,
    stallS: intervals.filter((g) => g > 2000).reduce((a, g) => a + g, 0) / 1000,
    stalls: intervals.filter((g) => g > 2000).length,
    epochs: Number((await cluster.sql<{ n: string }>('select count(*) as n from rosters where job_id = $1', [job.id]))[0].n),
    mismatches: (await cluster.events(job.id, ['job.hash-mismatch'])).length,
    load: `${loadBefore} → ${load()}`,
  };
}

function fmt(v: number | null, digits = 0, unit = ''): string {
  return v === null || !Number.isFinite(v) ? 'n/a' : `${v.toFixed(digits)}${unit}`;
}

function printTable(rows: Row[]): void {
  const head = ['setup', 'rounds', 'samples/s', `time to ${(TARGET * 100).toFixed(0)} % test`, 'test acc', 'wall', 'bytes/round', 'compute ms', 'round ms', 'commit interval ms', 'publish ms', 'wait ms', 'stalls > 2 s', 'rosters', 'hash mismatches', 'load (1/5/15 min)'];
  const body = rows.map((r) => [
    r.setup,
    String(r.rounds),
    fmt(r.samplesPerS),
    r.timeToTargetS === null ? 'not reached' : `${fmt(r.timeToTargetS, 1, ' s')} (round ${r.roundAtTarget})`,
    r.testAccuracy === null ? 'n/a' : `${(r.testAccuracy * 100).toFixed(2)} %`,
    fmt(r.wallS, 1, ' s'),
    r.bytesPerRound ? `${(r.bytesPerRound / 1024 / 1024).toFixed(2)} MiB` : '0',
    fmt(r.computeMs),
    fmt(r.roundMs),
    fmt(r.intervalMs),
    fmt(r.publishMs),
    fmt(r.waitMs),
    r.stalls ? `${r.stalls} (${r.stallS.toFixed(1)} s)` : '0',
    String(r.epochs),
    String(r.mismatches),
    r.load,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const b of body) console.log(line(b));
}

async function main(): Promise<void> {
  log(`MNIST MLP 784-256-128-10, Adam lr ${LR}, global batch ${BATCH}, ${EPOCHS} epochs; workers ${WORKERS.join(', ')}; ${cpus().length} CPUs; load ${load()}`);
  const rows: Row[] = await withFreshDatabase(async (databaseUrl) => {
    const cluster = await Cluster.start({
      databaseUrl,
      coordinator: { natsUrl: NATS_URL, heartbeatIntervalMs: 2000, heartbeatMisses: 5, leaseMs: 600_000 },
      groupName: 'bench',
    });
    // Ctrl-C: stop the coordinator and workers and drop the database instead of leaving them behind.
    const onSignal = () => void cluster[Symbol.asyncDispose]().finally(() => process.exit(130));
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    try {
      const t0 = performance.now();
      const ds = await cluster.importMnist({ name: 'mnist-bench' });
      log(`imported MNIST in ${((performance.now() - t0) / 1000).toFixed(1)} s (train ${ds.splits?.train.samples}, validation ${ds.splits?.validation.samples}, test ${ds.splits?.test.samples})`);
      await activateBackend('wasm');
      const data = await loadSplits(ds);
      const out: Row[] = [];
      const save = () => JSON_OUT && writeFileSync(JSON_OUT, JSON.stringify({ at: new Date().toISOString(), epochs: EPOCHS, batch: BATCH, lr: LR, evalEvery: EVAL_EVERY, target: TARGET, rows: out }, null, 1));
      log('single-process baseline …');
      out.push(await baseline(data));
      save();
      log(`baseline: ${out[0].samplesPerS.toFixed(0)} samples/s, test ${((out[0].testAccuracy ?? 0) * 100).toFixed(2)} %`);
      for (const n of WORKERS) {
        log(`${n} worker(s) …`);
        const r = await gradpool(cluster, ds, data, n);
        log(`${n} worker(s): ${r.samplesPerS.toFixed(0)} samples/s, ${r.rounds} rounds in ${r.wallS.toFixed(1)} s, test ${((r.testAccuracy ?? 0) * 100).toFixed(2)} %`);
        out.push(r);
        save();
        printTable(out);
      }
      return out;
    } finally {
      if (DUMP) cluster.dumpLogs(DUMP);
      await cluster[Symbol.asyncDispose]();
    }
  });
  printTable(rows);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
