import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import { ConnectionLostError, OwnerMissingError, RoundAbortedError } from './errors.js';
import { RoundExchange } from './round-exchange.js';

const NATS_URL = process.env.GRADPOOL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

describe('every wait ends', () => {
  it('an AbortSignal ends a round that would otherwise wait for a silent peer', async () => {
    const nc = await connect({ servers: NATS_URL, noEcho: true });
    const ex = new RoundExchange({ nc, jobId: `ab${process.pid}`, size: 1000, roster: { epoch: 1, members: ['a', 'b'], selfId: 'a' }, codec: { name: 'fp32' }, deadlineMs: 60_000 });
    const ac = new AbortController();
    const p = ex.allReduce(0, new Float32Array(1000), 1, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(RoundAbortedError);
    await ex.close();
    await nc.close();
  });
  it('a silent owner fails the round with OwnerMissingError after the gather timeout', async () => {
    const nc = await connect({ servers: NATS_URL, noEcho: true });
    const ex = new RoundExchange({ nc, jobId: `ab2${process.pid}`, size: 1000, roster: { epoch: 1, members: ['a', 'b'], selfId: 'a' }, codec: { name: 'fp32' }, deadlineMs: 200, gatherTimeoutMs: 500, quorum: 1 });
    const err = await ex.allReduce(3, new Float32Array(1000), 1).catch((e) => e);
    expect(err).toBeInstanceOf(OwnerMissingError);
    expect(err.owners).toEqual(['b']);
    await ex.close();
    await nc.close();
  });
  it('closing the connection mid-round rejects with ConnectionLostError', async () => {
    const nc = await connect({ servers: NATS_URL, noEcho: true });
    const ex = new RoundExchange({ nc, jobId: `ab3${process.pid}`, size: 1000, roster: { epoch: 1, members: ['a', 'b'], selfId: 'a' }, codec: { name: 'fp32' }, deadlineMs: 60_000 });
    const p = ex.allReduce(0, new Float32Array(1000), 1);
    const closing = nc.close();
    await expect(p).rejects.toBeInstanceOf(ConnectionLostError);
    await closing;
  });
});

describe('buffering before the first round of an epoch', () => {
  for (const [startRound, dropped] of [
    [10, true],
    [11, false],
    [undefined, false],
  ] as const) {
    it(`with Roster.startRound ${startRound}, an owner ${dropped ? 'drops' : 'keeps'} round 13's messages that arrive before its first round`, async () => {
      const job = `sr${process.pid}${startRound}`;
      const [na, nb] = [await connect({ servers: NATS_URL, noEcho: true }), await connect({ servers: NATS_URL, noEcho: true })];
      const a = new RoundExchange({ nc: na, jobId: job, size: 1000, roster: { epoch: 1, members: ['a', 'b'], selfId: 'a', startRound }, codec: { name: 'fp32' }, deadlineMs: 60_000 });
      const b = new RoundExchange({ nc: nb, jobId: job, size: 1000, roster: { epoch: 1, members: ['a', 'b'], selfId: 'b', startRound }, codec: { name: 'fp32' }, deadlineMs: 60_000 });
      await nb.flush();
      const p = a.allReduce(13, new Float32Array(1000).fill(1), 1).catch((e: unknown) => e);
      await na.flush();
      await nb.flush();
      await new Promise((r) => setTimeout(r, 100));
      expect(b.stats.droppedAhead > 0).toBe(dropped);
      await a.close();
      await b.close();
      expect(await p).toBeInstanceOf(ConnectionLostError);
      await na.close();
      await nb.close();
    });
  }
});
