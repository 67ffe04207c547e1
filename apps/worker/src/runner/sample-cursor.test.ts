import { describe, expect, it } from 'vitest';
import { SampleCursor, toDealtPieces } from './sample-cursor.js';

const pieces = [
  { shardIndex: 4, start: 10, end: 20 },
  { shardIndex: 1, start: 0, end: 5 },
];

describe('SampleCursor', () => {
  it('hands out the next samples across pieces and moves only on commit', () => {
    const c = new SampleCursor();
    c.setPieces(0, pieces);
    expect(c.remaining()).toBe(15);
    const a = c.peek(12);
    expect(a).toEqual([
      { shard: 4, start: 10, end: 20 },
      { shard: 1, start: 0, end: 2 },
    ]);
    // Not a contributor: the same slices again.
    expect(c.peek(12)).toEqual(a);
    c.commit(a, 0);
    expect(c.remaining()).toBe(3);
    expect(c.peek(12)).toEqual([{ shard: 1, start: 2, end: 5 }]);
    c.commit(c.peek(12), 1);
    expect(c.peek(12)).toEqual([]);
    expect(c.remaining()).toBe(0);
  });

  it('keeps what it processed when a roster re-deals the same data epoch, and starts over in a new one', () => {
    const c = new SampleCursor();
    c.setPieces(3, pieces);
    c.commit(c.peek(4), 0);
    // The coordinator's view lags our last round: its pieces start where it last committed.
    c.setPieces(3, [{ shardIndex: 4, start: 12, end: 20 }, { shardIndex: 7, start: 0, end: 2 }]);
    expect(c.peek(100)).toEqual([
      { shard: 4, start: 14, end: 20 },
      { shard: 7, start: 0, end: 2 },
    ]);
    c.setPieces(4, [{ shardIndex: 4, start: 0, end: 3 }]);
    expect(c.epoch).toBe(4);
    expect(c.peek(100)).toEqual([{ shard: 4, start: 0, end: 3 }]);
    expect(c.shards()).toEqual([4]);
  });

  it('commits a held slice of a re-run round and never moves a shard backwards', () => {
    const c = new SampleCursor();
    c.setPieces(0, [{ shardIndex: 2, start: 0, end: 10 }]);
    const held = c.peek(5);
    c.setPieces(0, [{ shardIndex: 2, start: 0, end: 10 }]);
    c.commit(held, 0);
    c.commit([{ shard: 2, start: 0, end: 3 }], 1);
    expect(c.peek(100)).toEqual([{ shard: 2, start: 5, end: 10 }]);
    expect(toDealtPieces(held)).toEqual([{ shardIndex: 2, start: 0, end: 5 }]);
  });

  it('rolls back what re-run rounds processed', () => {
    const c = new SampleCursor();
    c.setPieces(0, [{ shardIndex: 1, start: 0, end: 30 }]);
    for (let r = 0; r < 3; r++) c.commit(c.peek(10), r);
    expect(c.remaining()).toBe(0);
    c.rollback(1);
    expect(c.peek(100)).toEqual([{ shard: 1, start: 10, end: 30 }]);
    c.rollback(5);
    expect(c.remaining()).toBe(20);
  });

  it('rejects malformed pieces', () => {
    expect(() => new SampleCursor().setPieces(0, [{ shardIndex: 0, start: 5, end: 2 }])).toThrow(RangeError);
  });
});
