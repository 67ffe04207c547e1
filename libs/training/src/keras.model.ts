/**
 * Models given as a Keras / TensorFlow.js layers topology (model.json). The layout is the
 * model's weights in `model.weights` order under their Keras names (non-trainable ones, e.g.
 * batch-norm moving statistics, included with trainable = false and a zero gradient).
 * Initialisation is ours (seeded): Glorot-uniform for kernels and embeddings, ones for gammas
 * and moving variances, zeros otherwise. A softmax output layer is detected and the loss
 * computed on probabilities; otherwise outputs are logits.
 * Dropout layers draw TensorFlow.js' own random masks: not reproducible, which is harmless for
 * data-parallel training (the averaged gradient is computed once and shared).
 */
import * as tf from '@tensorflow/tfjs';
import { checkLabels, saveLayersModel } from './graph.model.js';
import { initParams, LayoutBuilder, type ParamEntry, type ParamInit } from './layout.js';
import { correctCount, meanSquaredError, probabilityCrossEntropy, softmaxCrossEntropy } from './loss.js';
import {
  checkBatch,
  checkParams,
  flattenGrads,
  paramTensors,
  type Batch,
  type EvalResult,
  type Model,
  type ModelArtifacts,
  type StepResult,
} from './model.js';
import { ModelSpecError, type KerasSpec } from './spec.js';

function initFor(name: string, shape: number[]): ParamInit {
  const base = name.split('/').pop() ?? name;
  if (/kernel|embeddings/.test(base) && shape.length >= 2) {
    const recept = shape.slice(0, -2).reduce((p, d) => p * d, 1);
    return { kind: 'glorot', fanIn: recept * shape[shape.length - 2], fanOut: recept * shape[shape.length - 1] };
  }
  if (/gamma|moving_variance/.test(base)) return { kind: 'ones' };
  return { kind: 'zeros' };
}

function layerFlops(layer: tf.layers.Layer): number {
  const cls = layer.getClassName();
  const out = layer.outputShape as (number | null)[];
  const w = layer.getWeights(false);
  if (!w.length) return 0;
  const k = w[0].shape as number[];
  if (cls === 'Dense') return 2 * k[0] * k[1];
  if (cls === 'Conv2D' && out.length === 4) return 2 * (out[1] ?? 0) * (out[2] ?? 0) * k[0] * k[1] * k[2] * k[3];
  return 0;
}

class KerasModel implements Model {
  readonly paramCount: number;
  readonly layout: readonly ParamEntry[];
  readonly flopsPerSample: number;
  readonly stepFlopsPerSample: number;
  private readonly sampleShape: number[];
  private readonly outputs: number;
  private readonly probabilities: boolean;
  private readonly trainable: { index: number; variable: tf.Variable }[];

  constructor(
    readonly spec: KerasSpec,
    private readonly model: tf.LayersModel,
  ) {
    const lb = new LayoutBuilder();
    const tIds = new Set(model.trainableWeights.map((w) => w.id));
    for (const w of model.weights) lb.add(w.originalName, w.shape.map((d) => d ?? 1), initFor(w.originalName, w.shape as number[]), tIds.has(w.id));
    this.layout = lb.entries;
    this.paramCount = lb.size;
    this.trainable = model.weights
      .map((w, index) => ({ index, w }))
      .filter(({ w }) => tIds.has(w.id))
      .map(({ index, w }) => ({ index, variable: (w as unknown as { read(): tf.Variable }).read() }));
    this.flopsPerSample = model.layers.reduce((s, l) => s + layerFlops(l), 0);
    // tf.layers computes every input gradient, the first layer's included.
    this.stepFlopsPerSample = 3 * this.flopsPerSample;
    this.sampleShape = (model.inputs[0].shape.slice(1) as number[]).map((d) => d ?? 1);
    const outShape = model.outputs[0].shape;
    this.outputs = (outShape[outShape.length - 1] as number) ?? 1;
    const lastLayer = model.layers[model.layers.length - 1];
    const act = (lastLayer.getConfig() as { activation?: unknown }).activation;
    this.probabilities = act === 'softmax';
  }

  init(seed: number): Float32Array {
    return initParams(this.layout, this.paramCount, seed);
  }

  private prod(a: number[]): number {
    return a.reduce((p, d) => p * d, 1);
  }

  private tensors(batch: Batch): { x: tf.Tensor; y: tf.Tensor } {
    const yPer = this.spec.loss === 'mse' ? this.outputs : 1;
    checkBatch(batch, this.prod(this.sampleShape), yPer);
    if (this.spec.loss !== 'mse') checkLabels(batch.y, this.outputs);
    const x = tf.tensor(Float32Array.from(batch.x), [batch.n, ...this.sampleShape], 'float32');
    const y = this.spec.loss === 'mse' ? tf.tensor2d(Float32Array.from(batch.y), [batch.n, yPer]) : tf.tensor1d(Int32Array.from(batch.y), 'int32');
    return { x, y };
  }

  private lossOf(out: tf.Tensor2D, y: tf.Tensor): tf.Scalar {
    if (this.spec.loss === 'mse') return meanSquaredError(out, y as tf.Tensor2D);
    return this.probabilities ? probabilityCrossEntropy(out, y as tf.Tensor1D) : softmaxCrossEntropy(out, y as tf.Tensor1D);
  }

  private load(params: Float32Array): void {
    checkParams(params, this.paramCount);
    tf.tidy(() => this.model.setWeights(paramTensors(params, this.layout)));
  }

  step(params: Float32Array, batch: Batch): StepResult {
    this.load(params);
    let result: StepResult | undefined;
    tf.tidy(() => {
      const { x, y } = this.tensors(batch);
      const f = () => this.lossOf(tf.reshape(this.model.apply(x, { training: true }) as tf.Tensor, [batch.n, -1]) as tf.Tensor2D, y);
      const { value, grads } = tf.variableGrads(f, this.trainable.map((t) => t.variable));
      const all = this.layout.map((e) => tf.zeros(e.shape));
      for (const t of this.trainable) all[t.index] = grads[t.variable.name];
      result = { grad: flattenGrads(all, this.layout, this.paramCount), loss: value.dataSync()[0], samples: batch.n };
    });
    return result!;
  }

  evaluate(params: Float32Array, batch: Batch): EvalResult {
    this.load(params);
    let result: EvalResult | undefined;
    tf.tidy(() => {
      const { x, y } = this.tensors(batch);
      const out = tf.reshape(this.model.apply(x, { training: false }) as tf.Tensor, [batch.n, -1]) as tf.Tensor2D;
      const loss = this.lossOf(out, y).dataSync()[0];
      if (this.spec.loss === 'mse') {
        result = { loss, samples: batch.n };
        return;
      }
      const correct = correctCount(out, y as tf.Tensor1D).dataSync()[0];
      result = { loss, accuracy: correct / batch.n, correct, samples: batch.n };
    });
    return result!;
  }

  predict(params: Float32Array, x: Float32Array | Int32Array, n: number): Float32Array {
    this.load(params);
    let out: Float32Array | undefined;
    tf.tidy(() => {
      const xt = tf.tensor(Float32Array.from(x), [n, ...this.sampleShape], 'float32');
      out = (this.model.predict(xt) as tf.Tensor).dataSync() as Float32Array;
    });
    return out!;
  }

  async export(params: Float32Array): Promise<ModelArtifacts> {
    checkParams(params, this.paramCount);
    const ws = paramTensors(params, this.layout);
    try {
      return await saveLayersModel(this.model, ws);
    } finally {
      tf.dispose(ws);
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}

export async function buildKeras(spec: KerasSpec): Promise<Model> {
  const topo = (spec.topology.modelTopology ?? spec.topology) as tf.io.ModelJSON['modelTopology'];
  let model: tf.LayersModel;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: topo } as tf.io.ModelJSON);
  } catch (err) {
    throw new ModelSpecError([{ path: 'topology', message: `not a loadable layers model: ${err instanceof Error ? err.message : String(err)}` }]);
  }
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    model.dispose();
    throw new ModelSpecError([{ path: 'topology', message: 'must have exactly one input and one output' }]);
  }
  return new KerasModel(spec, model);
}
