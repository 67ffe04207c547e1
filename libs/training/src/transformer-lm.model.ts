/**
 * A small decoder-only (GPT-style, pre-layer-norm) character-level language model: token and
 * learned position embeddings, `layers` blocks of causal multi-head self-attention and a ReLU
 * MLP (width mlpRatio·dModel), final layer norm, linear head. Sequences have exactly
 * contextLength tokens; the loss is the mean next-token cross-entropy over every position.
 *
 * Layout (d = dModel, V = vocabSize, T = contextLength, f = mlpRatio·d):
 *   tok_emb [V, d], pos_emb [T, d], then per block l:
 *   h{l}/ln1/gamma [d], h{l}/ln1/beta [d], h{l}/attn/qkv/kernel [d, 3d] (columns q | k | v,
 *   heads contiguous within each), h{l}/attn/qkv/bias [3d], h{l}/attn/proj/kernel [d, d],
 *   h{l}/attn/proj/bias [d], h{l}/ln2/gamma [d], h{l}/ln2/beta [d], h{l}/mlp/fc/kernel [d, f],
 *   h{l}/mlp/fc/bias [f], h{l}/mlp/proj/kernel [f, d], h{l}/mlp/proj/bias [d];
 *   then ln_f/gamma [d], ln_f/beta [d], head/kernel [d, V], head/bias [V].
 * Init: matrices and embeddings uniform with std 0.02 (residual projections 0.02/√(2·layers)),
 * biases 0, gains 1.
 *
 * On the CPU backends the token embedding is a one-hot matmul (Gather's gradient,
 * UnsortedSegmentSum, has no wasm kernel) and every matmul takes plain operands: keys are
 * transposed explicitly.
 * Training steps on wasm with WebAssembly SIMD skip all of that: transformer-fast.ts computes
 * the loss and gradient by hand (this forward still serves evaluate and predict, and the step
 * elsewhere).
 */
import * as tf from '@tensorflow/tfjs';
import { dense, denseActivated, GraphModel } from './graph.model.js';
import { LayoutBuilder, type ParamInit } from './layout.js';
import type { TransformerLmSpec } from './spec.js';
import { transformerFastStep, transformerFastStepActive } from './transformer-fast.js';

const std = (s: number): ParamInit => ({ kind: 'uniform', limit: s * Math.sqrt(3) });

function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const v = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(v, 1e-5))), g), b) as tf.Tensor2D;
}

export function buildTransformerLm(spec: TransformerLmSpec): GraphModel {
  const { vocabSize: V, contextLength: T, dModel: d, heads: H, layers: L } = spec;
  const f = spec.mlpRatio * d;
  const dh = d / H;
  const lb = new LayoutBuilder();
  lb.add('tok_emb', [V, d], std(0.02));
  lb.add('pos_emb', [T, d], std(0.02));
  const resid = std(0.02 / Math.sqrt(2 * L));
  for (let l = 0; l < L; l++) {
    lb.add(`h${l}/ln1/gamma`, [d], { kind: 'ones' });
    lb.add(`h${l}/ln1/beta`, [d], { kind: 'zeros' });
    lb.add(`h${l}/attn/qkv/kernel`, [d, 3 * d], std(0.02));
    lb.add(`h${l}/attn/qkv/bias`, [3 * d], { kind: 'zeros' });
    lb.add(`h${l}/attn/proj/kernel`, [d, d], resid);
    lb.add(`h${l}/attn/proj/bias`, [d], { kind: 'zeros' });
    lb.add(`h${l}/ln2/gamma`, [d], { kind: 'ones' });
    lb.add(`h${l}/ln2/beta`, [d], { kind: 'zeros' });
    lb.add(`h${l}/mlp/fc/kernel`, [d, f], std(0.02));
    lb.add(`h${l}/mlp/fc/bias`, [f], { kind: 'zeros' });
    lb.add(`h${l}/mlp/proj/kernel`, [f, d], resid);
    lb.add(`h${l}/mlp/proj/bias`, [d], { kind: 'zeros' });
  }
  lb.add('ln_f/gamma', [d], { kind: 'ones' });
  lb.add('ln_f/beta', [d], { kind: 'zeros' });
  lb.add('head/kernel', [d, V], std(0.02));
  lb.add('head/bias', [V], { kind: 'zeros' });

  // Per token: embedding one-hot matmul, per block qkv + proj + 2 MLP matmuls + attention
  // (scores and weighted values over T positions), head.
  const perToken = 2 * V * d + L * (2 * d * 3 * d + 2 * d * d + 4 * d * f + 4 * T * d) + 2 * d * V;
  // Additive causal mask: 0 on and below the diagonal, -1e9 above.
  const maskData = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskData[i * T + j] = -1e9;

  return new GraphModel({
    spec,
    layout: lb.entries,
    size: lb.size,
    flopsPerSample: perToken * T,
    // The one-hot embedding matmul has no input gradient.
    stepFlopsPerSample: (3 * perToken - 2 * V * d) * T,
    sampleShape: [T],
    intInput: true,
    xPerSample: T,
    yPerSample: T,
    loss: 'cross-entropy',
    numClasses: V,
    // wasm with SIMD: the hand-written step of transformer-fast.ts instead of the tape.
    fastStep(params, batch) {
      return transformerFastStepActive() ? transformerFastStep(spec, params, lb.entries, batch) : null;
    },
    forward(ps, x) {
      const n = x.shape[0];
      const m = n * T;
      let i = 0;
      const next = () => ps[i++];
      const tokEmb = next();
      const posEmb = next();
      const onehot = tf.oneHot(tf.reshape(x, [m]) as tf.Tensor1D, V);
      let h: tf.Tensor = tf.matMul(onehot, tokEmb as tf.Tensor2D);
      h = tf.reshape(tf.add(tf.reshape(h, [n, T, d]), posEmb), [m, d]) as tf.Tensor2D;
      const mask = tf.tensor2d(maskData, [T, T]);
      for (let l = 0; l < L; l++) {
        const [g1, b1, wqkv, bqkv, wo, bo, g2, b2, wfc, bfc, wpr, bpr] = Array.from({ length: 12 }, next);
        // Heads into the batch: [m, 3d] → [m, 3H, dh] → [3H, m, dh] (a 3-D transpose; the
        // 5-D [n,T,3,H,dh] one is several times slower on wasm), split into q, k, v of
        // [H·n, T, dh] each.
        const qkv = dense(layerNorm(h as tf.Tensor2D, g1, b1), wqkv, bqkv);
        const heads = tf.transpose(tf.reshape(qkv, [m, 3 * H, dh]), [1, 0, 2]);
        const [q, k, v] = tf.split(heads, 3, 0).map((t) => tf.reshape(t, [H * n, T, dh]) as tf.Tensor3D);
        const scores = tf.add(tf.mul(tf.matMul(q, tf.transpose(k, [0, 2, 1]) as tf.Tensor3D), 1 / Math.sqrt(dh)), mask);
        const att = tf.matMul(tf.softmax(scores) as tf.Tensor3D, v); // [H·n, T, dh]
        const merged = tf.reshape(tf.transpose(tf.reshape(att, [H, m, dh]), [1, 0, 2]), [m, d]);
        const attn = dense(merged, wo, bo);
        h = tf.add(h, attn) as tf.Tensor2D;
        // ReLU MLP (fused into the first matmul; GELU costs ~10 elementwise passes on wasm).
        const mlp = dense(denseActivated(layerNorm(h as tf.Tensor2D, g2, b2), wfc, bfc, 'relu'), wpr, bpr);
        h = tf.add(h, mlp) as tf.Tensor2D;
      }
      const [gf, bf, wh, bh] = [next(), next(), next(), next()];
      return dense(layerNorm(h as tf.Tensor2D, gf, bf), wh, bh);
    },
    async exportArtifacts(model, params) {
      return {
        format: TRANSFORMER_LM_FORMAT,
        generatedBy: '@gradpool/training',
        modelTopology: { class_name: 'GradpoolTransformerLm', config: { ...spec } },
        weightSpecs: model.layout.map((e) => ({ name: e.name, shape: e.shape, dtype: 'float32' as const })),
        weightData: params.slice().buffer,
      };
    },
  });
}

/** `format` of the transformer LM's exported artifacts (read by `loadExportedModel`). */
export const TRANSFORMER_LM_FORMAT = 'gradpool-transformer-lm';
