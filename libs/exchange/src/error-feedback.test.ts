import { subjects } from '@gradpool/protocol';
import { connect, type NatsConnection } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { RoundExchange } from './round-exchange.js';
import { rng } from './testing/fixtures.js';

const NATS_URL = process.env.GRADPOOL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const conns: NatsConnection[] = [];
afterAll(async () => {
  await Promise.all(conns.map((c) => c.close()));
});

describe('topk with error feedback through the exchange', () => {
  it('over many rounds the averaged updates carry every coordinate’s accumulated mass', async () => {
    const P = 4000;
    const rounds = 40;
    const jobId = `ef${process.pid}${Date.now().toString(36)}`;
    const members = ['a', 'b'];
    const samples = [10, 30];
    const xs: RoundExchange[] = [];
    for (const id of members) {
      const nc = await connect({ servers: NATS_URL, noEcho: true });
      conns.push(nc);
      xs.push(new RoundExchange({ nc, jobId, size: P, roster: { epoch: 1, members, selfId: id }, codec: { name: 'topk', fraction: 0.02 }, deadlineMs: 5000 }));
    }
    const sumMeans = new Float64Array(P);
    const sumTrue = new Float64Array(P);
    const r = rng(11);
    for (let t = 0; t < rounds; t++) {
      const grads = members.map(() => {
        const g = new Float32Array(P);
        for (let i = 0; i < P; i++) g[i] = 1e-3 * ((i % 5) - 2) + (r() - 0.5) * 1e-3;
        return g;
      });
      const res = await Promise.all(xs.map((x, j) => x.allReduce(t, grads[j], samples[j])));
      expect(res[0].mean).toEqual(res[1].mean);
      for (let i = 0; i < P; i++) {
        sumMeans[i] += res[0].mean[i];
        sumTrue[i] += (samples[0] * grads[0][i] + samples[1] * grads[1][i]) / (samples[0] + samples[1]);
      }
    }
    // Conservation: Σ means + the weighted residuals still held = Σ true means (float32 rounding aside).
    const total = samples[0] + samples[1];
    let worst = 0;
    let transmitted = 0;
    for (let i = 0; i < P; i++) {
      const held = (samples[0] * xs[0].residual![i] + samples[1] * xs[1].residual![i]) / total;
      worst = Math.max(worst, Math.abs(sumMeans[i] + held - sumTrue[i]));
      if ((i % 5 === 0 || i % 5 === 4) && sumMeans[i] !== 0) transmitted++;
    }
    expect(worst).toBeLessThan(1e-4);
    // Every coordinate with the larger persistent drift got through, though each round sends only 2 %.
    expect(transmitted).toBe((P * 2) / 5);
    await Promise.all(xs.map((x) => x.close()));
  });
});

describe('subjects of the data plane', () => {
  it('are built by libs/protocol and reject injected tokens', () => {
    expect(subjects.reduce('j1', 2, 3, 4, 'm1')).toBe('gp.job.j1.r.2.3.4.m1');
    expect(subjects.reduceShardRounds('j1', 2, 4)).toBe('gp.job.j1.r.2.*.4.*');
    expect(subjects.gatherEpoch('j1', 2)).toBe('gp.job.j1.g.2.>');
    expect(subjects.exchangeControl('j1', 'm1')).toBe('gp.job.j1.x.m1');
    expect(subjects.exchangeControlAll('j1')).toBe('gp.job.j1.x.*');
    expect(() => subjects.gatherEpoch('j1.>', 2)).toThrow();
    expect(() => subjects.reduce('j1', 2, 3, 4, 'm1.*')).toThrow();
  });
});
