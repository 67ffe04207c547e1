/**
 * Kernels written as plain JS loops over the backend's own memory (the wasm heap, or the cpu
 * backend's typed arrays), for the CPU backends' cost model. On wasm each stock elementwise op
 * over a conv activation costs a pass plus per-op overhead, a reduction over the batch axes
 * (a bias gradient) costs several passes, and a batch⇄channel-swapped convolution for a filter
 * gradient runs at a third of the matmul rate. A JS loop over a typed array runs at about a
 * nanosecond per element and does several of those passes in one. Measured in
 * docs/bench/training.md; checked against finite differences in gradients.test.ts.
 *
 * - `GradpoolActPoolGrad` {dy, z, y} → [dz, db]: the backward pass of act → 2×2/2 max pool
 *   (or no pool): the gradient goes to every element of a window equal to its maximum, masked
 *   by the ReLU at the pooled position (y > 0), and db = Σ dz over all but the channel axis.
 * - `GradpoolSoftmaxXent` {logits, labels} → [mean loss, dlogits]: the loss and its gradient
 *   in one pass per row.
 * - `GradpoolSoftmaxXentT` {logitsT, labels} → [loss, dzT, dz, db]: the same from feature-major
 *   logits [C, m], with the output layer's bias gradient (fast-step.ts).
 * - `GradpoolTransposeFrom` (attrs values [r, c], a JS Float32Array) → its transpose [c, r]
 *   in the backend: a parameter or batch matrix is read once, never copied in as it is.
 * - `GradpoolTranspose2d`, `GradpoolBiasAct`, `GradpoolActGradT`: the feature-major dense
 *   layers of ops.ts (denseActT): a blocked transpose, bias + ReLU over rows, and its backward
 *   (masked dy in both layouts + the bias gradient).
 * - `GradpoolGemm` {a, b, bias?} (wasm with WebAssembly SIMD only) → a · b [M, N], a [M, K] or,
 *   `aT`, aᵀ stored [K, M]; b [K, N]; bias added per column, then ReLU when `relu`
 *   (gemm-simd.wat: the same bytes as tf.matMul, without XNNPACK's packed copy of b).
 * - `GradpoolActGrad` {dy, y} → [dz, db]: ReLU backward of sample-major [m, n] activations
 *   (dz = dy where y > 0, else +0) and db [n] = column sums of dz.
 * - `GradpoolSoftmaxXentDb` {logits, labels} → [loss, dz, db]: GradpoolSoftmaxXent with the
 *   output layer's bias gradient (column sums of dz).
 * - `GradpoolFlipFilter` {w} → the kernel of a conv's input gradient: w [k, k, Ci, Co] flipped
 *   in space, channels swapped ([k, k, Co, Ci]); one copy instead of wasm's Reverse + Transpose.
 * - `GradpoolIm2col` {x} → [N·H·W, k·k·C]: the same, untransposed (for small C).
 * - `GradpoolIm2colT` {x} → cols [k·k·C, N·H·W]: the transposed im2col matrix of a stride-1
 *   'same' convolution, row (i·k + j)·C + c holding x[n, y + i − pt, x + j − pl, c] (zero
 *   outside), so that a filter gradient is one plain matmul cols · dy[N·H·W, Co].
 *
 * Outputs start zeroed unless the kernel writes every element. Every loop runs in a fixed
 * order with float32 stores (db accumulates in float64, then rounds once), so results are the
 * same bytes in every process.
 */
import * as tf from '@tensorflow/tfjs';
import { ACT_POOL_SIMD_WASM_BASE64 } from './act-pool-simd.wasm.js';
import { GEMM_SIMD_WASM_BASE64 } from './gemm-simd.wasm.js';

type Info = tf.TensorInfo;

interface WasmLike extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(info: Info): Float32Array;
}
interface CpuLike extends tf.KernelBackend {
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): Info;
}

/**
 * Runs `compute(inputs, outputs)` with Float32Array views of the inputs and fresh zeroed
 * outputs of the given shapes, on either backend.
 */
function heapKernel(
  backendName: string,
  backend: tf.KernelBackend,
  inputs: Info[],
  outShapes: number[][],
  compute: (ins: Float32Array[], outs: Float32Array[]) => void,
  zeroed = true,
): Info[] {
  const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
  if (backendName === 'wasm') {
    const b = backend as WasmLike;
    // Allocate first: growing the heap detaches earlier views.
    const outs = outShapes.map((s) => b.makeOutput(s, 'float32'));
    const outViews = outs.map((o) => b.typedArrayFromHeap(o));
    if (zeroed) for (const v of outViews) v.fill(0);
    compute(
      inputs.map((i) => b.typedArrayFromHeap(i)),
      outViews,
    );
    return outs;
  }
  const b = backend as CpuLike;
  const outViews = outShapes.map((s) => new Float32Array(size(s)));
  compute(
    inputs.map((i) => b.readSync(i.dataId) as Float32Array),
    outViews,
  );
  return outShapes.map((s, k) => b.makeTensorInfo(s, 'float32', outViews[k]));
}

/**
 * -1 (all bits) when the float32 with bits `t` is > 0, else 0: 1 ≤ t ≤ 0x7f800000 as an int32
 * (positive denormals to +∞; ±0, negatives and NaNs give 0). `x > 0 ? v : 0` without a branch
 * (on random activations the branch mispredicts half the time): `bits(v) & positiveMask(t)`
 * gives the same bits.
 */
function positiveMask(t: number): number {
  return ((t - 0x7f800001) >> 31) & ~((t | (t - 1)) >> 31);
}

/**
 * dz and db of act → pool (see the file comment). z, y NHWC; pool 1 (none) or 2. `planar`:
 * dz is written channel-planar ([C, N·H·W]) instead of NHWC.
 */
function actPoolGrad(dy: Float32Array, z: Float32Array, y: Float32Array, dz: Float32Array, db: Float32Array, shape: number[], pool: number, relu: boolean, planar: boolean): void {
  const c = shape[shape.length - 1];
  const pixels = z.length / c;
  const chStride = planar ? pixels : 1;
  const pixStride = planar ? 1 : c;
  const acc = new Float64Array(c);
  if (pool === 1) {
    for (let px = 0; px < pixels; px++) {
      const p = px * c;
      for (let ch = 0; ch < c; ch++) {
        const g = relu && !(z[p + ch] > 0) ? 0 : dy[p + ch];
        dz[ch * chStride + px * pixStride] = g;
        acc[ch] += g;
      }
    }
  } else {
    // Branch-free on the float bits (see positiveMask): which of a window's four values equals
    // its maximum, and whether the ReLU passed it, are data-dependent and unpredictable. Every
    // position of a window is written (dz needs no zeroing when h and w are even). A match is
    // bit equality with y (MaxPool copies the maximum); exact ties all get the gradient.
    const [n, h, w] = shape;
    const ho = h >> 1;
    const wo = w >> 1;
    const zi = new Int32Array(z.buffer, z.byteOffset, z.length);
    const yi = new Int32Array(y.buffer, y.byteOffset, y.length);
    const dyi = new Int32Array(dy.buffer, dy.byteOffset, dy.length);
    const dzi = new Int32Array(dz.buffer, dz.byteOffset, dz.length);
    const rowC = w * c;
    const down = w * pixStride;
    for (let b = 0; b < n; b++) {
      for (let oy = 0; oy < ho; oy++) {
        let o = (b * ho + oy) * wo * c;
        let p0 = (b * h + 2 * oy) * w;
        for (let ox = 0; ox < wo; ox++, o += c, p0 += 2) {
          const r0 = p0 * c;
          const r1 = r0 + rowC;
          const dBase = p0 * pixStride;
          for (let ch = 0; ch < c; ch++) {
            const yb = yi[o + ch];
            // dy, or +0 where the ReLU output is not > 0 (bits, and the same value as a float).
            const keep = relu ? positiveMask(yb) : -1;
            const gb = dyi[o + ch] & keep;
            const q0 = r0 + ch;
            const q2 = r1 + ch;
            // ~((t | -t) >> 31) is -1 where t = 0 (equal bits), else 0.
            let t = zi[q0] ^ yb;
            const m0 = ~((t | -t) >> 31);
            t = zi[q0 + c] ^ yb;
            const m1 = ~((t | -t) >> 31);
            t = zi[q2] ^ yb;
            const m2 = ~((t | -t) >> 31);
            t = zi[q2 + c] ^ yb;
            const m3 = ~((t | -t) >> 31);
            const d = dBase + ch * chStride;
            dzi[d] = gb & m0;
            dzi[d + pixStride] = gb & m1;
            dzi[d + down] = gb & m2;
            dzi[d + down + pixStride] = gb & m3;
            // The old `s += g` per match: up to four copies of g and +0s, exact in any order.
            acc[ch] += dz[d] + dz[d + pixStride] + dz[d + down] + dz[d + down + pixStride];
          }
        }
      }
    }
  }
  for (let ch = 0; ch < c; ch++) db[ch] = acc[ch];
}

/** The part of the WebAssembly JS API used here (TypeScript's ES2023 lib and @types/node 20 do
 * not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
interface WasmModuleLike {
  asm?: { memory?: { readonly buffer: ArrayBuffer } };
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}
type ActPoolSimd = (dy: number, z: number, y: number, dz: number, acc: number, n: number, h: number, w: number, c: number, relu: number, planar: number) => void;
type GemmSimd = (a: number, sai: number, sak: number, b: number, ldb: number, c: number, ldc: number, bias: number, flags: number, m: number, n: number, k: number, scratch: number) => void;
let actPoolSimd: ActPoolSimd | null | undefined;
let gemmSimd: GemmSimd | null | undefined;
/** Turns the SIMD act/pool kernel off (tests compare it with the JS loop). */
export function setActPoolSimd(on: boolean): void {
  actPoolSimd = on ? undefined : null;
}
/** Turns the SIMD matmul off (the hand-written dense steps then use tf.matMul; tests compare). */
export function setGemmSimd(on: boolean): void {
  gemmSimd = on ? undefined : null;
}

/** True when the SIMD act/pool kernel runs on the active backend (wasm, SIMD available). */
export function actPoolSimdActive(): boolean {
  return tf.getBackend() === 'wasm' && actPoolSimdFor(tf.backend()) !== null;
}

/** True when `GradpoolGemm` runs on the active backend (wasm, SIMD available). */
export function gemmSimdActive(): boolean {
  return installed && tf.getBackend() === 'wasm' && gemmSimdFor(tf.backend()) !== null;
}

/**
 * The export `name` of an embedded module instantiated on tfjs-backend-wasm's own memory, or
 * null where that memory is not reachable or the engine has no WebAssembly SIMD.
 */
function instantiateOnHeap<F>(backend: tf.KernelBackend, base64: string, name: string): F | null {
  const wasm = (backend as unknown as { wasm?: WasmModuleLike }).wasm;
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!api || !wasm?.asm?.memory) return null;
  try {
    const inst = new api.Instance(new api.Module(Buffer.from(base64, 'base64')), { env: { memory: wasm.asm.memory } });
    return inst.exports[name] as F;
  } catch {
    return null;
  }
}

/** The memory the SIMD modules were instantiated on; a new wasm backend brings a new one. */
let simdMemory: object | undefined;
function onMemory(memory: object): void {
  if (memory === simdMemory) return;
  simdMemory = memory;
  if (actPoolSimd !== null) actPoolSimd = undefined;
  if (gemmSimd !== null) gemmSimd = undefined;
}

/** act-pool-simd.wat on the backend's memory, or null (then the JS loop runs). */
function actPoolSimdFor(backend: tf.KernelBackend): { run: ActPoolSimd; wasm: WasmModuleLike } | null {
  const wasm = (backend as unknown as { wasm?: WasmModuleLike }).wasm;
  if (actPoolSimd === null || !wasm?.asm?.memory) return null;
  onMemory(wasm.asm.memory);
  if (actPoolSimd === undefined) actPoolSimd = instantiateOnHeap<ActPoolSimd>(backend, ACT_POOL_SIMD_WASM_BASE64, 'actPoolGrad2');
  return actPoolSimd ? { run: actPoolSimd, wasm } : null;
}

/** gemm-simd.wat on the backend's memory, or null. */
function gemmSimdFor(backend: tf.KernelBackend): GemmSimd | null {
  const memory = (backend as unknown as { wasm?: WasmModuleLike }).wasm?.asm?.memory;
  if (gemmSimd === null || !memory) return null;
  onMemory(memory);
  if (gemmSimd === undefined) gemmSimd = instantiateOnHeap<GemmSimd>(backend, GEMM_SIMD_WASM_BASE64, 'gemm');
  return gemmSimd;
}

/**
 * actPoolGrad for pool 2, C % 4 == 0, on the wasm heap: the same bytes from act-pool-simd.wat
 * (2–8× faster: four channels per instruction, no JS bounds checks). Returns false when it
 * cannot run.
 */
function actPoolGradSimd(backend: tf.KernelBackend, dy: Float32Array, z: Float32Array, y: Float32Array, dz: Float32Array, db: Float32Array, shape: number[], relu: boolean, planar: boolean): boolean {
  const [n, h, w, c] = shape;
  if (c % 4 !== 0) return false;
  const simd = actPoolSimdFor(backend);
  if (!simd) return false;
  // Byte offsets before the allocation: growing the memory detaches the views (a detached
  // view's byteOffset reads 0), the offsets stay valid.
  const [pdy, pz, py, pdz, pdb] = [dy.byteOffset, z.byteOffset, y.byteOffset, dz.byteOffset, db.byteOffset];
  const acc = simd.wasm._malloc(c * 8) >>> 0;
  try {
    const accView = new Float64Array(simd.wasm.asm!.memory!.buffer, acc, c);
    accView.fill(0);
    simd.run(pdy, pz, py, pdz, acc, n, h, w, c, relu ? 1 : 0, planar ? 1 : 0);
    const out = new Float64Array(simd.wasm.asm!.memory!.buffer, acc, c);
    const dbNow = new Float32Array(simd.wasm.asm!.memory!.buffer, pdb, c);
    for (let ch = 0; ch < c; ch++) dbNow[ch] = out[ch];
  } finally {
    simd.wasm._free(acc);
  }
  return true;
}

/** Scratch for the channel-planar copy of im2colT's input (reused; contents never read stale). */
let planarScratch = new Float32Array(0);

/**
 * Transposed im2col of a stride-1 'same' k×k convolution (see the file comment). Writes every
 * element. x is first copied channel-planar ([C, N·H·W]) so that each output row reads one
 * contiguous plane instead of striding over the whole activation once per row.
 */
function im2colT(x: Float32Array, out: Float32Array, shape: number[], k: number): void {
  const [n, h, w, c] = shape;
  const pt = (k - 1) >> 1;
  const pl = pt;
  const cols = n * h * w;
  let planar = x;
  if (c > 1) {
    if (planarScratch.length < x.length) planarScratch = new Float32Array(x.length);
    planar = planarScratch;
    for (let p = 0, q = 0; p < cols; p++) for (let ch = 0; ch < c; ch++, q++) planar[ch * cols + p] = x[q];
  }
  for (let i = 0; i < k; i++) {
    const dy = i - pt;
    // Rows of each image whose source row lies outside it.
    const y0 = Math.max(0, -dy);
    const y1 = Math.min(h, h - dy);
    for (let j = 0; j < k; j++) {
      const dx = j - pl;
      const x0 = Math.max(0, -dx);
      const x1 = Math.min(w, w - dx);
      // The whole row is the channel plane shifted by one flat offset; then the positions
      // whose source lies outside the image (or wrapped into a neighbouring row) are zeroed.
      const off = dy * w + dx;
      const lo = Math.max(0, -off);
      const hi = Math.min(cols, cols - off);
      for (let ch = 0; ch < c; ch++) {
        const row = ((i * k + j) * c + ch) * cols;
        const plane = ch * cols;
        out.set(planar.subarray(plane + lo + off, plane + hi + off), row + lo);
        out.fill(0, row, row + lo);
        out.fill(0, row + hi, row + cols);
        for (let b = 0; b < n; b++) {
          const img = row + b * h * w;
          if (y0 > 0) out.fill(0, img, img + y0 * w);
          if (y1 < h) out.fill(0, img + y1 * w, img + h * w);
          if (x0 > 0 || x1 < w) {
            for (let yy = y0; yy < y1; yy++) {
              const r = img + yy * w;
              for (let xx = 0; xx < x0; xx++) out[r + xx] = 0;
              for (let xx = x1; xx < w; xx++) out[r + xx] = 0;
            }
          }
        }
      }
    }
  }
}

/** im2col of a stride-1 'same' k×k convolution: [N·H·W, k·k·C], column (i·k + j)·C + c. */
function im2col(x: Float32Array, out: Float32Array, shape: number[], k: number): void {
  const [n, h, w, c] = shape;
  const pt = (k - 1) >> 1;
  const kkc = k * k * c;
  // One tap at a time: for each image row the valid columns are one contiguous run of the
  // source row, written with stride k·k·C; zeros around it.
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const dx = j - pt;
      const x0 = Math.max(0, -dx);
      const x1 = Math.min(w, w - dx);
      const tap = (i * k + j) * c;
      for (let b = 0; b < n; b++) {
        for (let yy = 0; yy < h; yy++) {
          const sy = yy + i - pt;
          const row = (b * h + yy) * w;
          if (sy < 0 || sy >= h) {
            for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) out[(row + xx) * kkc + tap + ch] = 0;
            continue;
          }
          const src = ((b * h + sy) * w + dx) * c;
          for (let xx = 0; xx < x0; xx++) for (let ch = 0; ch < c; ch++) out[(row + xx) * kkc + tap + ch] = 0;
          if (c === 1) {
            for (let xx = x0; xx < x1; xx++) out[(row + xx) * kkc + tap] = x[src + xx];
          } else {
            for (let xx = x0; xx < x1; xx++) for (let ch = 0; ch < c; ch++) out[(row + xx) * kkc + tap + ch] = x[src + xx * c + ch];
          }
          for (let xx = x1; xx < w; xx++) for (let ch = 0; ch < c; ch++) out[(row + xx) * kkc + tap + ch] = 0;
        }
      }
    }
  }
}

/**
 * Mean softmax cross-entropy of logits [m, C] against labels [m], and its gradient
 * (softmax − one-hot) / m, in one pass per row (float64 inside). `transposed`: logits and
 * grad are [C, m] (feature-major) instead, with the same arithmetic per sample.
 */
function softmaxXent(logits: Float32Array, labels: Int32Array, loss: Float32Array, grad: Float32Array, m: number, c: number, transposed = false): void {
  const rs = transposed ? 1 : c;
  const cs = transposed ? m : 1;
  let total = 0;
  const e = new Float64Array(c);
  for (let r = 0; r < m; r++) {
    const o = r * rs;
    let mx = -Infinity;
    for (let j = 0; j < c; j++) if (logits[o + j * cs] > mx) mx = logits[o + j * cs];
    let s = 0;
    for (let j = 0; j < c; j++) {
      e[j] = Math.exp(logits[o + j * cs] - mx);
      s += e[j];
    }
    const label = labels[r];
    total += Math.log(s) - (logits[o + label * cs] - mx);
    for (let j = 0; j < c; j++) grad[o + j * cs] = (e[j] / s - (j === label ? 1 : 0)) / m;
  }
  loss[0] = total / m;
}

/**
 * The loss end of a feature-major stack: from logitsT [C, m], the mean loss, its gradient
 * dzT [C, m] and dz [m, C], and db [C] = row sums of dzT (what transposing the logits,
 * GradpoolSoftmaxXent, transposing its gradient and a linear GradpoolActGradT gave).
 */
function softmaxXentT(logitsT: Float32Array, labels: Int32Array, loss: Float32Array, dzT: Float32Array, dz: Float32Array, db: Float32Array, m: number, c: number): void {
  softmaxXent(logitsT, labels, loss, dzT, m, c, true);
  transpose2d(dzT, dz, c, m);
  for (let j = 0; j < c; j++) {
    let s = 0;
    for (let r = 0; r < m; r++) s += dzT[j * m + r];
    db[j] = s;
  }
}

/**
 * out [c, r] = xᵀ for x [r, c]: eight source rows at a time (eight streaming reads, and
 * eight adjacent floats of each output row written together), in column blocks that keep
 * the eight rows' runs in cache. About 1 ns per element (a 32×32-blocked loop took ~3).
 */
function transpose2d(x: Float32Array, out: Float32Array, r: number, c: number): void {
  const JB = 256;
  let i = 0;
  for (; i + 8 <= r; i += 8) {
    const s0 = i * c;
    for (let j0 = 0; j0 < c; j0 += JB) {
      const j1 = Math.min(c, j0 + JB);
      for (let j = j0, d = j0 * r + i; j < j1; j++, d += r) {
        const s = s0 + j;
        out[d] = x[s];
        out[d + 1] = x[s + c];
        out[d + 2] = x[s + 2 * c];
        out[d + 3] = x[s + 3 * c];
        out[d + 4] = x[s + 4 * c];
        out[d + 5] = x[s + 5 * c];
        out[d + 6] = x[s + 6 * c];
        out[d + 7] = x[s + 7 * c];
      }
    }
  }
  for (; i < r; i++) {
    const s = i * c;
    for (let j = 0; j < c; j++) out[j * r + i] = x[s + j];
  }
}

/** y[i, j] = act(z[i, j] + b[i]) for z [r, m] (feature-major activations). */
function biasAct(z: Float32Array, b: Float32Array, y: Float32Array, r: number, m: number, relu: boolean): void {
  const yi = new Int32Array(y.buffer, y.byteOffset, y.length);
  for (let i = 0; i < r; i++) {
    const bi = b[i];
    const o = i * m;
    const e = o + m;
    for (let j = o; j < e; j++) y[j] = z[j] + bi;
    // ReLU on the bits: the same as v > 0 ? v : 0, without the unpredictable branch.
    if (relu) {
      for (let j = o; j < e; j++) {
        const t = yi[j];
        yi[j] = t & positiveMask(t);
      }
    }
  }
}

/** dz = dy where y > 0, else +0, over `len` elements, on the bits (as `relu && !(y > 0) ? 0 : dy`,
 * without the unpredictable branch); a copy of dy when not `relu`. */
function reluGrad(dy: Float32Array, y: Float32Array, dz: Float32Array, len: number, relu: boolean): void {
  if (!relu) {
    dz.set(dy.subarray(0, len));
    return;
  }
  const yi = new Int32Array(y.buffer, y.byteOffset, y.length);
  const dyi = new Int32Array(dy.buffer, dy.byteOffset, dy.length);
  const dzi = new Int32Array(dz.buffer, dz.byteOffset, dz.length);
  for (let j = 0; j < len; j++) dzi[j] = dyi[j] & positiveMask(yi[j]);
}

/**
 * Backward of biasAct for feature-major dy, y [r, m]: dzT [r, m] (ReLU-masked dy), its
 * transpose dz [m, r], and db [r] = row sums of dzT.
 */
function actGradT(dy: Float32Array, y: Float32Array, dzT: Float32Array, dz: Float32Array, db: Float32Array, r: number, m: number, relu: boolean): void {
  reluGrad(dy, y, dzT, r * m, relu);
  for (let i = 0; i < r; i++) {
    const o = i * m;
    let s = 0;
    for (let j = 0; j < m; j++) s += dzT[o + j];
    db[i] = s;
  }
  transpose2d(dzT, dz, r, m);
}

/**
 * Backward of a ReLU for sample-major dy, y [m, n]: dz = dy where y > 0, else +0 (on the bits,
 * as actGradT), and db [n] = column sums of dz in sample order (float64, as actGradT's rows).
 */
function actGrad(dy: Float32Array, y: Float32Array, dz: Float32Array, db: Float32Array, m: number, n: number, relu: boolean): void {
  reluGrad(dy, y, dz, m * n, relu);
  columnSums(dz, db, m, n);
}

/** db[j] = Σ_r x[r, j] for x [m, n], summed in row order in float64, rounded once. */
function columnSums(x: Float32Array, db: Float32Array, m: number, n: number): void {
  const acc = new Float64Array(n);
  for (let r = 0; r < m; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) acc[j] += x[o + j];
  }
  for (let j = 0; j < n; j++) db[j] = acc[j];
}

/** out [kh, kw, Co, Ci] = w [kh, kw, Ci, Co] flipped in space with its channels swapped. */
function flipFilter(w: Float32Array, out: Float32Array, kh: number, kw: number, ci: number, co: number): void {
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const src = (i * kw + j) * ci * co;
      const dst = ((kh - 1 - i) * kw + (kw - 1 - j)) * co * ci;
      for (let a = 0; a < ci; a++) for (let b = 0; b < co; b++) out[dst + b * ci + a] = w[src + a * co + b];
    }
  }
}

let installed = false;

/** Registers the heap kernels on the wasm and cpu backends (idempotent). */
export function installHeapKernels(): void {
  if (installed) return;
  installed = true;
  tf.registerKernel({
    kernelName: 'GradpoolGemm',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { a, b, bias } = inputs as Record<string, Info | undefined>;
      const { aT, relu } = attrs as unknown as { aT: boolean; relu: boolean };
      const [k, n] = b!.shape;
      const m = aT ? a!.shape[1] : a!.shape[0];
      if ((aT ? a!.shape[0] : a!.shape[1]) !== k) throw new Error(`GradpoolGemm: inner sizes ${a!.shape} / ${b!.shape} (aT ${aT})`);
      const run = gemmSimdFor(backend as tf.KernelBackend);
      if (!run) throw new Error('GradpoolGemm: no WebAssembly SIMD on the wasm backend');
      const wasm = (backend as unknown as { wasm: WasmModuleLike }).wasm;
      const ins = bias ? [a!, b!, bias] : [a!, b!];
      // B is always packed (contiguous 8-column strips: ~1.3–1.6× faster from 128 columns up,
      // 2× for 10); A only when transposed, large and read by many strips (measured in
      // docs/bench/training.md; below that the copy costs what it saves).
      const packA = aT && m * k >= 1 << 17 && n >= 256;
      const scratchBytes = 4 * (8 * k * Math.ceil(n / 8) + (packA ? 4 * k * Math.ceil(m / 4) : 0));
      return heapKernel('wasm', backend as tf.KernelBackend, ins, [[m, n]], ([av, bv, biasv], [c]) => {
        // Byte offsets first: the allocation may grow the memory, which detaches the views
        // (a detached view's byteOffset reads 0); the offsets themselves stay valid.
        const [pa, pb, pc, pbias] = [av.byteOffset, bv.byteOffset, c.byteOffset, biasv?.byteOffset ?? 0];
        const scratch = wasm._malloc(scratchBytes) >>> 0;
        if (scratch === 0) throw new Error(`GradpoolGemm: could not allocate ${scratchBytes} bytes of scratch`);
        try {
          const flags = (bias ? 2 : 0) | (relu ? 4 : 0) | (packA ? 8 : 0) | 16;
          run(pa, aT ? 1 : k, aT ? m : 1, pb, n, pc, n, pbias, flags, m, n, k, scratch);
        } finally {
          wasm._free(scratch);
        }
      }, false)[0];
    },
  });
  for (const backendName of ['wasm', 'cpu']) {
    tf.registerKernel({
      kernelName: 'GradpoolActPoolGrad',
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { dy, z, y } = inputs as Record<string, Info>;
        const { pool, relu, planar } = attrs as unknown as { pool: number; relu: boolean; planar?: boolean };
        const c = z.shape[z.shape.length - 1];
        const dzShape = planar ? [c, z.shape.slice(0, -1).reduce((p, d) => p * d, 1)] : z.shape;
        // Every element of dz is written unless pooling leaves an odd last row or column.
        const zeroed = pool === 2 && (z.shape[1] % 2 === 1 || z.shape[2] % 2 === 1);
        return heapKernel(
          backendName,
          backend as tf.KernelBackend,
          [dy, z, y],
          [dzShape, [c]],
          ([dyv, zv, yv], [dzv, dbv]) => {
            const simd = backendName === 'wasm' && pool === 2 && actPoolGradSimd(backend as tf.KernelBackend, dyv, zv, yv, dzv, dbv, z.shape, relu, planar === true);
            if (!simd) actPoolGrad(dyv, zv, yv, dzv, dbv, z.shape, pool, relu, planar === true);
          },
          zeroed,
        );
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolIm2colT',
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { x } = inputs as Record<string, Info>;
        const { k } = attrs as unknown as { k: number };
        const [n, h, w, c] = x.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [x], [[k * k * c, n * h * w]], ([xv], [out]) => im2colT(xv, out, x.shape, k), false)[0];
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolSoftmaxXent',
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const { logits, labels } = inputs as Record<string, Info>;
        const [m, c] = logits.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [logits, labels], [[], [m, c]], ([lv, yv], [lossv, gv]) =>
          softmaxXent(lv, yv as unknown as Int32Array, lossv, gv, m, c),
        );
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolSoftmaxXentT',
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const { logitsT, labels } = inputs as Record<string, Info>;
        const [c, m] = logitsT.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [logitsT, labels], [[], [c, m], [m, c], [c]], ([lv, yv], [lossv, dzT, dz, db]) =>
          softmaxXentT(lv, yv as unknown as Int32Array, lossv, dzT, dz, db, m, c),
        false);
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolSoftmaxXentDb',
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const { logits, labels } = inputs as Record<string, Info>;
        const [m, c] = logits.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [logits, labels], [[], [m, c], [c]], ([lv, yv], [lossv, gv, db]) => {
          softmaxXent(lv, yv as unknown as Int32Array, lossv, gv, m, c);
          columnSums(gv, db, m, c);
        }, false);
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolActGrad',
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { dy, y } = inputs as Record<string, Info>;
        const { relu } = attrs as unknown as { relu: boolean };
        const [m, n] = y.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [dy, y], [[m, n], [n]], ([dyv, yv], [dz, db]) => actGrad(dyv, yv, dz, db, m, n, relu), false);
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolTransposeFrom',
      backendName,
      kernelFunc: ({ backend, attrs }) => {
        const { values, rows, cols } = attrs as unknown as { values: Float32Array; rows: number; cols: number };
        return heapKernel(backendName, backend as tf.KernelBackend, [], [[cols, rows]], (_, [out]) => transpose2d(values, out, rows, cols), false)[0];
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolTranspose2d',
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const { x } = inputs as Record<string, Info>;
        const [r, c] = x.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [x], [[c, r]], ([xv], [out]) => transpose2d(xv, out, r, c), false)[0];
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolBiasAct',
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { z, b } = inputs as Record<string, Info>;
        const { relu } = attrs as unknown as { relu: boolean };
        const [r, m] = z.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [z, b], [[r, m]], ([zv, bv], [yv]) => biasAct(zv, bv, yv, r, m, relu), false)[0];
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolActGradT',
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { dy, y } = inputs as Record<string, Info>;
        const { relu } = attrs as unknown as { relu: boolean };
        const [r, m] = y.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [dy, y], [[r, m], [m, r], [r]], ([dyv, yv], [dzT, dz, db]) => actGradT(dyv, yv, dzT, dz, db, r, m, relu), false);
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolFlipFilter',
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const { w } = inputs as Record<string, Info>;
        const [kh, kw, ci, co] = w.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [w], [[kh, kw, co, ci]], ([wv], [out]) => flipFilter(wv, out, kh, kw, ci, co), false)[0];
      },
    });
    tf.registerKernel({
      kernelName: 'GradpoolIm2col',
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { x } = inputs as Record<string, Info>;
        const { k } = attrs as unknown as { k: number };
        const [n, h, w, c] = x.shape;
        return heapKernel(backendName, backend as tf.KernelBackend, [x], [[n * h * w, k * k * c]], ([xv], [out]) => im2col(xv, out, x.shape, k), false)[0];
      },
    });
  }
}

/** True when the heap kernels can run on the active backend. */
export function heapKernelsActive(): boolean {
  return installed && (tf.getBackend() === 'wasm' || tf.getBackend() === 'cpu');
}

/**
 * [dz, db] of act → pool (2×2/2 max, or 1: none) given upstream dy, pre-pool z, output y.
 * `planar`: dz as [C, N·H·W] (for filterGradPlanar) instead of z's shape.
 */
export function actPoolGradOp(dy: tf.Tensor, z: tf.Tensor, y: tf.Tensor, pool: 1 | 2, relu: boolean, planar = false): [tf.Tensor, tf.Tensor1D] {
  const r = tf.engine().runKernel('GradpoolActPoolGrad', { dy, z, y }, { pool, relu, planar }) as unknown as tf.Tensor[];
  return [r[0], r[1] as tf.Tensor1D];
}

/**
 * a · b for 2-D a, b: GradpoolGemm where it runs (the same bytes, without XNNPACK's per-call
 * packing of b), else tf.matMul.
 */
function matMulHeap(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return gemmSimdActive() ? (tf.engine().runKernel('GradpoolGemm', { a, b }, { aT: false, relu: false }) as tf.Tensor2D) : tf.matMul(a, b);
}

/** Filter gradient [k, k, Ci, Co] of a stride-1 'same' conv: im2colT(x) · dy. */
export function filterGradHeap(x: tf.Tensor4D, dy: tf.Tensor4D, k: number): tf.Tensor4D {
  const [n, h, w, ci] = x.shape;
  const co = dy.shape[3];
  const cols = tf.engine().runKernel('GradpoolIm2colT', { x }, { k }) as tf.Tensor2D;
  return tf.reshape(matMulHeap(cols, tf.reshape(dy, [n * h * w, co]) as tf.Tensor2D), [k, k, ci, co]);
}

/**
 * Filter gradient [k, k, Ci, Co] from a channel-planar dy [Co, N·H·W]: (dyP · im2col(x))ᵀ
 * (`im2colOfX`: that matrix when the caller already has it).
 * For small Ci (a first layer) this is the fast orientation: the matmul's packed operand is
 * the thin im2col matrix rather than dy, and no dy transpose is needed.
 */
export function filterGradPlanar(x: tf.Tensor4D, dyPlanar: tf.Tensor2D, k: number, im2colOfX?: tf.Tensor2D): tf.Tensor4D {
  const ci = x.shape[3];
  const co = dyPlanar.shape[0];
  const cols = im2colOfX ?? (tf.engine().runKernel('GradpoolIm2col', { x }, { k }) as tf.Tensor2D);
  return tf.reshape(tf.transpose(matMulHeap(dyPlanar, cols)), [k, k, ci, co]);
}

/** Mean softmax cross-entropy of logits [m, C] against int32 labels [m] (one heap kernel each way). */
export function softmaxCrossEntropyHeap(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const f = tf.customGrad((...args: unknown[]) => {
    const [lg, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const [loss, grad] = tf.engine().runKernel('GradpoolSoftmaxXent', { logits: lg, labels }, {}) as unknown as [tf.Scalar, tf.Tensor2D];
    save([grad]);
    return { value: loss, gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => tf.mul(saved[0], dy as tf.Tensor) };
  });
  return f(logits) as tf.Scalar;
}
