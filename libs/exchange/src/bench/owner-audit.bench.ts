/**
 * `npm run bench owner-audit [-- --P 235k,690k,5M --K 3 --codec fp32 --rounds 12]`
 *
 * What the owner audit (owner-audit.ts) costs the observer that runs it, the keeper: K members
 * in this process run rounds of the real exchange (clipped mean) through the nats-server on
 * 127.0.0.1:4222 (`--nats`), and an OwnerAuditor with its default shard budget follows them
 * through a GatherObserver, as the keeper does (without its CPU share cap, so that every round
 * is audited and measured). Prints, per P: how many shards a round it
 * audits, their verdicts, and the milliseconds its handlers took on the event loop per audited
 * round (the reduce messages it takes in and the audits themselves; the observer's own decoding
 * of the gathers is not counted).
 */
import { connect } from 'nats';
import type { CodecSpec } from '../codecs/codec.js';
import { parseCodecSpec } from '../codecs/index.js';
import { GatherObserver } from '../gather-observer.js';
import { type AuditResult, OwnerAuditor } from '../owner-audit.js';
import { RoundExchange } from '../round-exchange.js';
import { gradient } from '../testing/fixtures.js';
import { arg, parseCount } from './args.js';

const Ps = arg('P', '235k,690k,5M').split(',').map(parseCount);
const K = Number(arg('K', '3'));
const codec: CodecSpec = parseCodecSpec(arg('codec', 'fp32'));
const rounds = Number(arg('rounds', '12'));
const servers = arg('nats', 'nats://127.0.0.1:4222');

async function cell(P: number): Promise<string[]> {
  const job = `bench-audit-${process.pid}-${P}`;
  const members = Array.from({ length: K }, (_, i) => `m${i}`);
  const conns = await Promise.all(members.map(() => connect({ servers, noEcho: true })));
  const exs = members.map((selfId, i) => new RoundExchange({ nc: conns[i], jobId: job, size: P, roster: { epoch: 1, members, selfId }, codec, deadlineMs: 30_000, clipNormRatio: 3 }));
  const nc = await connect({ servers });
  const results: AuditResult[] = [];
  const auditor = new OwnerAuditor({ nc, jobId: job, codec, clipNormRatio: 3, rosterOf: () => ({ members, startRound: 0 }), cpuShare: 1, onResult: (r) => results.push(r) });
  // Time spent in the auditor's two entry points: the gathers it is shown and the reduce messages it subscribed to.
  let ms = 0;
  const timed = <A extends unknown[]>(f: (...a: A) => void) =>
    function (this: unknown, ...a: A) {
      const t0 = performance.now();
      try {
        f.apply(this, a);
      } finally {
        ms += performance.now() - t0;
      }
    };
  const proto = Object.getPrototypeOf(auditor) as Record<string, (...a: unknown[]) => void>;
  const patched = { observe: proto.observe, onReduce: proto.onReduce };
  proto.observe = timed(patched.observe);
  proto.onReduce = timed(patched.onReduce);
  const observer = new GatherObserver({ nc, jobId: job, onGather: (h, p) => auditor.observe(h, p) });
  const grads = members.map((_, i) => gradient(7, i, 0, P));
  try {
    for (let r = 0; r < rounds; r++) {
      await Promise.all(exs.map((ex, i) => ex.allReduce(r, grads[i], 100 + i)));
      await observer.next(AbortSignal.timeout(60_000));
    }
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    Object.assign(proto, patched);
    observer.close();
    auditor.close();
    await Promise.all(exs.map((ex) => ex.close()));
    await Promise.all([...conns, nc].map((c) => c.close()));
  }
  const audited = new Set(results.map((r) => r.round)).size;
  const verdicts = Object.entries(results.reduce<Record<string, number>>((a, r) => ({ ...a, [r.verdict]: (a[r.verdict] ?? 0) + 1 }), {}))
    .map(([v, n]) => `${v} ${n}`)
    .join(', ');
  const perShard = (K * Math.ceil(P / exs[0].geometry.shards) * 4) / 2 ** 20;
  return [
    P.toLocaleString('en'),
    String(K),
    String(exs[0].geometry.shards),
    (results.length / Math.max(1, audited)).toFixed(1),
    perShard.toFixed(2),
    verdicts,
    audited > 0 ? (ms / audited).toFixed(1) : '—',
  ];
}

console.log(`owner audit: K = ${K}, codec ${arg('codec', 'fp32')}, ${rounds} rounds per P (audits start at round 5), default budget (8 MiB of reduce messages a round)`);
console.log('| P | K | shards | audited shards / round | MiB of reduce messages per audited shard | verdicts | auditor ms per audited round |');
console.log('|---|---|---|---|---|---|---|');
for (const P of Ps) console.log(`| ${(await cell(P)).join(' | ')} |`);
process.exit(0);
