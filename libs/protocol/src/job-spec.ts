/**
 * The job spec (`POST /v1/jobs`) and the `AssignedJob` the coordinator hands a worker in
 * `Assignment.spec_json` (docs/jobs-protocol.md). Zod, shared by coordinator and worker.
 *
 * `model` and `optimizer` are kept as plain records here so that libs/protocol does not depend
 * on libs/training: the coordinator validates them with `validateModelSpec` and
 * `OptimizerConfigSchema` at submission and stores the *validated* forms (defaults filled in),
 * so what a worker receives already passed those checks; the worker re-validates before use.
 */
import { z } from 'zod';

const posInt = z.number().int().positive();
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a UUID');

/** Compute backends a worker may report (Capabilities.backend). */
export const BACKENDS = ['gpu', 'node', 'wasm', 'cpu'] as const;

export const JobRequirementsSchema = z.strictObject({
  /** Backends the job accepts (any when absent). A single name is accepted too. */
  backend: z
    .union([z.enum(BACKENDS), z.array(z.enum(BACKENDS)).min(1)])
    .transform((b) => (Array.isArray(b) ? b : [b]))
    .optional(),
  /** Least memory a worker must report (Capabilities.memory_bytes). */
  memoryBytes: z.number().int().min(0).optional(),
});

export const JobSpecSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(128),
    /** The group whose workers run the job; null (default) = public. */
    groupId: uuid.nullable().default(null),
    /** A model spec (libs/training `ModelSpecSchema`: mlp, cnn, transformer-lm, keras). */
    model: z.record(z.string(), z.unknown()),
    datasetId: uuid,
    /** Must equal the model's loss when given (the model spec carries it; default cross-entropy). */
    loss: z.enum(['cross-entropy', 'mse']).optional(),
    /** libs/training `OptimizerConfigSchema` (kind, lr, schedule, clipNorm, weightDecay, …). */
    optimizer: z.record(z.string(), z.unknown()),
    /** Samples per round over all workers together (independent of how many there are). */
    globalBatch: posInt.max(1_000_000),
    /** Passes over the train split. Default 1 when `rounds` is absent. */
    epochs: posInt.max(100_000).optional(),
    /** Stop after this many committed rounds (whichever of epochs/rounds comes first). */
    rounds: posInt.optional(),
    /**
     * Local steps (DiLoCo, local SGD). With H > 1 each member takes H steps of `optimizer` on its
     * own share of the round (its samples in H consecutive parts), starting from the round's
     * parameters, and the members average their pseudo-gradients (parameters before − after)
     * through the exchange; `outerOptimizer` applies the average. The exchange then moves P
     * floats per H steps instead of per step. `globalBatch` still counts a whole round's samples:
     * an inner step takes about globalBatch / H. 1 (default): synchronous data-parallel SGD,
     * `optimizer` applied to the averaged gradient.
     */
    localSteps: posInt.max(10_000).default(1),
    /** With localSteps > 1: the optimizer (libs/training `OptimizerConfigSchema`) applied to the
     * averaged pseudo-gradient; default SGD with lr 1 (parameter averaging; DEFAULT_OUTER_OPTIMIZER). */
    outerOptimizer: z.record(z.string(), z.unknown()).optional(),
    /** Gradient codec, libs/exchange `parseCodecSpec` syntax: fp32, fp16, bf16, int8[:block], topk[:fraction]. */
    codec: z.string().default('fp32'),
    /**
     * How shard owners combine the members' gradients. `clipped-mean` (default): each
     * contribution to a shard is first scaled down to at most `ratio` × the median L2 norm of
     * that shard's contributions, so that a member sending a huge but finite gradient moves the
     * mean by a bounded amount; honest contributions within the bound are untouched, and the
     * result is then the sample-weighted mean. `mean`: the plain sample-weighted mean.
     */
    aggregation: z
      .discriminatedUnion('kind', [z.strictObject({ kind: z.literal('mean') }), z.strictObject({ kind: z.literal('clipped-mean'), ratio: z.number().min(1).max(1000).default(3) })])
      .default({ kind: 'clipped-mean', ratio: 3 }),
    /** An owner reduces with whoever has sent everything this long after entering the round. */
    roundDeadlineMs: posInt.max(3_600_000).default(30_000),
    /** Fraction of the roster a shard needs at the deadline: quorum = max(1, ceil(quorum · K)). */
    quorum: z.number().gt(0).max(1).default(0.5),
    minWorkers: posInt.max(65_535).default(1),
    maxWorkers: posInt.max(65_535).default(8),
    requires: JobRequirementsSchema.default({}),
    /** Higher runs first. */
    priority: z.number().int().min(-1000).max(1000).default(0),
    /** Rounds between checkpoints (also written at the end). */
    checkpointEvery: posInt.default(50),
    /** Rounds between validation evaluations by the keeper; 0 = only at the end. */
    evalEvery: z.number().int().min(0).default(50),
    /** Seeds the initial parameters and the data order. */
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .superRefine((s, ctx) => {
    if (s.minWorkers > s.maxWorkers) {
      ctx.addIssue({ code: 'custom', path: ['minWorkers'], message: `is ${s.minWorkers}, more than maxWorkers (${s.maxWorkers})` });
    }
    if (s.outerOptimizer !== undefined && s.localSteps === 1) {
      ctx.addIssue({ code: 'custom', path: ['outerOptimizer'], message: 'applies only with localSteps > 1' });
    }
  })
  .transform((s) => ({ ...s, epochs: s.epochs ?? (s.rounds === undefined ? 1 : undefined) }));

/** What a client writes (defaults optional). */
export type JobSpecInput = z.input<typeof JobSpecSchema>;
/** A parsed spec, defaults filled in. */
export type JobSpec = z.output<typeof JobSpecSchema>;

export class JobSpecError extends Error {
  override name = 'JobSpecError';
  constructor(readonly issues: { path: string; message: string }[]) {
    super(issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '));
  }
}

function issuesOf(error: z.ZodError, prefix = ''): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter(Boolean).join('.'), message: i.message }));
}

/** Parses a job spec; throws JobSpecError whose message names each offending field. */
export function parseJobSpec(x: unknown): JobSpec {
  const r = JobSpecSchema.safeParse(x);
  if (!r.success) throw new JobSpecError(issuesOf(r.error));
  return r.data;
}

/**
 * The default `outerOptimizer` of a job with localSteps > 1: SGD with lr 1, i.e. the members'
 * parameters averaged (local SGD, FedAvg). DiLoCo's Nesterov (lr 0.7, momentum 0.9) pays off
 * at hundreds of local steps; at 4 on the demo's MNIST MLP it reached 92.1 % against 97.8 %
 * (docs/jobs-protocol.md, "Local steps").
 */
export const DEFAULT_OUTER_OPTIMIZER: Readonly<Record<string, unknown>> = Object.freeze({ kind: 'sgd', lr: 1 });

/**
 * The optimizer config every member and the keeper apply to a round's averaged vector, and whose
 * state checkpoints hold: `optimizer` for a data-parallel job, `outerOptimizer` for one with local
 * steps (whose `optimizer` each member runs on its own between exchanges).
 */
export function roundOptimizer(spec: Pick<JobSpec, 'optimizer' | 'localSteps' | 'outerOptimizer'>): Record<string, unknown> {
  return spec.localSteps > 1 ? (spec.outerOptimizer ?? { ...DEFAULT_OUTER_OPTIMIZER }) : spec.optimizer;
}

/**
 * The spec as `Assignment.spec_json` carries it: fields added after the first agents shipped are
 * left out where they hold their default. An agent's spec schema is strict (an unknown field is a
 * bad spec: ignoring `localSteps` would send gradients where pseudo-gradients are due), so this
 * keeps older agents taking the jobs that do not use what they lack, while they refuse, as they
 * must, those that do. Agents parse the defaults back in.
 */
export function wireSpec(spec: JobSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { ...spec };
  if (spec.localSteps === 1) delete out.localSteps;
  if (spec.aggregation.kind === 'clipped-mean' && spec.aggregation.ratio === 3) delete out.aggregation;
  return out;
}

/** Shard quorum for a roster of `members` (what RoundExchange's `quorum` option takes). */
export function quorumFor(spec: Pick<JobSpec, 'quorum'>, members: number): number {
  return Math.max(1, Math.min(members, Math.ceil(spec.quorum * members - 1e-9)));
}

export const AssignedShardSchema = z.strictObject({
  /** Shard index within the split (DealtPiece.shard_index). */
  index: z.number().int().min(0),
  /** Object key in the dataset's shards bucket. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  samples: z.number().int().min(0),
  bytes: z.number().int().min(0),
});
export type AssignedShard = z.output<typeof AssignedShardSchema>;

/**
 * `Assignment.spec_json`: the validated spec plus what a worker needs of the dataset. The worker
 * never reads Postgres.
 */
export const AssignedJobSchema = z.strictObject({
  jobId: uuid,
  /** The stored, validated spec: `model` and `optimizer` have their defaults filled in. */
  spec: z.any().transform((s, ctx) => {
    const r = JobSpecSchema.safeParse(s);
    if (!r.success) {
      for (const i of r.error.issues) ctx.addIssue({ code: 'custom', path: i.path as (string | number)[], message: i.message });
      return z.NEVER;
    }
    return r.data;
  }),
  /** Parameters of the built model (P), for a cross-check before the first round. */
  paramCount: posInt,
  dataset: z.strictObject({
    id: uuid,
    name: z.string(),
    /** One sample's feature shape, e.g. [28, 28, 1]; shards are already normalised. */
    featureShape: z.array(posInt).min(1),
    numClasses: z.number().int().min(0),
    /** Shards of the train split in index order; the bytes are in `bucket` under sha256. */
    train: z.array(AssignedShardSchema),
    /** The object-store bucket of its shards (`buckets.datasetShards(id)`, or the shared one);
     * absent from coordinators before buckets per dataset: `buckets.shards`. */
    bucket: z.string().regex(/^[A-Za-z0-9_-]+$/, 'a bucket name').optional(),
  }),
  /** JetStream stream with the committed updates (late joiners replay it; see docs/jobs-protocol.md). */
  updatesStream: z.string(),
});
export type AssignedJob = z.output<typeof AssignedJobSchema>;
export type AssignedJobInput = z.input<typeof AssignedJobSchema>;

/** Parses `Assignment.spec_json`; throws JobSpecError naming the offending fields. */
export function parseAssignedJob(json: string): AssignedJob {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new JobSpecError([{ path: '', message: `spec_json is not JSON: ${(e as Error).message}` }]);
  }
  const r = AssignedJobSchema.safeParse(raw);
  if (!r.success) throw new JobSpecError(issuesOf(r.error));
  return r.data;
}
