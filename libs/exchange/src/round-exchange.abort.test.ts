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
