/** buildModel: spec → Model; loadExportedModel: exported artifacts → something that predicts. */
import * as tf from '@tensorflow/tfjs';
import { buildCnn } from './cnn.model.js';
import { installFastGradients } from './fast-gradients.js';
import { installHeapKernels } from './heap-kernels.js';
import { buildKeras } from './keras.model.js';
import { buildMlp } from './mlp.model.js';
import type { Model, ModelArtifacts } from './model.js';
import { ModelSpecError, validateModelSpec, type DatasetShape, type SpecIssue } from './spec.js';
import { installWasmConvKernels } from './wasm-kernels.js';
import { buildTransformerLm, TRANSFORMER_LM_FORMAT } from './transformer-lm.model.js';

/**
 * Validates `spec` and builds the model (throws ModelSpecError naming the field). Installs the
 * fast CPU-backend gradients (fast-gradients.ts) on first use.
 */
export async function buildModel(spec: unknown): Promise<Model> {
  installFastGradients();
  await installWasmConvKernels();
  installHeapKernels();
  const s = validateModelSpec(spec);
  switch (s.kind) {
    case 'mlp':
      return buildMlp(s);
    case 'cnn':
      return buildCnn(s);
    case 'transformer-lm':
      return buildTransformerLm(s);
    case 'keras':
      return buildKeras(s);
  }
}

/**
 * Checks a built model against a dataset (what `checkSpecAgainstDataset` cannot know of a
 * Keras topology before building it): sample size and output width.
 */
export function modelDatasetIssues(model: Model, ds: DatasetShape): SpecIssue[] {
  if (model.spec.kind !== 'keras') return [];
  const issues: SpecIssue[] = [];
  const per = ds.inputShape.reduce((p, d) => p * d, 1);
  const probe = model.predict(new Float32Array(model.paramCount), new Float32Array(per), 1);
  const want = model.spec.loss === 'mse' ? ds.targetSize : ds.numClasses;
  if (want !== undefined && probe.length !== want) issues.push({ path: 'topology', message: `outputs ${probe.length} values per sample but the dataset needs ${want}` });
  return issues;
}

/** Throws ModelSpecError when a built model does not fit the dataset. */
export function checkModelAgainstDataset(model: Model, ds: DatasetShape): void {
  const issues = modelDatasetIssues(model, ds);
  if (issues.length) throw new ModelSpecError(issues);
}

export interface LoadedModel {
  /** Outputs (logits) for n samples, row-major. */
  predict(x: Float32Array | Int32Array, n: number): Float32Array;
  dispose(): void;
}

/**
 * Loads exported artifacts: the transformer LM's custom format (its spec in
 * `modelTopology.config`, weights = the flat parameter vector), or any layers model via
 * tf.loadLayersModel.
 */
export async function loadExportedModel(artifacts: ModelArtifacts): Promise<LoadedModel> {
  if (artifacts.format === TRANSFORMER_LM_FORMAT) {
    const spec = (artifacts.modelTopology as { config: unknown }).config;
    const model = await buildModel(spec);
    const data = artifacts.weightData as ArrayBuffer;
    const params = new Float32Array(data.slice(0));
    return { predict: (x, n) => model.predict(params, x, n), dispose: () => model.dispose() };
  }
  const lm = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  return {
    predict: (x, n) => {
      let out: Float32Array | undefined;
      tf.tidy(() => {
        const shape = (lm.inputs[0].shape.slice(1) as number[]).map((d) => d ?? 1);
        out = (lm.predict(tf.tensor(Float32Array.from(x), [n, ...shape])) as tf.Tensor).dataSync() as Float32Array;
      });
      return out!;
    },
    dispose: () => lm.dispose(),
  };
}
