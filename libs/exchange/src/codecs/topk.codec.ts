import { type Codec, CodecError, CodecIds, f32View, firstNonFinite, u32View } from './codec.js';
import { FeedbackBuffers } from './feedback-simd.js';

/**
 * Top-k by magnitude, per chunk: of a chunk of `length` elements, the m = max(1, ⌈k·length⌉)
 * largest |x| are sent as m ascending u32 indices then m float32 values (ties broken by lower
 * index). Error bound: sent values are exact; every dropped element has |x| ≤ the smallest sent
 * |x|. The dropped mass is not lost: the sender keeps it as error feedback (`ErrorFeedback`)
 * and adds it to the next round's gradient, so over rounds every coordinate's accumulated
 * gradient is transmitted (the sum of what was sent equals the sum of gradients minus the
 * current residual).
 */
export class TopkCodec implements Codec {
  readonly name = 'topk';
  readonly id = CodecIds.topk;
  /** k in parts per million. */
  readonly param: number;
  private scratch = new Float32Array(0);
  private candIdx = new Uint32Array(0);
  private candMag = new Float32Array(0);
  constructor(readonly fraction = 0.01) {
    if (!(fraction > 0 && fraction <= 1)) throw new CodecError(`topk fraction must be in (0, 1], got ${fraction}`);
    this.param = Math.max(1, Math.round(fraction * 1e6));
  }
  /** Entries sent for a chunk of `length` elements. */
  count(length: number): number {
    return Math.min(length, Math.max(1, Math.ceil((length * this.param) / 1e6)));
  }
  payloadBytes(length: number): number {
    return this.count(length) * 8;
  }
  elementsFor(bytes: number): number {
    return Math.max(1, Math.floor((bytes / 8) * (1e6 / this.param)) - 1);
  }
  encode(src: Float32Array, dst: Uint8Array): void {
    if ((dst.byteOffset & 3) !== 0) throw new Error('encode target must be 4-byte aligned');
    const n = src.length;
    const m = this.count(n);
    const idx = new Uint32Array(dst.buffer, dst.byteOffset, m);
    const val = new Float32Array(dst.buffer, dst.byteOffset + m * 4, m);
    if (this.encodeFromCandidates(src, m, idx, val)) return;
    const threshold = kthLargest(this.magnitudes(src), n, m);
    // Strictly above the threshold first (fewer than m of them), then ties in index order.
    let above = 0;
    for (let i = 0; i < n; i++) if (Math.abs(src[i]) > threshold) above++;
    let ties = m - above;
    let j = 0;
    for (let i = 0; i < n && j < m; i++) {
      const a = Math.abs(src[i]);
      if (a > threshold || (a === threshold && ties-- > 0)) {
        idx[j] = i;
        val[j] = src[i];
        j++;
      }
    }
  }

  /**
   * The same entries as the full selection, from the elements at or above a bound estimated on a
   * sample: one pass over src keeps the candidates (index order), and the m-th largest is
   * selected among them only. The bound is the sample's magnitude of rank q·s + 4·√(q·s) from
   * the top (q = m/n), so about m·(1 + 4/√(q·s)) elements pass it and fewer than m do with
   * probability ~3·10⁻⁵; then, or with more candidates than room, or a NaN, it returns false and
   * the full selection runs. The sample is drawn by a fixed-seed generator: the same src gives the
   * same bytes.
   */
  private encodeFromCandidates(src: Float32Array, m: number, idx: Uint32Array, val: Float32Array): boolean {
    const n = src.length;
    const s = Math.min(n >>> 4, 65_536);
    if (s < 1024 || m * 4 > n) return false;
    const sample = this.sampleOf(src, s);
    const expected = (m / n) * s;
    const rank = Math.ceil(expected + 4 * Math.sqrt(expected)) + 1;
    if (rank >= s) return false;
    const bound = kthLargest(sample, s, rank);
    // Room for twice the candidates the bound lets through in the sample (scaled to n).
    const room = Math.ceil((rank / s) * n * 2) + 64;
    let ci: Uint32Array;
    let cm: Float32Array;
    let c = 0;
    // In WebAssembly SIMD where src is error feedback's compensated vector (the exchange's case).
    const found = FeedbackBuffers.holding(src)?.candidates(src, bound, room) ?? null;
    if (found === -1 || found === -2) return false;
    if (found) {
      ({ idx: ci, mag: cm, count: c } = found);
    } else {
      if (this.candIdx.length < room) {
        this.candIdx = new Uint32Array(room);
        this.candMag = new Float32Array(room);
      }
      ci = this.candIdx;
      cm = this.candMag;
      for (let i = 0; i < n; i++) {
        const a = Math.abs(src[i]);
        if (!(a < bound)) {
          if (c === room || a !== a) return false;
          ci[c] = i;
          cm[c] = a;
          c++;
        }
      }
    }
    if (c < m) return false;
    if (this.scratch.length < c) this.scratch = new Float32Array(c);
    this.scratch.set(cm.subarray(0, c));
    const threshold = kthLargest(this.scratch, c, m);
    let above = 0;
    for (let j = 0; j < c; j++) if (cm[j] > threshold) above++;
    let ties = m - above;
    let j = 0;
    for (let k = 0; k < c && j < m; k++) {
      const a = cm[k];
      if (a > threshold || (a === threshold && ties-- > 0)) {
        idx[j] = ci[k];
        val[j] = src[ci[k]];
        j++;
      }
    }
    return true;
  }

  /** |x| of s elements of src drawn with a fixed-seed xorshift (into the scratch array). */
  private sampleOf(src: Float32Array, s: number): Float32Array {
    if (this.scratch.length < s) this.scratch = new Float32Array(Math.max(s, this.scratch.length));
    const out = this.scratch;
    const n = src.length;
    let x = 0x9e3779b9;
    for (let k = 0; k < s; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[k] = Math.abs(src[(x >>> 0) % n]);
    }
    return out;
  }

  /** |x| of every element of src (into the scratch array). */
  private magnitudes(src: Float32Array): Float32Array {
    const n = src.length;
    if (this.scratch.length < n) this.scratch = new Float32Array(n);
    const a = this.scratch;
    for (let i = 0; i < n; i++) a[i] = Math.abs(src[i]);
    return a;
  }
  /**
   * An owner's mean of the topk contributions to one reduce chunk of `n` elements, computed on
   * their entries only, appended to `out` (shard indices: chunk index + `offset`). The same bits
   * as summing them densely (`accumulate` into a zeroed float64 array, in the order given) and
   * taking float32(sum / total) of every element, minus the zeros: the float64 additions per
   * element are the same, in the same order. `acc` (at least n long) must be all zero, and is
   * left so. False when a mean is not finite (`out` then holds the entries up to it and more).
   */
  sumMeanSparse(contributions: readonly { payload: Uint8Array; weight: number }[], n: number, total: number, offset: number, acc: Float64Array, out: SparseEntries): boolean {
    const m = this.count(n);
    const lists: Uint32Array[] = [];
    for (const { payload, weight } of contributions) {
      const idx = u32View(payload, 0, m);
      const val = f32View(payload, m * 4, m);
      for (let j = 0; j < m; j++) acc[idx[j]] += weight * val[j];
      lists.push(idx);
    }
    const union = unionSorted(lists);
    let bad = 0;
    for (let k = 0; k < union.length; k++) {
      const i = union[k];
      const v = Math.fround(acc[i] / total);
      acc[i] = 0;
      bad |= v - v !== 0 ? 1 : 0;
      if (v !== 0) out.push(offset + i, v);
    }
    return bad === 0;
  }
  validate(payload: Uint8Array, length: number): string | null {
    const m = this.count(length);
    if (payload.byteLength !== m * 8) return `payload is ${payload.byteLength} bytes, expected ${m * 8}`;
    return validateSparse(payload, m, length);
  }
  decode(payload: Uint8Array, length: number, out: Float32Array, outOffset: number): void {
    decodeSparse(payload, this.count(length), length, out, outOffset);
  }
  accumulate(payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): void {
    accumulateSparse(payload, this.count(length), acc, accOffset, weight);
  }
  /** The indices of a payload of `length` elements (for error feedback). */
  indices(payload: Uint8Array, length: number): Uint32Array {
    return u32View(payload, 0, this.count(length));
  }
}

/** The m-th largest of a[0, n) (quickselect, reordering a). */
function kthLargest(a: Float32Array, n: number, m: number): number {
  // Position of the m-th largest in ascending order.
  const k = n - m;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    // Median of three as pivot.
    let p = a[mid];
    const x = a[lo];
    const y = a[hi];
    if ((x <= p && p <= y) || (y <= p && p <= x)) {
      // p is the median
    } else if ((p <= x && x <= y) || (y <= x && x <= p)) p = x;
    else p = y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < p) i++;
      while (a[j] > p) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/** The ascending union of ascending index lists, each index once. */
function unionSorted(lists: readonly Uint32Array[]): Uint32Array {
  if (lists.length === 0) return new Uint32Array(0);
  let acc = lists[0];
  for (let l = 1; l < lists.length; l++) {
    const b = lists[l];
    const merged = new Uint32Array(acc.length + b.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < acc.length && j < b.length) {
      const x = acc[i];
      const y = b[j];
      if (x < y) {
        merged[k++] = x;
        i++;
      } else if (y < x) {
        merged[k++] = y;
        j++;
      } else {
        merged[k++] = x;
        i++;
        j++;
      }
    }
    while (i < acc.length) merged[k++] = acc[i++];
    while (j < b.length) merged[k++] = b[j++];
    acc = merged.subarray(0, k);
  }
  return acc;
}

/** Sparse entries in ascending index order: indices and float32 values, growing as needed. */
export class SparseEntries {
  idx = new Uint32Array(1024);
  val = new Float32Array(1024);
  count = 0;
  push(i: number, v: number): void {
    if (this.count === this.idx.length) {
      const idx = new Uint32Array(this.idx.length * 2);
      const val = new Float32Array(this.val.length * 2);
      idx.set(this.idx);
      val.set(this.val);
      this.idx = idx;
      this.val = val;
    }
    this.idx[this.count] = i;
    this.val[this.count] = v;
    this.count++;
  }
}

function validateSparse(payload: Uint8Array, m: number, length: number): string | null {
  const idx = u32View(payload, 0, m);
  let prev = -1;
  for (let j = 0; j < m; j++) {
    const i = idx[j];
    if (i <= prev || i >= length) return `index ${i} out of order or out of range at entry ${j}`;
    prev = i;
  }
  const bad = firstNonFinite(f32View(payload, m * 4, m));
  return bad < 0 ? null : `non-finite value at entry ${bad}`;
}

function decodeSparse(payload: Uint8Array, m: number, length: number, out: Float32Array, outOffset: number): void {
  const idx = u32View(payload, 0, m);
  const val = f32View(payload, m * 4, m);
  out.fill(0, outOffset, outOffset + length);
  for (let j = 0; j < m; j++) out[outOffset + idx[j]] = val[j];
}

function accumulateSparse(payload: Uint8Array, m: number, acc: Float64Array, accOffset: number, weight: number): void {
  const idx = u32View(payload, 0, m);
  const val = f32View(payload, m * 4, m);
  for (let j = 0; j < m; j++) acc[accOffset + idx[j]] += weight * val[j];
}

/**
 * The gather encoding of a topk job: the mean of sparse contributions is sparse but has up to
 * K·m entries, so it goes as (ascending u32 indices, float32 values) with any count, exact. The
 * owner uses it only while it is smaller than dense fp32 (`sparseBytes`); otherwise fp32.
 */
export class Sparse32Codec {
  readonly name = 'sparse32';
  readonly id = CodecIds.sparse32;
  readonly param = 0;
  /** Non-zero count of src. */
  static nonZeros(src: Float32Array): number {
    let nz = 0;
    for (let i = 0; i < src.length; i++) if (src[i] !== 0) nz++;
    return nz;
  }
  static encode(src: Float32Array, nonZeros: number, dst: Uint8Array): void {
    const idx = new Uint32Array(dst.buffer, dst.byteOffset, nonZeros);
    const val = new Float32Array(dst.buffer, dst.byteOffset + nonZeros * 4, nonZeros);
    let j = 0;
    for (let i = 0; i < src.length; i++) {
      if (src[i] !== 0) {
        idx[j] = i;
        val[j] = src[i];
        j++;
      }
    }
  }
  /** Entries [from, to) of `e`, indices made relative to `offset` (the same bytes as `encode`
   * of the dense part they fall in). */
  static encodeEntries(e: SparseEntries, from: number, to: number, offset: number, dst: Uint8Array): void {
    const n = to - from;
    const idx = new Uint32Array(dst.buffer, dst.byteOffset, n);
    const val = new Float32Array(dst.buffer, dst.byteOffset + n * 4, n);
    for (let k = 0; k < n; k++) {
      idx[k] = e.idx[from + k] - offset;
      val[k] = e.val[from + k];
    }
  }
  static validate(payload: Uint8Array, length: number): string | null {
    if (payload.byteLength % 8 !== 0 || payload.byteLength / 8 > length) return `bad sparse payload size ${payload.byteLength}`;
    return validateSparse(payload, payload.byteLength / 8, length);
  }
  static decode(payload: Uint8Array, length: number, out: Float32Array, outOffset: number): void {
    decodeSparse(payload, payload.byteLength / 8, length, out, outOffset);
  }
}

/**
 * The sender's error-feedback state for topk: `residual` holds, per coordinate, the gradient mass
 * not yet transmitted. A round compensates (grad + residual), sends the top-k of that, and only
 * when the round succeeds commits residual = compensated − sent; a failed round leaves it as it
 * was, so re-running the round (new epoch) from the same gradient counts nothing twice.
 */
export class ErrorFeedback {
  readonly residual: Float32Array;
  /** grad + residual of the round in flight. */
  readonly compensated: Float32Array;
  /** compensated with the transmitted coordinates zeroed. */
  readonly pending: Float32Array;
  /** The three in WebAssembly memory, with `compensate` in SIMD (null: TypeScript arrays and loop). */
  private readonly buffers: FeedbackBuffers | null;
  /** `simd: false` keeps to TypeScript arrays and loops (the reference in tests). */
  constructor(
    readonly size: number,
    options: { simd?: boolean } = {},
  ) {
    this.buffers = options.simd === false ? null : FeedbackBuffers.create(size);
    this.residual = this.buffers?.view('residual') ?? new Float32Array(size);
    this.compensated = this.buffers?.view('compensated') ?? new Float32Array(size);
    this.pending = this.buffers?.view('pending') ?? new Float32Array(size);
  }
  /** Whether `compensate` runs in WebAssembly SIMD. */
  get accelerated(): boolean {
    return this.buffers !== null;
  }
  compensate(grad: Float32Array): Float32Array {
    if (grad.length !== this.size) throw new Error(`gradient has ${grad.length} elements, expected ${this.size}`);
    const c = this.compensated;
    if (this.buffers) {
      this.buffers.compensate(grad);
      return c;
    }
    const r = this.residual;
    for (let i = 0; i < c.length; i++) c[i] = grad[i] + r[i];
    this.pending.set(c);
    return c;
  }
  /** Marks the entries `indices` (relative to `offset`) as transmitted. */
  sent(offset: number, indices: Uint32Array): void {
    const p = this.pending;
    for (let j = 0; j < indices.length; j++) p[offset + indices[j]] = 0;
  }
  /** Commits [start, end): transmitted (pending) when `counted`, else everything stays residual. */
  commit(start: number, end: number, counted: boolean): void {
    this.residual.set((counted ? this.pending : this.compensated).subarray(start, end), start);
  }
}
