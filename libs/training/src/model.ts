/**
 * The model contract shared by the worker, the keeper and the exchange: parameters are one
 * flat Float32Array laid out as `layout` says; `step` turns parameters and a batch into the
 * gradient of the batch's mean loss.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamEntry } from './layout.js';
import type { ModelSpec } from './spec.js';

/**
 * A batch of `n` samples, row-major.
 * - mlp / cnn / keras: `x` holds n × prod(inputShape) features; `y` holds n integer labels
 *   (cross-entropy) or n × numClasses targets (mse).
 * - transformer-lm: `x` holds n × T token ids (T ≤ contextLength), `y` the n × T next tokens.
 */
export interface Batch {
  x: Float32Array | Int32Array;
  y: Int32Array | Float32Array;
  n: number;
}

export interface StepOptions {
  /** Seed of this step's dropout masks (e.g. a hash of job, round and worker); default 0. */
  seed?: number;
}

export interface StepResult {
  /** Gradient of the mean loss over the batch, same layout as the parameters. */
  grad: Float32Array;
  /** Mean loss over the batch (per token for the LM). */
  loss: number;
  /** Samples in the batch (sequences for the LM): the weight of this gradient in an average. */
  samples: number;
}

export interface EvalResult {
  /** Mean loss over the batch. */
  loss: number;
  /** Fraction of correct argmax predictions (per token for the LM); absent for mse. */
  accuracy?: number;
  /** Correct predictions (tokens for the LM), for summing over several batches. */
  correct?: number;
  samples: number;
}

/** TensorFlow.js model artifacts (model.json contents + one weights buffer). */
export type ModelArtifacts = tf.io.ModelArtifacts;

export interface Model {
  readonly spec: ModelSpec;
  /** Number of parameters P (the length of every parameter and gradient vector). */
  readonly paramCount: number;
  /** The flat layout: tensors in order with offsets and shapes. */
  readonly layout: readonly ParamEntry[];
  /** Forward multiply-add FLOPs (2 per MAC) of one sample, dense/conv/attention matmuls only. */
  readonly flopsPerSample: number;
  /**
   * FLOPs of one sample's training step as computed: forward + input and weight gradients of
   * every matmul/conv, less the input gradient of the first layer (never computed).
   */
  readonly stepFlopsPerSample: number;
  /** Deterministic initial parameters (same seed → same bytes everywhere). */
  init(seed: number): Float32Array;
  /** Forward + backward on a batch (inside tf.tidy; no tensors outlive the call). */
  step(params: Float32Array, batch: Batch, opts?: StepOptions): StepResult;
  /** Loss and accuracy without dropout. */
  evaluate(params: Float32Array, batch: Batch): EvalResult;
  /** Model outputs (logits, or the Keras model's outputs) for n samples, row-major. */
  predict(params: Float32Array, x: Float32Array | Int32Array, n: number): Float32Array;
  /**
   * TensorFlow.js artifacts: layers format (`tf.loadLayersModel(tf.io.fromMemory(a))`) for
   * mlp / cnn / keras; for transformer-lm the custom format read by `loadExportedModel`.
   */
  export(params: Float32Array): Promise<ModelArtifacts>;
  /** Frees what the model holds (Keras models hold tf.Variables). */
  dispose(): void;
}

export class ShapeError extends Error {
  override name = 'ShapeError';
}

export function checkParams(p: Float32Array, size: number): void {
  if (p.length !== size) throw new ShapeError(`expected ${size} parameters, got ${p.length}`);
}

export function checkBatch(b: Batch, xPerSample: number, yPerSample: number): void {
  if (!Number.isInteger(b.n) || b.n <= 0) throw new ShapeError(`batch n must be a positive integer, got ${b.n}`);
  if (b.x.length !== b.n * xPerSample) throw new ShapeError(`batch x has ${b.x.length} values, expected ${b.n} × ${xPerSample}`);
  if (b.y.length !== b.n * yPerSample) throw new ShapeError(`batch y has ${b.y.length} values, expected ${b.n} × ${yPerSample}`);
}

/** Tensors over the parameter vector, one per layout entry (copies into the backend). */
export function paramTensors(params: Float32Array, layout: readonly ParamEntry[]): tf.Tensor[] {
  return layout.map((e) => tf.tensor(params.subarray(e.offset, e.offset + e.size), e.shape, 'float32'));
}

/** Writes per-tensor gradients into one flat vector. */
export function flattenGrads(grads: readonly tf.Tensor[], layout: readonly ParamEntry[], size: number): Float32Array {
  const out = new Float32Array(size);
  // On wasm, copy straight from the heap (dataSync would copy into a fresh array first).
  const wasm = tf.getBackend() === 'wasm' ? (tf.backend() as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array }) : undefined;
  const fromHeap = typeof wasm?.typedArrayFromHeap === 'function' ? wasm.typedArrayFromHeap.bind(wasm) : undefined;
  grads.forEach((g, i) => out.set(fromHeap && g.dtype === 'float32' ? fromHeap(g) : (g.dataSync() as Float32Array), layout[i].offset));
  return out;
}
