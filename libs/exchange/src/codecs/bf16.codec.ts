import { type Codec, CodecIds, u16View } from './codec.js';
import { accumulate16Simd, decode16Simd, encodeHalfSimd, firstNonFinite16, halfAccumulator, halfSimdAvailable } from './half-simd.js';

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** float32 bits → bfloat16 bits, round to nearest even, saturating to the largest finite bf16. */
export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000) {
    // NaN stays NaN (validate rejects it); ±Inf saturates like overflow does.
    return bits & 0x7fffff ? (bits >>> 16) | 0x40 : ((bits >>> 16) & 0x8000) | 0x7f7f;
  }
  const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 0;
  const h = rounded >>> 16;
  return (h & 0x7f80) === 0x7f80 ? (h & 0x8000) | 0x7f7f : h;
}

export function bf16ToF32(h: number): number {
  U32[0] = h << 16;
  return F32[0];
}

/**
 * bfloat16 (the top half of a float32), 2 bytes per element, round to nearest even. Error bound:
 * |decode(encode(x)) − x| ≤ |x|·2⁻⁸ (8 significant bits; same exponent range as float32, values
 * that would round past the largest finite bf16 saturate to it).
 */
export class Bf16Codec implements Codec {
  readonly name = 'bf16';
  readonly id = CodecIds.bf16;
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
    if (this.simd && encodeHalfSimd('bf16', src, out, f32BitsToBf16)) return;
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16(bits[i]);
  }
  validate(payload: Uint8Array, length: number): string | null {
    if (payload.byteLength !== length * 2) return `payload is ${payload.byteLength} bytes, expected ${length * 2}`;
    const bad = this.simd ? firstNonFinite16(payload, length, 0x7f80) : null;
    if (bad !== null) return bad < 0 ? null : `non-finite value at element ${bad}`;
    const h = u16View(payload, 0, length);
    for (let i = 0; i < length; i++) if ((h[i] & 0x7f80) === 0x7f80) return `non-finite value at element ${i}`;
    return null;
  }
  decode(payload: Uint8Array, length: number, out: Float32Array, outOffset: number): void {
    const done = this.simd ? Math.max(0, decode16Simd('bf16', payload, length, out, outOffset)) : 0;
    if (done === length) return;
    const h = u16View(payload, 0, length);
    const o = new Uint32Array(out.buffer, out.byteOffset + outOffset * 4, length);
    for (let i = done; i < length; i++) o[i] = h[i] << 16;
  }
  /** A zeroed accumulator that `accumulate` sums into in WebAssembly (Codec#newAccumulator). */
  newAccumulator(length: number): Float64Array {
    return (this.simd ? halfAccumulator(length) : null) ?? new Float64Array(length);
  }
  accumulate(payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): void {
    const done = this.simd ? Math.max(0, accumulate16Simd('bf16', payload, length, acc, accOffset, weight)) : 0;
    if (done === length) return;
    const h = u16View(payload, 0, length);
    for (let i = done; i < length; i++) {
      U32[0] = h[i] << 16;
      acc[accOffset + i] += weight * F32[0];
    }
  }
}
