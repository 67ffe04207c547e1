import { type Codec, CodecError, CodecIds, f32View, i8View } from './codec.js';
import { Int8Simd } from './int8-simd.js';

export interface Int8CodecOptions {
  /** Run the loops in WebAssembly SIMD where available (default true); the scalar TypeScript
   * below computes the same bytes and serves as the fallback and the reference in tests. */
  simd?: boolean;
}

/**
 * Blockwise absmax int8: each block of `blockSize` elements sends one float32 scale
 * s = absmax/127 and one int8 q = round(x/s) per element. Payload: ⌈length/blockSize⌉ scales,
 * then `length` int8 values. Error bound: |decode(encode(x)) − x| ≤ absmax(block)/254 plus
 * float32 rounding of the scale and product (relative 2⁻²³ of absmax), i.e. half a step
 * (quotients round to nearest, ties to even). A block holding NaN or ±Infinity sends a
 * non-finite scale, which `validate` rejects.
 */
export class Int8Codec implements Codec {
  readonly name = 'int8';
  readonly id = CodecIds.int8;
  readonly param: number;
  private readonly simd: Int8Simd | null;
  constructor(
    readonly blockSize = 64,
    options: Int8CodecOptions = {},
  ) {
    if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 1 << 20) {
      throw new CodecError(`int8 block size must be an integer in [1, 2^20], got ${blockSize}`);
    }
    this.param = blockSize;
    this.simd = options.simd === false ? null : Int8Simd.create(blockSize);
  }
  /** Whether the WebAssembly SIMD kernels are in use. */
  get accelerated(): boolean {
    return this.simd !== null;
  }
  /** A zeroed accumulator that `accumulate` sums into without copies (WebAssembly memory). */
  newAccumulator(length: number): Float64Array {
    return this.simd?.accumulator(length) ?? new Float64Array(length);
  }
  /** dst = encode(float32(acc / total)) in one pass (Codec#encodeMean): WebAssembly only, on an
   * accumulator from `newAccumulator`; null otherwise. */
  encodeMean(acc: Float64Array, total: number, dst: Uint8Array): boolean | null {
    return this.simd?.encodeMean(acc, total, dst) ?? null;
  }

  blocks(length: number): number {
    return Math.ceil(length / this.blockSize);
  }
  payloadBytes(length: number): number {
    return this.blocks(length) * 4 + length;
  }
  elementsFor(bytes: number): number {
    return Math.floor(bytes / (this.blockSize + 4)) * this.blockSize;
  }
  encode(src: Float32Array, dst: Uint8Array): void {
    if ((dst.byteOffset & 3) !== 0) throw new Error('encode target must be 4-byte aligned');
    if (this.simd) return this.simd.encode(src, dst);
    const n = src.length;
    const nb = this.blocks(n);
    const scales = new Float32Array(dst.buffer, dst.byteOffset, nb);
    const q = new Int8Array(dst.buffer, dst.byteOffset + nb * 4, n);
    // |x| as integer bits: for non-negative floats the bit patterns order like the values, and
    // every NaN sorts above +Infinity, so a block holding NaN gets a NaN scale (rejected).
    const bits = new Int32Array(src.buffer, src.byteOffset, n);
    const B = this.blockSize;
    for (let b = 0, lo = 0; b < nb; b++, lo += B) {
      const hi = lo + B < n ? lo + B : n;
      let m0 = 0;
      let m1 = 0;
      let m2 = 0;
      let m3 = 0;
      let i = lo;
      for (; i + 3 < hi; i += 4) {
        const a0 = bits[i] & 0x7fffffff;
        const a1 = bits[i + 1] & 0x7fffffff;
        const a2 = bits[i + 2] & 0x7fffffff;
        const a3 = bits[i + 3] & 0x7fffffff;
        m0 = a0 > m0 ? a0 : m0;
        m1 = a1 > m1 ? a1 : m1;
        m2 = a2 > m2 ? a2 : m2;
        m3 = a3 > m3 ? a3 : m3;
      }
      for (; i < hi; i++) {
        const a = bits[i] & 0x7fffffff;
        m0 = a > m0 ? a : m0;
      }
      m0 = m1 > m0 ? m1 : m0;
      m2 = m3 > m2 ? m3 : m2;
      scratchBits[0] = m2 > m0 ? m2 : m0;
      const scale = Math.fround(scratch[0] / 127);
      scales[b] = scale;
      if (!(scale >= MIN_NORMAL && scale < Infinity)) {
        // A zero block sends zeros; a non-finite one sends a non-finite scale, rejected by
        // receivers; a subnormal scale is imprecise, so its quotients are clamped.
        if (scale > 0 && scale < Infinity) quantiseClamped(src, q, lo, hi, 1 / scale);
        else for (let k = lo; k < hi; k++) q[k] = 0;
        continue;
      }
      // A normal scale is absmax/127 within 2⁻²⁴, so |x/scale| < 127.5 and rounds into ±127.
      // (y + 1.5·2⁵²) − 1.5·2⁵² rounds y to the nearest integer (ties to even), branch-free.
      const inv = 1 / scale;
      i = lo;
      for (; i + 3 < hi; i += 4) {
        q[i] = src[i] * inv + ROUND - ROUND;
        q[i + 1] = src[i + 1] * inv + ROUND - ROUND;
        q[i + 2] = src[i + 2] * inv + ROUND - ROUND;
        q[i + 3] = src[i + 3] * inv + ROUND - ROUND;
      }
      for (; i < hi; i++) q[i] = src[i] * inv + ROUND - ROUND;
    }
  }
  validate(payload: Uint8Array, length: number): string | null {
    const expected = this.payloadBytes(length);
    if (payload.byteLength !== expected) return `payload is ${payload.byteLength} bytes, expected ${expected}`;
    const scales = f32View(payload, 0, this.blocks(length));
    for (let b = 0; b < scales.length; b++) {
      const s = scales[b];
      if (!(s >= 0) || s === Infinity) return `bad scale ${s} in block ${b}`;
    }
    return null;
  }
  decode(payload: Uint8Array, length: number, out: Float32Array, outOffset: number): void {
    if (this.simd) return this.simd.decode(payload, length, out, outOffset);
    const nb = this.blocks(length);
    const scales = f32View(payload, 0, nb);
    const q = i8View(payload, nb * 4, length);
    const o = out.subarray(outOffset, outOffset + length);
    const B = this.blockSize;
    for (let b = 0, lo = 0; b < nb; b++, lo += B) {
      const s = scales[b];
      const hi = lo + B < length ? lo + B : length;
      let i = lo;
      for (; i + 3 < hi; i += 4) {
        o[i] = q[i] * s;
        o[i + 1] = q[i + 1] * s;
        o[i + 2] = q[i + 2] * s;
        o[i + 3] = q[i + 3] * s;
      }
      for (; i < hi; i++) o[i] = q[i] * s;
    }
  }
  /**
   * The squared L2 norm the clipped mean takes (clipping.ts), from the payload without decoding:
   * Σ over blocks, in order, of (s·s) · Σ q², in float64. Each block's Σ q² is an exact integer,
   * so this and the WebAssembly kernel give the same bits. (It is the norm of q·s; the decoded
   * values are q·s rounded to float32, within 2⁻²⁴ of it.)
   */
  sumSquares(payload: Uint8Array, length: number): number {
    if (this.simd) return this.simd.sumSquares(payload, length);
    const nb = this.blocks(length);
    const scales = f32View(payload, 0, nb);
    const q = i8View(payload, nb * 4, length);
    const B = this.blockSize;
    let total = 0;
    for (let b = 0, lo = 0; b < nb; b++, lo += B) {
      const hi = lo + B < length ? lo + B : length;
      let sum = 0;
      for (let i = lo; i < hi; i++) sum += q[i] * q[i];
      const s = scales[b];
      total += s * s * sum;
    }
    return total;
  }
  accumulate(payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): void {
    if (this.simd?.accumulate(payload, length, acc, accOffset, weight)) return;
    const nb = this.blocks(length);
    const scales = f32View(payload, 0, nb);
    const q = i8View(payload, nb * 4, length);
    const a = acc.subarray(accOffset, accOffset + length);
    const B = this.blockSize;
    for (let b = 0, lo = 0; b < nb; b++, lo += B) {
      // The decoded value is fround(q·s) (q·s itself is exact in float64); weight it exactly as
      // decode would produce it.
      const s = scales[b];
      const hi = lo + B < length ? lo + B : length;
      let i = lo;
      for (; i + 3 < hi; i += 4) {
        a[i] += weight * Math.fround(q[i] * s);
        a[i + 1] += weight * Math.fround(q[i + 1] * s);
        a[i + 2] += weight * Math.fround(q[i + 2] * s);
        a[i + 3] += weight * Math.fround(q[i + 3] * s);
      }
      for (; i < hi; i++) a[i] += weight * Math.fround(q[i] * s);
    }
  }
}

/** 1.5·2⁵²: adding and subtracting it rounds a float64 of magnitude < 2⁵¹ to an integer. */
const ROUND = 6755399441055744;
/** Smallest normal float32. */
const MIN_NORMAL = 2 ** -126;
const scratch = new Float32Array(1);
const scratchBits = new Int32Array(scratch.buffer);

function quantiseClamped(src: Float32Array, q: Int8Array, lo: number, hi: number, inv: number): void {
  for (let i = lo; i < hi; i++) {
    const r = src[i] * inv + ROUND - ROUND;
    q[i] = r > 127 ? 127 : r < -127 ? -127 : r;
  }
}
