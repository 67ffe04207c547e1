import { type Codec, CodecIds, f32View, firstNonFinite } from './codec.js';

/**
 * float32, 4 bytes per element. Error bound: exact (decode(encode(x)) === x bit for bit).
 */
export class Fp32Codec implements Codec {
  readonly name = 'fp32';
  readonly id = CodecIds.fp32;
  readonly param = 0;
  payloadBytes(length: number): number {
    return length * 4;
  }
  elementsFor(bytes: number): number {
    return Math.floor(bytes / 4);
  }
  encode(src: Float32Array, dst: Uint8Array): void {
    f32ViewOut(dst, src.length).set(src);
  }
  validate(payload: Uint8Array, length: number): string | null {
    if (payload.byteLength !== length * 4) return `payload is ${payload.byteLength} bytes, expected ${length * 4}`;
    const i = firstNonFinite(f32View(payload, 0, length));
    return i < 0 ? null : `non-finite value at element ${i}`;
  }
  decode(payload: Uint8Array, length: number, out: Float32Array, outOffset: number): void {
    out.set(f32View(payload, 0, length), outOffset);
  }
  accumulate(payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): void {
    const v = f32View(payload, 0, length);
    for (let i = 0; i < length; i++) acc[accOffset + i] += weight * v[i];
  }
}

/** A writable float32 view over the start of `dst`, which the encoder allocates aligned. */
export function f32ViewOut(dst: Uint8Array, length: number): Float32Array {
  if ((dst.byteOffset & 3) !== 0) throw new Error('encode target must be 4-byte aligned');
  return new Float32Array(dst.buffer, dst.byteOffset, length);
}
