/**
 * Convolutional net for small images: for each conv block a 'same', stride-1 convolution, the
 * activation, then optional 2×2/2 max or average pooling; then flatten (NHWC order, as Keras'
 * Flatten), dense layers with dropout, and the output layer.
 * Layout: `conv_i/kernel` [k, k, inC, filters], `conv_i/bias` [filters], then
 * `dense_j/kernel` [in, out], `dense_j/bias` [out] (Keras layouts; Glorot-uniform kernels,
 * zero biases).
 */
import * as tf from '@tensorflow/tfjs';
import { cnnFastStep, fastStepsActive } from './fast-step.js';
import { activate, denseStack, GraphModel, saveLayersModel } from './graph.model.js';
import { LayoutBuilder } from './layout.js';
import { conv2dBlock } from './ops.js';
import { paramTensors } from './model.js';
import type { CnnSpec } from './spec.js';

/** 2×2 average pooling as a reshape + mean (its gradient is a broadcast, fast everywhere). */
function avgPool2(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.mean(tf.reshape(x, [n, h / 2, 2, w / 2, 2, c]), [2, 4]) as tf.Tensor4D;
}

export function buildCnn(spec: CnnSpec): GraphModel {
  const [h0, w0, c0] = spec.inputShape;
  const lb = new LayoutBuilder();
  let [h, w, c] = [h0, w0, c0];
  let flops = 0;
  let firstFlops = 0;
  spec.convs.forEach((cv, i) => {
    const k = cv.kernelSize;
    lb.add(`conv_${i}/kernel`, [k, k, c, cv.filters], { kind: 'glorot', fanIn: k * k * c, fanOut: k * k * cv.filters });
    lb.add(`conv_${i}/bias`, [cv.filters], { kind: 'zeros' });
    flops += 2 * h * w * k * k * c * cv.filters;
    if (i === 0) firstFlops = flops;
    c = cv.filters;
    if (cv.pool !== 'none') {
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    }
  });
  const sizes = [h * w * c, ...spec.dense, spec.numClasses];
  for (let j = 0; j + 1 < sizes.length; j++) {
    lb.add(`dense_${j}/kernel`, [sizes[j], sizes[j + 1]], { kind: 'glorot', fanIn: sizes[j], fanOut: sizes[j + 1] });
    lb.add(`dense_${j}/bias`, [sizes[j + 1]], { kind: 'zeros' });
    flops += 2 * sizes[j] * sizes[j + 1];
  }
  const nc = spec.convs.length;
  const last = sizes.length - 2;
  return new GraphModel({
    spec,
    layout: lb.entries,
    size: lb.size,
    flopsPerSample: flops,
    stepFlopsPerSample: 3 * flops - firstFlops,
    sampleShape: [h0, w0, c0],
    xPerSample: h0 * w0 * c0,
    yPerSample: spec.loss === 'mse' ? spec.numClasses : 1,
    loss: spec.loss,
    numClasses: spec.numClasses,
    fastStep(params, batch, ctx) {
      if (spec.activation !== 'relu' || spec.loss === 'mse' || !fastStepsActive() || spec.convs.some((cv) => cv.pool === 'avg')) return null;
      const convs = spec.convs.map((cv) => ({ kernelSize: cv.kernelSize, pool: cv.pool as 'max' | 'none' }));
      return cnnFastStep(params, lb.entries, batch, [h0, w0, c0], convs, spec.dropout, ctx.dropoutMask);
    },
    forward(ps, x, ctx) {
      let t = x as tf.Tensor4D;
      spec.convs.forEach((cv, i) => {
        const [w, b] = [ps[2 * i] as tf.Tensor4D, ps[2 * i + 1] as tf.Tensor1D];
        if (spec.activation === 'relu') {
          t = conv2dBlock(t, w, b, 'relu', cv.pool, i > 0);
        } else {
          t = activate(conv2dBlock(t, w, b, 'linear', 'none', i > 0), spec.activation) as tf.Tensor4D;
          if (cv.pool === 'max') t = tf.maxPool(t, 2, 2, 'valid');
          else if (cv.pool === 'avg') t = avgPool2(t);
        }
      });
      const z = tf.reshape(t, [t.shape[0], -1]) as tf.Tensor2D;
      return denseStack(z, ps.slice(2 * nc), spec.activation, (h) => ctx.dropout(h, spec.dropout), true);
    },
    async exportArtifacts(model, params) {
      const m = tf.sequential();
      spec.convs.forEach((cv, i) => {
        m.add(
          tf.layers.conv2d({
            filters: cv.filters,
            kernelSize: cv.kernelSize,
            padding: 'same',
            activation: spec.activation,
            inputShape: i === 0 ? spec.inputShape : undefined,
          }),
        );
        if (cv.pool === 'max') m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
        else if (cv.pool === 'avg') m.add(tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }));
      });
      m.add(tf.layers.flatten());
      for (let j = 0; j <= last; j++) {
        m.add(tf.layers.dense({ units: sizes[j + 1], activation: j < last ? spec.activation : 'linear' }));
        if (j < last && spec.dropout > 0) m.add(tf.layers.dropout({ rate: spec.dropout }));
      }
      const ws = paramTensors(params, model.layout);
      try {
        return await saveLayersModel(m, ws);
      } finally {
        tf.dispose(ws);
        m.dispose();
      }
    },
  });
}
