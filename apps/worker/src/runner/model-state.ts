/**
 * A member's copy of the job's model state: parameters, optimizer state, the round of the next
 * update and the data state (which samples of the data epoch are still to do). Updates go through
 * the same optimizer code as the keeper's, on the same bytes, so the parameter hash after every
 * round equals the keeper's; the data state changes with the same contributors as the keeper's.
 */
import { decodeDataState, freshDataState, type DataState } from '@gradpool/datasets';
import { createOptimizer, decodeCheckpoint, paramHash, type Checkpoint, type Optimizer, type OptimizerConfigInput, type StepInfo } from '@gradpool/training';
import { isTransientNatsError, retryNats, type NatsRetryOptions } from '@gradpool/nats-auth';
import type { NatsConnection, ObjectStore } from 'nats';
import { FaultKinds, RunnerFault } from './faults.js';

export class ModelState {
  private constructor(
    readonly params: Float32Array,
    private readonly optimizer: Optimizer,
    private nextRound: number,
    private dataState: DataState,
  ) {}

  /** The state a checkpoint holds; throws RunnerFault 'bad-checkpoint' when it does not fit. */
  static fromCheckpoint(cp: Required<Checkpoint>, optimizer: OptimizerConfigInput, paramCount: number, trainSamples: number): ModelState {
    if (cp.params.length !== paramCount) {
      throw new RunnerFault(FaultKinds.badCheckpoint, `checkpoint of round ${cp.round} has ${cp.params.length} parameters; the model has ${paramCount}`);
    }
    if (!Number.isSafeInteger(cp.round) || cp.round < 0) throw new RunnerFault(FaultKinds.badCheckpoint, `checkpoint round ${cp.round} is not a round`);
    const opt = createOptimizer(optimizer, paramCount);
    try {
      opt.load(cp.optimizerState);
    } catch (err) {
      throw new RunnerFault(FaultKinds.badCheckpoint, `checkpoint of round ${cp.round}: ${(err as Error).message}`);
    }
    return new ModelState(Float32Array.from(cp.params), opt, cp.round, checkpointDataState(cp, trainSamples));
  }

  /** The round the next update is for (= updates applied so far). */
  get round(): number {
    return this.nextRound;
  }

  /** Samples still to do in the current data epoch, after the last applied round. */
  get data(): DataState {
    return this.dataState;
  }

  /** Applies round `round`'s averaged gradient and the data state after it; rounds must come in order. */
  apply(round: number, mean: Float32Array, data: DataState): StepInfo {
    if (round !== this.nextRound) throw new RangeError(`update for round ${round}, but the state is at round ${this.nextRound}`);
    const info = this.optimizer.step(this.params, mean, round);
    this.nextRound = round + 1;
    this.dataState = data;
    return info;
  }

  hash(): string {
    return paramHash(this.params);
  }
}

/** The data state a checkpoint holds (`meta.dataState`); round 0 may go without (nothing done yet). */
function checkpointDataState(cp: Required<Checkpoint>, trainSamples: number): DataState {
  const text = cp.meta.dataState;
  if (typeof text !== 'string') {
    if (cp.round === 0) return freshDataState(trainSamples);
    throw new RunnerFault(FaultKinds.badCheckpoint, `checkpoint of round ${cp.round} has no data state`);
  }
  try {
    return decodeDataState(text, trainSamples);
  } catch (err) {
    throw new RunnerFault(FaultKinds.badCheckpoint, `checkpoint of round ${cp.round}: ${(err as Error).message}`);
  }
}

const CHECKPOINT_KEY = /^round-(\d+)$/;

/** The object-store key of the checkpoint of `round` (the keeper's naming). */
export function checkpointKey(round: number): string {
  return `round-${round}`;
}

export interface CheckpointReaderOptions extends Omit<NatsRetryOptions, 'cleanup'> {
  /** How long a JetStream request may take before it times out and is retried (nats.js' default: 5 s). */
  timeoutMs?: number;
}

/**
 * Reads checkpoints from a job's bucket. A request that fails transiently (timed out, no
 * responders) is retried (`retryNats`); one that keeps failing that way is the data plane's
 * trouble, not the checkpoint's, and is thrown as a plain error (a runner error), never as
 * 'bad-checkpoint'.
 */
export class CheckpointReader {
  private os: Promise<ObjectStore> | null = null;

  constructor(
    private readonly nc: NatsConnection,
    readonly bucket: string,
    private readonly retry: CheckpointReaderOptions = {},
  ) {}

  private store(): Promise<ObjectStore> {
    // A binding that failed is not kept: the next call asks again.
    this.os ??= this.nc
      .jetstream(this.retry.timeoutMs ? { timeout: this.retry.timeoutMs } : {})
      .views.os(this.bucket)
      .catch((err: unknown) => {
        this.os = null;
        throw err;
      });
    return this.os;
  }

  /** Rounds of the checkpoints in the bucket, ascending. */
  async rounds(): Promise<number[]> {
    const infos = await retryNats(async () => (await this.store()).list(), this.retry);
    return infos
      .filter((i) => !i.deleted)
      .flatMap((i) => {
        const m = CHECKPOINT_KEY.exec(i.name);
        return m ? [Number(m[1])] : [];
      })
      .sort((a, b) => a - b);
  }

  /** The newest checkpoint's key at or before `round`, or null. */
  async latestAtOrBefore(round: number): Promise<string | null> {
    const rs = (await this.rounds()).filter((r) => r <= round);
    return rs.length ? checkpointKey(rs[rs.length - 1]) : null;
  }

  async read(key: string): Promise<Required<Checkpoint>> {
    let bytes: Uint8Array | null;
    try {
      bytes = await retryNats(async () => (await this.store()).getBlob(key), this.retry);
    } catch (err) {
      if (isTransientNatsError(err)) throw new Error(`checkpoint ${this.bucket}/${key} could not be read: ${(err as Error).message}`, { cause: err });
      throw new RunnerFault(FaultKinds.badCheckpoint, `checkpoint ${this.bucket}/${key}: ${(err as Error).message}`);
    }
    if (!bytes) throw new RunnerFault(FaultKinds.badCheckpoint, `checkpoint ${this.bucket}/${key} does not exist`);
    try {
      return decodeCheckpoint(bytes);
    } catch (err) {
      throw new RunnerFault(FaultKinds.badCheckpoint, `checkpoint ${this.bucket}/${key}: ${(err as Error).message}`);
    }
  }
}
