import { execFileSync } from 'node:child_process';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCodec } from './codecs/index.js';
import type { CodecSpec } from './codecs/codec.js';
import { GatherObserver } from './gather-observer.js';
import { gradient, referenceMean, trueMean } from './testing/fixtures.js';
import { MemberProcess, spawnMembers } from './testing/members.js';
import { PrivateNatsServer } from './testing/nats-server.js';
import { ShardLayout } from './layout.js';
import { ThrottledLink } from './bench/throttled-link.js';

const NATS_URL = process.env.GRADPOOL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const SIZE = 60_000;
const CHUNK_BYTES = 16 * 1024;
const SEED = 42;

beforeAll(() => {
  // Members run the built JS in their own processes.
  execFileSync('npx', ['tsc', '-b', 'libs/exchange'], { cwd: new URL('../../../', import.meta.url).pathname, stdio: 'inherit' });
}, 120_000);

let jobSeq = 0;
function jobId(): string {
  return `xt${process.pid}${Date.now().toString(36)}${jobSeq++}`;
}

function ids(k: number, tag: string): string[] {
  return Array.from({ length: k }, (_, i) => `${tag}-m${i}`);
}

const cleanup: MemberProcess[] = [];
afterAll(async () => {
  await Promise.all(cleanup.map((m) => m.close()));
});

function samplesOf(k: number): number[] {
  return Array.from({ length: k }, (_, i) => 16 + 8 * i);
}

function decodeMean(b64: string): Float32Array {
  const b = Buffer.from(b64, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

describe('RoundExchange across member processes', () => {
  for (const k of [2, 3, 5]) {
    it(`K=${k}, fp32: every member gets the exact sample-weighted mean`, async () => {
      const job = jobId();
      const members = ids(k, `k${k}`);
      const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 5000, chunkBytes: CHUNK_BYTES, seed: SEED });
      cleanup.push(...ms);
      const nc = await connect({ servers: NATS_URL });
      const observer = new GatherObserver({ nc, jobId: job });
      const samples = samplesOf(k);
      // An epoch starts at whatever round the roster says; members buffer early messages for it.
      // Three rounds: the later ones write into the earlier rounds' spent messages and means.
      for (const round of [700, 701, 702]) {
        ms.forEach((m, i) => m.round({ round, samples: samples[i], returnMean: true }));
        const results = await Promise.all(ms.map((m) => m.result()));
        for (const r of results) expect(r.ok, r.error?.message).toBe(true);
        const grads = members.map((_, i) => gradient(SEED, i, round, SIZE));
        const geo = results[0].geometry!;
        const all = Array.from({ length: geo.shards }, () => [...members.keys()]);
        const expected = referenceMean(createCodec({ name: 'fp32' }), SIZE, geo, grads, samples, all);
        // fp32 is exact: equal to the float64 mean rounded once to float32.
        const exact = trueMean(grads, samples, [...members.keys()], 0, SIZE);
        expect(Array.from(expected)).toEqual(Array.from(Float32Array.from(exact)));
        for (const r of results) {
          expect(r.meanHash).toBe(results[0].meanHash);
          expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
          expect(r.contributors).toEqual(members);
          expect(r.totalSamples).toBe(samples.reduce((a, b) => a + b));
        }
        const observed = await observer.next(AbortSignal.timeout(10_000));
        expect(observed!.round).toBe(round);
        expect(Buffer.from(observed!.mean.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
        expect(observed!.totalSamples).toBe(results[0].totalSamples);
        // Per-member traffic is O(P), independent of K: reduce (K−1)/K·P·4 + gather P/K·4 out.
        const payload = SIZE * 4;
        for (const r of results) {
          expect(r.bytesSent).toBeGreaterThanOrEqual(payload * ((k - 1) / k + 1 / k) * 0.99);
          expect(r.bytesSent).toBeLessThan(payload * 1.1);
          expect(r.bytesReceived).toBeLessThan(payload * (2 * (k - 1)) / k * 1.1);
        }
        if (round === 702) for (const r of results) expect(r.stats!.reusedMessages).toBeGreaterThan(0);
      }
      observer.close();
      await nc.close();
      await Promise.all(ms.map((m) => m.close()));
    });
  }

  it('a member with no samples this round (a short last round of a data epoch) takes part with weight 0', async () => {
    const job = jobId();
    const members = ids(3, 'zero');
    const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 5000, chunkBytes: CHUNK_BYTES, seed: SEED });
    cleanup.push(...ms);
    const samples = [16, 0, 32];
    ms.forEach((m, i) => m.round({ round: 3, samples: samples[i], returnMean: true }));
    const results = await Promise.all(ms.map((m) => m.result()));
    const grads = members.map((_, i) => gradient(SEED, i, 3, SIZE));
    const exact = Float32Array.from(trueMean(grads, samples, [0, 2], 0, SIZE));
    for (const r of results) {
      expect(r.ok, r.error?.message).toBe(true);
      expect(r.contributors).toEqual(members);
      expect(r.totalSamples).toBe(48);
      expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(exact.buffer))).toBe(true);
    }
    // Nobody with samples: no mean, the round fails on every member (nothing hangs).
    ms.forEach((m) => m.round({ round: 4, samples: 0 }));
    for (const r of await Promise.all(ms.map((m) => m.result()))) expect(r.ok).toBe(false);
    await Promise.all(ms.map((m) => m.close()));
  });

  const lossy: [CodecSpec, (x: number) => number][] = [
    [{ name: 'fp16' }, (x) => Math.max(Math.abs(x) * 2 ** -11, 2 ** -25)],
    [{ name: 'bf16' }, (x) => Math.abs(x) * 2 ** -8],
  ];
  it('K=3 with fp16, bf16, int8 and topk: reference-exact and within the codec bounds', async () => {
    const k = 3;
    const members = ids(k, 'lossy');
    const samples = samplesOf(k);
    // topk 0.3: three members' supports cover most of a gather chunk, which then goes dense.
    const specs: CodecSpec[] = [{ name: 'fp16' }, { name: 'bf16' }, { name: 'int8', blockSize: 64 }, { name: 'topk', fraction: 0.05 }, { name: 'topk', fraction: 0.3 }];
    for (const spec of specs) {
      const job = jobId();
      const ms = await spawnMembers(members.map((m) => `${m}-${spec.name}`), { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: spec, deadlineMs: 5000, chunkBytes: CHUNK_BYTES, seed: SEED });
      cleanup.push(...ms);
      ms.forEach((m, i) => m.round({ round: 0, samples: samples[i], returnMean: true }));
      const results = await Promise.all(ms.map((m) => m.result()));
      for (const r of results) expect(r.ok, r.error?.message).toBe(true);
      const grads = members.map((_, i) => gradient(SEED, i, 0, SIZE));
      const geo = results[0].geometry!;
      const all = Array.from({ length: geo.shards }, () => [...members.keys()]);
      const codec = createCodec(spec);
      const expected = referenceMean(codec, SIZE, geo, grads, samples, all);
      for (const r of results) expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      const exact = trueMean(grads, samples, [0, 1, 2], 0, SIZE);
      const total = samples.reduce((a, b) => a + b);
      const bound = lossy.find(([s]) => s.name === spec.name)?.[1];
      if (bound) {
        const worst: number[] = [];
        for (let i = 0; i < SIZE; i++) {
          let e = 0;
          for (let j = 0; j < k; j++) e += (samples[j] * bound(grads[j][i])) / total;
          e += bound(exact[i]) * 1.01 + 1e-12;
          if (!(Math.abs(expected[i] - exact[i]) <= e * 1.001 + Math.abs(exact[i]) * 2 ** -23)) worst.push(i);
        }
        expect(worst).toEqual([]);
      } else if (spec.name === 'int8') {
        // Half a quantisation step per element (reduce), plus the gather's, per block.
        const layout = new ShardLayout(SIZE, geo.shards);
        const worst: number[] = [];
        for (let s = 0; s < geo.shards; s++) {
          for (let off = layout.start(s); off < layout.start(s + 1); off += 64) {
            const end = Math.min(off + 64, layout.start(s + 1));
            let step = 0;
            for (let j = 0; j < k; j++) {
              let am = 0;
              for (let i = off; i < end; i++) am = Math.max(am, Math.abs(grads[j][i]));
              step += (samples[j] * am) / 254 / total;
            }
            let amMean = 0;
            for (let i = off; i < end; i++) amMean = Math.max(amMean, Math.abs(exact[i]));
            step += (amMean * 1.01) / 254;
            for (let i = off; i < end; i++) if (!(Math.abs(expected[i] - exact[i]) <= step * 1.001)) worst.push(i);
          }
        }
        expect(worst).toEqual([]);
      }
      await Promise.all(ms.map((m) => m.close()));
    }
  });
});

describe('robust aggregation (clipNormRatio)', () => {
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  for (const spec of [{ name: 'fp32' }, { name: 'int8', blockSize: 64 }] as CodecSpec[]) {
    it(`${spec.name}: a member sending a huge but finite gradient is scaled down to the norm bound; everyone gets the same, reference-exact mean`, async () => {
      const job = jobId();
      const members = ids(3, `clip-${spec.name}`);
      const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: spec, deadlineMs: 5000, chunkBytes: CHUNK_BYTES, seed: SEED, clipNormRatio: 3 });
      cleanup.push(...ms);
      const samples = samplesOf(3);
      const scale = [1, 1, 1000];
      ms.forEach((m, i) => m.round({ round: 0, samples: samples[i], returnMean: true, gradScale: scale[i] === 1 ? undefined : scale[i] }));
      const results = await Promise.all(ms.map((m) => m.result()));
      for (const r of results) expect(r.ok, r.error?.message).toBe(true);
      const grads = members.map((_, i) => (scale[i] === 1 ? gradient(SEED, i, 0, SIZE) : gradient(SEED, i, 0, SIZE).map((x) => x * scale[i])));
      const geo = results[0].geometry!;
      const all = Array.from({ length: geo.shards }, () => [...members.keys()]);
      const codec = createCodec(spec);
      const expected = referenceMean(codec, SIZE, geo, grads, samples, all, 3);
      for (const r of results) {
        expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
        expect(r.contributors).toEqual(members);
        expect(r.totalSamples).toBe(samples.reduce((a, b) => a + b));
      }
      // Every shard clipped the big one, and only it.
      expect(results.reduce((a, r) => a + r.stats!.clipped, 0)).toBe(geo.shards);
      // Its pull on the mean is bounded: within a few honest norms, where the plain mean is ~440× off.
      const honest = Float32Array.from(trueMean(grads, samples, [0, 1], 0, SIZE));
      const plain = Float32Array.from(trueMean(grads, samples, [0, 1, 2], 0, SIZE));
      expect(norm(expected)).toBeLessThan(3 * norm(honest));
      expect(norm(plain)).toBeGreaterThan(100 * norm(honest));
      await Promise.all(ms.map((m) => m.close()));
    });
  }

  it('honest members within the bound: the clipped mean is the plain mean, bit for bit', async () => {
    const job = jobId();
    const members = ids(3, 'clip-honest');
    const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 5000, chunkBytes: CHUNK_BYTES, seed: SEED, clipNormRatio: 3 });
    cleanup.push(...ms);
    const samples = samplesOf(3);
    ms.forEach((m, i) => m.round({ round: 5, samples: samples[i], returnMean: true }));
    const results = await Promise.all(ms.map((m) => m.result()));
    const grads = members.map((_, i) => gradient(SEED, i, 5, SIZE));
    const exact = Float32Array.from(trueMean(grads, samples, [0, 1, 2], 0, SIZE));
    for (const r of results) {
      expect(r.ok, r.error?.message).toBe(true);
      expect(r.stats!.clipped).toBe(0);
      expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(exact.buffer))).toBe(true);
    }
    await Promise.all(ms.map((m) => m.close()));
  });
});

describe('faults', () => {
  it('a contributor killed mid-round is dropped at the deadline; the rest get the mean of the others', async () => {
    const job = jobId();
    const members = ids(3, 'kill');
    // S = 2: members 0 and 1 own shards, member 2 only contributes.
    const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 1500, shards: 2, quorum: 2, chunkBytes: CHUNK_BYTES, seed: SEED });
    cleanup.push(...ms);
    const samples = samplesOf(3);
    ms[0].round({ round: 0, samples: samples[0], returnMean: true });
    ms[1].round({ round: 0, samples: samples[1], returnMean: true });
    ms[2].round({ round: 0, samples: samples[2], fault: 'die-mid-round' });
    await ms[2].exit();
    const results = await Promise.all([ms[0].result(), ms[1].result()]);
    const grads = members.map((_, i) => gradient(SEED, i, 0, SIZE));
    const expected = referenceMean(createCodec({ name: 'fp32' }), SIZE, results[0].geometry!, grads, samples, [[0, 1], [0, 1]]);
    for (const r of results) {
      expect(r.ok, r.error?.message).toBe(true);
      expect(r.contributors).toEqual([members[0], members[1]]);
      expect(r.totalSamples).toBe(samples[0] + samples[1]);
      expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    }
    await Promise.all(ms.map((m) => m.close()));
  });

  it('an owner killed mid-round fails the round with OwnerMissingError naming it; the re-run in a new epoch succeeds', async () => {
    const job = jobId();
    const members = ids(3, 'own');
    const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 1500, gatherTimeoutMs: 3000, quorum: 2, chunkBytes: CHUNK_BYTES, seed: SEED });
    cleanup.push(...ms);
    const samples = samplesOf(3);
    ms[0].round({ round: 0, samples: samples[0] });
    ms[1].round({ round: 0, samples: samples[1] });
    ms[2].round({ round: 0, samples: samples[2], fault: 'die-mid-round' });
    await ms[2].exit();
    const failed = await Promise.all([ms[0].result(), ms[1].result()]);
    for (const r of failed) {
      expect(r.ok).toBe(false);
      expect(r.error!.name).toBe('OwnerMissingError');
      expect(r.error!.owners).toEqual([members[2]]);
    }
    // The control plane publishes epoch 2 without the dead member; the same gradients are re-run.
    const roster = { epoch: 2, members: [members[0], members[1]] };
    ms[0].round({ round: 0, samples: samples[0], roster, gradRound: 0, returnMean: true });
    ms[1].round({ round: 0, samples: samples[1], roster, gradRound: 0, returnMean: true });
    const rerun = await Promise.all([ms[0].result(), ms[1].result()]);
    const grads = [0, 1].map((i) => gradient(SEED, i, 0, SIZE));
    const geo = rerun[0].geometry!;
    const expected = referenceMean(createCodec({ name: 'fp32' }), SIZE, geo, grads, samples.slice(0, 2), Array.from({ length: geo.shards }, () => [0, 1]));
    for (const r of rerun) {
      expect(r.ok, r.error?.message).toBe(true);
      expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    }
    await Promise.all(ms.map((m) => m.close()));
  });

  it('garbage, another job\'s chunk, a wrong-sized chunk, NaN and duplicates are dropped and reported, never corrupting the mean', async () => {
    const job = jobId();
    const members = ids(3, 'evil');
    const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 3000, quorum: 2, chunkBytes: CHUNK_BYTES, seed: SEED });
    cleanup.push(...ms);
    const samples = samplesOf(3);
    ms[0].round({ round: 0, samples: samples[0], returnMean: true });
    ms[1].round({ round: 0, samples: samples[1], returnMean: true });
    ms[2].round({ round: 0, samples: samples[2], fault: 'evil', returnMean: true });
    const results = await Promise.all(ms.map((m) => m.result()));
    for (const r of results) expect(r.ok, r.error?.message).toBe(true);
    // Shard 0's owner excluded member 2 after its NaN chunk; every other shard counts everyone.
    const geo = results[0].geometry!;
    const contributors = Array.from({ length: geo.shards }, (_, s) => (s === 0 ? [0, 1] : [0, 1, 2]));
    expect(results[0].shards!.map((s) => s.contributors)).toEqual(contributors);
    const grads = members.map((_, i) => gradient(SEED, i, 0, SIZE));
    const expected = referenceMean(createCodec({ name: 'fp32' }), SIZE, geo, grads, samples, contributors);
    for (const r of results) expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    const reasons = results[0].rejects!.map((x) => `${x.sender}: ${x.reason}`).join('\n');
    expect(reasons).toMatch(/malformed/);
    expect(reasons).toMatch(/another-job/);
    expect(reasons).toMatch(/evil-m2.*does not match shard 0/);
    expect(reasons).toMatch(/evil-m2.*non-finite/);
    expect(results[1].stats!.duplicates).toBeGreaterThanOrEqual(2);
    expect(results[1].rejects).toEqual([]);
    await Promise.all(ms.map((m) => m.close()));
  });

  it('a chunk or gather whose subject names another sender than its header is rejected naming both, never counted', async () => {
    const job = jobId();
    const members = ids(3, 'imp');
    const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 5000, chunkBytes: CHUNK_BYTES, seed: SEED });
    cleanup.push(...ms);
    const nc = await connect({ servers: NATS_URL });
    const observed: string[] = [];
    const observer = new GatherObserver({ nc, jobId: job, onReject: (sender, reason) => observed.push(`${sender}: ${reason}`) });
    await nc.flush();
    const samples = samplesOf(3);
    // Member 2 publishes on its own subjects (all its NATS permissions allow) with headers naming
    // member 1: a reduce chunk for member 0's shard 0 and a gather of member 1's shard 1.
    ms[0].round({ round: 0, samples: samples[0], returnMean: true });
    ms[1].round({ round: 0, samples: samples[1], returnMean: true });
    ms[2].round({ round: 0, samples: samples[2], fault: 'impersonate', returnMean: true });
    const results = await Promise.all(ms.map((m) => m.result()));
    for (const r of results) expect(r.ok, r.error?.message).toBe(true);
    const geo = results[0].geometry!;
    const contributors = Array.from({ length: geo.shards }, () => [0, 1, 2]);
    expect(results[0].shards!.map((s) => s.contributors)).toEqual(contributors);
    const grads = members.map((_, i) => gradient(SEED, i, 0, SIZE));
    const expected = referenceMean(createCodec({ name: 'fp32' }), SIZE, geo, grads, samples, contributors);
    for (const r of results) expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    const forged = 'imp-m2: subject sender "imp-m2" is not the header\'s sender "imp-m1"';
    // Member 0 owns shard 0 and gathers shard 1; member 1 owns shard 1.
    expect(results[0].rejects!.map((x) => `${x.sender}: ${x.reason}`)).toEqual([forged, forged]);
    expect(results[1].rejects!.map((x) => `${x.sender}: ${x.reason}`)).toEqual([forged]);
    expect(results[0].stats!.rejected).toBe(2);
    const round = await observer.next(AbortSignal.timeout(10_000));
    expect(Buffer.from(round!.mean.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    expect(observed).toEqual([forged]);
    observer.close();
    await nc.close();
    await Promise.all(ms.map((m) => m.close()));
  });

  it('a straggler past the deadline is left out of the other owners\' shards; everyone still agrees', async () => {
    const job = jobId();
    const members = ids(3, 'slow');
    const ms = await spawnMembers(members, { natsUrl: NATS_URL, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 1500, gatherTimeoutMs: 20_000, quorum: 2, chunkBytes: CHUNK_BYTES, seed: SEED });
    cleanup.push(...ms);
    const samples = samplesOf(3);
    const nc = await connect({ servers: NATS_URL });
    // Release the straggler once the other owners have published their (deadline) gathers.
    const geo = ms[0].geometry!;
    const others = new Set([...Array(geo.shards).keys()].filter((s) => ShardLayout.owner(s, 3) !== 2));
    const { subjects } = await import('@gradpool/protocol');
    const seen = new Set<number>();
    const allSeen = new Promise<void>((resolve) => {
      nc.subscribe(subjects.gatherEpoch(job, 1), {
        callback: (_e, msg) => {
          // …g.<epoch>.<round>.<shard>.<owner>
          const shard = Number(msg.subject.split('.').at(-2));
          if (others.has(shard)) seen.add(shard);
          if (seen.size === others.size) resolve();
        },
      });
    });
    await nc.flush();
    ms[0].round({ round: 0, samples: samples[0], returnMean: true });
    ms[1].round({ round: 0, samples: samples[1], returnMean: true });
    ms[2].round({ round: 0, samples: samples[2], fault: 'hold', returnMean: true });
    await allSeen;
    ms[2].go();
    const results = await Promise.all(ms.map((m) => m.result()));
    for (const r of results) expect(r.ok, r.error?.message).toBe(true);
    const contributors = Array.from({ length: geo.shards }, (_, s) => (others.has(s) ? [0, 1] : [0, 1, 2]));
    expect(results[0].shards!.map((s) => s.contributors)).toEqual(contributors);
    expect(results[0].contributors).toEqual([members[0], members[1]]);
    const grads = members.map((_, i) => gradient(SEED, i, 0, SIZE));
    const expected = referenceMean(createCodec({ name: 'fp32' }), SIZE, geo, grads, samples, contributors);
    for (const r of results) expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    await nc.close();
    await Promise.all(ms.map((m) => m.close()));
  });

  it('the NATS server restarted mid-round: the round completes with the right mean or fails with a typed error', async () => {
    const server = await PrivateNatsServer.start();
    try {
      const job = jobId();
      const members = ids(3, 'rst');
      const ms = await spawnMembers(members, { natsUrl: server.url, jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' }, deadlineMs: 6000, gatherTimeoutMs: 15_000, quorum: 2, chunkBytes: CHUNK_BYTES, seed: SEED });
      cleanup.push(...ms);
      const samples = samplesOf(3);
      // Round 0 warms up the subscriptions.
      ms.forEach((m, i) => m.round({ round: 0, samples: samples[i] }));
      for (const r of await Promise.all(ms.map((m) => m.result()))) expect(r.ok, r.error?.message).toBe(true);
      ms[0].round({ round: 1, samples: samples[0], returnMean: true });
      ms[1].round({ round: 1, samples: samples[1], returnMean: true });
      ms[2].round({ round: 1, samples: samples[2], returnMean: true, fault: 'hold' });
      await Promise.all([ms[0].published(1), ms[1].published(1)]);
      await server.restart();
      ms[2].go();
      const results = await Promise.all(ms.map((m) => m.result(40_000)));
      const grads = members.map((_, i) => gradient(SEED, i, 1, SIZE));
      for (const r of results) {
        if (!r.ok) {
          expect(['OwnerMissingError', 'QuorumNotMetError', 'ConnectionLostError']).toContain(r.error!.name);
          continue;
        }
        const geo = r.geometry!;
        const expected = referenceMean(createCodec({ name: 'fp32' }), SIZE, geo, grads, samples, r.shards!.map((s) => s.contributors));
        expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      }
      // With resends after reconnecting, nobody should have needed to give up.
      expect(results.filter((r) => r.ok).length).toBe(3);
      await Promise.all(ms.map((m) => m.close()));
    } finally {
      await server.stop();
    }
  });

  it('a member whose connection dropped between rounds still gets the chunks a peer sent meanwhile for the next round', async () => {
    // Member 0 reaches the server through a link that goes down after round 0; member 1 publishes
    // round 1 (chunks for member 0's shards that nobody receives) and waits; member 0 reconnects,
    // and only then enters round 1. It must ask for the chunks it missed, not leave member 1 out.
    const link = await ThrottledLink.start(NATS_URL, 100_000);
    try {
      const job = jobId();
      const members = ids(2, 'gap');
      const init = { jobId: job, size: SIZE, epoch: 1, codec: { name: 'fp32' } as CodecSpec, deadlineMs: 3000, gatherTimeoutMs: 20_000, quorum: 1, chunkBytes: CHUNK_BYTES, seed: SEED };
      const [m0] = await spawnMembers([members[0]], { ...init, natsUrl: link.url }, members);
      const [m1] = await spawnMembers([members[1]], { ...init, natsUrl: NATS_URL }, members);
      const ms = [m0, m1];
      cleanup.push(...ms);
      const samples = samplesOf(2);
      ms.forEach((m, i) => m.round({ round: 0, samples: samples[i] }));
      for (const r of await Promise.all(ms.map((m) => m.result()))) expect(r.ok, r.error?.message).toBe(true);
      link.cut();
      m1.round({ round: 1, samples: samples[1], returnMean: true });
      await m1.published(1);
      link.restore();
      const deadline = Date.now() + 10_000;
      while (link.accepted < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(link.accepted).toBe(2);
      // The reconnect's handshake and resubscriptions, and the exchange's handling of it.
      await new Promise((r) => setTimeout(r, 500));
      m0.round({ round: 1, samples: samples[0], returnMean: true });
      const results = await Promise.all(ms.map((m) => m.result(30_000)));
      for (const r of results) expect(r.ok, r.error?.message).toBe(true);
      const geo = results[0].geometry!;
      expect(results[0].shards!.map((s) => s.contributors)).toEqual(Array.from({ length: geo.shards }, () => [0, 1]));
      const grads = members.map((_, i) => gradient(SEED, i, 1, SIZE));
      const expected = referenceMean(createCodec({ name: 'fp32' }), SIZE, geo, grads, samples, results[0].shards!.map((s) => s.contributors));
      for (const r of results) expect(Buffer.from(decodeMean(r.mean!).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      await Promise.all(ms.map((m) => m.close()));
    } finally {
      await link.stop();
    }
  });
});
