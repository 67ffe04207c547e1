import { INT8_SIMD_WASM_BASE64 } from './int8-simd.wasm.js';
import { align16, align4k, compileWasm, fixedMemory, instantiateWasm, PAGE, phase, wasm, type WasmMemory } from './wasm.js';

/**
 * The int8 codec's loops in WebAssembly SIMD (int8-simd.wat), bit-identical to the scalar
 * TypeScript in int8.codec.ts. WebAssembly reads only its own memory, so inputs are copied in
 * and outputs out in tiles of whole blocks that stay in cache; float64 accumulators are made
 * inside a WebAssembly memory of their own (`accumulator`) so that the owner's sum needs no
 * copies.
 */
interface Kernels {
  quantise(src: number, n: number, blockSize: number, scales: number, q: number): void;
  dequantise(scales: number, q: number, n: number, blockSize: number, out: number): void;
  accumulate(scales: number, q: number, n: number, blockSize: number, acc: number, weight: number): void;
  mean(acc: number, n: number, total: number, out: number): number;
  sumSquares(scales: number, q: number, n: number, blockSize: number, total: number): number;
}

interface Instance {
  memory: WasmMemory;
  k: Kernels;
}

/** Elements per tile (a multiple of the block size): 128 KiB of float32, stays in L2. */
const TILE = 32 * 1024;

let compiled: object | null | undefined;
/** The compiled module, or null where WebAssembly SIMD is not available. */
function wasmModule(): object | null {
  if (compiled === undefined) compiled = compileWasm(INT8_SIMD_WASM_BASE64);
  return compiled;
}

const instantiate = (module: object, memory: WasmMemory): Instance => instantiateWasm<Kernels>(module, memory);

/** Scratch layout for one tile of a block size: float32 values (in or out), scales, int8
 * values, each region 4 KiB-aligned with a page of slack for `phase`. */
class TileLayout {
  readonly elems: number;
  readonly scalesAt: number;
  readonly qAt: number;
  readonly bytes: number;
  /** int8 values and scales only (an accumulator's scratch: copies into WebAssembly only). */
  readonly packedBytes: number;
  readonly packedScalesBytes: number;
  constructor(readonly blockSize: number) {
    this.elems = blockSize * Math.max(1, Math.floor(TILE / blockSize));
    const scalesBytes = (this.elems / blockSize) * 4;
    this.scalesAt = align4k(this.elems * 4 + 4096);
    this.qAt = align4k(this.scalesAt + scalesBytes + 4096);
    this.bytes = this.qAt + this.elems + 4096 + 16;
    this.packedScalesBytes = align16(scalesBytes);
    this.packedBytes = this.packedScalesBytes + this.elems + 16;
  }
}

/** The scratch memory shared by every codec instance (one JS thread, calls never interleave). */
let scratch: Instance | null = null;
function scratchOf(module: object, bytes: number): Instance {
  if (!scratch) scratch = instantiate(module, new wasm!.Memory({ initial: Math.ceil(bytes / PAGE) }));
  const have = scratch.memory.buffer.byteLength;
  if (have < bytes) scratch.memory.grow(Math.ceil((bytes - have) / PAGE));
  return scratch;
}

/** Accumulators made by `accumulator`, by their buffer: where their scratch regions begin (the
 * copy-in tile for `accumulate`; a float32 mean tile, then encoded scales and values of up to
 * `length` elements for `encodeMean`, each with a page of slack for `phase`). */
interface AccumulatorInfo {
  inst: Instance;
  length: number;
  scratchAt: number;
  meanAt: number;
  scalesAt: number;
  qAt: number;
}
const accumulators = new WeakMap<ArrayBufferLike, AccumulatorInfo>();

export class Int8Simd {
  private readonly tile: TileLayout;
  private constructor(
    private readonly module: object,
    private readonly blockSize: number,
  ) {
    this.tile = new TileLayout(blockSize);
  }

  /** Kernels for this block size, or null where WebAssembly SIMD is unavailable. */
  static create(blockSize: number): Int8Simd | null {
    const m = wasmModule();
    return m ? new Int8Simd(m, blockSize) : null;
  }

  /** Same contract and bytes as Int8Codec#encode's scalar path. */
  encode(src: Float32Array, dst: Uint8Array): void {
    const B = this.blockSize;
    const L = this.tile;
    const n = src.length;
    const nb = Math.ceil(n / B);
    const { memory, k } = scratchOf(this.module, L.bytes);
    const f32 = new Float32Array(memory.buffer, 0, L.elems);
    const u8 = new Uint8Array(memory.buffer);
    for (let e0 = 0; e0 < n; e0 += L.elems) {
      const len = Math.min(L.elems, n - e0);
      const scalesTo = (e0 / B) * 4;
      const qTo = nb * 4 + e0;
      const scalesAt = L.scalesAt + phase(dst.byteOffset + scalesTo);
      const qAt = L.qAt + phase(dst.byteOffset + qTo);
      f32.set(src.subarray(e0, e0 + len));
      k.quantise(0, len, B, scalesAt, qAt);
      dst.set(u8.subarray(scalesAt, scalesAt + Math.ceil(len / B) * 4), scalesTo);
      dst.set(u8.subarray(qAt, qAt + len), qTo);
    }
  }

  /** out[outOffset + i] = value i (Int8Codec#decode). */
  decode(payload: Uint8Array, length: number, out: Float32Array, outOffset: number): void {
    const B = this.blockSize;
    const L = this.tile;
    const nb = Math.ceil(length / B);
    const { memory, k } = scratchOf(this.module, L.bytes);
    const u8 = new Uint8Array(memory.buffer);
    for (let e0 = 0; e0 < length; e0 += L.elems) {
      const len = Math.min(L.elems, length - e0);
      const outAt = phase(out.byteOffset + (outOffset + e0) * 4);
      this.copyTileIn(payload, nb, e0, len, u8, L.scalesAt, L.qAt);
      k.dequantise(L.scalesAt, L.qAt, len, B, outAt);
      out.set(new Float32Array(memory.buffer, outAt, len), outOffset + e0);
    }
  }

  /** Σ_b s_b² · Σ q² over the payload's blocks in order (Int8Codec#sumSquares). */
  sumSquares(payload: Uint8Array, length: number): number {
    const B = this.blockSize;
    const L = this.tile;
    const nb = Math.ceil(length / B);
    const { memory, k } = scratchOf(this.module, L.bytes);
    const u8 = new Uint8Array(memory.buffer);
    let total = 0;
    for (let e0 = 0; e0 < length; e0 += L.elems) {
      const len = Math.min(L.elems, length - e0);
      this.copyTileIn(payload, nb, e0, len, u8, L.scalesAt, L.qAt);
      total = k.sumSquares(L.scalesAt, L.qAt, len, B, total);
    }
    return total;
  }

  /** acc[accOffset + i] += weight · value i (Int8Codec#accumulate); false when `acc` was not
   * made by `accumulator` (the caller then takes the scalar path). */
  accumulate(payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): boolean {
    const a = accumulators.get(acc.buffer);
    if (!a || a.inst.memory.buffer !== acc.buffer) return false;
    const B = this.blockSize;
    const T = this.tile.elems;
    const nb = Math.ceil(length / B);
    const scalesAt = a.scratchAt;
    const qAt = scalesAt + this.tile.packedScalesBytes;
    if (scalesAt + this.tile.packedBytes > acc.buffer.byteLength) return false; // made for a larger tile
    const u8 = new Uint8Array(acc.buffer);
    for (let e0 = 0; e0 < length; e0 += T) {
      const len = Math.min(T, length - e0);
      this.copyTileIn(payload, nb, e0, len, u8, scalesAt, qAt);
      a.inst.k.accumulate(scalesAt, qAt, len, B, acc.byteOffset + (accOffset + e0) * 8, weight);
    }
    return true;
  }

  /** A zeroed float64 accumulator of `length` in a WebAssembly memory of its own (fixed size, so
   * the view never detaches), followed by its scratch regions; null when it would not fit. */
  accumulator(length: number): Float64Array | null {
    const scratchAt = align16(length * 8);
    const meanAt = align4k(scratchAt + this.tile.packedBytes);
    const scalesAt = align4k(meanAt + this.tile.elems * 4);
    const qAt = align4k(scalesAt + Math.ceil(length / this.blockSize) * 4 + 4096);
    const memory = fixedMemory(qAt + length + 4096 + 16);
    if (!memory) return null;
    const inst = instantiate(this.module, memory);
    accumulators.set(memory.buffer, { inst, length, scratchAt, meanAt, scalesAt, qAt });
    return new Float64Array(memory.buffer, 0, length);
  }

  /**
   * dst = encode(float32(acc[i] / total)) for an accumulator made by `accumulator` (Int8Codec#
   * encodeMean): the owner's mean and its gather encoding in one pass per tile inside
   * WebAssembly, the same bytes as meanOf + encode. False when a mean is not finite (dst is then
   * unspecified); null when `acc` is not such an accumulator.
   */
  encodeMean(acc: Float64Array, total: number, dst: Uint8Array): boolean | null {
    const a = accumulators.get(acc.buffer);
    if (!a || a.inst.memory.buffer !== acc.buffer || acc.byteOffset + acc.length * 8 > a.length * 8) return null;
    const B = this.blockSize;
    const n = acc.length;
    const nb = Math.ceil(n / B);
    const T = this.tile.elems;
    const scalesAt = a.scalesAt + phase(dst.byteOffset);
    const qAt = a.qAt + phase(dst.byteOffset + nb * 4);
    for (let e0 = 0; e0 < n; e0 += T) {
      const len = Math.min(T, n - e0);
      if (a.inst.k.mean(acc.byteOffset + e0 * 8, len, total, a.meanAt) !== 0) return false;
      a.inst.k.quantise(a.meanAt, len, B, scalesAt + (e0 / B) * 4, qAt + e0);
    }
    const u8 = new Uint8Array(acc.buffer);
    dst.set(u8.subarray(scalesAt, scalesAt + nb * 4), 0);
    dst.set(u8.subarray(qAt, qAt + n), nb * 4);
    return true;
  }

  /** Copies the scales and values of elements [e0, e0 + len) of a payload (blocks whole). */
  private copyTileIn(payload: Uint8Array, nb: number, e0: number, len: number, u8: Uint8Array, scalesAt: number, qAt: number): void {
    const b0 = e0 / this.blockSize;
    u8.set(payload.subarray(b0 * 4, (b0 + Math.ceil(len / this.blockSize)) * 4), scalesAt);
    u8.set(payload.subarray(nb * 4 + e0, nb * 4 + e0 + len), qAt);
  }
}
