import { FEEDBACK_SIMD_WASM_BASE64 } from './feedback-simd.wasm.js';
import { align4k, compileWasm, fixedMemory, instantiateWasm, phase, type WasmMemory } from './wasm.js';

/**
 * topk error feedback's three vectors (residual, compensated, pending) in one WebAssembly memory
 * of their own, and its per-round pass `compensate` in WebAssembly SIMD (feedback-simd.wat): the
 * same loop in TypeScript took ~120 ms per 25M floats here, a third of a topk member's CPU per
 * round. The gradient is copied in by tiles that stay in cache. The memory has a fixed size, so
 * the views never detach. The topk encode's candidate pass runs there too (`candidates`), on a
 * compensated chunk it is handed.
 */
interface Kernels {
  compensate(g: number, r: number, c: number, p: number, n: number): void;
  candidates(src: number, n: number, boundBits: number, idx: number, mag: number, room: number): number;
}

/** Buffers by their memory's buffer: which one holds a vector handed to the topk encode. */
const held = new WeakMap<ArrayBufferLike, FeedbackBuffers>();
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Elements per tile of the gradient: 128 KiB. */
const TILE = 32 * 1024;

let compiled: object | null | undefined;

export class FeedbackBuffers {
  private constructor(
    private readonly memory: WasmMemory,
    private readonly k: Kernels,
    readonly size: number,
    /** Byte offsets of the three vectors, of the gradient tile's region and of the candidates'
     * indices and magnitudes (room for `candidateRoom` of each). */
    private readonly at: { residual: number; compensated: number; pending: number; scratch: number; candIdx: number; candMag: number },
    private readonly candidateRoom: number,
  ) {
    held.set(memory.buffer, this);
  }

  /** The buffers whose memory `v` is a view of, if any. */
  static holding(v: Float32Array): FeedbackBuffers | null {
    return held.get(v.buffer) ?? null;
  }

  /** Buffers for `size` floats, or null where WebAssembly SIMD is unavailable or they do not fit. */
  static create(size: number): FeedbackBuffers | null {
    if (compiled === undefined) compiled = compileWasm(FEEDBACK_SIMD_WASM_BASE64);
    if (!compiled) return null;
    const bytes = align4k(size * 4);
    const room = Math.min(size, 1 << 20);
    const scratch = 3 * bytes;
    const candIdx = align4k(scratch + TILE * 4 + 4096 + 16);
    const candMag = candIdx + align4k(room * 4);
    const at = { residual: 0, compensated: bytes, pending: 2 * bytes, scratch, candIdx, candMag };
    const memory = fixedMemory(candMag + room * 4);
    if (!memory) return null;
    return new FeedbackBuffers(memory, instantiateWasm<Kernels>(compiled, memory).k, size, at, room);
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

  /**
   * The topk encode's candidate pass over `src` (a view of this memory): the indices and
   * magnitudes, in index order, of its elements with |x| ≥ `bound` (a float32, not NaN), at most
   * `room` of them. -1 when there are more, -2 when one of them is NaN; null when it cannot run
   * here (src is not in this memory, or room is beyond the space kept for candidates).
   */
  candidates(src: Float32Array, bound: number, room: number): { count: number; idx: Uint32Array; mag: Float32Array } | -1 | -2 | null {
    if (src.buffer !== this.memory.buffer || room > this.candidateRoom) return null;
    F32[0] = bound;
    const count = this.k.candidates(src.byteOffset, src.length, U32[0], this.at.candIdx, this.at.candMag, room);
    if (count < 0) return count as -1 | -2;
    return { count, idx: new Uint32Array(this.memory.buffer, this.at.candIdx, count), mag: new Float32Array(this.memory.buffer, this.at.candMag, count) };
  }
}
