/**
 * Hand-written training steps (forward + backward, no gradient tape) for the zoo's ReLU dense
 * stacks and ReLU conv nets with max or no pooling, on the CPU backends (heapKernelsActive()).
 *
 * tf.valueAndGrads over the custom ops of ops.ts costs, per step: a clone of every tensor a
 * customGrad saves (the conv activations alone are several MB), the tape's bookkeeping, a
 * zero input gradient for the first layer, and a multiply of the loss gradient by one. Here
 * the forward pass keeps what the backward pass needs and the backward pass calls the same
 * kernels, with the same operands in the same order, as the custom gradients of ops.ts and
 * heap-kernels.ts — so the gradient has the same bytes as through the tape (checked in
 * fast-step.test.ts), only without that overhead. Three things differ in how, not in what:
 * the batch and the dense kernels are transposed straight from their Float32Arrays; the loss
 * end is one kernel; a first conv layer with ≤ 4 input channels runs as im2col · w (XNNPACK's
 * convolution is slow with so few channels; the product has the same bytes, and the filter
 * gradient reuses the im2col matrix). On wasm with WebAssembly SIMD the dense layers run
 * sample-major through gemm-simd.wat instead of feature-major through tf.matMul (see
 * denseForwardS): the same sums in the same order, without transposes or XNNPACK's packing.
 * Everything runs inside the caller's tf.tidy.
 *
 * Models or settings outside that (tanh/sigmoid, average pooling, mse, Keras topologies, the
 * transformer, other backends) go through the tape as before.
 */
import * as tf from '@tensorflow/tfjs';
import { actPoolGradOp, filterGradHeap, filterGradPlanar, gemmSimdActive, heapKernelsActive } from './heap-kernels.js';
import type { ParamEntry } from './layout.js';
import type { Batch } from './model.js';

/** Makes a dropout mask (the step's deterministic draw) for a tensor of the given shape, or null. */
export type DropoutMask = (shape: number[], rate: number) => tf.Tensor | null;

let enabled = true;

/** Turns the hand-written steps off (tests compare them with the taped path). */
export function setFastSteps(on: boolean): void {
  enabled = on;
}

/** True when the hand-written steps may run on the active backend. */
export function fastStepsActive(): boolean {
  return enabled && heapKernelsActive();
}

function run<T extends tf.Tensor | tf.Tensor[]>(kernel: string, inputs: tf.NamedTensorMap, attrs: Record<string, unknown> = {}): T {
  return tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as unknown as T;
}

const transpose = (x: tf.Tensor): tf.Tensor2D => run<tf.Tensor2D>('GradpoolTranspose2d', { x });

/** What the backward pass of a feature-major dense stack needs from its forward pass. */
interface DenseTape {
  /** Input of each layer, [in_i, m] (after the previous layer's dropout). */
  hT: tf.Tensor2D[];
  /** Output of each layer before dropout ([out_i, m]); the last one is the logits, transposed. */
  y: tf.Tensor2D[];
  /** Dropout mask applied after each hidden layer, or null. */
  mask: (tf.Tensor | null)[];
}

/** A dense stack's parameters: wᵀ for the forward pass, w where an input gradient needs it. */
interface DenseParams {
  wT: tf.Tensor2D[];
  w: (tf.Tensor2D | undefined)[];
  b: tf.Tensor1D[];
}

/**
 * Tensors of the dense layers at layout[from…] (w0, b0, w1, b1, …): wᵀ transposed straight
 * from the parameter vector (GradpoolTransposeFrom: w itself is never copied into the
 * backend unless `needW(i)`), biases copied.
 */
function denseParams(params: Float32Array, layout: readonly ParamEntry[], from: number, needW: (i: number) => boolean): DenseParams {
  const d: DenseParams = { wT: [], w: [], b: [] };
  for (let i = 0; from + 2 * i < layout.length; i++) {
    const [we, be] = [layout[from + 2 * i], layout[from + 2 * i + 1]];
    const values = params.subarray(we.offset, we.offset + we.size);
    d.wT.push(run<tf.Tensor2D>('GradpoolTransposeFrom', {}, { values, rows: we.shape[0], cols: we.shape[1] }));
    d.w.push(needW(i) ? tf.tensor2d(values, [we.shape[0], we.shape[1]]) : undefined);
    d.b.push(paramTensor(params, be) as tf.Tensor1D);
  }
  return d;
}

function paramTensor(params: Float32Array, e: ParamEntry): tf.Tensor {
  return tf.tensor(params.subarray(e.offset, e.offset + e.size), e.shape, 'float32');
}

/**
 * ReLU dense stack on xT [in, m] (feature-major, as ops.ts' denseActT): for each layer
 * wᵀ · hT, then bias (+ ReLU and dropout on hidden layers).
 */
function denseForward(xT: tf.Tensor2D, ps: DenseParams, dropoutRate: number, mask: DropoutMask): DenseTape {
  const layers = ps.wT.length;
  const tape: DenseTape = { hT: [], y: [], mask: [] };
  let hT = xT;
  for (let i = 0; i < layers; i++) {
    tape.hT.push(hT);
    const hidden = i < layers - 1;
    const y = run<tf.Tensor2D>('GradpoolBiasAct', { z: tf.matMul(ps.wT[i], hT), b: ps.b[i] }, { relu: hidden });
    tape.y.push(y);
    if (hidden) {
      const m = mask(y.shape, dropoutRate);
      tape.mask.push(m);
      hT = m ? (tf.mul(y, m) as tf.Tensor2D) : y;
    }
  }
  return tape;
}

/**
 * Backward of denseForward from the output layer's [dzT, dz, db] (lossEnd): writes the
 * stack's parameter gradients into grads[offset…] and returns d(xT) when `inputGrad`.
 */
function denseBackward(tape: DenseTape, ps: DenseParams, last: [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D], inputGrad: boolean, grads: tf.Tensor[], offset: number): tf.Tensor2D | undefined {
  const layers = ps.wT.length;
  let dyT: tf.Tensor2D | undefined;
  for (let i = layers - 1; i >= 0; i--) {
    const [dzT, dz, db] = i === layers - 1 ? last : (run<tf.Tensor[]>('GradpoolActGradT', { dy: dyT!, y: tape.y[i] }, { relu: true }) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D]);
    grads[offset + 2 * i] = tf.matMul(tape.hT[i], dz);
    grads[offset + 2 * i + 1] = db;
    if (i > 0 || inputGrad) {
      const dh = tf.matMul(ps.w[i]!, dzT) as tf.Tensor2D;
      const m = i > 0 ? tape.mask[i - 1] : null;
      dyT = m ? (tf.mul(dh, m) as tf.Tensor2D) : dh;
    }
  }
  return inputGrad ? dyT : undefined;
}

/**
 * Mean softmax cross-entropy of logitsT [C, m], and the output layer's dzT, dz and db — what
 * transposing the logits, GradpoolSoftmaxXent, transposing its gradient and a linear
 * GradpoolActGradT give, in one kernel.
 */
function lossEnd(outT: tf.Tensor2D, labels: tf.Tensor): [tf.Scalar, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D] {
  return run<tf.Tensor[]>('GradpoolSoftmaxXentT', { logitsT: outT, labels: tf.reshape(labels, [-1]) }) as [tf.Scalar, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
}

/*
 * Sample-major dense stack (wasm with WebAssembly SIMD): the same products as the feature-major
 * stack above, computed as their transposes by GradpoolGemm (gemm-simd.wat), which sums in the
 * same order as XNNPACK and reads a transposed left operand in place. Forward y = act(h · w + b),
 * backward dw = hᵀ · dz and dh = dz · wᵀ: activations and gradients stay [m, features] as the
 * batch comes, so neither the batch nor a gradient is ever transposed (only the small wᵀ of the
 * layers that need an input gradient), nothing is packed, and bias + ReLU run in the product's
 * store. Every element is the same sum of the same products as before, so the same bytes.
 */

const gemm = (a: tf.Tensor, b: tf.Tensor, aT: boolean, bias?: tf.Tensor, relu = false): tf.Tensor2D =>
  run<tf.Tensor2D>('GradpoolGemm', bias ? { a, b, bias } : { a, b }, { aT, relu });

/** Dense parameters for the sample-major stack: w as it is, wᵀ where an input gradient needs it. */
interface DenseParamsS {
  w: tf.Tensor2D[];
  wT: (tf.Tensor2D | undefined)[];
  b: tf.Tensor1D[];
}

function denseParamsS(params: Float32Array, layout: readonly ParamEntry[], from: number, needWT: (i: number) => boolean): DenseParamsS {
  const d: DenseParamsS = { w: [], wT: [], b: [] };
  for (let i = 0; from + 2 * i < layout.length; i++) {
    const [we, be] = [layout[from + 2 * i], layout[from + 2 * i + 1]];
    const values = params.subarray(we.offset, we.offset + we.size);
    d.w.push(tf.tensor2d(values, [we.shape[0], we.shape[1]]));
    d.wT.push(needWT(i) ? run<tf.Tensor2D>('GradpoolTransposeFrom', {}, { values, rows: we.shape[0], cols: we.shape[1] }) : undefined);
    d.b.push(paramTensor(params, be) as tf.Tensor1D);
  }
  return d;
}

/**
 * denseForward, sample-major: x [m, in]; tape.hT / tape.y hold [m, features]. Dropout masks are
 * drawn in the feature-major shape (the draws of the taped path) and transposed.
 */
function denseForwardS(x: tf.Tensor2D, ps: DenseParamsS, dropoutRate: number, mask: DropoutMask): DenseTape {
  const layers = ps.w.length;
  const tape: DenseTape = { hT: [], y: [], mask: [] };
  let h = x;
  for (let i = 0; i < layers; i++) {
    tape.hT.push(h);
    const hidden = i < layers - 1;
    const y = gemm(h, ps.w[i], false, ps.b[i], hidden);
    tape.y.push(y);
    if (hidden) {
      const mT = mask([y.shape[1], y.shape[0]], dropoutRate);
      const m = mT ? transpose(mT) : null;
      tape.mask.push(m);
      h = m ? (tf.mul(y, m) as tf.Tensor2D) : y;
    }
  }
  return tape;
}

/** denseBackward, sample-major, from the output layer's [dz, db]; returns dx [m, in] when `inputGrad`. */
function denseBackwardS(tape: DenseTape, ps: DenseParamsS, last: [tf.Tensor2D, tf.Tensor1D], inputGrad: boolean, grads: tf.Tensor[], offset: number): tf.Tensor2D | undefined {
  const layers = ps.w.length;
  let dy: tf.Tensor2D | undefined;
  for (let i = layers - 1; i >= 0; i--) {
    const [dz, db] = i === layers - 1 ? last : (run<tf.Tensor[]>('GradpoolActGrad', { dy: dy!, y: tape.y[i] }, { relu: true }) as [tf.Tensor2D, tf.Tensor1D]);
    grads[offset + 2 * i] = gemm(tape.hT[i], dz, true);
    grads[offset + 2 * i + 1] = db;
    if (i > 0 || inputGrad) {
      const dh = gemm(dz, ps.wT[i]!, false);
      const m = i > 0 ? tape.mask[i - 1] : null;
      dy = m ? (tf.mul(dh, m) as tf.Tensor2D) : dh;
    }
  }
  return inputGrad ? dy : undefined;
}

/** Loss, dz [m, C] and db of the output layer from sample-major logits. */
function lossEndS(out: tf.Tensor2D, labels: tf.Tensor): [tf.Scalar, tf.Tensor2D, tf.Tensor1D] {
  return run<tf.Tensor[]>('GradpoolSoftmaxXentDb', { logits: out, labels: tf.reshape(labels, [-1]) }) as [tf.Scalar, tf.Tensor2D, tf.Tensor1D];
}

export interface FastStepResult {
  loss: tf.Scalar;
  /** One gradient per parameter tensor, in layout order. */
  grads: tf.Tensor[];
}

function labelsOf(batch: Batch): tf.Tensor1D {
  return tf.tensor1d(batch.y instanceof Int32Array ? batch.y : Int32Array.from(batch.y), 'int32');
}

/**
 * MLP with ReLU and softmax cross-entropy on a checked batch (x [n, in], integer labels).
 * xᵀ is transposed straight from the batch (x itself is never copied into the backend).
 */
export function mlpFastStep(params: Float32Array, layout: readonly ParamEntry[], batch: Batch, dropoutRate: number, mask: DropoutMask): FastStepResult {
  if (gemmSimdActive()) {
    const ps = denseParamsS(params, layout, 0, (i) => i > 0);
    const x = batch.x instanceof Float32Array ? batch.x : Float32Array.from(batch.x);
    const tape = denseForwardS(tf.tensor2d(x, [batch.n, x.length / batch.n]), ps, dropoutRate, mask);
    const [loss, ...last] = lossEndS(tape.y[tape.y.length - 1], labelsOf(batch));
    const grads: tf.Tensor[] = new Array(layout.length);
    denseBackwardS(tape, ps, last, false, grads, 0);
    return { loss, grads };
  }
  const ps = denseParams(params, layout, 0, (i) => i > 0);
  const x = batch.x instanceof Float32Array ? batch.x : Float32Array.from(batch.x);
  const xT = run<tf.Tensor2D>('GradpoolTransposeFrom', {}, { values: x, rows: batch.n, cols: x.length / batch.n });
  const tape = denseForward(xT, ps, dropoutRate, mask);
  const [loss, ...last] = lossEnd(tape.y[tape.y.length - 1], labelsOf(batch));
  const grads: tf.Tensor[] = new Array(layout.length);
  denseBackward(tape, ps, last, false, grads, 0);
  return { loss, grads };
}

export interface FastConv {
  kernelSize: number;
  pool: 'max' | 'none';
}

/**
 * CNN with ReLU conv blocks ('same', stride 1, then 2×2 max or no pooling), flatten, a ReLU
 * dense stack and softmax cross-entropy: the steps of ops.ts' conv2dBlock and its gradient.
 */
export function cnnFastStep(
  params: Float32Array,
  layout: readonly ParamEntry[],
  batch: Batch,
  sampleShape: readonly number[],
  convs: readonly FastConv[],
  dropoutRate: number,
  mask: DropoutMask,
): FastStepResult {
  const nc = convs.length;
  const ps = layout.slice(0, 2 * nc).map((e) => paramTensor(params, e));
  const saved: { x: tf.Tensor4D; z: tf.Tensor4D; y: tf.Tensor4D }[] = [];
  const xv = batch.x instanceof Float32Array ? batch.x : Float32Array.from(batch.x);
  let t = tf.tensor4d(xv, [batch.n, sampleShape[0], sampleShape[1], sampleShape[2]], 'float32');
  let firstCols: tf.Tensor2D | undefined;
  convs.forEach((cv, i) => {
    const w = ps[2 * i] as tf.Tensor4D;
    const [k, , ci, co] = w.shape;
    let z: tf.Tensor4D;
    if (i === 0 && ci <= 4 && k % 2 === 1) {
      // First layer, few input channels: XNNPACK's convolution runs at half its matmul rate
      // there; im2col (which the filter gradient needs anyway) times w, bias and ReLU fused.
      const [n, h, wd] = t.shape;
      firstCols = run<tf.Tensor2D>('GradpoolIm2col', { x: t }, { k });
      const z3 = tf.engine().runKernel(
        '_FusedMatMul',
        { a: tf.reshape(firstCols, [1, n * h * wd, k * k * ci]), b: tf.reshape(w, [1, k * k * ci, co]), bias: ps[2 * i + 1] },
        { transposeA: false, transposeB: false, activation: 'relu' },
      ) as tf.Tensor3D;
      z = tf.reshape(z3, [n, h, wd, co]);
    } else {
      z = tf.engine().runKernel(
        'FusedConv2D',
        { x: t, filter: w, bias: ps[2 * i + 1] },
        { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1], activation: 'relu' },
      ) as tf.Tensor4D;
    }
    const y = cv.pool === 'max' ? tf.maxPool(z, 2, 2, 'valid') : z;
    saved.push({ x: t, z, y });
    t = y;
  });
  const flat = tf.reshape(t, [t.shape[0], -1]) as tf.Tensor2D;
  const grads: tf.Tensor[] = new Array(layout.length);
  let loss: tf.Scalar;
  let dFlat: tf.Tensor2D;
  if (gemmSimdActive()) {
    const dense = denseParamsS(params, layout, 2 * nc, () => true);
    const tape = denseForwardS(flat, dense, dropoutRate, mask);
    const [l, ...last] = lossEndS(tape.y[tape.y.length - 1], labelsOf(batch));
    loss = l;
    dFlat = denseBackwardS(tape, dense, last, true, grads, 2 * nc)!;
  } else {
    const dense = denseParams(params, layout, 2 * nc, () => true);
    const tape = denseForward(transpose(flat), dense, dropoutRate, mask);
    const [l, ...last] = lossEnd(tape.y[tape.y.length - 1], labelsOf(batch));
    loss = l;
    dFlat = transpose(denseBackward(tape, dense, last, true, grads, 2 * nc)!);
  }
  let dy = tf.reshape(dFlat, t.shape) as tf.Tensor4D;
  for (let i = nc - 1; i >= 0; i--) {
    const { x: xs, z, y } = saved[i];
    const w = ps[2 * i] as tf.Tensor4D;
    const [kh, kw, ci] = w.shape;
    const p = convs[i].pool === 'max' ? 2 : 1;
    if (i === 0 && ci <= 4) {
      // First layer: dz only feeds the filter gradient; planar dz, thin im2col operand.
      const [dzP, db] = actPoolGradOp(dy, z, y, p, true, true) as [tf.Tensor2D, tf.Tensor1D];
      grads[0] = filterGradPlanar(xs, dzP, kh, firstCols);
      grads[1] = db;
      break;
    }
    const [dz, db] = actPoolGradOp(dy, z, y, p, true) as [tf.Tensor4D, tf.Tensor1D];
    grads[2 * i] = filterGradHeap(xs, dz, kh);
    grads[2 * i + 1] = db;
    if (i > 0) {
      // Odd square k, 'same': a 'same' conv of dz with the kernel flipped and its channels swapped.
      dy =
        kh % 2 === 1 && kw === kh
          ? tf.conv2d(dz, run<tf.Tensor4D>('GradpoolFlipFilter', { w }), 1, 'same')
          : tf.conv2dTranspose(dz, w, xs.shape, 1, 'same');
    }
  }
  return { loss, grads };
}
