/**
 * Which samples a member computes on next. The roster deals it pieces (sample ranges of the
 * train split's shards, positions in each shard's epoch order); the cursor hands out the next
 * `n` unprocessed samples as slices, and moves past them only once the member's gradient over
 * them went into a round's mean (it was among the contributors). A member left out keeps its
 * slices for the next round, so no sample is skipped.
 */
import { nextSlices, type Piece } from '@gradpool/datasets';
import type { DealtPiece__Output } from '@gradpool/protocol';

export class SampleCursor {
  private dataEpoch = -1;
  private pieces: Piece[] = [];
  /** Per shard: samples before this position are processed (by us) in `dataEpoch`. */
  private progress = new Map<number, number>();
  /** What each round committed in `dataEpoch`, to undo rounds the job re-runs. */
  private commits: { round: number; slices: Piece[] }[] = [];

  /** The data epoch the pieces belong to (−1 before the first roster). */
  get epoch(): number {
    return this.dataEpoch;
  }

  /**
   * Takes a roster's pieces. Within the same data epoch what this member already processed
   * stays processed (the coordinator's view may lag its last committed round); a new data
   * epoch starts from the pieces as dealt.
   */
  setPieces(dataEpoch: number, pieces: readonly DealtPiece__Output[] | readonly Piece[]): void {
    if (dataEpoch !== this.dataEpoch) {
      this.dataEpoch = dataEpoch;
      this.progress = new Map();
      this.commits = [];
    }
    this.pieces = pieces.map((p) => ('shardIndex' in p ? { shard: p.shardIndex, start: p.start, end: p.end } : { ...p }));
    for (const p of this.pieces) {
      if (!(Number.isInteger(p.start) && Number.isInteger(p.end) && p.start >= 0 && p.end >= p.start)) {
        throw new RangeError(`bad piece ${p.shard}[${p.start}, ${p.end})`);
      }
    }
  }

  /** Shard indexes of the current pieces, in processing order, without repeats. */
  shards(): number[] {
    return [...new Set(this.pieces.map((p) => p.shard))];
  }

  /** Samples not processed yet in the current pieces. */
  remaining(): number {
    let n = 0;
    for (const p of this.pieces) n += Math.max(0, p.end - Math.max(p.start, this.progress.get(p.shard) ?? 0));
    return n;
  }

  /** The next up to `n` unprocessed samples as slices (does not move the cursor). */
  peek(n: number): Piece[] {
    return nextSlices(this.pieces, this.progress, n);
  }

  /**
   * Marks `slices` processed by round `round`. Tolerant of order: a shard's position only
   * moves forward, so a re-run round's slices (taken under an older roster) commit as well.
   */
  commit(slices: readonly Piece[], round: number): void {
    this.commits.push({ round, slices: slices.map((s) => ({ ...s })) });
    this.apply(slices);
  }

  /** Forgets what rounds ≥ `round` processed (their updates were rolled back: the job re-runs them). */
  rollback(round: number): void {
    if (!this.commits.some((c) => c.round >= round)) return;
    this.commits = this.commits.filter((c) => c.round < round);
    this.progress = new Map();
    for (const c of this.commits) this.apply(c.slices);
  }

  private apply(slices: readonly Piece[]): void {
    for (const s of slices) {
      const at = this.progress.get(s.shard) ?? 0;
      if (s.end > at) this.progress.set(s.shard, s.end);
    }
  }
}

/** Pieces as the RoundReport carries them. */
export function toDealtPieces(slices: readonly Piece[]): { shardIndex: number; start: number; end: number }[] {
  return slices.map((s) => ({ shardIndex: s.shard, start: s.start, end: s.end }));
}
