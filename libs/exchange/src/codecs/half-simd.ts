import { HALF_SIMD_WASM_BASE64 } from './half-simd.wasm.js';
import { align4k, compileWasm, fixedMemory, instantiateWasm, PAGE, phase, wasm, type WasmMemory } from './wasm.js';

/**
 * fp16 and bf16 encoding, decoding, checking and the owner's float64 sum (into an accumulator in
 * a WebAssembly memory of its own, `halfAccumulator`) in WebAssembly SIMD (half-simd.wat),
 * bit-identical to the scalar `f32BitsToHalf`, `f32BitsToBf16`, the fp16 table and bf16's shift: one
 * branchless pass eight elements at a time instead of a function call or a table lookup per
 * element (the scalar fp16 encode took ~11 ns per element). The values are copied into
 * WebAssembly memory and the results out in tiles that stay in cache; the last n mod 8 elements
 * of a call are left to the scalar code.
 */
interface Kernels {
  f16(src: number, n: number, dst: number): void;
  bf16(src: number, n: number, dst: number): void;
  f16decode(src: number, n: number, dst: number): void;
  bf16decode(src: number, n: number, dst: number): void;
  check16(src: number, n: number, exp: number): number;
  accumulate(x: number, n: number, acc: number, w: number): void;
}

/** Elements per tile: 128 KiB of float32 in, 64 KiB of 16-bit values out. */
const TILE = 32 * 1024;
/** Scratch: the float32 tile at 0, then the 16-bit tile, each with a page of slack for `phase`. */
const OUT_AT = align4k(TILE * 4 + 4096);
const BYTES = OUT_AT + TILE * 2 + 4096 + 16;

let compiled: object | null | undefined;
function wasmModule(): object | null {
  if (compiled === undefined) compiled = compileWasm(HALF_SIMD_WASM_BASE64);
  return compiled;
}

let instance: { memory: WasmMemory; k: Kernels } | null | undefined;
/** The one scratch instance (one JS thread, calls never interleave), or null without WebAssembly SIMD. */
function kernels(): { memory: WasmMemory; k: Kernels } | null {
  if (instance === undefined) {
    const module = wasmModule();
    instance = module ? instantiateWasm<Kernels>(module, new wasm!.Memory({ initial: Math.ceil(BYTES / PAGE) })) : null;
  }
  return instance;
}

/** Accumulators made by `halfAccumulator`, by their buffer: their instance and scratch regions
 * (a tile of 16-bit values copied in, and the same tile decoded to float32). */
const accumulators = new WeakMap<ArrayBufferLike, { inst: { memory: WasmMemory; k: Kernels }; inAt: number; decodedAt: number }>();

/** Whether the kernels can run here. */
export function halfSimdAvailable(): boolean {
  return kernels() !== null;
}

/**
 * out[i] = fp16 (or bf16) bits of src[i], through the kernels; `tail(bits)` encodes the elements
 * past the last multiple of 8. False when the kernels are unavailable (nothing written).
 */
export function encodeHalfSimd(kind: 'f16' | 'bf16', src: Float32Array, out: Uint16Array, tail: (bits: number) => number): boolean {
  const inst = kernels();
  if (!inst) return false;
  const n = src.length;
  const whole = n - (n % 8);
  const f32 = new Float32Array(inst.memory.buffer, 0, TILE);
  const kernel = inst.k[kind];
  for (let e0 = 0; e0 < whole; e0 += TILE) {
    const len = Math.min(TILE, whole - e0);
    const at = OUT_AT + phase(out.byteOffset + e0 * 2);
    f32.set(src.subarray(e0, e0 + len));
    kernel(0, len, at);
    out.set(new Uint16Array(inst.memory.buffer, at, len), e0);
  }
  if (whole < n) {
    const bits = new Uint32Array(src.buffer, src.byteOffset + whole * 4, n - whole);
    for (let i = 0; i < bits.length; i++) out[whole + i] = tail(bits[i]);
  }
  return true;
}

/**
 * out[outOffset + i] = the float32 of 16-bit value i of `payload` (any byte offset), fp16 or
 * bf16, for the values up to the last multiple of 8 of `length`; returns how many it decoded
 * (the caller decodes the rest), or -1 when the kernels are unavailable (nothing written).
 */
export function decode16Simd(kind: 'f16' | 'bf16', payload: Uint8Array, length: number, out: Float32Array, outOffset: number): number {
  const inst = kernels();
  if (!inst) return -1;
  const kernel = kind === 'f16' ? inst.k.f16decode : inst.k.bf16decode;
  const whole = length - (length % 8);
  const u8 = new Uint8Array(inst.memory.buffer);
  for (let e0 = 0; e0 < whole; e0 += TILE) {
    const len = Math.min(TILE, whole - e0);
    const inAt = OUT_AT + phase(payload.byteOffset + e0 * 2);
    const outAt = phase(out.byteOffset + (outOffset + e0) * 4);
    u8.set(payload.subarray(e0 * 2, (e0 + len) * 2), inAt);
    kernel(inAt, len, outAt);
    out.set(new Float32Array(inst.memory.buffer, outAt, len), outOffset + e0);
  }
  return whole;
}

/**
 * The index of the first 16-bit value of `payload` (`length` values) whose bits under `exp` are
 * all ones (0x7c00: a half that is not finite; 0x7f80: such a bfloat16), or -1; null when the
 * kernels are unavailable.
 */
export function firstNonFinite16(payload: Uint8Array, length: number, exp: 0x7c00 | 0x7f80): number | null {
  const inst = kernels();
  if (!inst) return null;
  const whole = length - (length % 8);
  const u8 = new Uint8Array(inst.memory.buffer);
  for (let e0 = 0; e0 < whole; e0 += TILE) {
    const len = Math.min(TILE, whole - e0);
    const inAt = OUT_AT + phase(payload.byteOffset + e0 * 2);
    u8.set(payload.subarray(e0 * 2, (e0 + len) * 2), inAt);
    const bad = inst.k.check16(inAt, len, exp);
    if (bad >= 0) return e0 + bad;
  }
  for (let i = whole; i < length; i++) if (((payload[i * 2] | (payload[i * 2 + 1] << 8)) & exp) === exp) return i;
  return -1;
}

/**
 * A zeroed float64 accumulator of `length` in a WebAssembly memory of its own (fixed size, so the
 * view never detaches), with scratch for one tile after it; null where it cannot be had.
 */
export function halfAccumulator(length: number): Float64Array | null {
  const module = wasmModule();
  if (!module) return null;
  const decodedAt = align4k(length * 8);
  const inAt = align4k(decodedAt + TILE * 4 + 4096);
  const memory = fixedMemory(inAt + TILE * 2 + 4096 + 16);
  if (!memory) return null;
  accumulators.set(memory.buffer, { inst: instantiateWasm<Kernels>(module, memory), inAt, decodedAt });
  return new Float64Array(memory.buffer, 0, length);
}

/**
 * acc[accOffset + i] += weight · value i of `payload` (fp16 or bf16; any byte offset) in float64,
 * for the values up to the last multiple of 8 of `length`, on an accumulator from
 * `halfAccumulator`; returns how many it added (the caller adds the rest), or -1 when `acc` is not
 * such an accumulator (nothing added).
 */
export function accumulate16Simd(kind: 'f16' | 'bf16', payload: Uint8Array, length: number, acc: Float64Array, accOffset: number, weight: number): number {
  const a = accumulators.get(acc.buffer);
  if (!a || a.inst.memory.buffer !== acc.buffer) return -1;
  const { k } = a.inst;
  const decode = kind === 'f16' ? k.f16decode : k.bf16decode;
  const whole = length - (length % 8);
  const u8 = new Uint8Array(acc.buffer);
  for (let e0 = 0; e0 < whole; e0 += TILE) {
    const len = Math.min(TILE, whole - e0);
    const inAt = a.inAt + phase(payload.byteOffset + e0 * 2);
    u8.set(payload.subarray(e0 * 2, (e0 + len) * 2), inAt);
    decode(inAt, len, a.decodedAt);
    k.accumulate(a.decodedAt, len, acc.byteOffset + (accOffset + e0) * 8, weight);
  }
  return whole;
}
