import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { advance, Deal, deal, DealMember, DealShard, epochShardOrder, fullyProcessed, gatherBatch, nextSlices, remainingSamples, withinShardOrder } from './deal.js';

const shardsArb = fc
  .array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 })
  .map((counts) => counts.map((samples, index) => ({ index, samples })));
const weightArb = fc.double({ min: 0.1, max: 10, noNaN: true });
const eventArb = fc.oneof(
  fc.record({ kind: fc.constant('process' as const), who: fc.nat(), amount: fc.integer({ min: 1, max: 60 }) }),
  fc.record({ kind: fc.constant('join' as const), weight: weightArb }),
  fc.record({ kind: fc.constant('leave' as const), who: fc.nat() }),
  fc.record({ kind: fc.constant('crash' as const), who: fc.nat(), amount: fc.integer({ min: 1, max: 60 }) }),
);

/** Checks that a deal hands out exactly the unprocessed samples, each once. */
function checkCovers(shards: DealShard[], d: Deal, progress: ReadonlyMap<number, number>): void {
  const seen = new Map<number, number[]>();
  for (const pieces of Object.values(d)) {
    for (const p of pieces) {
      expect(seen.has(p.shard)).toBe(false); // one holder per shard
      seen.set(p.shard, [p.start, p.end]);
    }
  }
  for (const s of shards) {
    const done = progress.get(s.index) ?? 0;
    if (done < s.samples) expect(seen.get(s.index)).toEqual([done, s.samples]);
    else expect(seen.has(s.index)).toBe(false);
  }
}

describe('deal', () => {
  it('processes every sample exactly once per epoch across joins, leaves and crashes', () => {
    fc.assert(
      fc.property(
        shardsArb,
        fc.integer(),
        fc.nat({ max: 20 }),
        fc.array(weightArb, { minLength: 1, maxLength: 5 }),
        fc.array(eventArb, { maxLength: 25 }),
        (shards, seed, epoch, weights, events) => {
          let nextId = 0;
          let members: DealMember[] = weights.map((weight) => ({ id: `m${nextId++}`, weight }));
          let progress = new Map<number, number>();
          const processed = shards.map((s) => new Uint8Array(s.samples));
          let d = deal({ shards, seed, epoch, members });
          checkCovers(shards, d, progress);
          const commit = (id: string, n: number) => {
            const slices = nextSlices(d[id], progress, n);
            for (const sl of slices) for (let i = sl.start; i < sl.end; i++) processed[sl.shard][i]++;
            progress = advance(progress, slices);
          };
          for (const e of events) {
            if (e.kind === 'process') commit(members[e.who % members.length].id, e.amount);
            else if (e.kind === 'join') members = [...members, { id: `m${nextId++}`, weight: e.weight }];
            else if (members.length > 1) {
              const gone = members[e.who % members.length];
              // A crash loses the member's uncommitted work: it computed slices but never committed them.
              if (e.kind === 'crash') nextSlices(d[gone.id], progress, e.amount);
              members = members.filter((m) => m !== gone);
            } else continue;
            if (e.kind !== 'process') {
              d = deal({ shards, seed, epoch, members, progress, previous: d });
              checkCovers(shards, d, progress);
            }
          }
          for (const m of members) commit(m.id, Number.MAX_SAFE_INTEGER);
          expect(remainingSamples(shards, progress)).toBe(0);
          expect(fullyProcessed(shards, progress)).toEqual(shards.map((s) => s.index));
          for (const p of processed) expect(p.every((c) => c === 1)).toBe(true);
        },
      ),
      { numRuns: 300, seed: 42 },
    );
  });

  it('is a pure function of its inputs (same seed, same deal; roster order does not matter)', () => {
    fc.assert(
      fc.property(shardsArb, fc.integer(), fc.nat(), fc.array(weightArb, { minLength: 1, maxLength: 6 }), (shards, seed, epoch, weights) => {
        const members = weights.map((weight, i) => ({ id: `w${i}`, weight }));
        const a = deal({ shards, seed, epoch, members });
        const b = deal({ shards: [...shards].reverse(), seed, epoch, members: [...members].reverse() });
        expect(b).toEqual(a);
      }),
      { seed: 7 },
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
      }),
      { seed: 3 },
    );
  });

  it('deals in proportion to speed', () => {
    fc.assert(
      fc.property(shardsArb, fc.integer(), fc.array(weightArb, { minLength: 1, maxLength: 6 }), (shards, seed, weights) => {
        const members = weights.map((weight, i) => ({ id: `w${i}`, weight }));
        const d = deal({ shards, seed, epoch: 0, members });
        const total = shards.reduce((a, s) => a + s.samples, 0);
        const W = weights.reduce((a, b) => a + b, 0);
        const maxPiece = Math.max(...shards.map((s) => s.samples));
        for (const m of members) {
          const load = d[m.id].reduce((a, p) => a + p.end - p.start, 0);
          // List scheduling on machines of speed w: finish ≤ total/W + |R|·maxPiece/W.
          expect(load / m.weight).toBeLessThanOrEqual(total / W + (members.length * maxPiece) / W + 1e-9);
        }
      }),
      { seed: 11 },
    );
  });

  it('refuses bad weights and empty rosters with work left', () => {
    const shards = [{ index: 0, samples: 3 }];
    expect(() => deal({ shards, seed: 1, epoch: 0, members: [{ id: 'a', weight: 0 }] })).toThrow(/weights must be/);
    expect(() => deal({ shards, seed: 1, epoch: 0, members: [] })).toThrow(/empty roster/);
    expect(deal({ shards, seed: 1, epoch: 0, members: [], progress: new Map([[0, 3]]) })).toEqual({});
  });
});

describe('batches from dealt shards', () => {
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

  it('takes the next n samples across shard boundaries and commits them', () => {
    const pieces = [
      { shard: 1, start: 0, end: 4 },
      { shard: 0, start: 0, end: 3 },
    ];
    let progress = new Map<number, number>();
    const s1 = nextSlices(pieces, progress, 5);
    expect(s1).toEqual([
      { shard: 1, start: 0, end: 4 },
      { shard: 0, start: 0, end: 1 },
    ]);
    const b = gatherBatch(s1, (i) => shards.get(i)!);
    expect(Array.from(b.labels)).toEqual([1000, 1001, 1002, 1003, 0]);
    expect(Array.from(b.features.subarray(0, 4))).toEqual([1000, 1000, 1001, 1001]);
    progress = advance(progress, s1);
    expect(fullyProcessed([{ index: 0, samples: 3 }, { index: 1, samples: 4 }], progress)).toEqual([1]);
    expect(nextSlices(pieces, progress, 5)).toEqual([{ shard: 0, start: 1, end: 3 }]);
    expect(() => advance(progress, [{ shard: 0, start: 2, end: 3 }])).toThrow(/does not continue/);
  });

  it('permutes samples within a shard per epoch when asked', () => {
    const b = gatherBatch([{ shard: 1, start: 0, end: 4 }], (i) => shards.get(i)!, { seed: 1, epoch: 2 });
    const perm = withinShardOrder(1, 2, 1, 4);
    expect(Array.from(b.labels)).toEqual(Array.from(perm, (k) => 1000 + k));
    expect([...b.labels].sort()).toEqual([1000, 1001, 1002, 1003]);
  });
});
