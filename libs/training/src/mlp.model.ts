/**
 * Multi-layer perceptron. Layout, for hidden sizes h1..hk and C outputs:
 * `dense_i/kernel` [in_i, out_i], `dense_i/bias` [out_i] for i = 0..k (Keras Dense layout;
 * Glorot-uniform kernels, zero biases). Dropout follows every hidden activation.
 */
import * as tf from '@tensorflow/tfjs';
import { fastStepsActive, mlpFastStep } from './fast-step.js';
import { denseStack, GraphModel, saveLayersModel } from './graph.model.js';
import { LayoutBuilder } from './layout.js';
import { paramTensors } from './model.js';
import type { MlpSpec } from './spec.js';

export function buildMlp(spec: MlpSpec): GraphModel {
  const inputSize = spec.inputShape.reduce((p, d) => p * d, 1);
  const sizes = [inputSize, ...spec.hidden, spec.numClasses];
  const lb = new LayoutBuilder();
  let flops = 0;
  for (let i = 0; i + 1 < sizes.length; i++) {
    lb.add(`dense_${i}/kernel`, [sizes[i], sizes[i + 1]], { kind: 'glorot', fanIn: sizes[i], fanOut: sizes[i + 1] });
    lb.add(`dense_${i}/bias`, [sizes[i + 1]], { kind: 'zeros' });
    flops += 2 * sizes[i] * sizes[i + 1];
  }
  const last = sizes.length - 2;
  return new GraphModel({
    spec,
    layout: lb.entries,
    size: lb.size,
    flopsPerSample: flops,
    stepFlopsPerSample: 3 * flops - 2 * sizes[0] * sizes[1],
    sampleShape: [inputSize],
    xPerSample: inputSize,
    yPerSample: spec.loss === 'mse' ? spec.numClasses : 1,
    loss: spec.loss,
    numClasses: spec.numClasses,
    fastStep(params, batch, ctx) {
      if (spec.activation !== 'relu' || spec.loss === 'mse' || !fastStepsActive()) return null;
      return mlpFastStep(params, lb.entries, batch, spec.dropout, ctx.dropoutMask);
    },
    forward(ps, x, ctx) {
      // The input needs no gradient: skip the first layer's dx.
      return denseStack(x as tf.Tensor2D, ps, spec.activation, (h) => ctx.dropout(h, spec.dropout), false);
    },
    async exportArtifacts(model, params) {
      const m = tf.sequential();
      if (spec.inputShape.length > 1) m.add(tf.layers.flatten({ inputShape: spec.inputShape }));
      for (let i = 0; i <= last; i++) {
        const inputShape = i === 0 && spec.inputShape.length === 1 ? spec.inputShape : undefined;
        m.add(tf.layers.dense({ units: sizes[i + 1], activation: i < last ? spec.activation : 'linear', inputShape }));
        if (i < last && spec.dropout > 0) m.add(tf.layers.dropout({ rate: spec.dropout }));
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
