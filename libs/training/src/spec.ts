/**
 * Model specs: the config objects a job names its model with (shared/DESIGN.md "Models").
 * Validated with zod; every error names the offending field so the coordinator can return it
 * as a 422 / 400 as is.
 */
import { z } from 'zod';

const posInt = z.number().int().positive();
const activation = z.enum(['relu', 'tanh', 'sigmoid']);
const loss = z.enum(['cross-entropy', 'mse']);
const dropout = z.number().min(0).lt(1);

export const MlpSpecSchema = z.strictObject({
  kind: z.literal('mlp'),
  /** Shape of one sample; flattened before the first dense layer. */
  inputShape: z.array(posInt).min(1).max(4),
  hidden: z.array(posInt).max(16),
  activation: activation.default('relu'),
  dropout: dropout.default(0),
  /** Output width: classes for cross-entropy, regression targets for mse. */
  numClasses: posInt,
  loss: loss.default('cross-entropy'),
});

export const ConvLayerSchema = z.strictObject({
  filters: posInt.max(1024),
  /** Square kernel, stride 1, 'same' padding. */
  kernelSize: posInt.max(11).default(3),
  /** 2×2, stride 2 pooling after the activation; the spatial size must be even there. */
  pool: z.enum(['max', 'avg', 'none']).default('max'),
});

export const CnnSpecSchema = z.strictObject({
  kind: z.literal('cnn'),
  /** [height, width, channels], e.g. [28, 28, 1] (MNIST) or [32, 32, 3] (CIFAR-10). */
  inputShape: z.tuple([posInt.max(512), posInt.max(512), posInt.max(64)]),
  convs: z.array(ConvLayerSchema).min(1).max(12),
  dense: z.array(posInt).max(8).default([]),
  activation: activation.default('relu'),
  dropout: dropout.default(0),
  numClasses: posInt,
  loss: loss.default('cross-entropy'),
});

export const TransformerLmSpecSchema = z.strictObject({
  kind: z.literal('transformer-lm'),
  vocabSize: posInt.max(65536),
  contextLength: posInt.max(4096),
  dModel: posInt.max(4096),
  heads: posInt.max(64),
  layers: posInt.max(48),
  mlpRatio: posInt.max(8).default(4),
});

export const KerasSpecSchema = z.strictObject({
  kind: z.literal('keras'),
  /** A TF.js / Keras model.json object (with `modelTopology`) or the topology itself. */
  topology: z.record(z.string(), z.unknown()),
  loss: loss.default('cross-entropy'),
});

export const ModelSpecSchema = z
  .discriminatedUnion('kind', [MlpSpecSchema, CnnSpecSchema, TransformerLmSpecSchema, KerasSpecSchema])
  .superRefine((spec, ctx) => {
    if (spec.kind === 'transformer-lm' && spec.dModel % spec.heads !== 0) {
      ctx.addIssue({ code: 'custom', path: ['heads'], message: `must divide dModel (${spec.dModel})` });
    }
    if (spec.kind === 'cnn') {
      let h = spec.inputShape[0];
      let w = spec.inputShape[1];
      spec.convs.forEach((c, i) => {
        if (c.pool === 'none') return;
        if (h % 2 !== 0 || w % 2 !== 0) {
          ctx.addIssue({ code: 'custom', path: ['convs', i, 'pool'], message: `2×2 pooling needs an even spatial size, got ${h}×${w}` });
        }
        h = Math.floor(h / 2);
        w = Math.floor(w / 2);
      });
    }
  });

export type MlpSpec = z.output<typeof MlpSpecSchema>;
export type CnnSpec = z.output<typeof CnnSpecSchema>;
export type TransformerLmSpec = z.output<typeof TransformerLmSpecSchema>;
export type KerasSpec = z.output<typeof KerasSpecSchema>;
/** A validated spec, defaults filled in. */
export type ModelSpec = MlpSpec | CnnSpec | TransformerLmSpec | KerasSpec;
/** What callers write (defaults optional). */
export type ModelSpecInput = z.input<typeof ModelSpecSchema>;

export interface SpecIssue {
  /** Dotted path of the offending field, e.g. `convs.2.pool`; '' for the whole spec. */
  path: string;
  message: string;
}

/** A model spec that cannot be built; `issues` name each offending field. */
export class ModelSpecError extends Error {
  override name = 'ModelSpecError';
  constructor(readonly issues: SpecIssue[]) {
    super(`invalid model spec: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`);
  }
}

/** Parses and validates a model spec (defaults filled in); throws ModelSpecError. */
export function validateModelSpec(x: unknown): ModelSpec {
  const r = ModelSpecSchema.safeParse(x);
  if (!r.success) {
    throw new ModelSpecError(r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  return r.data;
}

/** What a dataset offers a model (as in libs/datasets' metadata). */
export interface DatasetShape {
  /** Shape of one sample's features, e.g. [28, 28, 1] or [784]. */
  inputShape: number[];
  /** Number of classes (classification) — absent for regression. */
  numClasses?: number;
  /** Width of the regression target (mse). */
  targetSize?: number;
  /** Vocabulary size (token datasets for the transformer LM). */
  vocabSize?: number;
}

const prod = (a: readonly number[]) => a.reduce((p, d) => p * d, 1);

/**
 * Checks a (validated) spec against a dataset; returns the mismatches (empty when they fit).
 * Keras specs are checked after building (see `checkModelAgainstDataset`).
 */
export function specDatasetIssues(spec: ModelSpec, ds: DatasetShape): SpecIssue[] {
  const issues: SpecIssue[] = [];
  if (spec.kind === 'mlp' || spec.kind === 'cnn') {
    if (spec.kind === 'mlp' ? prod(spec.inputShape) !== prod(ds.inputShape) : spec.inputShape.join() !== ds.inputShape.join()) {
      issues.push({ path: 'inputShape', message: `[${spec.inputShape}] does not fit the dataset's samples [${ds.inputShape}]` });
    }
    const outputs = spec.loss === 'mse' ? ds.targetSize : ds.numClasses;
    if (outputs === undefined) {
      issues.push({ path: 'loss', message: `${spec.loss} needs a dataset with ${spec.loss === 'mse' ? 'regression targets' : 'class labels'}` });
    } else if (outputs !== spec.numClasses) {
      issues.push({ path: 'numClasses', message: `is ${spec.numClasses} but the dataset has ${outputs}` });
    }
  } else if (spec.kind === 'transformer-lm') {
    if (ds.vocabSize === undefined) issues.push({ path: 'kind', message: 'transformer-lm needs a token dataset (vocabSize)' });
    else if (ds.vocabSize > spec.vocabSize) issues.push({ path: 'vocabSize', message: `is ${spec.vocabSize} but the dataset uses ${ds.vocabSize} tokens` });
  }
  return issues;
}

/** Throws ModelSpecError when `spec` does not fit the dataset. */
export function checkSpecAgainstDataset(spec: ModelSpec, ds: DatasetShape): void {
  const issues = specDatasetIssues(spec, ds);
  if (issues.length) throw new ModelSpecError(issues);
}
