import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  advanceDataState,
  decodeDataState,
  encodeDataState,
  epochShardOrder,
  EpochOrder,
  freshDataState,
  gatherBatch,
  planRound,
  samplesLeft,
  withinShardOrder,
  type DataState,
  type DealShard,
} from './sample-plan.js';

const sharesArb = fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 6 });
/** One round: the roster's shares (a roster change is a different vector) and who made it into the mean. */
const roundArb = fc.record({ shares: sharesArb, missing: fc.array(fc.boolean(), { maxLength: 6 }) });

describe('planRound / advanceDataState', () => {
  it('processes every sample exactly once per data epoch, whatever the rosters and the members left out', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.array(roundArb, { minLength: 1, maxLength: 80 }), (total, rounds) => {
        let state = freshDataState(total);
        let counts = new Uint8Array(total);
        for (const { shares, missing } of rounds) {
          const plan = planRound(state, shares);
          const left = samplesLeft(state);
          const batch = shares.reduce((a, b) => a + b, 0);
          // Each member takes its share while enough are left; a short round takes all that is left.
          if (left >= batch) expect(plan.counts).toEqual(shares);
          else expect(plan.counts.reduce((a, b) => a + b, 0)).toBe(left);
          // Plans hand out unprocessed positions only, each once.
          const seen = new Set<number>();
          plan.ranges.forEach((rs, i) => {
            expect(rs.reduce((a, [x, y]) => a + y - x, 0)).toBe(plan.counts[i]);
            for (const [x, y] of rs) {
              for (let p = x; p < y; p++) {
                if (seen.has(p) || counts[p] !== 0) throw new Error(`position ${p} handed out twice`);
                seen.add(p);
              }
            }
          });
          // Everyone in the roster but those missing contributed (at least one always does).
          const contributed = shares.map((_, i) => !missing[i] || i === 0);
          plan.ranges.forEach((rs, i) => {
            if (contributed[i]) for (const [x, y] of rs) for (let p = x; p < y; p++) counts[p]++;
          });
          const next = advanceDataState(state, plan, contributed, total);
          if (next.epoch !== state.epoch) {
            expect(counts.every((c) => c === 1)).toBe(true);
            counts = new Uint8Array(total);
          } else {
            expect(samplesLeft(next)).toBe(counts.reduce((a, c) => a + (c === 0 ? 1 : 0), 0));
          }
          state = decodeDataState(encodeDataState(next), total);
        }
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it('keeps each member in its lane while everyone contributes', () => {
    fc.assert(
      fc.property(sharesArb, fc.integer({ min: 3, max: 30 }), (shares, rounds) => {
        const batch = shares.reduce((a, b) => a + b, 0);
        const total = batch * rounds + 7;
        let state = freshDataState(total);
        let prev = planRound(state, shares);
        for (let r = 1; r < rounds; r++) {
          state = advanceDataState(state, prev, shares.map(() => true), total);
          const plan = planRound(state, shares);
          // Member i continues exactly where it stopped: it keeps reading the same shards.
          plan.ranges.forEach((rs, i) => expect(rs[0][0]).toBe(prev.ranges[i].at(-1)![1]));
          prev = plan;
        }
      }),
      { seed: 5 },
    );
  });

  it('ends a data epoch with one short round and starts the next from scratch', () => {
    let state: DataState = freshDataState(10);
    const plans = [];
    while (state.epoch === 0) {
      const plan = planRound(state, [2, 2]);
      plans.push(plan.counts);
      state = advanceDataState(state, plan, [true, true], 10);
    }
    expect(plans).toEqual([[2, 2], [2, 2], [1, 1]]);
    expect(state).toEqual({ epoch: 1, todo: [[0, 10]] });
    // A member left out keeps its samples for the next round.
    const p = planRound(state, [3, 3]);
    const s2 = advanceDataState(state, p, [true, false], 10);
    expect(samplesLeft(s2)).toBe(7);
    expect(s2.todo).toEqual([[3, 10]]);
    // Fewer samples left than members: some take nothing.
    expect(planRound({ epoch: 0, todo: [[4, 5]] }, [1, 1, 1]).counts).toEqual([0, 0, 1]);
  });

  it('refuses bad shares and malformed states with a message', () => {
    expect(() => planRound(freshDataState(5), [])).toThrow(/positive integers/);
    expect(() => planRound(freshDataState(5), [1, 0])).toThrow(/positive integers/);
    expect(() => freshDataState(0)).toThrow(/positive number/);
    expect(() => decodeDataState('nope', 5)).toThrow(/not JSON/);
    expect(() => decodeDataState('{"e":0,"t":[]}', 5)).toThrow(/non-empty/);
    expect(() => decodeDataState('{"e":0,"t":[[0,6]]}', 5)).toThrow(/bad range/);
    expect(() => decodeDataState('{"e":0,"t":[[2,3],[1,4]]}', 5)).toThrow(/bad range/);
  });
});

describe('EpochOrder', () => {
  const shardsArb = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }).map((c) => c.map((samples, index) => ({ index, samples })));

  it('maps the epoch positions onto every sample of every shard exactly once', () => {
    fc.assert(
      fc.property(shardsArb, fc.integer(), fc.nat(20), fc.array(fc.nat(), { maxLength: 8 }), (shards, seed, epoch, cuts) => {
        const order = new EpochOrder(shards, seed, epoch);
        const total = shards.reduce((a, s) => a + s.samples, 0);
        expect(order.total).toBe(total);
        const points = [...new Set([0, total, ...cuts.map((c) => c % (total + 1))])].sort((a, b) => a - b);
        const ranges = points.slice(1).map((b, i) => [points[i], b] as [number, number]);
        const seen = shards.map((s) => new Uint8Array(s.samples));
        for (const p of order.pieces(ranges)) for (let i = p.start; i < p.end; i++) seen[p.shard][i]++;
        for (const s of seen) expect(s.every((c) => c === 1)).toBe(true);
        expect(order.processedPerShard(freshDataState(total, epoch)).size).toBe(0);
        expect([...order.processedPerShard({ epoch, todo: [[0, 1]] }).values()].reduce((a, b) => a + b, 0)).toBe(total - 1);
      }),
      { seed: 9 },
    );
  });

  it('orders shards differently in different epochs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 12, max: 200 }), fc.integer(), fc.nat(100), (n, seed, epoch) => {
        const shards = Array.from({ length: n }, (_, index) => ({ index, samples: 10 }));
        const a = epochShardOrder(shards, seed, epoch).map((s) => s.index);
        const b = epochShardOrder(shards, seed, epoch + 1).map((s) => s.index);
        expect(b).not.toEqual(a);
        expect([...a].sort((x, y) => x - y)).toEqual(shards.map((s) => s.index));
        // The same seed gives the same order.
        expect(epochShardOrder([...shards].reverse(), seed, epoch).map((s) => s.index)).toEqual(a);
      }),
      { seed: 3 },
    );
  });

  /**
   * Every member's samples, round by round, as `shard:sample` (the sample's index in its shard):
   * planRound's lanes mapped through the epoch's shard order and each shard's sample order.
   */
  function deal(shards: readonly DealShard[], seed: number, rounds: readonly { shares: number[]; missing: boolean[] }[]): string[][][] {
    const total = shards.reduce((a, s) => a + s.samples, 0);
    const sizes = new Map(shards.map((s) => [s.index, s.samples]));
    let state = freshDataState(total);
    const out: string[][][] = [];
    for (const { shares, missing } of rounds) {
      const plan = planRound(state, shares);
      const order = new EpochOrder(shards, seed, plan.epoch);
      out.push(
        plan.ranges.map((rs) =>
          order.pieces(rs).flatMap((p) => {
            const perm = withinShardOrder(seed, plan.epoch, p.shard, sizes.get(p.shard)!);
            return Array.from({ length: p.end - p.start }, (_, k) => `${p.shard}:${perm[p.start + k]}`);
          }),
        ),
      );
      state = advanceDataState(state, plan, shares.map((_, i) => !missing[i] || i === 0), total);
    }
    return out;
  }

  it('deals the same samples to the same members for the same seed and rosters, and others for another seed', () => {
    const shardsArb = fc.array(fc.integer({ min: 5, max: 40 }), { minLength: 4, maxLength: 16 }).map((c) => c.map((samples, index) => ({ index, samples })));
    fc.assert(
      fc.property(shardsArb, fc.integer(), fc.array(roundArb, { minLength: 1, maxLength: 40 }), (shards, seed, rounds) => {
        const a = deal(shards, seed, rounds);
        // Recomputed from scratch (shards listed in another order, as another process would): identical.
        expect(deal([...shards].reverse(), seed, rounds)).toEqual(a);
        // Another seed: the same lanes, other samples in them (checked once enough are dealt to tell).
        const b = deal(shards, seed + 1, rounds);
        expect(b.map((r) => r.map((m) => m.length))).toEqual(a.map((r) => r.map((m) => m.length)));
        if (a.flat(2).length >= 20) expect(b).not.toEqual(a);
      }),
      { numRuns: 200, seed: 11 },
    );
  });
});

describe('batches from planned pieces', () => {
  const shard = (index: number, count: number) => ({
    dim: 2,
    count,
    features: Float32Array.from({ length: count * 2 }, (_, i) => index * 1000 + Math.floor(i / 2)),
    labels: Int32Array.from({ length: count }, (_, i) => index * 1000 + i),
  });
  const shards = new Map([
    [0, shard(0, 3)],
    [1, shard(1, 4)],
  ]);

  it('copies the samples of pieces across shard boundaries', () => {
    const b = gatherBatch(
      [
        { shard: 1, start: 0, end: 4 },
        { shard: 0, start: 0, end: 1 },
      ],
      (i) => shards.get(i)!,
    );
    expect(Array.from(b.labels)).toEqual([1000, 1001, 1002, 1003, 0]);
    expect(Array.from(b.features.subarray(0, 4))).toEqual([1000, 1000, 1001, 1001]);
  });

  it('permutes samples within a shard per epoch when asked', () => {
    const b = gatherBatch([{ shard: 1, start: 0, end: 4 }], (i) => shards.get(i)!, { seed: 1, epoch: 2 });
    const perm = withinShardOrder(1, 2, 1, 4);
    expect(Array.from(b.labels)).toEqual(Array.from(perm, (k) => 1000 + k));
    expect([...b.labels].sort()).toEqual([1000, 1001, 1002, 1003]);
  });
});
