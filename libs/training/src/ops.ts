/**
 * Fused layer ops with hand-written gradients, for the CPU backends' cost model: on wasm an
 * elementwise op over a conv activation costs about as much as the convolution itself, and a
 * reduction over the batch axes (a bias gradient) several times more. So:
 * - forward: one fused kernel (matmul/conv + bias + ReLU: _FusedMatMul / FusedConv2D);
 * - backward: the ReLU mask from the output (one step + one multiply), bias gradients as a
 *   matmul with a row of ones, weight gradients with explicit transposes and plain matmuls
 *   (dense) or the convolution kernels of wasm-kernels.ts / im2col (conv).
 * Verified against finite differences in gradients.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { upsample } from './fast-gradients.js';
import { actPoolGradOp, filterGradHeap, filterGradPlanar, heapKernelsActive } from './heap-kernels.js';

export type FusedActivation = 'relu' | 'linear';

/** Σ over all rows of a [m, c] tensor as a [c] vector, via a matmul (fast on wasm). */
export function sumRows(x: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]), x), [x.shape[1]]);
}

/** dy masked by the ReLU's output (y > 0). */
function reluMask(dy: tf.Tensor, y: tf.Tensor, act: FusedActivation): tf.Tensor {
  return act === 'relu' ? tf.mul(dy, tf.step(y)) : dy;
}

/** act(x [m, in] · w [in, out] + b). `inputGrad` false: no dx (zeros), for a model's first layer. */
export function denseAct(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, act: FusedActivation, inputGrad = true): tf.Tensor2D {
  const f = tf.customGrad((...args: unknown[]) => {
    const [xi, wi, bi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    // The kernel directly: tf.fused.* falls back to unfused ops while a gradient is recorded.
    // The kernel takes rank-3 operands (a batch of one).
    const [m, k] = xi.shape;
    const nOut = wi.shape[1];
    const y3 = tf.engine().runKernel(
      '_FusedMatMul',
      { a: tf.reshape(xi, [1, m, k]), b: tf.reshape(wi, [1, k, nOut]), bias: bi },
      { transposeA: false, transposeB: false, activation: act },
    ) as tf.Tensor3D;
    const y = tf.reshape(y3, [m, nOut]) as tf.Tensor2D;
    save([xi, wi, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        let dz: tf.Tensor2D;
        let db: tf.Tensor1D;
        if (heapKernelsActive()) {
          // Mask and bias gradient in one pass (heap-kernels.ts).
          [dz, db] = actPoolGradOp(dy as tf.Tensor, ys, ys, 1, act === 'relu') as [tf.Tensor2D, tf.Tensor1D];
        } else {
          dz = reluMask(dy as tf.Tensor, ys, act) as tf.Tensor2D;
          db = sumRows(dz);
        }
        const dx = inputGrad ? tf.matMul(dz, tf.transpose(ws)) : tf.zerosLike(xs);
        return [dx, tf.matMul(tf.transpose(xs), dz), db];
      },
    };
  });
  return f(x, w, b) as tf.Tensor2D;
}

/** xᵀ of a [r, c] matrix (a JS kernel on the CPU backends; differentiable). */
export function transposeT(x: tf.Tensor2D): tf.Tensor2D {
  if (!heapKernelsActive()) return tf.transpose(x);
  const f = tf.customGrad((...args: unknown[]) => {
    const [xi] = args as [tf.Tensor2D];
    const value = tf.engine().runKernel('GradpoolTranspose2d', { x: xi }, {}) as tf.Tensor2D;
    return { value, gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.engine().runKernel('GradpoolTranspose2d', { x: dy as tf.Tensor }, {}) as tf.Tensor };
  });
  return f(x) as tf.Tensor2D;
}

/**
 * Feature-major dense layer: act(wᵀ · hT + b) for hT [in, m] (one column per sample), w
 * [in, out] (Keras layout), giving [out, m]. XNNPACK packs a matmul's right operand on every
 * call (the parameters are fresh tensors each step), which for a weight matrix costs about as
 * much as the multiplication; in this layout every right operand is an activation or a
 * gradient (in × m or out × m) and the weights are only ever the streamed left operand:
 *   forward z = wᵀ · hT (wᵀ by a JS transpose), dhT = w · dzT, dw = hT · dz.
 * Use where heapKernelsActive(); `inputGrad` false skips dhT (zeros). `w` and `b` must be
 * created outside the differentiated function (parameters): w is captured, not saved.
 */
export function denseActT(hT: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, act: FusedActivation, inputGrad = true): tf.Tensor2D {
  const relu = act === 'relu';
  const f = tf.customGrad((...args: unknown[]) => {
    const [hi, wi, bi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const wT = tf.engine().runKernel('GradpoolTranspose2d', { x: wi }, {}) as tf.Tensor2D;
    const y = tf.engine().runKernel('GradpoolBiasAct', { z: tf.matMul(wT, hi), b: bi }, { relu }) as tf.Tensor2D;
    save([hi, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [hs, ys] = saved as [tf.Tensor2D, tf.Tensor2D];
        // w is a parameter tensor (created outside the recorded forward pass): not saved.
        const [dzT, dz, db] = tf.engine().runKernel('GradpoolActGradT', { dy: dy as tf.Tensor, y: ys }, { relu }) as unknown as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const dh = inputGrad ? tf.matMul(wi, dzT) : tf.zerosLike(hs);
        return [dh, tf.matMul(hs, dz), db];
      },
    };
  });
  return f(hT, w, b) as tf.Tensor2D;
}

/**
 * Filter gradient of a stride-1 'same' conv by im2col: the k·k shifted views of the padded
 * input, channels first, stacked into [k·k·Ci, N·H·W], times dy [N·H·W, Co]. One big matmul;
 * best when Ci is small (the first layer), where the batch-as-channels convolution is slow.
 */
function filterGradIm2col(x: tf.Tensor4D, dy: tf.Tensor4D, k: number): tf.Tensor4D {
  const [n, h, w, ci] = x.shape;
  const co = dy.shape[3];
  // Patches by one convolution with a one-hot kernel: channel (i·k + j)·Ci + c of the result
  // is x[y + i - pt, x + j - pl, c].
  const kk = k * k * ci;
  const eye = new Float32Array(kk * kk);
  for (let r = 0; r < kk; r++) eye[r * kk + r] = 1;
  const patches = tf.conv2d(x, tf.tensor4d(eye, [k, k, ci, kk]), 1, 'same'); // [N,H,W,kk]
  const cols = tf.transpose(tf.reshape(patches, [n * h * w, kk])) as tf.Tensor2D; // [kk, NHW]
  return tf.reshape(tf.matMul(cols, tf.reshape(dy, [n * h * w, co]) as tf.Tensor2D), [k, k, ci, co]);
}

export type Pool = 'max' | 'avg' | 'none';

/**
 * pool(act(conv2d(x, w, stride 1, 'same') + b)), NHWC, pooling 2×2 with stride 2. One custom
 * op so that the backward pass touches the full-resolution activation as few times as
 * possible: the ReLU mask of a max-pooled block is taken at the pooled positions (where the
 * activation equals the pooled output). `inputGrad` false skips dx (first layer: nothing
 * upstream needs it; zeros are returned instead).
 */
export function conv2dBlock(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, act: FusedActivation, pool: Pool, inputGrad = true): tf.Tensor4D {
  const f = tf.customGrad((...args: unknown[]) => {
    const [xi, wi, bi, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.GradSaveFunc];
    const z = tf.engine().runKernel(
      'FusedConv2D',
      { x: xi, filter: wi, bias: bi },
      { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1], activation: act },
    ) as tf.Tensor4D;
    const y = pool === 'max' ? tf.maxPool(z, 2, 2, 'valid') : pool === 'avg' ? tf.avgPool(z, 2, 2, 'valid') : z;
    save([xi, wi, z, y]);
    return {
      value: y,
      gradFunc: (dyIn: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws, zs, ys] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        const dy = dyIn as tf.Tensor4D;
        const [kh, , ci, co] = ws.shape;
        const heap = heapKernelsActive();
        const dxOf = (dz: tf.Tensor4D): tf.Tensor4D => {
          if (!inputGrad) return tf.zerosLike(xs);
          // Odd k, 'same': the input gradient is a 'same' conv of dz with the kernel flipped in
          // space and its channels swapped (no padded copy of dz, as Conv2DBackpropInput makes).
          if (heap && kh % 2 === 1 && ws.shape[1] === kh) {
            const wf = tf.engine().runKernel('GradpoolFlipFilter', { w: ws }, {}) as tf.Tensor4D;
            return tf.conv2d(dz, wf, 1, 'same');
          }
          return tf.conv2dTranspose(dz, ws, xs.shape, 1, 'same');
        };
        if (heap && pool !== 'avg') {
          // ReLU mask, max-pool routing and bias gradient in one pass; the filter gradient as
          // one plain matmul over a JS-built im2col matrix (heap-kernels.ts).
          const p = pool === 'max' ? 2 : 1;
          const relu = act === 'relu';
          if (!inputGrad && ci <= 4) {
            // First layer: dz only feeds the filter gradient; planar dz, thin im2col operand.
            const [dzP, db] = actPoolGradOp(dy, zs, ys, p, relu, true) as [tf.Tensor2D, tf.Tensor1D];
            return [tf.zerosLike(xs), filterGradPlanar(xs, dzP, kh), db];
          }
          const [dz, db] = actPoolGradOp(dy, zs, ys, p, relu) as [tf.Tensor4D, tf.Tensor1D];
          return [dxOf(dz), filterGradHeap(xs, dz, kh), db];
        }
        let dz: tf.Tensor4D;
        if (pool === 'max') {
          // Gradient to the window's maximum (to each one on an exact tie); ReLU mask at the
          // pooled positions, where z equals y.
          const g = act === 'relu' ? (tf.mul(dy, tf.step(ys)) as tf.Tensor4D) : dy;
          dz = tf.mul(upsample(g, 2), tf.cast(tf.equal(zs, upsample(ys, 2)), 'float32'));
        } else if (pool === 'avg') {
          dz = reluMask(upsample(tf.mul(dy, 0.25) as tf.Tensor4D, 2), zs, act) as tf.Tensor4D;
        } else {
          dz = reluMask(dy, zs, act) as tf.Tensor4D;
        }
        const dx = dxOf(dz);
        const dw = heap
          ? filterGradHeap(xs, dz, kh)
          : ci <= 4
            ? filterGradIm2col(xs, dz, kh)
            : (tf.engine().runKernel('Conv2DBackpropFilter', { x: xs, dy: dz }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: ws.shape }) as tf.Tensor4D);
        const [n, h, wd] = dz.shape;
        return [dx, dw, sumRows(tf.reshape(dz, [n * h * wd, co]) as tf.Tensor2D)];
      },
    };
  });
  return f(x, w, b) as tf.Tensor4D;
}
