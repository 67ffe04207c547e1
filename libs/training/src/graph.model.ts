/**
 * The zoo models' common runtime: a model is a function of per-tensor parameter tensors, built
 * from plain tf ops on the flat vector (no tf.layers variables), differentiated with
 * tf.valueAndGrads. The slow gradients of the CPU backends are replaced by fast-gradients.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { initParams, type ParamEntry } from './layout.js';
import { denseAct, denseActT, transposeT } from './ops.js';
import { heapKernelsActive } from './heap-kernels.js';
import type { DropoutMask, FastStepResult } from './fast-step.js';
import { correctCount, meanSquaredError, softmaxCrossEntropy, type LossKind } from './loss.js';
import {
  checkBatch,
  checkParams,
  ShapeError,
  flattenGrads,
  paramTensors,
  type Batch,
  type EvalResult,
  type Model,
  type ModelArtifacts,
  type StepOptions,
  type StepResult,
} from './model.js';
import { Rng } from './prng.js';
import type { ModelSpec } from './spec.js';

export interface ForwardContext {
  training: boolean;
  /** Inverted dropout with a mask drawn in JS from the step's seed (deterministic everywhere). */
  dropout(h: tf.Tensor, rate: number): tf.Tensor;
  /** The mask `dropout` would apply next to a tensor of this shape (null: no dropout). */
  dropoutMask: DropoutMask;
}

export interface GraphDef {
  spec: ModelSpec;
  layout: ParamEntry[];
  size: number;
  flopsPerSample: number;
  stepFlopsPerSample: number;
  /** Shape of one sample's x as the forward function wants it. */
  sampleShape: number[];
  /** x as int32 token ids (the LM) rather than float features. */
  intInput?: boolean;
  xPerSample: number;
  yPerSample: number;
  loss: LossKind;
  /** Output width (classes, or the LM's vocabulary): labels must lie in [0, numClasses). */
  numClasses: number;
  /** Outputs [rows, k]: one row per sample, or per token for the LM. */
  forward(ps: tf.Tensor[], x: tf.Tensor, ctx: ForwardContext): tf.Tensor2D;
  /**
   * Loss and per-tensor gradients without the tape (fast-step.ts), or null where the model or
   * backend has no hand-written step; the gradient must equal the taped one byte for byte.
   */
  fastStep?(params: Float32Array, batch: Batch, ctx: ForwardContext): FastStepResult | null;
  exportArtifacts(model: Model, params: Float32Array): Promise<ModelArtifacts>;
}

function makeContext(training: boolean, seed: number): ForwardContext {
  let stream = 0;
  const dropoutMask: DropoutMask = (shape, rate) => {
    if (!training || rate <= 0) return null;
    const rng = new Rng(seed, 0x10000 + stream++);
    const keep = 1 / (1 - rate);
    const mask = new Float32Array(shape.reduce((p, d) => p * d, 1));
    for (let i = 0; i < mask.length; i++) mask[i] = rng.uniform() >= rate ? keep : 0;
    return tf.tensor(mask, shape, 'float32');
  };
  return {
    training,
    dropoutMask,
    dropout(h, rate) {
      const mask = dropoutMask(h.shape, rate);
      return mask ? tf.mul(h, mask) : h;
    },
  };
}

/** Integer labels in [0, classes): anything else would silently give a zero one-hot row. */
export function checkLabels(y: Int32Array | Float32Array, classes: number): void {
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (!(v >= 0 && v < classes && Number.isInteger(v))) throw new ShapeError(`label ${v} at ${i} is not an integer in [0, ${classes})`);
  }
}

export class GraphModel implements Model {
  readonly spec: ModelSpec;
  readonly paramCount: number;
  readonly layout: readonly ParamEntry[];
  readonly flopsPerSample: number;
  readonly stepFlopsPerSample: number;

  constructor(private readonly def: GraphDef) {
    this.spec = def.spec;
    this.paramCount = def.size;
    this.layout = def.layout;
    this.flopsPerSample = def.flopsPerSample;
    this.stepFlopsPerSample = def.stepFlopsPerSample;
  }

  init(seed: number): Float32Array {
    return initParams(this.def.layout, this.def.size, seed);
  }

  private check(batch: Batch): void {
    const d = this.def;
    checkBatch(batch, d.xPerSample, d.yPerSample);
    if (d.loss !== 'mse') checkLabels(batch.y, d.numClasses);
  }

  private inputs(batch: Batch): { x: tf.Tensor; y: tf.Tensor } {
    const d = this.def;
    checkBatch(batch, d.xPerSample, d.yPerSample);
    const x = d.intInput
      ? tf.tensor(Int32Array.from(batch.x), [batch.n, ...d.sampleShape], 'int32')
      : tf.tensor(batch.x instanceof Float32Array ? batch.x : Float32Array.from(batch.x), [batch.n, ...d.sampleShape], 'float32');
    if (d.loss !== 'mse') checkLabels(batch.y, d.numClasses);
    const y =
      d.loss === 'mse'
        ? tf.tensor2d(Float32Array.from(batch.y), [batch.y.length / d.yPerSample, d.yPerSample])
        : tf.tensor1d(batch.y instanceof Int32Array ? batch.y : Int32Array.from(batch.y), 'int32');
    return { x, y };
  }

  private lossOf(out: tf.Tensor2D, y: tf.Tensor): tf.Scalar {
    if (this.def.loss === 'mse') return meanSquaredError(out, y as tf.Tensor2D);
    // One row per label: the LM's outputs are per token.
    return softmaxCrossEntropy(out, tf.reshape(y, [-1]) as tf.Tensor1D);
  }

  step(params: Float32Array, batch: Batch, opts: StepOptions = {}): StepResult {
    checkParams(params, this.def.size);
    let result: StepResult | undefined;
    tf.tidy(() => {
      if (this.def.fastStep) {
        this.check(batch);
        const fast = this.def.fastStep(params, batch, makeContext(true, opts.seed ?? 0));
        if (fast) {
          result = { grad: flattenGrads(fast.grads, this.def.layout, this.def.size), loss: fast.loss.dataSync()[0], samples: batch.n };
          return;
        }
      }
      const { x, y } = this.inputs(batch);
      const ps = paramTensors(params, this.def.layout);
      const ctx = makeContext(true, opts.seed ?? 0);
      const f = (...p: tf.Tensor[]) => this.lossOf(this.def.forward(p, x, ctx), y);
      const { value, grads } = tf.valueAndGrads(f)(ps);
      result = { grad: flattenGrads(grads, this.def.layout, this.def.size), loss: value.dataSync()[0], samples: batch.n };
    });
    return result!;
  }

  evaluate(params: Float32Array, batch: Batch): EvalResult {
    checkParams(params, this.def.size);
    let result: EvalResult | undefined;
    tf.tidy(() => {
      const { x, y } = this.inputs(batch);
      const out = this.def.forward(paramTensors(params, this.def.layout), x, makeContext(false, 0));
      const loss = this.lossOf(out, y).dataSync()[0];
      if (this.def.loss === 'mse') {
        result = { loss, samples: batch.n };
        return;
      }
      const correct = correctCount(out, tf.reshape(y, [-1]) as tf.Tensor1D).dataSync()[0];
      result = { loss, accuracy: correct / out.shape[0], correct, samples: batch.n };
    });
    return result!;
  }

  predict(params: Float32Array, x: Float32Array | Int32Array, n: number): Float32Array {
    checkParams(params, this.def.size);
    let out: Float32Array | undefined;
    tf.tidy(() => {
      const { x: xt } = this.inputs({ x, y: new Float32Array(n * this.def.yPerSample), n });
      out = this.def.forward(paramTensors(params, this.def.layout), xt, makeContext(false, 0)).dataSync() as Float32Array;
    });
    return out!;
  }

  export(params: Float32Array): Promise<ModelArtifacts> {
    checkParams(params, this.def.size);
    return this.def.exportArtifacts(this, params);
  }

  dispose(): void {}
}

/** Applies a named activation. */
export function activate(h: tf.Tensor, act: 'relu' | 'tanh' | 'sigmoid'): tf.Tensor {
  return act === 'relu' ? tf.relu(h) : act === 'tanh' ? tf.tanh(h) : tf.sigmoid(h);
}

/** x [m, in] · w [in, out] + b (fused; fast gradients: ops.ts). */
export function dense(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, inputGrad = true): tf.Tensor2D {
  return denseAct(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, 'linear', inputGrad);
}

/** act(x · w + b), with ReLU fused into the matmul. */
export function denseActivated(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, act: 'relu' | 'tanh' | 'sigmoid', inputGrad = true): tf.Tensor2D {
  if (act === 'relu') return denseAct(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, 'relu', inputGrad);
  return activate(dense(x, w, b, inputGrad), act) as tf.Tensor2D;
}

/**
 * A stack of dense layers on x [m, in]: act(... act(x · w0 + b0) ...) with dropout after each
 * hidden activation and a linear last layer; returns [m, out]. On the CPU backends the stack
 * runs feature-major (ops.ts, denseActT) between one transpose in and one out.
 * `ps`: w0, b0, w1, b1, …; `inputGrad` false: no gradient to x.
 */
export function denseStack(
  x: tf.Tensor2D,
  ps: tf.Tensor[],
  act: 'relu' | 'tanh' | 'sigmoid',
  dropout: (h: tf.Tensor) => tf.Tensor,
  inputGrad: boolean,
): tf.Tensor2D {
  const layers = ps.length / 2;
  if (!heapKernelsActive()) {
    let h = x;
    for (let i = 0; i < layers; i++) {
      const g = inputGrad || i > 0;
      if (i < layers - 1) h = dropout(denseActivated(h, ps[2 * i], ps[2 * i + 1], act, g)) as tf.Tensor2D;
      else h = dense(h, ps[2 * i], ps[2 * i + 1], g);
    }
    return h;
  }
  let hT = transposeT(x);
  for (let i = 0; i < layers; i++) {
    const g = inputGrad || i > 0;
    const [w, b] = [ps[2 * i] as tf.Tensor2D, ps[2 * i + 1] as tf.Tensor1D];
    if (i === layers - 1) hT = denseActT(hT, w, b, 'linear', g);
    else if (act === 'relu') hT = dropout(denseActT(hT, w, b, 'relu', g)) as tf.Tensor2D;
    else hT = dropout(activate(denseActT(hT, w, b, 'linear', g), act)) as tf.Tensor2D;
  }
  return transposeT(hT);
}

/** Saves a tf.layers model (with the given flat weights) as in-memory artifacts. */
export async function saveLayersModel(model: tf.LayersModel, weights: tf.Tensor[]): Promise<ModelArtifacts> {
  model.setWeights(weights);
  let artifacts: ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return artifacts!;
}
