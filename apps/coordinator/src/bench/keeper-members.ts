/**
 * The members of the keeper bench (keeper.bench.ts), in a process of their own so that their
 * work is not on the bench's event loop: K RoundExchanges on K connections run `rounds` rounds
 * back to back on fixed gradients when told to, then report.
 *
 *   fork(keeper-members.js, [natsUrl, jobId, P, K, rounds, codec, clipNormRatio | ''])
 *   → { type: 'ready', members } … ← 'go' … → { type: 'done', ms }
 */
import { parseCodecSpec, RoundExchange } from '@gradpool/exchange';
import { connect, type NatsConnection } from 'nats';

const [url, jobId, P, K, rounds, codec, ratio] = process.argv.slice(2);
const size = Number(P);
const members = Array.from({ length: Number(K) }, (_, i) => `${jobId}-m${i}`);
const conns: NatsConnection[] = [];
const exchanges: RoundExchange[] = [];
for (const selfId of members) {
  const nc = await connect({ servers: url, noEcho: true });
  conns.push(nc);
  exchanges.push(
    new RoundExchange({ nc, jobId, size, roster: { epoch: 1, members, selfId }, codec: parseCodecSpec(codec), deadlineMs: 120_000, ...(ratio ? { clipNormRatio: Number(ratio) } : {}) }),
  );
}
const grads = members.map((_, i) => {
  let s = (i + 1) * 2654435761;
  return Float32Array.from({ length: size }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * (i + 1) * 0.01;
  });
});
process.send!({ type: 'ready', members });
process.once('message', async () => {
  const t0 = performance.now();
  for (let r = 0; r < Number(rounds); r++) {
    const res = await Promise.all(exchanges.map((ex, i) => ex.allReduce(r, grads[i], 100 + i)));
    for (const [i, x] of res.entries()) exchanges[i].recycle(x.mean);
  }
  process.send!({ type: 'done', ms: performance.now() - t0 });
  for (const ex of exchanges) await ex.close();
  for (const nc of conns) await nc.close();
  process.exit(0);
});
