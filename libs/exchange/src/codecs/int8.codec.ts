import { type Codec, CodecError, CodecIds, f32View, i8View } from './codec.js';

/**
 * Blockwise absmax int8: each block of `blockSize` elements sends one float32 scale
 * s = absmax/127 and one int8 q = round(x/s) per element. Payload: ⌈length/blockSize⌉ scales,
 * then `length` int8 values. Error bound: |decode(encode(x)) − x| ≤ absmax(block)/254 plus
 * float32 rounding of the scale and product (relative 2⁻²³ of absmax), i.e. half a step.
 */
export class Int8Codec implements Codec {
  readonly name = 'int8';
  readonly id = CodecIds.int8;
  readonly param: number;
  constructor(readonly blockSize = 64) {
    if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 1 << 20) {
      throw new CodecError(`int8 block size must be an integer in [1, 2^20], got ${blockSize}`);
    }
    this.param = blockSize;
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
    const n = src.length;
    const nb = this.blocks(n);
    const scales = new Float32Array(dst.buffer, dst.byteOffset, nb);
    const q = new Int8Array(dst.buffer, dst.byteOffset + nb * 4, n);
    const B = this.blockSize;
    for (let b = 0; b < nb; b++) {
      const lo = b * B;
      const hi = Math.min(n, lo + B);
      let absmax = 0;
      for (let i = lo; i < hi; i++) {
        const a = Math.abs(src[i]);
        if (a > absmax) absmax = a;
      }
      const scale = Math.fround(absmax / 127);
      scales[b] = scale;
      if (scale === 0 || !Number.isFinite(scale)) {
        // A zero block sends zeros; a non-finite one sends a non-finite scale, rejected by receivers.
        for (let i = lo; i < hi; i++) q[i] = 0;
        continue;
      }
      const inv = 1 / scale;
      for (let i = lo; i < hi; i++) {
        const r = Math.round(src[i] * inv);
        q[i] = r > 127 ? 127 : r < -127 ? -127 : r;
      }
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
    const nb = this.blocks(length);
    const scales = f32View(payload, 0, nb);
    const q = i8View(payload, nb * 4, length);
    const B = this.blockSize;
    for (let b = 0; b < nb; b++) {
      const s = scales[b];
      const hi = Math.min(length, (b + 1) * B);
      for (let i = b * B; i < hi; i++) out[outOffset + i] = q[i] * s;
    }
  }
  accumulate(payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): void {
    const nb = this.blocks(length);
    const scales = f32View(payload, 0, nb);
    const q = i8View(payload, nb * 4, length);
    const B = this.blockSize;
    for (let b = 0; b < nb; b++) {
      // The decoded value is fround(q·s); weight it exactly as decode would produce it.
      const s = scales[b];
      const hi = Math.min(length, (b + 1) * B);
      for (let i = b * B; i < hi; i++) acc[accOffset + i] += weight * Math.fround(q[i] * s);
    }
  }
}
