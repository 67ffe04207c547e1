/**
 * What the codecs' WebAssembly kernels (int8-simd.ts, half-simd.ts) share: the part of the
 * WebAssembly JS API they use, compiling an embedded module, and where to put scratch bytes.
 */

/** The part of the WebAssembly JS API used here (TypeScript's ES2023 lib and @types/node 20 do
 * not declare it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}
export const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

export const PAGE = 64 * 1024;
export const align16 = (n: number) => Math.ceil(n / 16) * 16;
export const align4k = (n: number) => Math.ceil(n / 4096) * 4096;

/**
 * Where in a 4 KiB-aligned scratch region to put bytes that will be copied to JS address `to`:
 * half a page away from it modulo 4096. A copy whose source and destination sit at (nearly) the
 * same offset within a page runs ~15× slower here (4K aliasing: measured 2.2 ms instead of
 * 0.14 ms per 4 MiB), and large ArrayBuffers and WebAssembly memories both start on a page.
 */
export const phase = (to: number) => ((to + 2048) & 4095) & ~15;

/** Compiles an embedded module (base64); null where WebAssembly or its SIMD is not available. */
export function compileWasm(base64: string): object | null {
  try {
    return wasm ? new wasm.Module(Buffer.from(base64, 'base64')) : null;
  } catch {
    return null;
  }
}

/** An instance of `module` on `memory` (imported as env.memory), with its exports. */
export function instantiateWasm<K>(module: object, memory: WasmMemory): { memory: WasmMemory; k: K } {
  const inst = new wasm!.Instance(module, { env: { memory } });
  return { memory, k: inst.exports as K };
}

/**
 * A WebAssembly memory of a fixed size of at least `bytes` (so views into it never detach);
 * null when it is beyond 4 GiB or cannot be had.
 */
export function fixedMemory(bytes: number): WasmMemory | null {
  const pages = Math.ceil(bytes / PAGE);
  if (!wasm || pages > 65536) return null;
  try {
    return new wasm.Memory({ initial: pages, maximum: pages });
  } catch {
    return null;
  }
}
