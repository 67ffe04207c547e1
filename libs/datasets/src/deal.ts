/**
 * Dealing an epoch's shards to a job's roster, and walking the dealt samples round by round.
 *
 * Everything here is pure and seeded. Progress is kept per shard as the number of samples
 * processed (committed) so far, always a prefix of the shard's (per-epoch) sample order:
 * a shard's unprocessed rest is held by exactly one member at a time and processed in order.
 * Re-dealing after a roster change hands out exactly the unprocessed rest, so in every epoch
 * every sample is processed exactly once however members join, leave or crash, provided
 * progress only counts committed rounds.
 */
import { createRng, permutation } from './rng.js';

/** One shard of a split: its index and sample count. */
export interface DealShard {
  index: number;
  samples: number;
}

/** A roster member with its speed weight (e.g. measured samples/s); weights must be > 0. */
export interface DealMember {
  id: string;
  weight: number;
}

/** Samples `[start, end)` of shard `shard` (positions in the shard's epoch order). */
export interface Piece {
  shard: number;
  start: number;
  end: number;
}

/** Pieces per member id, each list in the member's processing order. */
export type Deal = Record<string, Piece[]>;

/** Samples processed so far per shard index (absent = 0). */
export type Progress = ReadonlyMap<number, number>;

export interface DealInput {
  shards: readonly DealShard[];
  seed: number | string;
  epoch: number;
  members: readonly DealMember[];
  /** What has been processed in this epoch so far (default nothing). */
  progress?: Progress;
  /** The deal being replaced: members that stay keep their pieces up to their fair share. */
  previous?: Deal;
}

/** The epoch's shard order: a seeded permutation that differs between epochs. */
export function epochShardOrder(shards: readonly DealShard[], seed: number | string, epoch: number): DealShard[] {
  const sorted = [...shards].sort((a, b) => a.index - b.index);
  const p = permutation(sorted.length, createRng(seed, 'deal', epoch));
  return Array.from(p, (i) => sorted[i]);
}

function pieceSize(p: Piece): number {
  return p.end - p.start;
}

/**
 * Deals the unprocessed samples of the epoch to `members`, in proportion to their weights
 * (greedy earliest-finish: each piece goes to the member whose load/weight after taking it is
 * least). With `previous`, members keep their previous pieces while under their fair share,
 * so a roster change moves as few shards (and cache misses) as it can.
 */
export function deal(input: DealInput): Deal {
  const { shards, seed, epoch, progress = new Map(), previous } = input;
  const members = [...input.members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const m of members) {
    if (!(m.weight > 0 && Number.isFinite(m.weight))) throw new RangeError(`member ${m.id} has weight ${m.weight}; weights must be finite and > 0`);
  }
  if (new Set(members.map((m) => m.id)).size !== members.length) throw new RangeError('duplicate member ids');
  const order = epochShardOrder(shards, seed, epoch);
  const rank = new Map(order.map((s, i) => [s.index, i]));
  const pieces: Piece[] = [];
  for (const s of order) {
    const done = progress.get(s.index) ?? 0;
    if (done < 0 || done > s.samples) throw new RangeError(`progress ${done} of shard ${s.index} is outside 0..${s.samples}`);
    if (done < s.samples) pieces.push({ shard: s.index, start: done, end: s.samples });
  }
  const out: Deal = Object.fromEntries(members.map((m) => [m.id, [] as Piece[]]));
  if (pieces.length === 0) return out;
  if (members.length === 0) throw new RangeError('cannot deal unprocessed samples to an empty roster');
  const total = pieces.reduce((a, p) => a + pieceSize(p), 0);
  const wsum = members.reduce((a, m) => a + m.weight, 0);
  const load = new Map(members.map((m) => [m.id, 0]));
  const taken = new Set<number>();
  if (previous) {
    const holder = new Map<number, string>();
    for (const [id, ps] of Object.entries(previous)) for (const p of ps) holder.set(p.shard, id);
    for (const p of pieces) {
      const id = holder.get(p.shard);
      if (id === undefined || !load.has(id)) continue;
      const share = (total * members.find((m) => m.id === id)!.weight) / wsum;
      if (load.get(id)! + pieceSize(p) <= share + 1e-9 || load.get(id) === 0) {
        out[id].push(p);
        load.set(id, load.get(id)! + pieceSize(p));
        taken.add(p.shard);
      }
    }
  }
  for (const p of pieces) {
    if (taken.has(p.shard)) continue;
    let best = members[0];
    let bestFinish = Infinity;
    for (const m of members) {
      const finish = (load.get(m.id)! + pieceSize(p)) / m.weight;
      if (finish < bestFinish - 1e-12) {
        best = m;
        bestFinish = finish;
      }
    }
    out[best.id].push(p);
    load.set(best.id, load.get(best.id)! + pieceSize(p));
  }
  for (const id of Object.keys(out)) out[id].sort((a, b) => rank.get(a.shard)! - rank.get(b.shard)!);
  return out;
}

/**
 * The next up to `n` samples of a member's dealt pieces that are not processed yet, as
 * slices in processing order. Does not change `progress`; commit with `advance`.
 */
export function nextSlices(pieces: readonly Piece[], progress: Progress, n: number): Piece[] {
  const out: Piece[] = [];
  let want = n;
  for (const p of pieces) {
    if (want <= 0) break;
    const from = Math.max(p.start, progress.get(p.shard) ?? 0);
    if (from >= p.end) continue;
    const to = Math.min(p.end, from + want);
    out.push({ shard: p.shard, start: from, end: to });
    want -= to - from;
  }
  return out;
}

/** Progress after committing `slices`; each must start exactly where its shard's progress is. */
export function advance(progress: Progress, slices: readonly Piece[]): Map<number, number> {
  const next = new Map(progress);
  for (const s of slices) {
    const at = next.get(s.shard) ?? 0;
    if (s.start !== at) throw new RangeError(`slice ${s.shard}[${s.start}, ${s.end}) does not continue shard ${s.shard}'s progress ${at}`);
    next.set(s.shard, s.end);
  }
  return next;
}

/** Indexes of the shards whose every sample is processed. */
export function fullyProcessed(shards: readonly DealShard[], progress: Progress): number[] {
  return shards.filter((s) => (progress.get(s.index) ?? 0) >= s.samples).map((s) => s.index);
}

/** Samples of the epoch not processed yet. */
export function remainingSamples(shards: readonly DealShard[], progress: Progress): number {
  return shards.reduce((a, s) => a + s.samples - Math.min(s.samples, progress.get(s.index) ?? 0), 0);
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
