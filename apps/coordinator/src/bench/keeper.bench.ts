/**
 * `npm run bench keeper [-- --P 1M,5M --K 2 --rounds 20 --codec fp32 --checkpoint-every 5 --audit on --modes inline,thread]`
 * `npm run bench keeper -- --submit 20M` (only a submission's checkpoint 0; add --P for both)
 *
 * What a job's keeper costs the coordinator's event loop (shared/DESIGN.md, rule 1), with its
 * state and data-plane watch inline (as when running from sources) and in the state's thread (the
 * built coordinator). Members in a process of their own (keeper-members.ts) run `rounds` rounds
 * back to back on the local nats-server; the bench does what the keeper's commit loop does with
 * them: for each observed round, step with its mean and publish the committed update, and every
 * `checkpoint-every` rounds take a snapshot and store it beside the loop. Prints, per mode and P:
 * the time per round, the event loop's busy time per round (eventLoopUtilization: JavaScript
 * and callbacks on this thread), and the event loop's delay (p99, max) — how long an API
 * request could have waited.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { connect } from 'nats';
import { ensureUpdatesStream, purgeUpdates } from '@gradpool/exchange';
import { KeeperState } from '../keeper/keeper-state.js';
import type { ObservedRoundInfo } from '../keeper/round-watch.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}
function parseCount(s: string): number {
  const m = /^([\d.]+)([kKmM]?)$/.exec(s);
  if (!m) throw new Error(`bad count ${s}`);
  return Math.round(Number(m[1]) * (m[2].toLowerCase() === 'm' ? 1e6 : m[2].toLowerCase() === 'k' ? 1e3 : 1));
}

const url = arg('nats', process.env.NATS_URL ?? 'nats://127.0.0.1:4222');
const Ps = arg('P', '1M,5M').split(',').map(parseCount);
const K = Number(arg('K', '2'));
const rounds = Number(arg('rounds', '20'));
const codec = arg('codec', 'fp32');
const every = Number(arg('checkpoint-every', '5'));
const audit = arg('audit', 'on') === 'on';
const modes = arg('modes', 'inline,thread').split(',') as ('inline' | 'thread')[];
const RATIO = 3;
/** A cell gives up when no round was observed for this long. */
const STALL_MS = 60_000;
const INLINE = new URL('file:///nonexistent/keeper-state.worker.js');

async function cell(mode: 'inline' | 'thread', P: number): Promise<string> {
  const nc = await connect({ servers: url });
  const jsm = await nc.jetstreamManager();
  await ensureUpdatesStream(jsm);
  const jobId = `benchkeeper${process.pid}${Date.now().toString(36)}`;
  const bucket = `bench-keeper-${jobId}`;
  const child = fork(fileURLToPath(new URL('./keeper-members.js', import.meta.url)), [url, jobId, String(P), String(K), String(rounds), codec, audit ? String(RATIO) : ''], { execArgv: [] });
  const fromChild = <T>(type: string) =>
    new Promise<T>((resolve, reject) => {
      child.on('message', (m: { type: string }) => m.type === type && resolve(m as T));
      child.once('exit', (code) => reject(new Error(`members exited (${code}) before '${type}'`)));
    });
  const { members } = await fromChild<{ members: string[] }>('ready');
  const state = await KeeperState.open({ kind: 'adam', lr: 1e-3 }, { params: new Float32Array(P) }, { conn: { nc, servers: [url] }, ...(mode === 'inline' ? { workerUrl: INLINE } : {}) });
  const observed: ObservedRoundInfo[] = [];
  let wake: (() => void) | null = null;
  const audits = { ok: 0, other: 0 };
  await state.watch(
    { jobId, audit: audit ? { codec, clipNormRatio: RATIO, shardsPerRound: 'auto' } : null },
    {
      onRound: (o) => {
        observed.push(o);
        wake?.();
      },
      onAudit: (a) => (a.verdict === 'ok' ? audits.ok++ : audits.other++),
      onFailure: (err) => {
        throw err;
      },
    },
  );
  state.setEpoch({ epoch: 1, members, startRound: 0 });
  await new Promise((r) => setTimeout(r, 300)); // the watch's subscriptions reach the server
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const done = fromChild<{ ms: number }>('done');
  child.send('go');
  let storing: Promise<unknown> = Promise.resolve();
  let checkpoints = 0;
  let stalled = '';
  for (let r = 0; r < rounds; r++) {
    const waitFrom = performance.now();
    while (observed.length === 0 && performance.now() - waitFrom < STALL_MS) {
      await new Promise<void>((res) => {
        wake = res;
        setTimeout(res, 1000);
      });
    }
    const o = observed.shift();
    if (!o) {
      stalled = ` (stalled: no round ${r} within ${STALL_MS / 1000} s)`;
      break;
    }
    const { hash } = await state.stepObserved(o.epoch, o.round);
    await state.publishObserved(o.round, hash, '');
    if ((r + 1) % every === 0) {
      await state.snapshot(r + 1, { jobId });
      const round = r + 1;
      storing = storing.then(() => state.storeSnapshot(round, { bucket, key: `round-${round}` }));
      checkpoints++;
    }
  }
  await storing;
  const wall = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  delay.disable();
  const membersMs = stalled ? NaN : (await done).ms;
  child.kill();
  await state.close();
  await purgeUpdates(jsm, jobId).catch(() => undefined);
  await (await nc.jetstream().views.os(bucket)).destroy().catch(() => undefined);
  await nc.close();
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  return `| ${mode}${stalled} | ${P / 1e6}M | ${K} | ${codec} | ${rounds} | ${checkpoints} | ${audits.ok}/${audits.ok + audits.other} | ${(wall / rounds).toFixed(0)} | ${(membersMs / rounds).toFixed(0)} | ${(elu.active / rounds).toFixed(1)} | ${elu.utilization.toFixed(2)} | ${ms(delay.percentile(99))} | ${ms(delay.max)} |`;
}

/**
 * A job submission's checkpoint 0 (KeeperService#storeInitialCheckpoint): P parameters with a
 * zero Adam state, encoded, hashed and stored by a keeper state opened for it, inline or in its
 * thread; the event loop's busy time and longest delay while it runs.
 */
async function submitCell(mode: 'inline' | 'thread', P: number): Promise<string> {
  const nc = await connect({ servers: url });
  const bucket = `bench-keeper-submit-${process.pid}`;
  const params = new Float32Array(P);
  for (let i = 0; i < P; i++) params[i] = Math.sin(i) * 0.05;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const state = await KeeperState.open({ kind: 'adam', lr: 1e-3 }, { params }, { conn: { nc, servers: [url] }, ...(mode === 'inline' ? { workerUrl: INLINE } : {}) });
  await state.snapshot(0, { jobId: 'bench' });
  const { bytes } = await state.storeSnapshot(0, { bucket, key: 'round-0' });
  await state.close();
  const wall = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  delay.disable();
  await (await nc.jetstream().views.os(bucket)).destroy().catch(() => undefined);
  await nc.close();
  return `| ${mode} | ${P / 1e6}M | ${(bytes / 1e6).toFixed(0)} MB | ${wall.toFixed(0)} | ${elu.active.toFixed(0)} | ${(delay.max / 1e6).toFixed(1)} |`;
}

const submitPs = process.argv.includes('--submit') ? arg('submit', '').split(',').map(parseCount) : [];
if (submitPs.length > 0) {
  console.log('checkpoint 0 of a submitted job (Adam), stored by a keeper state:');
  console.log('| keeper state | P | checkpoint | ms | event loop busy ms | loop delay max ms |');
  console.log('|---|---|---|---|---|---|');
  for (const P of submitPs) for (const mode of modes) console.log(await submitCell(mode, P));
  if (!process.argv.includes('--P')) process.exit(0);
}

console.log(`keeper bench: K = ${K} members (one process), ${rounds} rounds, a checkpoint every ${every}, audit ${audit ? 'on' : 'off'}, NATS ${url}`);
console.log('| keeper state | P | K | codec | rounds | checkpoints | audits ok/all | ms per round (keeper) | ms per round (members) | event loop busy ms per round | event loop utilisation | loop delay p99 ms | loop delay max ms |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const P of Ps) for (const mode of modes) console.log(await cell(mode, P));
