/**
 * Which samples each member of a job computes on, round by round (docs/jobs-protocol.md, "Data").
 *
 * A data epoch orders the train split's samples: the shards in a seeded permutation that differs
 * between epochs, each shard's samples in a seeded order of their own. A sample is then a
 * *position* in `[0, total)` of that order. The job's **data state** is the data epoch and the
 * positions not processed yet (disjoint ascending ranges). It is part of the model state: the
 * keeper commits it with each round, checkpoints carry it, replayed updates carry it, and every
 * member holds the same one after every round, because it changes only through the gathered
 * contributors of a round, which every member and the keeper receive identically.
 *
 * A round's plan is a pure function of the data state and the roster's shares: the unprocessed
 * positions, in order, are cut into one contiguous *lane* per member in proportion to its share,
 * and each member takes the first `share` positions of its lane. Nobody deals or predicts
 * anything ahead of time, so:
 * - a member left out of a round (late, crashed) leaves its positions unprocessed, and the next
 *   round's plan hands them out again (to it, or to whoever's lane they fall in);
 * - a roster change needs no re-deal: the next round is planned with the new shares;
 * - when everyone contributes, lanes stay where they were (member i's lane start moves by exactly
 *   what it took), so a member keeps reading the same shards round after round;
 * - all members run out together at the end of a data epoch, whose last round is shorter.
 * In every data epoch every sample is processed exactly once, whatever the churn (property test).
 */
import { createRng, permutation } from './rng.js';

/** One shard of a split: its index and sample count. */
export interface DealShard {
  index: number;
  samples: number;
}

/** Samples `[start, end)` of shard `shard` (positions in the shard's epoch order). */
export interface Piece {
  shard: number;
  start: number;
  end: number;
}

/** A data epoch and its unprocessed positions: disjoint, ascending, non-empty `[start, end)` ranges. */
export interface DataState {
  epoch: number;
  todo: [number, number][];
}

/** The samples of one round: per member (roster order), its ranges of epoch positions. */
export interface RoundPlan {
  epoch: number;
  ranges: [number, number][][];
  /** Samples per member (Σ of its ranges). */
  counts: number[];
}

/** The data state at the start of data epoch `epoch`: every position to do. */
export function freshDataState(total: number, epoch = 0): DataState {
  if (!(Number.isInteger(total) && total > 0)) throw new RangeError(`a data epoch needs a positive number of samples, got ${total}`);
  return { epoch, todo: [[0, total]] };
}

/** Samples of the data epoch not processed yet. */
export function samplesLeft(state: DataState): number {
  let n = 0;
  for (const [a, b] of state.todo) n += b - a;
  return n;
}

/**
 * The round's plan for members with `shares` samples each (Σ = the global batch): lanes of the
 * unprocessed positions ∝ shares; each member takes up to its share from the start of its lane.
 * When fewer than the global batch are left, every member takes its whole lane (a short round);
 * a member whose lane is empty takes nothing.
 */
export function planRound(state: DataState, shares: readonly number[]): RoundPlan {
  const total = shares.reduce((a, b) => a + b, 0);
  if (!shares.length || shares.some((s) => !(Number.isInteger(s) && s > 0))) throw new RangeError(`shares must be positive integers, got [${shares.join(', ')}]`);
  const left = samplesLeft(state);
  const ranges: [number, number][][] = [];
  const counts: number[] = [];
  let before = 0;
  for (const share of shares) {
    // Lane of ranks [⌊U·S/B⌋, ⌊U·(S+n)/B⌋): exact integer arithmetic (U·B stays far below 2^53).
    const laneStart = Math.floor((left * before) / total);
    const laneEnd = Math.floor((left * (before + share)) / total);
    before += share;
    const take = Math.min(share, laneEnd - laneStart);
    ranges.push(ranksToPositions(state.todo, laneStart, laneStart + take));
    counts.push(take);
  }
  return { epoch: state.epoch, ranges, counts };
}

/** The positions of ranks `[from, to)` of the unprocessed positions. */
function ranksToPositions(todo: readonly [number, number][], from: number, to: number): [number, number][] {
  const out: [number, number][] = [];
  if (to <= from) return out;
  let rank = 0;
  for (const [a, b] of todo) {
    const len = b - a;
    const lo = Math.max(from, rank);
    const hi = Math.min(to, rank + len);
    if (lo < hi) out.push([a + (lo - rank), a + (hi - rank)]);
    rank += len;
    if (rank >= to) break;
  }
  return out;
}

/**
 * The data state after a round: the ranges of the members that contributed are processed. When
 * nothing is left, the next data epoch starts with all `total` positions to do.
 */
export function advanceDataState(state: DataState, plan: RoundPlan, contributed: readonly boolean[], total: number): DataState {
  if (plan.epoch !== state.epoch) throw new RangeError(`the plan is for data epoch ${plan.epoch}, the state is in ${state.epoch}`);
  const done: [number, number][] = [];
  plan.ranges.forEach((r, i) => {
    if (contributed[i]) done.push(...r);
  });
  done.sort((x, y) => x[0] - y[0]);
  const todo: [number, number][] = [];
  let j = 0;
  for (const [a, b] of state.todo) {
    let at = a;
    while (j < done.length && done[j][1] <= at) j++;
    for (let k = j; k < done.length && done[k][0] < b; k++) {
      const [da, db] = done[k];
      if (da > at) todo.push([at, Math.min(da, b)]);
      at = Math.max(at, db);
      if (at >= b) break;
    }
    if (at < b) todo.push([at, b]);
  }
  return todo.length ? { epoch: state.epoch, todo } : freshDataState(total, state.epoch + 1);
}

/** The data state as a short string (checkpoints, update headers, Postgres). */
export function encodeDataState(state: DataState): string {
  return JSON.stringify({ e: state.epoch, t: state.todo });
}

/** Parses and checks `encodeDataState`'s output; `total` bounds the positions. */
export function decodeDataState(text: string, total: number): DataState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RangeError('the data state is not JSON');
  }
  const o = v as { e?: unknown; t?: unknown };
  if (!o || typeof o !== 'object' || !Number.isInteger(o.e) || (o.e as number) < 0 || !Array.isArray(o.t) || o.t.length === 0) {
    throw new RangeError('the data state needs an epoch ≥ 0 and a non-empty list of ranges');
  }
  let prev = -1;
  for (const r of o.t as unknown[]) {
    if (!Array.isArray(r) || r.length !== 2 || !Number.isInteger(r[0]) || !Number.isInteger(r[1]) || r[0] <= prev || r[1] <= r[0] || r[1] > total) {
      throw new RangeError(`bad range ${JSON.stringify(r)} in the data state (positions 0..${total}, ascending, disjoint)`);
    }
    prev = r[1];
  }
  return { epoch: o.e as number, todo: o.t as [number, number][] };
}

/** The epoch's shard order: a seeded permutation that differs between epochs. */
export function epochShardOrder(shards: readonly DealShard[], seed: number | string, epoch: number): DealShard[] {
  const sorted = [...shards].sort((a, b) => a.index - b.index);
  const p = permutation(sorted.length, createRng(seed, 'deal', epoch));
  return Array.from(p, (i) => sorted[i]);
}

/** Epoch positions → shard pieces for one data epoch. */
export class EpochOrder {
  readonly total: number;
  private readonly order: DealShard[];
  /** Epoch position of each ordered shard's first sample. */
  private readonly starts: number[];

  constructor(
    shards: readonly DealShard[],
    seed: number | string,
    readonly epoch: number,
  ) {
    this.order = epochShardOrder(shards, seed, epoch);
    this.starts = [];
    let at = 0;
    for (const s of this.order) {
      this.starts.push(at);
      at += s.samples;
    }
    this.total = at;
  }

  /** The pieces (shard, positions in its epoch order) of epoch positions `ranges`, in order. */
  pieces(ranges: readonly [number, number][]): Piece[] {
    const out: Piece[] = [];
    for (const [a, b] of ranges) {
      if (a < 0 || b > this.total || b < a) throw new RangeError(`positions [${a}, ${b}) outside 0..${this.total}`);
      // Binary search for the shard holding position a.
      let lo = 0;
      let hi = this.order.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (this.starts[mid] <= a) lo = mid;
        else hi = mid - 1;
      }
      for (let k = lo, at = a; at < b; k++) {
        const s = this.order[k];
        const end = Math.min(b, this.starts[k] + s.samples);
        if (end > at) out.push({ shard: s.index, start: at - this.starts[k], end: end - this.starts[k] });
        at = end;
      }
    }
    return out;
  }

  /** Samples processed so far per shard index (shards with none are left out). */
  processedPerShard(state: DataState): Map<number, number> {
    const out = new Map<number, number>(this.order.map((s) => [s.index, s.samples]));
    for (const p of this.pieces(state.todo)) out.set(p.shard, out.get(p.shard)! - (p.end - p.start));
    for (const [k, v] of out) if (v === 0) out.delete(k);
    return out;
  }
}

/**
 * Position within the shard of the sample at epoch-order position `i`: a seeded permutation
 * per (seed, epoch, shard), so the sample order inside a shard also changes between epochs.
 */
export function withinShardOrder(seed: number | string, epoch: number, shard: number, count: number): Int32Array {
  return permutation(count, createRng(seed, 'within', epoch, shard));
}

/** A decoded shard's arrays (see `decodeShard`). */
export interface ShardArrays {
  dim: number;
  count: number;
  features: Float32Array;
  labels: Int32Array;
}

/**
 * Copies the samples of `slices` into one batch. With `order`, positions are mapped through
 * `withinShardOrder(order.seed, order.epoch, shard, count)`.
 */
export function gatherBatch(
  slices: readonly Piece[],
  shardOf: (index: number) => ShardArrays,
  order?: { seed: number | string; epoch: number },
): { features: Float32Array; labels: Int32Array; count: number } {
  const count = slices.reduce((a, s) => a + s.end - s.start, 0);
  if (count === 0) return { features: new Float32Array(0), labels: new Int32Array(0), count };
  const dim = shardOf(slices[0].shard).dim;
  const features = new Float32Array(count * dim);
  const labels = new Int32Array(count);
  let at = 0;
  for (const s of slices) {
    const sh = shardOf(s.shard);
    if (sh.dim !== dim) throw new RangeError(`shard ${s.shard} has ${sh.dim} features per sample, expected ${dim}`);
    if (s.end > sh.count) throw new RangeError(`slice ${s.shard}[${s.start}, ${s.end}) exceeds its ${sh.count} samples`);
    const perm = order ? withinShardOrder(order.seed, order.epoch, s.shard, sh.count) : null;
    for (let i = s.start; i < s.end; i++) {
      const k = perm ? perm[i] : i;
      features.set(sh.features.subarray(k * dim, (k + 1) * dim), at * dim);
      labels[at] = sh.labels[k];
      at++;
    }
  }
  return { features, labels, count };
}
