/**
 * `npm run bench exchange [-- --P 1M,10M,25M --K 2,4,8 --codecs fp32,fp16,bf16,int8,topk --reps 10
 *   --reps-large 3 --large 20M] [--chunk-bytes 512k] [--link-mbps 100[,1000…]] [--server-conf 'max_pending: 64MB']
 *   [--interleave]`
 *
 * Round time of the round protocol with K member processes on loopback through one private
 * nats-server, per codec: median over reps of (last member done − last member entered), bytes
 * each member sent/received next to the pattern's minimum, bus bandwidth, and the ceiling: one
 * plain publisher → subscriber stream of 1 MiB messages through the same server; and the CPU
 * time (user + system) a member process spent in a round, mean over members, median over reps.
 * `--link-mbps N` puts each member behind its own N Mbit/s link (throttled-link.ts), as a volunteer's
 * uplink would be, instead of bare loopback. `--interleave` runs the codecs' rounds in turn rather
 * than cell after cell, and prints the per-turn ratio of the first codec's round time to each other's.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { createCodec, parseCodecSpec } from '../codecs/index.js';
import type { CodecSpec } from '../codecs/codec.js';
import { TopkCodec } from '../codecs/topk.codec.js';
import { Int8Codec } from '../codecs/int8.codec.js';
import { type MemberProcess, spawnMembers } from '../testing/members.js';
import { PrivateNatsServer } from '../testing/nats-server.js';
import { ThrottledLink } from './throttled-link.js';
import { arg, median, parseCount } from './args.js';

const Ps = arg('P', '1M,10M,25M').split(',').map(parseCount);
const Ks = arg('K', '2,4,8').split(',').map(Number);
const codecs = arg('codecs', 'fp32,fp16,bf16,int8,topk').split(',').map(parseCodecSpec);
const reps = Number(arg('reps', '10'));
const repsLarge = Number(arg('reps-large', '3'));
const large = parseCount(arg('large', '20M'));
/** Each member's link to the server, Mbit/s each way (a pacing proxy per member); unset: loopback. A
 * list gives member i the rate list[i mod length] (`--link-mbps 1000,100`: every other member slow). */
const linkMbpsList = process.argv.includes('--link-mbps') ? arg('link-mbps', '').split(',').map(Number) : undefined;
if (linkMbpsList && !linkMbpsList.every((x) => x > 0)) throw new Error('--link-mbps takes positive numbers (Mbit/s), comma-separated');
/** Largest message per chunk (the exchange's `chunkBytes`); unset: the exchange's default. */
const chunkBytes = process.argv.includes('--chunk-bytes') ? parseCount(arg('chunk-bytes', '')) : undefined;

/**
 * Bytes per element on the wire, (reduce, gather), for the pattern's minimum. topk's gather is the
 * union of K sparse supports: at most K·8k bytes per element, never more than dense fp32.
 */
function bytesPerElement(spec: CodecSpec, K: number): { reduce: number; gather: number } {
  const c = createCodec(spec);
  if (c instanceof Int8Codec) return { reduce: 1 + 4 / c.blockSize, gather: 1 + 4 / c.blockSize };
  if (c instanceof TopkCodec) {
    const b = (8 * c.param) / 1e6;
    return { reduce: b, gather: Math.min(K * b, 4) };
  }
  const b = c.payloadBytes(1000) / 1000;
  return { reduce: b, gather: b };
}

async function ceiling(url: string): Promise<number> {
  const count = 1024;
  const subject = 'bench.ceiling';
  const child = fork(fileURLToPath(new URL('./ceiling-sub.js', import.meta.url)), [url, subject, String(count)], { execArgv: [] });
  const messages: { ready?: boolean; bytes?: number; ms?: number }[] = [];
  const next = () =>
    new Promise<{ ready?: boolean; bytes?: number; ms?: number }>((resolve) => {
      if (messages.length) return resolve(messages.shift()!);
      child.once('message', (m) => resolve(m as never));
    });
  await next();
  const nc = await connect({ servers: url });
  const payload = new Uint8Array(1024 * 1024);
  for (let i = 0; i < count; i++) {
    nc.publish(subject, payload);
    // No flush per message: a flush is a PING round trip that would throttle the stream.
    if (i % 256 === 255) await new Promise((r) => setImmediate(r));
  }
  await nc.flush();
  const r = await next();
  await nc.close();
  // Bytes per second delivered (first message excluded: the clock starts at it).
  return (r.bytes! - payload.length) / (r.ms! / 1000);
}

const fmtB = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);

/** K member processes of one job, on the given codec (each behind its own link with `--link-mbps`). */
interface Cell {
  spec: CodecSpec;
  ms: MemberProcess[];
  links: ThrottledLink[];
  times: number[];
  cpus: number[];
  sent: number;
  recv: number;
}

async function spawnCell(P: number, K: number, spec: CodecSpec): Promise<Cell> {
  const members = Array.from({ length: K }, (_, i) => `b${i}`);
  const job = `bench${P}k${K}${spec.name}${Date.now().toString(36)}`;
  // One member = one natsUrl; spawnMembers gives them all the same one, so with a link each
  // member is spawned on its own proxy.
  const rates = linkMbpsList;
  const links = rates ? await Promise.all(members.map((_, i) => ThrottledLink.start(server.url, rates[i % rates.length]))) : [];
  const init = { jobId: job, size: P, epoch: 1, codec: spec, deadlineMs: 600_000, gatherTimeoutMs: 1_200_000, seed: 1, chunkBytes };
  const ms = rates
    ? (await Promise.all(members.map((id, i) => spawnMembers([id], { ...init, natsUrl: links[i].url }, members)))).flat()
    : await spawnMembers(members, { ...init, natsUrl: server.url });
  return { spec, ms, links, times: [], cpus: [], sent: 0, recv: 0 };
}

async function closeCell(c: Cell): Promise<void> {
  await Promise.all(c.ms.map((m) => m.close()));
  await Promise.all(c.links.map((l) => l.stop()));
}

/** Collects the K results of one round; `measured` false for the warm-up. */
async function collect(c: Cell, measured: boolean): Promise<void> {
  const res = await Promise.all(c.ms.map((m) => m.result(1_200_000)));
  for (const x of res) if (!x.ok) throw new Error(`${x.error!.name}: ${x.error!.message}`);
  if (!measured) return;
  c.times.push(Math.max(...res.map((x) => x.endedAt!)) - Math.max(...res.map((x) => x.startedAt!)));
  c.cpus.push(res.reduce((a, x) => a + x.cpuMs!, 0) / res.length);
  c.sent = Math.max(...res.map((x) => x.bytesSent!));
  c.recv = Math.max(...res.map((x) => x.bytesReceived!));
}

function report(P: number, K: number, c: Cell): void {
  // Sent: a reduce chunk to every other owner, (K−1)/K·P, and our gathers, P/K.
  // Received: the others' reduce chunks for our shards, (K−1)/K·P, and their gathers, (K−1)/K·P.
  const { spec, sent, recv } = c;
  const b = bytesPerElement(spec, K);
  const minSent = ((K - 1) / K) * P * b.reduce + (1 / K) * P * b.gather;
  const minRecv = ((K - 1) / K) * P * (b.reduce + b.gather);
  const t = median(c.times);
  const busBw = ((P * 4) / (t / 1000)) * ((2 * (K - 1)) / K);
  const egress = recv * K;
  const ceilMs = (egress / ceil0) * 1000;
  console.log(`| ${P / 1e6}M | ${K} | ${spec.name} | ${c.times.length} | ${t.toFixed(0)} | ${fmtB(sent)} | ${fmtB(minSent)} | ${(sent / minSent).toFixed(3)} | ${fmtB(recv)} | ${fmtB(minRecv)} | ${(recv / minRecv).toFixed(3)} | ${(busBw / 1e9).toFixed(2)} | ${fmtB(egress)} | ${ceilMs.toFixed(0)} | ${(t / ceilMs).toFixed(2)} | ${median(c.cpus).toFixed(0)} |`);
}

function failed(P: number, K: number, spec: CodecSpec, err: unknown): void {
  console.log(`| ${P / 1e6}M | ${K} | ${spec.name} | – | failed: ${(err as Error).message.slice(0, 80)} |`);
}

/** Each cell on its own: one warm-up round, then n rounds back to back inside the members. */
async function sequential(P: number, K: number, n: number): Promise<void> {
  for (const spec of codecs) {
    let cell: Cell | undefined;
    try {
      cell = await spawnCell(P, K, spec);
      const c = cell;
      c.ms.forEach((m) => m.round({ round: 0, samples: 32, gradRound: 0, noHash: true, repeat: n + 1 }));
      for (let r = 0; r <= n; r++) await collect(c, r > 0);
      report(P, K, c);
    } catch (err) {
      failed(P, K, spec, err);
    } finally {
      if (cell) await closeCell(cell);
    }
  }
}

/**
 * `--interleave`: every codec's members at once (idle while another codec's round runs), one round
 * of each codec in turn, the order reversed every other time, so that a drift of the machine (load,
 * clock, the server's buffers) falls on every codec alike. Prints the cells, then for each codec
 * the ratio of the first codec's round time to its own, per turn: median and range.
 */
async function interleaved(P: number, K: number, n: number): Promise<void> {
  const cells: Cell[] = [];
  try {
    for (const spec of codecs) cells.push(await spawnCell(P, K, spec));
    for (let r = 0; r <= n; r++) {
      const order = r % 2 === 0 ? cells : [...cells].reverse();
      for (const c of order) {
        c.ms.forEach((m) => m.round({ round: r, samples: 32, gradRound: 0, noHash: true }));
        await collect(c, r > 0);
      }
    }
    for (const c of cells) report(P, K, c);
    const base = cells[0];
    for (const c of cells.slice(1)) {
      const ratios = base.times.map((t, i) => t / c.times[i]);
      ratioLines.push(`P = ${P / 1e6}M, K = ${K}: ${base.spec.name} / ${c.spec.name} round time, per turn: median ${median(ratios).toFixed(2)}×, range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}× over ${ratios.length} turns; ratio of medians ${(median(base.times) / median(c.times)).toFixed(2)}×`);
    }
  } catch (err) {
    failed(P, K, cells[0]?.spec ?? codecs[0], err);
  } finally {
    await Promise.all(cells.map(closeCell));
  }
}

const interleave = process.argv.includes('--interleave');
const ratioLines: string[] = [];
/** The private server's configuration: by default generous enough that no member is cut as a slow
 * consumer; `--server-conf 'max_pending: 64MB'` tries another (nats-server's defaults: 64MB, 10s). */
const serverConf = arg('server-conf', 'max_pending: 2GB\nwrite_deadline: "60s"').replaceAll('\\n', '\n');
const server = await PrivateNatsServer.start(serverConf + '\n');
let ceil0 = 0;
try {
  ceil0 = await ceiling(server.url);
  console.log(`ceiling: 1 MiB pub→sub through nats-server: ${(ceil0 / 1e9).toFixed(2)} GB/s`);
  if (linkMbpsList) console.log(`each member reaches the server through its own ${linkMbpsList.join(', ')} Mbit/s link (each way); the ceiling columns are the server's, without links`);
  if (interleave) console.log(`interleaved: one round of each codec in turn (${codecs.map((c) => c.name).join(', ')}), the order reversed every other turn`);
  console.log('| P | K | codec | reps | round ms (median) | sent/member | min | ratio | recv/member | min | ratio | bus bw GB/s | server egress | ceiling ms for it | round/ceiling | member CPU ms |');
  console.log('|' + '---|'.repeat(16));
  for (const P of Ps) {
    for (const K of Ks) {
      const n = P >= large ? repsLarge : reps;
      await (interleave ? interleaved(P, K, n) : sequential(P, K, n));
    }
  }
  for (const line of ratioLines) console.log(line);
  const ceil1 = await ceiling(server.url);
  console.log(`ceiling again at the end: ${(ceil1 / 1e9).toFixed(2)} GB/s`);
} finally {
  await server.stop();
}
