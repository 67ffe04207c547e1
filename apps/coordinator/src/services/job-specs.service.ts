/**
 * Job specs: validation at submission (against the dataset, the model zoo, the optimizer and
 * codec schemas) and what a worker is handed (`AssignedJob`). A bad spec is an
 * InvalidArgumentError (422) naming the field; nothing is written here.
 */
import { Injectable } from '@nestjs/common';
import { createCodec, parseCodecSpec } from '@gradpool/exchange';
import { JobSpecError, parseJobSpec, roundOptimizer, UPDATES_STREAM, type AssignedJob, type JobSpec } from '@gradpool/protocol';
import {
  buildModel,
  checkModelAgainstDataset,
  checkSpecAgainstDataset,
  ModelSpecError,
  OptimizerConfigSchema,
  selectBackend,
  validateModelSpec,
  type DatasetShape,
  type Model,
  type ModelSpec,
} from '@gradpool/training';
import { InvalidArgumentError } from '../errors.js';
import { DatasetService } from './dataset.service.js';
import { DatasetRepository, type DatasetRow } from '../repositories/dataset.repository.js';
import { GroupRepository } from '../repositories/group.repository.js';
import { ShardRepository, type ShardRow } from '../repositories/shard.repository.js';

export interface ValidatedJob {
  spec: JobSpec;
  dataset: DatasetRow;
  model: Model;
}

let backend: Promise<unknown> | null = null;

/**
 * Makes sure a TensorFlow.js backend is initialised in this process before any model is built
 * (a registered but uninitialised one, e.g. wasm, makes every op throw). Once per process.
 */
export function tfReady(): Promise<unknown> {
  backend ??= selectBackend('auto').catch(() => selectBackend('cpu'));
  return backend;
}

function issues(prefix: string, e: ModelSpecError): string {
  return e.issues.map((i) => `${[prefix, i.path].filter(Boolean).join('.')}: ${i.message}`).join('; ');
}

@Injectable()
export class JobSpecsService {
  private readonly paramCounts = new Map<string, number>();

  constructor(
    private readonly datasets: DatasetRepository,
    private readonly shards: ShardRepository,
    private readonly groups: GroupRepository,
    private readonly datasetService: DatasetService,
  ) {}

  /** Parses and checks a submission; returns the spec to store (model/optimizer defaults filled) and the built model (caller disposes). */
  async validate(body: unknown): Promise<ValidatedJob> {
    await tfReady();
    let spec: JobSpec;
    try {
      spec = parseJobSpec(body);
    } catch (e) {
      if (e instanceof JobSpecError) throw new InvalidArgumentError(e.message);
      throw e;
    }
    if (spec.groupId && !(await this.groups.findById(spec.groupId))) throw new InvalidArgumentError(`groupId: no group ${spec.groupId}`);
    const dataset = await this.datasets.findById(spec.datasetId);
    if (!dataset) throw new InvalidArgumentError(`datasetId: no dataset ${spec.datasetId}`);
    if (dataset.status !== 'ready') throw new InvalidArgumentError(`datasetId: dataset ${dataset.name} is ${dataset.status}, not ready`);

    let modelSpec: ModelSpec;
    try {
      modelSpec = validateModelSpec(spec.model);
    } catch (e) {
      if (e instanceof ModelSpecError) throw new InvalidArgumentError(issues('model', e));
      throw e;
    }
    const modelLoss = 'loss' in modelSpec ? modelSpec.loss : 'cross-entropy';
    if (spec.loss && modelSpec.kind !== 'transformer-lm' && spec.loss !== modelLoss) {
      throw new InvalidArgumentError(`loss: is ${spec.loss} but model.loss is ${modelLoss}`);
    }
    const shape: DatasetShape = { inputShape: dataset.featureShape, numClasses: dataset.numClasses };
    try {
      checkSpecAgainstDataset(modelSpec, shape);
    } catch (e) {
      if (e instanceof ModelSpecError) throw new InvalidArgumentError(issues('model', e));
      throw e;
    }
    const opt = OptimizerConfigSchema.safeParse(spec.optimizer);
    if (!opt.success) {
      throw new InvalidArgumentError(opt.error.issues.map((i) => `${['optimizer', ...i.path.map(String)].join('.')}: ${i.message}`).join('; '));
    }
    const outer = spec.localSteps > 1 ? OptimizerConfigSchema.safeParse(roundOptimizer(spec)) : null;
    if (outer && !outer.success) {
      throw new InvalidArgumentError(outer.error.issues.map((i) => `${['outerOptimizer', ...i.path.map(String)].join('.')}: ${i.message}`).join('; '));
    }
    try {
      createCodec(parseCodecSpec(spec.codec));
    } catch (e) {
      throw new InvalidArgumentError(`codec: ${(e as Error).message}`);
    }
    const train = await this.shards.listByDataset(dataset.id, 'train');
    if (train.length === 0) throw new InvalidArgumentError(`datasetId: dataset ${dataset.name} has no train split`);

    let model: Model;
    try {
      model = await buildModel(modelSpec);
    } catch (e) {
      if (e instanceof ModelSpecError) throw new InvalidArgumentError(issues('model', e));
      throw new InvalidArgumentError(`model: ${(e as Error).message}`);
    }
    try {
      checkModelAgainstDataset(model, shape);
    } catch (e) {
      model.dispose();
      if (e instanceof ModelSpecError) throw new InvalidArgumentError(issues('model', e));
      throw e;
    }
    const stored = parseJobSpec({ ...(body as object), model: modelSpec, optimizer: opt.data, ...(outer ? { outerOptimizer: outer.data } : {}) });
    return { spec: stored, dataset, model };
  }

  rememberParamCount(jobId: string, p: number): void {
    this.paramCounts.set(jobId, p);
  }

  /** P of a job's model (built once per process and cached). */
  async paramCount(jobId: string, spec: JobSpec): Promise<number> {
    let p = this.paramCounts.get(jobId);
    if (p === undefined) {
      await tfReady();
      const m = await buildModel(spec.model);
      p = m.paramCount;
      m.dispose();
      this.paramCounts.set(jobId, p);
    }
    return p;
  }

  /** `Assignment.spec_json` of a job. */
  async assignedJob(jobId: string, spec: JobSpec, dataset: DatasetRow, train: ShardRow[]): Promise<AssignedJob> {
    return {
      jobId,
      spec,
      paramCount: await this.paramCount(jobId, spec),
      dataset: {
        id: dataset.id,
        name: dataset.name,
        featureShape: dataset.featureShape,
        numClasses: dataset.numClasses,
        train: train.map((s) => ({ index: s.index, sha256: s.sha256, samples: s.sampleCount, bytes: s.bytes })),
        bucket: this.datasetService.bucketOf(dataset),
      },
      updatesStream: UPDATES_STREAM,
    };
  }
}
