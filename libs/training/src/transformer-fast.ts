/**
 * Hand-written training step (forward + backward, no gradient tape) of the transformer LM
 * (transformer-lm.model.ts) on wasm with WebAssembly SIMD.
 *
 * Through the tape a step cost ~3× its matmul time: every op (layer norm alone is ~8 tf ops,
 * attention a 3-D transpose, a split, batched matmuls, mask, softmax) is a separate pass plus
 * its gradient's passes and the tape's bookkeeping, and each matmul packs its right operand.
 * Here the whole step runs in one WebAssembly memory of its own, on plain Float32Array views:
 * - every product through gemm-simd.wat (GradpoolGemm's module, instantiated on this memory):
 *   the dense projections sample-major ([B·T, features] rows) with the bias (and the MLP's
 *   ReLU) fused in the store, weight gradients from transposed left operands read in place,
 *   attention as five small products per (sequence, head) on strided views of the qkv rows;
 * - layer norms, the causal softmax, the loss, embedding gather/scatter and the residual adds
 *   as JS loops, forward and backward each in one pass per row.
 * The token embedding is a gather (the taped path multiplies a one-hot matrix). Every loop runs
 * in a fixed order with float32 stores (sums of reductions in float64, rounded once), so the
 * gradient is the same bytes in every process; it is not the taped path's bytes (different
 * summation orders), and is checked against finite differences like that one
 * (gradients.test.ts) and against the taped gradient to float32 rounding (transformer-lm.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { fastStepsActive, type FastStepResult } from './fast-step.js';
import { GEMM_SIMD_WASM_BASE64 } from './gemm-simd.wasm.js';
import { gemmSimdActive } from './heap-kernels.js';
import type { ParamEntry } from './layout.js';
import type { Batch } from './model.js';
import type { TransformerLmSpec } from './spec.js';

type Gemm = (a: number, sai: number, sak: number, b: number, ldb: number, c: number, ldc: number, bias: number, flags: number, m: number, n: number, k: number, scratch: number) => void;

interface WasmApi {
  Memory: new (desc: { initial: number }) => { buffer: ArrayBuffer; grow(pages: number): number };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

let enabled = true;
/** Turns the hand-written transformer step off (tests compare it with the taped path). */
export function setTransformerFastStep(on: boolean): void {
  enabled = on;
}

/** The module and its memory, or null where WebAssembly SIMD is missing. */
let engine: { gemm: Gemm; memory: { buffer: ArrayBuffer; grow(pages: number): number } } | null | undefined;
function getEngine(): typeof engine {
  if (engine !== undefined) return engine;
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  try {
    const memory = new api!.Memory({ initial: 1 });
    const inst = new api!.Instance(new api!.Module(Buffer.from(GEMM_SIMD_WASM_BASE64, 'base64')), { env: { memory } });
    engine = { gemm: inst.exports.gemm as Gemm, memory };
  } catch {
    engine = null;
  }
  return engine;
}

/** True when transformerFastStep runs (wasm backend with SIMD, fast steps on). */
export function transformerFastStepActive(): boolean {
  return enabled && fastStepsActive() && gemmSimdActive() && getEngine() != null;
}

/** Bump allocator of 16-byte-aligned float ranges (element offsets into the memory). */
class Arena {
  top = 4;
  alloc(n: number): number {
    const at = this.top;
    this.top += (n + 3) & ~3;
    return at;
  }
}

/**
 * Loss and per-tensor gradients of the transformer LM (layout of transformer-lm.model.ts) on
 * a checked batch (x, y: n·T token ids).
 */
export function transformerFastStep(spec: TransformerLmSpec, params: Float32Array, layout: readonly ParamEntry[], batch: Batch): FastStepResult | null {
  // Token ids outside [0, V) (a zero one-hot row on the taped path): leave those to the tape.
  for (let i = 0; i < batch.x.length; i++) {
    const t = batch.x[i];
    if (!(t >= 0 && t < spec.vocabSize && Number.isInteger(t))) return null;
  }
  const { vocabSize: V, contextLength: T, dModel: d, heads: H, layers: L } = spec;
  const f = spec.mlpRatio * d;
  const dh = d / H;
  const n = batch.n;
  const m = n * T;
  const d3 = 3 * d;
  const { gemm, memory } = getEngine()!;

  // ---- layout of the memory
  const ar = new Arena();
  const P = ar.alloc(params.length);
  const G = ar.alloc(params.length);
  const off = (i: number) => layout[i].offset;
  // Per-layer saved activations.
  const sv = Array.from({ length: L }, () => ({
    xhat1: ar.alloc(m * d),
    rstd1: ar.alloc(m),
    a1: ar.alloc(m * d),
    qkv: ar.alloc(m * d3),
    p: ar.alloc(n * H * T * T),
    merged: ar.alloc(m * d),
    xhat2: ar.alloc(m * d),
    rstd2: ar.alloc(m),
    a2: ar.alloc(m * d),
    u: ar.alloc(m * f),
    // Transposed weights for the input gradients.
    wqkvT: ar.alloc(d3 * d),
    woT: ar.alloc(d * d),
    wfcT: ar.alloc(f * d),
    wprT: ar.alloc(d * f),
  }));
  const xhatF = ar.alloc(m * d);
  const rstdF = ar.alloc(m);
  const aF = ar.alloc(m * d);
  const whT = ar.alloc(V * d);
  const h = ar.alloc(m * d); // residual stream
  const tmp = ar.alloc(m * d);
  const logits = ar.alloc(m * V);
  const dh0 = ar.alloc(m * d); // residual gradient
  const da = ar.alloc(m * d);
  const dqkv = ar.alloc(m * d3);
  const du = ar.alloc(m * f);
  const dmerged = ar.alloc(m * d);
  const sT = ar.alloc(T * T);
  const kvT = ar.alloc(dh * T);
  const dsT = ar.alloc(T * T);
  const one = ar.alloc(1);
  const maxMN = Math.max(d3, f, V, d, T);
  const maxK = Math.max(m, f, d3, V, T);
  const scratch = ar.alloc(maxK * (8 * Math.ceil(maxMN / 8) + 4 * Math.ceil(maxMN / 4)));
  const bytes = ar.top * 4;
  // The memory keeps its largest size (~40 MB at the bench's shape). A step that would not fit
  // in 32-bit WebAssembly memory (or a grow the engine refuses) goes through the tape instead.
  if (memory.buffer.byteLength < bytes) {
    try {
      if (bytes > 2 ** 31) throw new RangeError('too large');
      memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / 65536));
    } catch {
      return null;
    }
  }
  const F = new Float32Array(memory.buffer);
  F.set(params, P);
  F[one] = 1;
  const I32 = new Int32Array(memory.buffer);
  F.fill(0, G, G + params.length);

  /** C[M, N] = A · B (+ bias per column, ReLU): A through element strides, B rows of ldb. */
  const mm = (a: number, sai: number, sak: number, b: number, ldb: number, c: number, ldc: number, M: number, N: number, K: number, bias = -1, relu = false) => {
    const packA = sai === 1 && M * K >= 1 << 17 && N >= 256;
    gemm(4 * a, sai, sak, 4 * b, ldb, 4 * c, ldc, bias >= 0 ? 4 * bias : 0, (bias >= 0 ? 2 : 0) | (relu ? 4 : 0) | (packA ? 8 : 0) | 16, M, N, K, 4 * scratch);
  };
  /** y [m, out] = x [m, in] · w + b. */
  const dense = (x: number, w: number, b: number, y: number, nin: number, nout: number, relu = false) => mm(x, nin, 1, w, nout, y, nout, m, nout, nin, b, relu);
  /** Weight gradient dw [in, out] = xᵀ · dz, bias gradient db = Σ rows of dz, input gradient dx = dz · wᵀ. */
  const denseBack = (x: number, dz: number, wT: number, dw: number, db: number, dx: number, nin: number, nout: number) => {
    mm(x, 1, nin, dz, nout, dw, nout, nin, nout, m);
    colSums(dz, db, nout);
    if (dx >= 0) mm(dz, nout, 1, wT, nin, dx, nin, m, nin, nout);
  };
  /** out [c] = Σ rows of x [m, c]: 1 · x by the gemm (A a single 1.0 read with zero strides). */
  const colSums = (x: number, out: number, c: number) => gemm(4 * one, 0, 0, 4 * x, c, 4 * out, c, 0, 0, 1, c, m, 4 * scratch);
  const transposeInto = (src: number, dst: number, rows: number, cols: number, ld = cols) => {
    for (let i = 0; i < rows; i++) {
      const s = src + i * ld;
      for (let j = 0; j < cols; j++) F[dst + j * rows + i] = F[s + j];
    }
  };
  const addInto = (dst: number, src: number, len: number) => {
    const a = F.subarray(dst, dst + len);
    const b = F.subarray(src, src + len);
    for (let i = 0; i < len; i++) a[i] += b[i];
  };
  /** dz where y > 0, else +0, for a ReLU output y (bits 0 or those of a positive float): no branch. */
  const maskInto = (dz: number, y: number, len: number) => {
    const a = I32.subarray(dz, dz + len);
    const b = I32.subarray(y, y + len);
    for (let i = 0; i < len; i++) a[i] &= -b[i] >> 31;
  };
  /** a = LN(x) · g + b per row of x [m, d]; keeps x̂ and 1/σ. */
  const lnForward = (x: number, g: number, b: number, xhat: number, rstd: number, a: number) => {
    const X = F.subarray(x, x + m * d);
    const XH = F.subarray(xhat, xhat + m * d);
    const A = F.subarray(a, a + m * d);
    const gv = F.subarray(g, g + d);
    const bv = F.subarray(b, b + d);
    for (let r = 0, o = 0; r < m; r++, o += d) {
      let s = 0;
      for (let j = o; j < o + d; j++) s += X[j];
      const mean = Math.fround(s / d);
      let v = 0;
      for (let j = o; j < o + d; j++) {
        const c = Math.fround(X[j] - mean);
        v += c * c;
      }
      const rs = Math.fround(1 / Math.sqrt(Math.fround(v / d) + 1e-5));
      F[rstd + r] = rs;
      for (let j = 0; j < d; j++) {
        const xh = Math.fround(Math.fround(X[o + j] - mean) * rs);
        XH[o + j] = xh;
        A[o + j] = Math.fround(xh * gv[j]) + bv[j];
      }
    }
  };
  /** Backward of lnForward from da: dg, db into the gradient, dx added into dx. */
  const lnBackward = (daP: number, xhat: number, rstd: number, g: number, dg: number, db: number, dx: number) => {
    const accG = new Float64Array(d);
    const accB = new Float64Array(d);
    const DA = F.subarray(daP, daP + m * d);
    const XH = F.subarray(xhat, xhat + m * d);
    const DX = F.subarray(dx, dx + m * d);
    const gv = F.subarray(g, g + d);
    const dxh = new Float64Array(d);
    for (let r = 0, o = 0; r < m; r++, o += d) {
      let s1 = 0;
      let s2 = 0;
      for (let j = 0; j < d; j++) {
        const dy = DA[o + j];
        const xh = XH[o + j];
        accG[j] += dy * xh;
        accB[j] += dy;
        const t = Math.fround(dy * gv[j]);
        dxh[j] = t;
        s1 += t;
        s2 += t * xh;
      }
      const m1 = s1 / d;
      const m2 = s2 / d;
      const rs = F[rstd + r];
      for (let j = 0; j < d; j++) DX[o + j] += Math.fround(rs * (dxh[j] - m1 - XH[o + j] * m2));
    }
    for (let j = 0; j < d; j++) {
      F[dg + j] += accG[j];
      F[db + j] += accB[j];
    }
  };

  // ---- parameters (layout order: tok, pos, 12 per block, ln_f g/b, head w/b)
  const tokP = P + off(0);
  const posP = P + off(1);
  const blk = (l: number, k: number) => 2 + 12 * l + k;
  const lnFi = 2 + 12 * L;
  for (let l = 0; l < L; l++) {
    const s = sv[l];
    transposeInto(P + off(blk(l, 2)), s.wqkvT, d, d3);
    transposeInto(P + off(blk(l, 4)), s.woT, d, d);
    transposeInto(P + off(blk(l, 8)), s.wfcT, d, f);
    transposeInto(P + off(blk(l, 10)), s.wprT, f, d);
  }
  transposeInto(P + off(lnFi + 2), whT, d, V);

  // ---- forward
  const x = batch.x;
  for (let r = 0; r < m; r++) {
    const t = tokP + x[r] * d;
    const p = posP + (r % T) * d;
    for (let j = 0; j < d; j++) F[h + r * d + j] = F[t + j] + F[p + j];
  }
  const scale = 1 / Math.sqrt(dh);
  const R = 16;
  for (let l = 0; l < L; l++) {
    const s = sv[l];
    const par = (k: number) => P + off(blk(l, k));
    lnForward(h, par(0), par(1), s.xhat1, s.rstd1, s.a1);
    dense(s.a1, par(2), par(3), s.qkv, d, d3);
    for (let b = 0; b < n; b++) {
      for (let hd = 0; hd < H; hd++) {
        const q = s.qkv + b * T * d3 + hd * dh;
        const pp = s.p + (b * H + hd) * T * T;
        transposeInto(q + d, kvT, T, dh, d3); // Kᵀ [dh, T]
        // Causal: row block [i0, i1) needs keys j < i1 only (blocks of R rows).
        for (let i0 = 0; i0 < T; i0 += R) {
          const i1 = Math.min(i0 + R, T);
          mm(q + i0 * d3, d3, 1, kvT, T, sT + i0 * T, T, i1 - i0, i1, dh);
        }
        for (let i = 0; i < T; i++) {
          const row = sT + i * T;
          let mx = -Infinity;
          for (let j = 0; j <= i; j++) {
            const v = Math.fround(F[row + j] * scale);
            F[row + j] = v;
            if (v > mx) mx = v;
          }
          let sum = 0;
          for (let j = 0; j <= i; j++) {
            const e = Math.exp(F[row + j] - mx);
            F[row + j] = e;
            sum += e;
          }
          const o = pp + i * T;
          for (let j = 0; j <= i; j++) F[o + j] = F[row + j] / sum;
          for (let j = i + 1; j < T; j++) F[o + j] = 0;
        }
        for (let i0 = 0; i0 < T; i0 += R) {
          const i1 = Math.min(i0 + R, T);
          mm(pp + i0 * T, T, 1, q + 2 * d, d3, s.merged + (b * T + i0) * d + hd * dh, d, i1 - i0, dh, i1);
        }
      }
    }
    dense(s.merged, par(4), par(5), tmp, d, d);
    addInto(h, tmp, m * d);
    lnForward(h, par(6), par(7), s.xhat2, s.rstd2, s.a2);
    dense(s.a2, par(8), par(9), s.u, d, f, true);
    dense(s.u, par(10), par(11), tmp, f, d);
    addInto(h, tmp, m * d);
  }
  lnForward(h, P + off(lnFi), P + off(lnFi + 1), xhatF, rstdF, aF);
  dense(aF, P + off(lnFi + 2), P + off(lnFi + 3), logits, d, V);

  // ---- loss and its gradient (in place over the logits)
  const y = batch.y;
  const e = new Float64Array(V);
  let total = 0;
  for (let r = 0; r < m; r++) {
    const o = logits + r * V;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) if (F[o + j] > mx) mx = F[o + j];
    let sum = 0;
    for (let j = 0; j < V; j++) {
      e[j] = Math.exp(F[o + j] - mx);
      sum += e[j];
    }
    const label = y[r];
    total += Math.log(sum) - (F[o + label] - mx);
    for (let j = 0; j < V; j++) F[o + j] = (e[j] / sum - (j === label ? 1 : 0)) / m;
  }
  const loss = total / m;

  // ---- backward
  const gOf = (i: number) => G + off(i);
  F.fill(0, dh0, dh0 + m * d);
  denseBack(aF, logits, whT, gOf(lnFi + 2), gOf(lnFi + 3), da, d, V);
  lnBackward(da, xhatF, rstdF, P + off(lnFi), gOf(lnFi), gOf(lnFi + 1), dh0);
  for (let l = L - 1; l >= 0; l--) {
    const s = sv[l];
    const gr = (k: number) => gOf(blk(l, k));
    // MLP: dh0 is the gradient of the block's output.
    denseBack(s.u, dh0, s.wprT, gr(10), gr(11), du, f, d);
    maskInto(du, s.u, m * f);
    denseBack(s.a2, du, s.wfcT, gr(8), gr(9), da, d, f);
    lnBackward(da, s.xhat2, s.rstd2, P + off(blk(l, 6)), gr(6), gr(7), dh0);
    // Attention output projection.
    denseBack(s.merged, dh0, s.woT, gr(4), gr(5), dmerged, d, d);
    for (let b = 0; b < n; b++) {
      for (let hd = 0; hd < H; hd++) {
        const q = s.qkv + b * T * d3 + hd * dh;
        const dq = dqkv + b * T * d3 + hd * dh;
        const pp = s.p + (b * H + hd) * T * T;
        const dO = dmerged + b * T * d + hd * dh;
        transposeInto(q + 2 * d, kvT, T, dh, d3); // Vᵀ [dh, T]
        for (let i0 = 0; i0 < T; i0 += R) {
          const i1 = Math.min(i0 + R, T);
          mm(dO + i0 * d, d, 1, kvT, T, dsT + i0 * T, T, i1 - i0, i1, dh); // dP
        }
        for (let i = 0; i < T; i++) {
          const row = dsT + i * T;
          const pr = pp + i * T;
          let dot = 0;
          for (let j = 0; j <= i; j++) dot += F[pr + j] * F[row + j];
          for (let j = 0; j <= i; j++) F[row + j] = Math.fround(F[pr + j] * (F[row + j] - dot)) * scale;
          for (let j = i + 1; j < T; j++) F[row + j] = 0;
        }
        for (let i0 = 0; i0 < T; i0 += R) {
          const i1 = Math.min(i0 + R, T);
          // Rows j of dV and dK sum over i ≥ j: from i0 on (the terms before are +0).
          mm(pp + i0 * T + i0, 1, T, dO + i0 * d, d, dq + i0 * d3 + 2 * d, d3, i1 - i0, dh, T - i0); // dV = Pᵀ · dO
          mm(dsT + i0 * T, T, 1, q + d, d3, dq + i0 * d3, d3, i1 - i0, dh, i1); // dQ = dS · K
          mm(dsT + i0 * T + i0, 1, T, q + i0 * d3, d3, dq + i0 * d3 + d, d3, i1 - i0, dh, T - i0); // dK = dSᵀ · Q
        }
      }
    }
    denseBack(s.a1, dqkv, s.wqkvT, gr(2), gr(3), da, d, d3);
    lnBackward(da, s.xhat1, s.rstd1, P + off(blk(l, 0)), gr(0), gr(1), dh0);
  }
  // Embeddings: the gathered rows' gradients scattered back, in row order.
  const gTok = gOf(0);
  const gPos = gOf(1);
  for (let r = 0; r < m; r++) {
    const src = dh0 + r * d;
    const t = gTok + x[r] * d;
    const p = gPos + (r % T) * d;
    for (let j = 0; j < d; j++) {
      F[t + j] += F[src + j];
      F[p + j] += F[src + j];
    }
  }

  const grads = layout.map((en) => tf.tensor(F.subarray(G + en.offset, G + en.offset + en.size), en.shape, 'float32'));
  return { loss: tf.scalar(loss), grads };
}
