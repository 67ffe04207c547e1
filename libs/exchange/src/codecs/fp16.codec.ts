import { type Codec, CodecIds, u16View } from './codec.js';
import { accumulate16Simd, decode16Simd, encodeHalfSimd, firstNonFinite16, halfAccumulator, halfSimdAvailable } from './half-simd.js';

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
/** All 65536 halves as float32; decoding is one table lookup per element. */
const HALF_TO_F32 = buildHalfTable();

function buildHalfTable(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 31) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return t;
}

/** Largest finite half. */
export const FP16_MAX = 65504;

/** float32 bits → half bits, round to nearest even, saturating to ±65504 (never ±Inf). */
export function f32BitsToHalf(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp32 = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp32 === 0xff) return mant ? sign | 0x7e00 : sign | 0x7bff;
  const exp = exp32 - 112; // rebias 127 → 15
  if (exp >= 0x1f) return sign | 0x7bff;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  // A carry out of the mantissa bumps the exponent, which is right, unless it reaches Inf.
  if (h >= 0x7c00) h = 0x7bff;
  return sign | h;
}

export function f32ToHalf(x: number): number {
  F32[0] = x;
  return f32BitsToHalf(U32[0]);
}

export function halfToF32(h: number): number {
  return HALF_TO_F32[h];
}

/**
 * IEEE half, 2 bytes per element, round to nearest even. Error bound, for |x| ≤ 65504:
 * |decode(encode(x)) − x| ≤ max(|x|·2⁻¹¹, 2⁻²⁵) (half an ulp: 11 significant bits, subnormal
 * spacing 2⁻²⁴). Larger magnitudes saturate to ±65504. NaN encodes to NaN, which validate rejects.
 */
export class Fp16Codec implements Codec {
  readonly name = 'fp16';
  readonly id = CodecIds.fp16;
  readonly param = 0;
  private readonly simd: boolean;
  /** `simd: false` keeps to the scalar TypeScript (the reference the WebAssembly SIMD code,
   * half-simd.ts, is tested against); by default encode, validate and decode run in WebAssembly
   * where available, and accumulate too into an accumulator from `newAccumulator`. */
  constructor(options: { simd?: boolean } = {}) {
    this.simd = options.simd !== false && halfSimdAvailable();
  }
  /** Whether the encode runs in WebAssembly SIMD. */
  get accelerated(): boolean {
    return this.simd;
  }
  payloadBytes(length: number): number {
    return length * 2;
  }
  elementsFor(bytes: number): number {
    return Math.floor(bytes / 2);
  }
  encode(src: Float32Array, dst: Uint8Array): void {
    if ((dst.byteOffset & 1) !== 0) throw new Error('encode target must be 2-byte aligned');
    const out = new Uint16Array(dst.buffer, dst.byteOffset, src.length);
    if (this.simd && encodeHalfSimd('f16', src, out, f32BitsToHalf)) return;
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) out[i] = f32BitsToHalf(bits[i]);
  }
  validate(payload: Uint8Array, length: number): string | null {
    if (payload.byteLength !== length * 2) return `payload is ${payload.byteLength} bytes, expected ${length * 2}`;
    const bad = this.simd ? firstNonFinite16(payload, length, 0x7c00) : null;
    if (bad !== null) return bad < 0 ? null : `non-finite value at element ${bad}`;
    const h = u16View(payload, 0, length);
    for (let i = 0; i < length; i++) if ((h[i] & 0x7c00) === 0x7c00) return `non-finite value at element ${i}`;
    return null;
  }
  decode(payload: Uint8Array, length: number, out: Float32Array, outOffset: number): void {
    const done = this.simd ? Math.max(0, decode16Simd('f16', payload, length, out, outOffset)) : 0;
    if (done === length) return;
    const h = u16View(payload, 0, length);
    for (let i = done; i < length; i++) out[outOffset + i] = HALF_TO_F32[h[i]];
  }
  /** A zeroed accumulator that `accumulate` sums into in WebAssembly (Codec#newAccumulator). */
  newAccumulator(length: number): Float64Array {
    return (this.simd ? halfAccumulator(length) : null) ?? new Float64Array(length);
  }
  accumulate(payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): void {
    const done = this.simd ? Math.max(0, accumulate16Simd('f16', payload, length, acc, accOffset, weight)) : 0;
    if (done === length) return;
    const h = u16View(payload, 0, length);
    for (let i = done; i < length; i++) acc[accOffset + i] += weight * HALF_TO_F32[h[i]];
  }
}
