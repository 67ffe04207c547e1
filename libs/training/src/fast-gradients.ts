/**
 * Fast gradients for the CPU backends (wasm, cpu). Measured on wasm (docs/bench/training.md):
 * a matmul with a transposed operand runs ~12× slower than a plain one, Conv2DBackpropFilter
 * has no wasm kernel, Conv2DBackpropInput runs ~9× slower than the forward conv, and MaxPoolGrad
 * ~50× slower than MaxPool. We re-register the gradients of BatchMatMul, Conv2D and MaxPool
 * (TensorFlow.js' global gradient registry) so that on those backends they are computed with an
 * explicit `transpose` + plain `matMul`, forward convolutions (flipped kernel for the input
 * gradient; batch⇄channel swap for the filter gradient) and a mask for max pooling. On other
 * backends (tfjs-node) and outside the fast cases the original gradient runs.
 * This makes tf.layers models (Keras specs) fast too, not only the zoo.
 */
import * as tf from '@tensorflow/tfjs';

type GradFunc = tf.GradConfig['gradFunc'];

const FAST_BACKENDS = new Set(['wasm', 'cpu']);
let installed = false;

function isFast(): boolean {
  return FAST_BACKENDS.has(tf.getBackend());
}

/** Swaps the last two axes. */
function t(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  perm[r - 1] = r - 2;
  perm[r - 2] = r - 1;
  return tf.transpose(x, perm);
}

const mm = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);

const matMulGrad: GradFunc = (dyIn, saved, attrs) => {
  const dy = dyIn as tf.Tensor;
  const [a, b] = saved;
  const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
  if (!transposeA && !transposeB) return { a: () => mm(dy, t(b)), b: () => mm(t(a), dy) };
  if (!transposeA && transposeB) return { a: () => mm(dy, b), b: () => mm(t(dy), a) };
  if (transposeA && !transposeB) return { a: () => mm(b, t(dy)), b: () => mm(a, dy) };
  return { a: () => t(mm(dy, b)), b: () => t(mm(a, dy)) };
};

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'same' | 'valid' | number | unknown;
  dataFormat: string;
  dilations: number | [number, number];
}
const pair = (v: number | [number, number]) => (typeof v === 'number' ? [v, v] : v);

/** 'same'/'valid' padding of a stride-1 conv as [before, after]. */
function samePad(k: number, pad: 'same' | 'valid'): [number, number] {
  if (pad === 'valid') return [0, 0];
  const before = Math.floor((k - 1) / 2);
  return [before, k - 1 - before];
}

function convGradFast(dy: tf.Tensor4D, x: tf.Tensor4D, w: tf.Tensor4D, pad: 'same' | 'valid') {
  const [kh, kw] = w.shape;
  const [pt, pb] = samePad(kh, pad);
  const [pl, pr] = samePad(kw, pad);
  return {
    x: () => {
      // dx = valid conv of dy, padded by (k-1-before, k-1-after), with the kernel flipped in
      // space and its in/out channels swapped.
      const wf = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
      const dyp = tf.pad(dy, [[0, 0], [kh - 1 - pt, kh - 1 - pb], [kw - 1 - pl, kw - 1 - pr], [0, 0]]);
      return tf.conv2d(dyp, wf, 1, 'valid');
    },
    filter: () => {
      // dW[i,j,ci,co] = Σ_{n,y,x} xpad[n,y+i,x+j,ci]·dy[n,y,x,co]: a valid conv of x with the
      // batch as channels ([Ci,Hp,Wp,N]) by dy as the kernel ([Ho,Wo,N,Co]) → [Ci,kh,kw,Co].
      const xp = pad === 'same' ? tf.pad(x, [[0, 0], [pt, pb], [pl, pr], [0, 0]]) : x;
      const xs = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D;
      const ds = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
      return tf.transpose(tf.conv2d(xs, ds, 1, 'valid'), [1, 2, 0, 3]);
    },
  };
}

/**
 * Nearest upsampling by k: [N,h,w,C] → [N,h·k,w·k,C]. ResizeNearestNeighbor (no corner
 * alignment) maps output (y, x) to input (⌊y/k⌋, ⌊x/k⌋); on wasm it is ~2× faster than
 * concatenation and ~50× faster than Tile / broadcasting.
 */
export function upsample(y: tf.Tensor4D, k: number): tf.Tensor4D {
  return tf.image.resizeNearestNeighbor(y, [y.shape[1] * k, y.shape[2] * k]);
}

/**
 * Installs the fast gradients (idempotent). Called by buildModel; call it yourself before
 * training tf.layers models by other means.
 */
export function installFastGradients(): void {
  if (installed) return;
  installed = true;

  const mmOrig = tf.getGradient('BatchMatMul');
  tf.registerGradient({
    ...mmOrig,
    gradFunc: (dy, saved, attrs) => (isFast() ? matMulGrad(dy, saved, attrs) : mmOrig.gradFunc(dy, saved, attrs)),
  });

  const convOrig = tf.getGradient('Conv2D');
  tf.registerGradient({
    ...convOrig,
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as unknown as ConvAttrs;
      const [sh, sw] = pair(a.strides);
      const [dh, dw] = pair(a.dilations ?? 1);
      const simple = sh === 1 && sw === 1 && dh === 1 && dw === 1 && a.dataFormat === 'NHWC';
      if (isFast() && simple && (a.pad === 'same' || a.pad === 'valid')) {
        const [x, w] = saved as [tf.Tensor4D, tf.Tensor4D];
        return convGradFast(dy as tf.Tensor4D, x, w, a.pad);
      }
      return convOrig.gradFunc(dy, saved, attrs);
    },
  });

  const poolOrig = tf.getGradient('MaxPool');
  tf.registerGradient({
    ...poolOrig,
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as unknown as { filterSize: number | [number, number]; strides: number | [number, number]; pad: unknown };
      const [fh, fw] = pair(a.filterSize);
      const [sh, sw] = pair(a.strides);
      const [x, y] = saved as [tf.Tensor4D, tf.Tensor4D];
      const k = fh;
      const tiles = fh === fw && sh === fh && sw === fw && x.shape[1] % k === 0 && x.shape[2] % k === 0;
      if (isFast() && tiles && a.pad === 'valid') {
        // Non-overlapping windows: the gradient goes to the element equal to the window's max
        // (to every one of them on an exact tie — in practice zeros after a ReLU, whose own
        // gradient there is zero).
        return { x: () => tf.mul(tf.cast(tf.equal(x, upsample(y, k)), 'float32'), upsample(dy as tf.Tensor4D, k)) };
      }
      return poolOrig.gradFunc(dy, saved, attrs);
    },
  });
}
