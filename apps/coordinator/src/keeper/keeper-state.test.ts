import { ensureUpdatesStream, publishUpdate, purgeUpdates, readUpdates, RoundExchange } from '@gradpool/exchange';
import { lyingOwner } from '@gradpool/exchange/testing';
import { encodeCheckpoint, paramHash } from '@gradpool/training';
import { createHash } from 'node:crypto';
import { connect } from 'nats';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KeeperState } from './keeper-state.js';

// The thread runs the built worker (npm test builds before it tests).
const WORKER = new URL('../../dist/keeper/keeper-state.worker.js', import.meta.url);
/** No worker there: the state stays inline. */
const INLINE = new URL('file:///nonexistent/worker.js');

function vector(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 0.1;
  });
}

describe('KeeperState', () => {
  it.runIf(existsSync(fileURLToPath(WORKER)))('in its thread gives the same bytes as inline: steps, hashes, checkpoints', async () => {
    const P = 10_001;
    const optimizer = { kind: 'adam', lr: 1e-3 } as const;
    const start = encodeCheckpoint({ params: vector(P, 1), optimizerState: [vector(P, 2).map(Math.abs), vector(P, 3).map(Math.abs)], round: 4 });
    const inline = await KeeperState.open(optimizer, { checkpoint: start }, { workerUrl: new URL('file:///nonexistent/worker.js') });
    const thread = await KeeperState.open(optimizer, { checkpoint: start }, { workerUrl: WORKER });
    try {
      expect(thread.paramCount).toBe(P);
      expect(await thread.hash()).toBe(await inline.hash());
      for (let r = 4; r < 7; r++) {
        const mean = vector(P, 100 + r);
        const before = mean.slice();
        const [a, b] = [await inline.step(mean, r), await thread.step(mean, r)];
        expect(b).toEqual(a);
        expect(mean).toEqual(before); // the mean is not modified (the keeper publishes it afterwards)
      }
      const [ca, cb] = [await inline.checkpoint(7, { k: 1 }), await thread.checkpoint(7, { k: 1 })];
      expect(Buffer.from(cb.bytes).equals(Buffer.from(ca.bytes))).toBe(true);
      expect(cb.hash).toBe(paramHash(await thread.params()));
    } finally {
      await thread.close();
      await inline.close();
    }
    // A closed state refuses work with an error instead of hanging.
    await expect(thread.hash()).rejects.toThrow(/closed|exited/);
  });
});

describe('KeeperState watching a job', () => {
  const NATS_URL = process.env.GRADPOOL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
  const SIZE = 20_000;

  it.runIf(existsSync(fileURLToPath(WORKER)))('in its thread: the same rounds and hashes as inline, an audit verdict before its round, the update published', async () => {
    const job = `ks${process.pid}${Date.now().toString(36)}`;
    const samples = [32, 48, 40];
    const members = samples.map((_, i) => `${job}-m${i}`);
    const open: { close(): Promise<unknown> | unknown }[] = [];
    try {
      const exchanges: RoundExchange[] = [];
      for (const [i, selfId] of members.entries()) {
        const nc = await connect({ servers: NATS_URL, noEcho: true });
        open.push(nc);
        // Member 1 gathers five times the mean from round 6 on.
        const conn = i === 1 ? lyingOwner(nc, 5, (r) => r >= 6) : nc;
        const ex = new RoundExchange({ nc: conn, jobId: job, size: SIZE, roster: { epoch: 1, members, selfId }, codec: { name: 'fp32' }, deadlineMs: 5000, chunkBytes: 16 * 1024, clipNormRatio: 3 });
        open.push(ex);
        exchanges.push(ex);
      }
      const nc = await connect({ servers: NATS_URL });
      open.push(nc);
      const jsm = await nc.jetstreamManager();
      await ensureUpdatesStream(jsm);
      const optimizer = { kind: 'sgd', lr: 0.1 } as const;
      const params = vector(SIZE, 5);
      const conn = { nc, servers: [NATS_URL] };
      const reference = await KeeperState.open(optimizer, { params: params.slice() }, { workerUrl: INLINE });
      open.push(reference);
      const watchers = [await KeeperState.open(optimizer, { params: params.slice() }, { conn, workerUrl: INLINE }), await KeeperState.open(optimizer, { params: params.slice() }, { conn, workerUrl: WORKER })];
      const seen: string[][] = [[], []];
      const failures: Error[] = [];
      for (const [w, state] of watchers.entries()) {
        open.push(state);
        await state.watch(
          { jobId: job, audit: { codec: 'fp32', clipNormRatio: 3, shardsPerRound: 1000, cpuShare: 1 } },
          {
            onRound: (o) => seen[w].push(`round ${o.round}`),
            onAudit: (a) => seen[w].push(`audit ${a.round}/${a.shard} ${a.verdict}`),
            onFailure: (err) => failures.push(err),
          },
        );
        state.setEpoch({ epoch: 1, members, startRound: 0 });
      }
      await new Promise((r) => setTimeout(r, 200)); // the thread's subscriptions reach the server
      let lastMean: Float32Array | null = null;
      for (let r = 0; r < 9; r++) {
        const res = await Promise.all(exchanges.map((ex, i) => ex.allReduce(r, vector(SIZE, 1000 * r + i), samples[i])));
        lastMean = res[0].mean;
        await expect.poll(() => seen.map((s) => s.includes(`round ${r}`)), { timeout: 10_000 }).toEqual([true, true]);
        const want = await reference.step(res[0].mean, r);
        for (const state of watchers) expect(await state.stepObserved(1, r)).toEqual(want);
      }
      expect(failures).toEqual([]);
      // Both saw the same events: the rounds in order, and between two rounds the same verdicts (in
      // the order the owners' gathers reached each connection): rounds 5–8 audited, member 1's
      // shards failing from round 6, each verdict before its round.
      const segments = (events: string[]) => events.join('\n').split(/^round \d+$/m).map((seg) => seg.split('\n').filter(Boolean).sort());
      expect(seen[1].filter((e) => e.startsWith('round'))).toEqual(Array.from({ length: 9 }, (_, r) => `round ${r}`));
      expect(segments(seen[1])).toEqual(segments(seen[0]));
      const shards = exchanges[0].geometry.shards;
      const owned = Array.from({ length: shards }, (_, s) => s).filter((s) => s % 3 === 1);
      for (let r = 5; r < 9; r++) {
        const at = seen[1].indexOf(`round ${r}`);
        const audits = seen[1].filter((e) => e.startsWith(`audit ${r}/`));
        expect(audits).toHaveLength(shards);
        for (const a of audits) expect(seen[1].indexOf(a)).toBeLessThan(at);
        for (const s of owned) expect(audits).toContain(`audit ${r}/${s} ${r >= 6 ? 'violation' : 'ok'}`);
        expect(audits.filter((a) => a.endsWith('violation'))).toHaveLength(r >= 6 ? owned.length : 0);
      }
      // The update of the last round, published by the thread, is the mean the members got.
      const hash = await watchers[1].hash();
      await watchers[1].publishObserved(8, hash, 'data');
      const updates = [];
      for await (const u of readUpdates(nc, job, 8, 9, { idleTimeoutMs: 5000 })) updates.push(u);
      expect(updates.map((u) => u.round)).toEqual([8]);
      expect(Buffer.from(updates[0].update.buffer, updates[0].update.byteOffset, updates[0].update.byteLength).equals(Buffer.from(lastMean!.buffer, lastMean!.byteOffset, lastMean!.byteLength))).toBe(true);
      expect(updates[0].paramHash).toBe(hash);
      // A round it no longer keeps is a clear error.
      await expect(watchers[1].stepObserved(1, 3)).rejects.toThrow(/round 3 \(epoch 1\) is not kept/);
      await purgeUpdates(jsm, job);
    } finally {
      for (const x of open.reverse()) await x.close();
    }
  });
});

describe('KeeperState with a store', () => {
  const NATS_URL = process.env.GRADPOOL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

  it.runIf(existsSync(fileURLToPath(WORKER)))('in its thread: stores a snapshot, restores from it and replays the updates after it, as inline', async () => {
    const job = `kr${process.pid}${Date.now().toString(36)}`;
    const P = 30_001;
    const nc = await connect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    await ensureUpdatesStream(jsm);
    const conn = { nc, servers: [NATS_URL] };
    const optimizer = { kind: 'adam', lr: 1e-3 } as const;
    const bucket = `test-keeper-${job}`;
    const states: KeeperState[] = [];
    try {
      const writer = await KeeperState.open(optimizer, { params: vector(P, 1) }, { conn, workerUrl: WORKER });
      states.push(writer);
      for (let r = 0; r < 3; r++) await writer.step(vector(P, 10 + r), r);
      const meta = { jobId: job };
      const { bytes: encoded } = await writer.checkpoint(3, meta);
      const snap = await writer.snapshot(3, meta);
      // Steps after the snapshot do not change what is stored.
      await writer.step(vector(P, 13), 3);
      const stored = await writer.storeSnapshot(3, { bucket, key: 'round-3' });
      expect(stored).toEqual({ bytes: encoded.byteLength, sha256: createHash('sha256').update(encoded).digest('hex') });
      await expect(writer.storeSnapshot(3, { bucket, key: 'round-3' })).rejects.toThrow(/no snapshot of round 3/);
      // The committed updates of rounds 3 and 4, as a keeper publishes them.
      await writer.step(vector(P, 14), 4);
      await publishUpdate(nc.jetstream(), job, 3, vector(P, 13), snap.hash);
      await publishUpdate(nc.jetstream(), job, 4, vector(P, 14), await writer.hash());
      for (const workerUrl of [WORKER, INLINE]) {
        const restored = await KeeperState.open(optimizer, { stored: { bucket, key: 'round-3' } }, { conn, workerUrl });
        states.push(restored);
        expect(await restored.hash()).toBe(snap.hash);
        expect(await restored.replay(job, 3, 5)).toBe(2);
        expect(await restored.hash()).toBe(await writer.hash());
      }
      // A checkpoint that is not there is a clear error, in the thread as inline.
      for (const workerUrl of [WORKER, INLINE]) {
        await expect(KeeperState.open(optimizer, { stored: { bucket, key: 'round-9' } }, { conn, workerUrl })).rejects.toThrow(/round-9 is missing/);
      }
    } finally {
      for (const s of states) await s.close();
      await purgeUpdates(jsm, job).catch(() => undefined);
      await (await nc.jetstream().views.os(bucket)).destroy().catch(() => undefined);
      await nc.close();
    }
  });
});
