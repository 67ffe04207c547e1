import { HALF_SIMD_WASM_BASE64 } from './half-simd.wasm.js';
import { align4k, compileWasm, instantiateWasm, PAGE, phase, wasm, type WasmMemory } from './wasm.js';

/**
 * fp16 and bf16 encoding in WebAssembly SIMD (half-simd.wat), bit-identical to the scalar
 * `f32BitsToHalf` and `f32BitsToBf16`: one branchless pass eight elements at a time instead of a
 * branchy function call per element (the scalar fp16 encode took ~11 ns per element). The values
 * are copied into WebAssembly memory and the results out in tiles that stay in cache; the last
 * n mod 8 elements of a call are left to the scalar code (`tail`).
 */
interface Kernels {
  f16(src: number, n: number, dst: number): void;
  bf16(src: number, n: number, dst: number): void;
}

/** Elements per tile: 128 KiB of float32 in, 64 KiB of 16-bit values out. */
const TILE = 32 * 1024;
/** Scratch: the float32 tile at 0, then the output tile with a page of slack for `phase`. */
const OUT_AT = align4k(TILE * 4 + 4096);
const BYTES = OUT_AT + TILE * 2 + 4096 + 16;

let instance: { memory: WasmMemory; k: Kernels } | null | undefined;
/** The one instance (one JS thread, calls never interleave), or null without WebAssembly SIMD. */
function kernels(): { memory: WasmMemory; k: Kernels } | null {
  if (instance === undefined) {
    const module = compileWasm(HALF_SIMD_WASM_BASE64);
    instance = module ? instantiateWasm<Kernels>(module, new wasm!.Memory({ initial: Math.ceil(BYTES / PAGE) })) : null;
  }
  return instance;
}

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
