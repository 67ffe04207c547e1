import { FEEDBACK_SIMD_WASM_BASE64 } from './feedback-simd.wasm.js';
import { align4k, compileWasm, instantiateWasm, PAGE, phase, wasm, type WasmMemory } from './wasm.js';

/**
 * topk error feedback's three vectors (residual, compensated, pending) in one WebAssembly memory
 * of their own, and its per-round pass `compensate` in WebAssembly SIMD (feedback-simd.wat): the
 * same loop in TypeScript took ~120 ms per 25M floats here, a third of a topk member's CPU per
 * round. The gradient is copied in by tiles that stay in cache. The memory has a fixed size, so
 * the views never detach.
 */
interface Kernels {
  compensate(g: number, r: number, c: number, p: number, n: number): void;
}

/** Elements per tile of the gradient: 128 KiB. */
const TILE = 32 * 1024;

let compiled: object | null | undefined;

export class FeedbackBuffers {
  private constructor(
    private readonly memory: WasmMemory,
    private readonly k: Kernels,
    readonly size: number,
    /** Byte offsets of the three vectors and of the gradient tile's region. */
    private readonly at: { residual: number; compensated: number; pending: number; scratch: number },
  ) {}

  /** Buffers for `size` floats, or null where WebAssembly SIMD is unavailable or they do not fit. */
  static create(size: number): FeedbackBuffers | null {
    if (compiled === undefined) compiled = compileWasm(FEEDBACK_SIMD_WASM_BASE64);
    if (!compiled) return null;
    const bytes = align4k(size * 4);
    const at = { residual: 0, compensated: bytes, pending: 2 * bytes, scratch: 3 * bytes };
    const pages = Math.ceil((at.scratch + TILE * 4 + 4096 + 16) / PAGE);
    if (pages > 65536) return null;
    let memory: WasmMemory;
    try {
      memory = new wasm!.Memory({ initial: pages, maximum: pages });
    } catch {
      return null;
    }
    return new FeedbackBuffers(memory, instantiateWasm<Kernels>(compiled, memory).k, size, at);
  }

  view(which: 'residual' | 'compensated' | 'pending'): Float32Array {
    return new Float32Array(this.memory.buffer, this.at[which], this.size);
  }

  /** compensated = pending = grad + residual (float32). */
  compensate(grad: Float32Array): void {
    const n = this.size;
    for (let e0 = 0; e0 < n; e0 += TILE) {
      const len = Math.min(TILE, n - e0);
      const tileAt = this.at.scratch + phase(grad.byteOffset + e0 * 4);
      new Float32Array(this.memory.buffer, tileAt, len).set(grad.subarray(e0, e0 + len));
      this.k.compensate(tileAt, this.at.residual + e0 * 4, this.at.compensated + e0 * 4, this.at.pending + e0 * 4, len);
    }
  }
}
