/** `gradpool jobs …`: submit, list, show, steer, follow and export training jobs through the REST API. */
import { Command, CommanderError, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { text } from 'node:stream/consumers';
import { ApiError, type ApiClient } from './api-client.js';
import type { JobDetail, JobExclusion, JobView as JobSummary } from '../services/job.service.js';
import type { CliIo } from './run.js';
import { num, pct, table } from './table.js';
import { roundOptimizer } from '@gradpool/protocol';

interface JobEvent {
  type: string;
  workerId?: string | null;
  data: Record<string, unknown>;
  at: string;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

const roundArg = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw new CommanderArgError(`${flag} must be a round (an integer ≥ 0)`);
  return x;
};

function describe(j: JobDetail, io: CliIo): void {
  const m = (n: string) => j.lastMetrics?.[n]?.value;
  io.out(`${j.name}  (${j.id})`);
  io.out(`  status      ${j.status}${j.statusReason ? `: ${j.statusReason}` : ''}`);
  io.out(`  round       ${num(j.round + 1)}${j.totalRounds ? ` of ${num(j.totalRounds)}` : ''}; data epoch ${j.dataEpoch}${j.epochs ? ` of ${j.epochs}` : ''}; roster epoch ${j.epoch}`);
  io.out(`  samples     ${num(j.samplesProcessed)} (${num(m('samples_per_s'))} samples/s)`);
  io.out(`  loss        ${num(m('loss'), 4)}; val accuracy ${pct(m('val_accuracy'))}; test accuracy ${pct(m('test_accuracy'))}`);
  if (j.etaSeconds) io.out(`  ETA         ${formatSeconds(j.etaSeconds)}`);
  io.out(`  dataset     ${j.datasetId ?? '—'}; group ${j.groupId ?? 'public'}; priority ${j.priority}`);
  const s = j.spec;
  const outer = roundOptimizer(s) as { kind?: string; lr?: number; momentum?: number };
  io.out(
    `  exchange    codec ${s.codec}; ${s.aggregation.kind === 'clipped-mean' ? `clipped mean (ratio ${s.aggregation.ratio})` : 'plain mean'}` +
      (s.localSteps > 1 ? `; ${s.localSteps} local steps a round, outer ${outer.kind} lr ${outer.lr}${outer.kind === 'sgd' ? '' : ` momentum ${outer.momentum}`}` : ''),
  );
  const names = new Map((j.roster?.members ?? []).map((x) => [x.workerId, x.name ?? x.workerId]));
  if (j.roster && j.roster.members.length > 0) {
    io.out(`  roster (epoch ${j.roster.epoch}):`);
    for (const l of table(['worker', 'share', 'samples/round', 'samples/s'], j.roster.members.map((x) => [x.name ?? x.workerId, `${(100 * x.share).toFixed(1)} %`, num(x.samplesPerRound), num(x.speed ?? NaN)]))) io.out(`    ${l}`);
  }
  if (j.credits.length > 0) {
    io.out('  credit:');
    for (const l of table(['worker', 'samples', 'rounds', 'compute'], j.credits.map((c) => [names.get(c.workerId) ?? c.workerId, num(c.samples), num(c.rounds), `${num(c.computeMs / 1000, 1)} s`]))) io.out(`    ${l}`);
  }
  if (j.exclusions?.length) {
    io.out(`  kept out (gradpool jobs readmit ${j.name} <worker> lets one back in):`);
    for (const l of exclusionTable(j.exclusions)) io.out(`    ${l}`);
  }
}

function exclusionTable(rows: JobExclusion[]): string[] {
  return table(
    ['worker', 'after', 'until', 'reason'],
    rows.map((e) => [e.workerName, e.kind, e.until ? e.until.slice(0, 19).replace('T', ' ') : 'for good', e.reason]),
  );
}

function formatSeconds(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** One line for an event worth a line in `jobs watch` (rounds are summarised separately). */
function eventLine(e: JobEvent): string | null {
  const t = e.at.slice(11, 19);
  const d = e.data;
  switch (e.type) {
    case 'job.state':
      return `${t}  ${String(d.status)}${d.reason ? `: ${String(d.reason)}` : ''}${typeof d.testAccuracy === 'number' ? `; test accuracy ${pct(d.testAccuracy)}` : ''}`;
    case 'job.roster': {
      const members = Array.isArray(d.members) ? d.members.length : 0;
      const added = Array.isArray(d.added) ? d.added.length : 0;
      const removed = Array.isArray(d.removed) ? d.removed.length : 0;
      return `${t}  roster epoch ${String(d.epoch)}: ${members} member${members === 1 ? '' : 's'}${added ? `, +${added}` : ''}${removed ? `, −${removed}` : ''} (${String(d.reason)}) from round ${String(d.startRound)}`;
    }
    case 'job.fault':
      return `${t}  fault ${String(d.kind)}${e.workerId ? ` from worker ${e.workerId.slice(0, 8)}…` : ''}: ${String(d.message ?? '')}`;
    case 'job.eval':
      return `${t}  round ${String(d.round)}: val accuracy ${pct(d.accuracy)}, val loss ${num(d.loss, 4)}`;
    case 'job.checkpoint':
      return `${t}  checkpoint before round ${String(d.round)} (${num(Number(d.bytes) / 2 ** 20, 1)} MiB)`;
    case 'job.scaled':
      return `${t}  worker ${e.workerId?.slice(0, 8) ?? '?'}… sent gradients up to ${num(d.worstNormOverBound, 0)}× the norm bound in ${String(d.shards)} shard(s) of round ${String(d.round)}: scaled down`;
    case 'job.readmitted':
      return `${t}  worker ${e.workerId?.slice(0, 8) ?? '?'}… readmitted by ${String(d.by)} (it was kept out after ${String(d.kind)})`;
    case 'job.hash-mismatch':
      return `${t}  worker ${e.workerId?.slice(0, 8) ?? '?'}… differed from the keeper after round ${String(d.round)}: resynced`;
    default:
      return null;
  }
}

export function jobsCommand(io: CliIo, client: () => ApiClient): Command {
  const cmd = new Command('jobs').description('submit, list, show, pause, resume, cancel, watch jobs, see and lift exclusions, export models');
  const jobId = (api: ApiClient, ref: string) => api.resolve('/v1/jobs', 'job', ref);

  /** Follows a job's events until it ends: exit 0 when it completed, 1 when it failed or was cancelled. */
  const watch = async (api: ApiClient, id: string, everyMs: number): Promise<void> => {
    const first = await api.request<JobDetail>('GET', `/v1/jobs/${id}`);
    io.out(`${first.name}: ${first.status}${first.statusReason ? ` (${first.statusReason})` : ''}`);
    if (TERMINAL.has(first.status)) return finished(first.status);
    let lastRoundLine = 0;
    const stop = new AbortController();
    let end: string | null = null;
    for await (const m of api.events(`/v1/jobs/${id}/events`, stop.signal)) {
      let e: JobEvent;
      try {
        e = JSON.parse(m.data) as JobEvent;
      } catch {
        continue;
      }
      if (Date.parse(e.at) < Date.parse(first.createdAt)) continue;
      if (e.type === 'job.round') {
        if (Date.now() - lastRoundLine < everyMs) continue;
        lastRoundLine = Date.now();
        const d = e.data;
        io.out(`${e.at.slice(11, 19)}  round ${String(d.round)}: loss ${num(d.loss, 4)}, ${num(d.samples)} samples from ${String(d.contributors)} worker${d.contributors === 1 ? '' : 's'}`);
        continue;
      }
      const line = eventLine(e);
      if (line) io.out(line);
      if (e.type === 'job.state' && TERMINAL.has(String(e.data.status))) {
        // The backlog holds older states too: trust the job's own status.
        const now = await api.request<JobDetail>('GET', `/v1/jobs/${id}`);
        if (TERMINAL.has(now.status)) {
          end = now.status;
          stop.abort();
        }
      }
    }
    if (!end) {
      const now = await api.request<JobDetail>('GET', `/v1/jobs/${id}`);
      if (!TERMINAL.has(now.status)) throw new ApiError(`the event stream ended while the job is ${now.status}`, 0);
      end = now.status;
    }
    return finished(end);
  };
  const finished = (status: string) => {
    if (status !== 'completed') throw new ApiError(`the job ended ${status}`, 0);
  };

  cmd
    .command('submit')
    .description('submit a job from a JSON spec (a file, or - for stdin); see docs/jobs-protocol.md for the fields')
    .argument('<spec>', 'JSON file with the job spec, or -')
    .option('--name <name>', 'set the spec’s name')
    .option('--dataset <dataset>', 'set its datasetId (id or name)')
    .option('--group <group>', 'set its groupId (id or name)')
    .option('--watch', 'follow the job until it ends (exit 0 when it completed)')
    .option('--json', 'print the created job as JSON')
    .action(async (path: string, o) => {
      let raw: string;
      try {
        raw = path === '-' ? await text(process.stdin) : await readFile(path, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new CommanderError(2, 'gradpool.fileNotFound', code === 'ENOENT' ? `file not found: ${path}` : `cannot read ${path}: ${(err as Error).message}`);
      }
      let spec: Record<string, unknown>;
      try {
        spec = JSON.parse(raw) as Record<string, unknown>;
      } catch (err) {
        throw new CommanderError(2, 'gradpool.badSpec', `${path} is not JSON: ${(err as Error).message}`);
      }
      if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new CommanderError(2, 'gradpool.badSpec', `${path} must hold a JSON object (the job spec)`);
      const api = client();
      if (o.name) spec.name = o.name;
      if (o.dataset) spec.datasetId = await api.resolve('/v1/datasets', 'dataset', o.dataset);
      if (o.group) spec.groupId = await api.resolve('/v1/groups', 'group', o.group);
      const job = await api.request<JobSummary>('POST', '/v1/jobs', spec);
      if (o.json) io.out(JSON.stringify(job, null, 2));
      else io.out(`submitted ${job.name} (${job.id}): ${job.status}`);
      if (o.watch) await watch(api, job.id, 1000);
    });

  cmd
    .command('list')
    .description('list jobs, newest first')
    .addOption(new Option('--status <status>', 'only jobs in this status').choices(['queued', 'running', 'paused', 'completed', 'failed', 'cancelled']))
    .option('--json', 'print JSON')
    .action(async (o) => {
      const all = await client().request<JobSummary[]>('GET', `/v1/jobs${o.status ? `?status=${o.status}` : ''}`);
      if (o.json) return io.out(JSON.stringify(all, null, 2));
      if (all.length === 0) return io.out('no jobs');
      for (const l of table(
        ['id', 'name', 'status', 'round', 'data epoch', 'samples', 'created', 'reason'],
        all.map((j) => [j.id, j.name, j.status, num(j.round + 1), j.epochs ? `${j.dataEpoch} / ${j.epochs}` : String(j.dataEpoch), num(j.samplesProcessed), j.createdAt.slice(0, 16).replace('T', ' '), j.statusReason]),
      ))
        io.out(l);
    });

  cmd
    .command('show')
    .description('show a job: status, progress, metrics, roster, credit (id or name)')
    .argument('<job>', 'id or name')
    .option('--json', 'print JSON')
    .action(async (ref: string, o) => {
      const api = client();
      const j = await api.request<JobDetail>('GET', `/v1/jobs/${await jobId(api, ref)}`);
      if (o.json) io.out(JSON.stringify(j, null, 2));
      else describe(j, io);
    });

  for (const [verb, what] of [
    ['pause', 'pause a queued or running job (its workers are released; the state is checkpointed)'],
    ['resume', 'queue a paused job again'],
    ['cancel', 'cancel a job for good'],
  ] as const) {
    cmd
      .command(verb)
      .description(what)
      .argument('<job>', 'id or name')
      .action(async (ref: string) => {
        const api = client();
        const j = await api.request<JobSummary>('POST', `/v1/jobs/${await jobId(api, ref)}/${verb}`);
        io.out(`${j.name}: ${j.status}${j.statusReason ? ` (${j.statusReason})` : ''}`);
      });
  }

  cmd
    .command('exclusions')
    .description('workers kept out of a job: for a while after a fault in it, for good after a failed owner audit')
    .argument('<job>', 'id or name')
    .option('--json', 'print JSON')
    .action(async (ref: string, o) => {
      const api = client();
      const rows = await api.request<JobExclusion[]>('GET', `/v1/jobs/${await jobId(api, ref)}/exclusions`);
      if (o.json) return io.out(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return io.out('no worker is kept out of this job');
      for (const l of exclusionTable(rows)) io.out(l);
    });

  cmd
    .command('readmit')
    .description('let a worker kept out of a job back in at once (after a failed owner audit too); recorded as an event')
    .argument('<job>', 'id or name')
    .argument('<worker>', 'id or name')
    .action(async (ref: string, workerRef: string) => {
      const api = client();
      const id = await jobId(api, ref);
      const workerId = await api.resolve('/v1/workers', 'worker', workerRef);
      const e = await api.request<JobExclusion>('DELETE', `/v1/jobs/${id}/exclusions/${workerId}`);
      io.out(`${e.workerName} may serve the job again (kept out ${e.until ? `until ${e.until.slice(0, 19).replace('T', ' ')}` : 'for good'} after ${e.kind}${e.reason ? `: ${e.reason}` : ''})`);
    });

  cmd
    .command('watch')
    .description('follow a job until it ends: rounds, roster changes, faults, evaluations (exit 0 when it completed, 1 otherwise)')
    .argument('<job>', 'id or name')
    .option('--every <seconds>', 'at most one round line per this many seconds (default 1)', (v) => {
      const x = Number(v);
      if (!(x >= 0)) throw new CommanderArgError('--every must be a number of seconds ≥ 0');
      return x;
    })
    .action(async (ref: string, o) => {
      const api = client();
      await watch(api, await jobId(api, ref), 1000 * (o.every ?? 1));
    });

  cmd
    .command('metrics')
    .description('metrics by round: loss, validation and test accuracy, samples/s')
    .argument('<job>', 'id or name')
    .option('--from <round>', 'from this round on', roundArg('--from'))
    .option('--json', 'print JSON (every metric)')
    .action(async (ref: string, o) => {
      const api = client();
      const rows = await api.request<Record<string, number>[]>('GET', `/v1/jobs/${await jobId(api, ref)}/metrics${o.from !== undefined ? `?from=${o.from}` : ''}`);
      if (o.json) return io.out(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return io.out('no committed rounds yet');
      for (const l of table(
        ['round', 'loss', 'val accuracy', 'test accuracy', 'samples/s', 'workers'],
        rows.map((r) => [r.round, num(r.loss, 4), pct(r.val_accuracy), pct(r.test_accuracy), num(r.samples_per_s), num(r.contributors)]),
      ))
        io.out(l);
    });

  cmd
    .command('model')
    .description('write the trained model in TensorFlow.js layers format (model.json + weights.bin)')
    .argument('<job>', 'id or name')
    .option('--out <dir>', 'folder to write into (created)', '.')
    .option('--round <round>', 'the newest checkpoint at or before this round (default the newest)', roundArg('--round'))
    .action(async (ref: string, o) => {
      const api = client();
      const model = await api.request<{ modelTopology: unknown; weightSpecs: unknown; weightData: string; round: number }>(
        'GET',
        `/v1/jobs/${await jobId(api, ref)}/model${o.round !== undefined ? `?round=${o.round}` : ''}`,
      );
      const dir = resolve(o.out);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'weights.bin'), Buffer.from(model.weightData, 'base64'));
      await writeFile(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: model.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: model.weightSpecs }] }, null, 1));
      io.out(`wrote ${join(dir, 'model.json')} + weights.bin (parameters after round ${model.round - 1}); load with tf.loadLayersModel('file://${join(dir, 'model.json')}')`);
    });

  return cmd;
}
