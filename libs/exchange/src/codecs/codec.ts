/**
 * A payload codec turns `length` float32 elements into bytes and back. Encoding writes into a
 * caller-owned Uint8Array (no intermediate arrays); decoding either writes float32 into a view
 * of the result or accumulates `weight · value` into a float64 accumulator, element by element,
 * in index order (the owner's reduce; deterministic for a fixed order of calls).
 *
 * Wire ids match `CodecId` in protos/gradpool/v1/exchange.proto.
 */
export const CodecIds = { fp32: 1, fp16: 2, bf16: 3, int8: 4, topk: 5, sparse32: 6 } as const;
export type CodecName = 'fp32' | 'fp16' | 'bf16' | 'int8' | 'topk';

/** A job's codec choice: `int8` takes a block size, `topk` a fraction in (0, 1]. */
export type CodecSpec =
  | { name: 'fp32' }
  | { name: 'fp16' }
  | { name: 'bf16' }
  | { name: 'int8'; blockSize?: number }
  | { name: 'topk'; fraction?: number };

export interface Codec {
  readonly name: string;
  /** `CodecId` on the wire. */
  readonly id: number;
  /** `codec_param` on the wire (int8: block size; topk: k in parts per million; else 0). */
  readonly param: number;
  /** Exact payload bytes for `length` elements (every codec here has a fixed size per length). */
  payloadBytes(length: number): number;
  /** Largest element count whose payload fits in `bytes`. */
  elementsFor(bytes: number): number;
  /** Encodes `src` into `dst` (exactly payloadBytes(src.length) bytes). */
  encode(src: Float32Array, dst: Uint8Array): void;
  /** Why `payload` is not a valid encoding of `length` elements (size, non-finite values,
   * out-of-range indices), or null when it is. Receivers call it before any decode. */
  validate(payload: Uint8Array, length: number): string | null;
  /** out[outOffset + i] = value i. */
  decode(payload: Uint8Array, length: number, out: Float32Array, outOffset: number): void;
  /** acc[accOffset + i] += weight · value i, in float64. */
  accumulate(payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): void;
  /** The squared L2 norm of a payload's values for the clipped mean (clipping.ts), where the
   * codec has a faster way than decoding (int8: from the integers and scales); each codec's
   * definition is fixed, so every owner computes the same. */
  sumSquares?(payload: Uint8Array, length: number): number;
  /** A zeroed accumulator of `length` that `accumulate` is fastest on (int8: in WebAssembly
   * memory); any Float64Array works. */
  newAccumulator?(length: number): Float64Array;
  /** dst = encode(float32(acc[i] / total)) — the owner's mean straight into its gather payload,
   * the same bytes as dividing and then `encode` — true, or false when a mean is not finite; null
   * when this codec cannot for this `acc` (the caller divides and encodes). */
  encodeMean?(acc: Float64Array, total: number, dst: Uint8Array): boolean | null;
}

export class CodecError extends Error {
  override name = 'CodecError';
}

/** A fresh, aligned copy (Buffer#slice would share the pooled memory, still misaligned). */
function copyOut(bytes: Uint8Array, byteOffset: number, byteLength: number): Uint8Array {
  const out = new Uint8Array(byteLength);
  out.set(bytes.subarray(byteOffset, byteOffset + byteLength));
  return out;
}

/** Typed view of `bytes` at `byteOffset` (copied into a fresh buffer only when misaligned). */
export function f32View(bytes: Uint8Array, byteOffset: number, length: number): Float32Array {
  const at = bytes.byteOffset + byteOffset;
  if (at % 4 === 0) return new Float32Array(bytes.buffer, at, length);
  return new Float32Array(copyOut(bytes, byteOffset, length * 4).buffer);
}
export function u32View(bytes: Uint8Array, byteOffset: number, length: number): Uint32Array {
  const at = bytes.byteOffset + byteOffset;
  if (at % 4 === 0) return new Uint32Array(bytes.buffer, at, length);
  return new Uint32Array(copyOut(bytes, byteOffset, length * 4).buffer);
}
export function u16View(bytes: Uint8Array, byteOffset: number, length: number): Uint16Array {
  const at = bytes.byteOffset + byteOffset;
  if (at % 2 === 0) return new Uint16Array(bytes.buffer, at, length);
  return new Uint16Array(copyOut(bytes, byteOffset, length * 2).buffer);
}
export function i8View(bytes: Uint8Array, byteOffset: number, length: number): Int8Array {
  return new Int8Array(bytes.buffer, bytes.byteOffset + byteOffset, length);
}

/** Index of the first non-finite value, or -1. */
export function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    // x - x is NaN for ±Infinity and NaN, 0 otherwise.
    if (x - x !== 0) return i;
  }
  return -1;
}
