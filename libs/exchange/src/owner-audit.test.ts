/**
 * The owner audit against real rounds on a real nats-server: honest owners pass every audit
 * with every codec (clipping in play), an owner that publishes another mean is named for each of
 * its shards and no one else is, and the codecs' error bounds the audit allows for hold.
 */
import { connect, type NatsConnection } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { createCodec } from './codecs/index.js';
import type { CodecSpec } from './codecs/codec.js';
import { GatherObserver } from './gather-observer.js';
import { decodeChunk } from './header.js';
import { ShardLayout } from './layout.js';
import { type AuditResult, decodeError, OwnerAuditor, type OwnerAuditOptions } from './owner-audit.js';
import { RoundExchange } from './round-exchange.js';
import { gradient, rng } from './testing/fixtures.js';
import { lyingOwner } from './testing/lying-owner.js';

const NATS_URL = process.env.GRADPOOL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const SIZE = 30_000;
const SEED = 7;

let jobSeq = 0;
const jobId = () => `oa${process.pid}${Date.now().toString(36)}${jobSeq++}`;

const open: { close(): Promise<void> | void }[] = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close();
});

/** A contributor that sends every reduce chunk twice, the second time with other values (owners keep the first). */
function twoFaced(nc: NatsConnection): NatsConnection {
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === 'publish') {
        return (subject: string, data?: Uint8Array) => {
          target.publish(subject, data);
          if (data && subject.includes('.r.')) {
            const copy = data.slice();
            const { header, payload } = decodeChunk(copy);
            new Float32Array(payload.buffer, payload.byteOffset, header.length).fill(1e6);
            target.publish(subject, copy);
          }
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * K members (one loud: 20× its gradient, so clipping is in play; or each gradient times `scales`)
 * and an auditor watching every shard.
 */
async function setup(codec: CodecSpec, opts: { liar?: { index: number; factor: number }; twoFaced?: number; scales?: number[]; samples?: number[]; audit?: Partial<OwnerAuditOptions> } = {}) {
  const job = jobId();
  const samples = opts.samples ?? [32, 48, 40];
  const members = samples.map((_, i) => `${job}-m${i}`);
  const exchanges: RoundExchange[] = [];
  for (const [i, selfId] of members.entries()) {
    const nc = await connect({ servers: NATS_URL, noEcho: true });
    open.push(nc);
    const conn = opts.liar?.index === i ? lyingOwner(nc, opts.liar.factor) : opts.twoFaced === i ? twoFaced(nc) : nc;
    const ex = new RoundExchange({ nc: conn, jobId: job, size: SIZE, roster: { epoch: 1, members, selfId }, codec, deadlineMs: 5000, chunkBytes: 16 * 1024, clipNormRatio: 3 });
    open.push(ex);
    exchanges.push(ex);
  }
  const nc = await connect({ servers: NATS_URL });
  open.push(nc);
  const results: AuditResult[] = [];
  const auditor = new OwnerAuditor({
    nc,
    jobId: job,
    codec,
    clipNormRatio: 3,
    rosterOf: (epoch) => (epoch === 1 ? { members, startRound: 0 } : undefined),
    pick: (_round, shardCount, count) => Array.from({ length: count }, (_, s) => s),
    shardsPerRound: 1000,
    // Every round audited however fast these in-process rounds go.
    cpuShare: 1,
    onResult: (r) => results.push(r),
    ...opts.audit,
  });
  open.push(auditor);
  const observer = new GatherObserver({ nc, jobId: job, onGather: (h, p) => auditor.observe(h, p) });
  open.push(observer);
  await nc.flush();
  const run = async (round: number) => {
    const res = await Promise.all(
      exchanges.map((ex, i) => {
        const g = gradient(SEED, i, round, SIZE);
        const scale = opts.scales?.[i] ?? (i === 2 ? 20 : 1);
        for (let k = 0; k < g.length; k++) g[k] *= scale;
        return ex.allReduce(round, g, samples[i]);
      }),
    );
    await observer.next(AbortSignal.timeout(10_000));
    return res;
  };
  return { members, exchanges, results, auditor, run };
}

describe('OwnerAuditor', () => {
  for (const codec of [{ name: 'fp32' }, { name: 'fp16' }, { name: 'bf16' }, { name: 'int8', blockSize: 64 }, { name: 'topk', fraction: 0.05 }] as CodecSpec[]) {
    it(`${codec.name}: honest owners pass every audit, with the loud member scaled down`, async () => {
      const { exchanges, results, auditor, run } = await setup(codec);
      for (let r = 0; r < 9; r++) await run(r);
      const shards = exchanges[0].geometry.shards;
      // Round r's gathers watch round r + 5: rounds 5–8 are audited, every shard.
      await expect.poll(() => results.length, { timeout: 10_000 }).toBe(4 * shards);
      expect(results.filter((r) => r.verdict !== 'ok').map((r) => `${r.round}/${r.shard}: ${r.reason}`)).toEqual([]);
      expect(new Set(results.map((r) => r.round))).toEqual(new Set([5, 6, 7, 8]));
      expect(auditor.stats).toEqual({ ok: 4 * shards, violations: 0, unverifiable: 0 });
      // Clipping was in play: the owners scaled the loud member's contributions.
      expect(exchanges.reduce((a, ex) => a + ex.stats.clipped, 0)).toBeGreaterThan(0);
    });
  }

  for (const codec of [{ name: 'fp32' }, { name: 'int8', blockSize: 64 }, { name: 'topk', fraction: 0.05 }] as CodecSpec[]) {
    it(`${codec.name}: an honest owner whose own norm sets the bound, far below the others', passes`, async () => {
      // Two members: the bound is 3 × the smaller norm, here the owner's own, which the auditor
      // does not see. Seen in CI: a joiner with 20 well-fit samples of 256 had a gradient hundreds
      // of times smaller than its peer's, and was banned for a lie it never told.
      const { exchanges, results, run } = await setup(codec, { samples: [20, 236], scales: [1e-3, 1] });
      for (let r = 0; r < 9; r++) await run(r);
      const shards = exchanges[0].geometry.shards;
      await expect.poll(() => results.length, { timeout: 10_000 }).toBe(4 * shards);
      expect(results.filter((r) => r.verdict !== 'ok').map((r) => `${r.round}/${r.shard}: ${r.reason}`)).toEqual([]);
      expect(exchanges[0].stats.clipped).toBeGreaterThan(0);
    });
  }

  it('so does one whose norm is the median of three', async () => {
    const { exchanges, results, run } = await setup({ name: 'fp32' }, { samples: [100, 10, 140], scales: [1e-4, 1e-2, 20] });
    for (let r = 0; r < 9; r++) await run(r);
    const shards = exchanges[0].geometry.shards;
    await expect.poll(() => results.length, { timeout: 10_000 }).toBe(4 * shards);
    expect(results.filter((r) => r.verdict !== 'ok').map((r) => `${r.round}/${r.shard}: ${r.reason}`)).toEqual([]);
  });

  it('an owner that publishes another mean is named for every shard it owns, and no one else is', async () => {
    const { members, exchanges, results, run } = await setup({ name: 'fp32' }, { liar: { index: 1, factor: 50 } });
    for (let r = 0; r < 7; r++) await run(r);
    const shards = exchanges[0].geometry.shards;
    await expect.poll(() => results.length, { timeout: 10_000 }).toBe(2 * shards);
    for (const r of results) {
      const owner = ShardLayout.owner(r.shard, 3);
      expect(r.owner).toBe(members[owner]);
      expect(r.verdict, r.reason).toBe(owner === 1 ? 'violation' : 'ok');
      if (owner === 1) {
        expect(r.reason).toMatch(/implied contribution has norm .* over the bound/);
        expect(r.residual!).toBeGreaterThan(1.5 * r.allowed!);
      }
    }
  });

  it('a lie within what a clipped contributor could do anyway passes (1 % on the mean)', async () => {
    const { results, run } = await setup({ name: 'fp32' }, { liar: { index: 1, factor: 1.01 } });
    for (let r = 0; r < 7; r++) await run(r);
    await expect.poll(() => results.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(results.filter((r) => r.verdict !== 'ok')).toEqual([]);
  });
  it('a contributor that shows the auditor other bytes than the owner summed gets no owner blamed', async () => {
    const { results, run } = await setup({ name: 'fp32' }, { twoFaced: 2 });
    for (let r = 0; r < 7; r++) await run(r);
    await expect.poll(() => results.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(results.filter((r) => r.verdict === 'violation')).toEqual([]);
    // Where it contributed (shards others own), the audit cannot judge; its own shards pass.
    for (const r of results) expect(r.verdict, `${r.shard}: ${r.reason}`).toBe(ShardLayout.owner(r.shard, 3) === 2 ? 'ok' : 'unverifiable');
  });
});

describe('OwnerAuditor, how many shards', () => {
  it("'auto' audits every shard of a small model, and as many as its byte budget allows of a larger one", async () => {
    const all = await setup({ name: 'fp32' }, { audit: { shardsPerRound: 'auto' } });
    for (let r = 0; r < 6; r++) await all.run(r);
    const shards = all.exchanges[0].geometry.shards;
    // K·P·4 = 3 · 30 000 · 4 bytes a round, well under the default 8 MiB: all 12 shards.
    await expect.poll(() => all.results.length, { timeout: 10_000 }).toBe(shards);
    // A budget of 3 shards' reduce messages (3 members × 2 500 elements × 4 bytes each).
    const some = await setup({ name: 'fp32' }, { audit: { shardsPerRound: 'auto', bytesPerRound: 3 * 30_000 } });
    for (let r = 0; r < 6; r++) await some.run(r);
    await expect.poll(() => some.results.length, { timeout: 10_000 }).toBe(3);
    expect([...all.results, ...some.results].every((r) => r.verdict === 'ok')).toBe(true);
  });
});

describe('decodeError', () => {
  it('bounds ‖decode(encode(x)) − x‖ for every dense codec', () => {
    const r = rng(3);
    for (const spec of [{ name: 'fp32' }, { name: 'fp16' }, { name: 'bf16' }, { name: 'int8', blockSize: 64 }, { name: 'int8', blockSize: 7 }] as CodecSpec[]) {
      const codec = createCodec(spec);
      for (const n of [1, 63, 1000, 4099]) {
        const x = new Float32Array(n);
        for (let i = 0; i < n; i++) x[i] = (r() - 0.5) * 10 ** (r() * 8 - 6);
        const payload = new Uint8Array(codec.payloadBytes(n));
        codec.encode(x, payload);
        const y = new Float32Array(n);
        codec.decode(payload, n, y, 0);
        let e2 = 0;
        for (let i = 0; i < n; i++) e2 += (y[i] - x[i]) ** 2;
        expect(Math.sqrt(e2), `${spec.name} n=${n}`).toBeLessThanOrEqual(decodeError(codec.id, codec.param, payload, n, y));
      }
    }
  });
});
