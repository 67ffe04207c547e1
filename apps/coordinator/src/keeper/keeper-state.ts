/**
 * The authoritative parameters and optimizer state of one job, kept by its keeper. In the built
 * coordinator they live in a worker thread of their own (keeper-state.worker.ts), so the optimizer
 * step, the parameter hash and checkpoint encoding over P floats never block the coordinator's
 * event loop (shared/DESIGN.md, rule 1); running from sources (tests), `KeeperState.open` keeps
 * them inline. Both apply the same optimizer code to the same bytes.
 */
import { createOptimizer, decodeCheckpoint, encodeCheckpoint, paramHash, type Optimizer, type OptimizerConfigInput, type StepInfo } from '@gradpool/training';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** Where a state starts: a checkpoint's bytes, or initial parameters (round 0, fresh optimizer). */
export type KeeperStateSource = { checkpoint: Uint8Array } | { params: Float32Array };

export interface KeeperState {
  readonly paramCount: number;
  /** Applies round `round`'s mean (not modified); resolves with the step's info and the hash after it. */
  step(mean: Float32Array, round: number): Promise<StepInfo & { hash: string }>;
  /** The hash of the current parameters. */
  hash(): Promise<string>;
  /** A checkpoint of the current state, with `round` = the next round, and its parameter hash. */
  checkpoint(round: number, meta: Record<string, unknown>): Promise<{ bytes: Uint8Array; hash: string }>;
  /** A copy of the current parameters. */
  params(): Promise<Float32Array>;
  close(): Promise<void>;
}

export const KeeperState = {
  /** The state in its own thread where the built worker file exists (or at `workerUrl`), else inline. */
  async open(optimizer: OptimizerConfigInput, source: KeeperStateSource, workerUrl?: URL): Promise<KeeperState> {
    const url = workerUrl ?? new URL('./keeper-state.worker.js', import.meta.url);
    if (url.protocol === 'file:' && existsSync(fileURLToPath(url))) return ThreadKeeperState.start(url, optimizer, source);
    return InlineKeeperState.create(optimizer, source);
  },
};

/** The state on this thread. Also what the worker thread runs. */
export class InlineKeeperState implements KeeperState {
  private constructor(
    private readonly current: Float32Array,
    private readonly optimizer: Optimizer,
  ) {}

  static create(config: OptimizerConfigInput, source: KeeperStateSource): InlineKeeperState {
    if ('checkpoint' in source) {
      const cp = decodeCheckpoint(source.checkpoint);
      const opt = createOptimizer(config, cp.params.length);
      opt.load(cp.optimizerState);
      return new InlineKeeperState(cp.params, opt);
    }
    return new InlineKeeperState(source.params, createOptimizer(config, source.params.length));
  }

  get paramCount(): number {
    return this.current.length;
  }

  stepNow(mean: Float32Array, round: number): StepInfo & { hash: string } {
    const info = this.optimizer.step(this.current, mean, round);
    return { ...info, hash: paramHash(this.current) };
  }

  checkpointNow(round: number, meta: Record<string, unknown>): { bytes: Uint8Array; hash: string } {
    return { bytes: encodeCheckpoint({ params: this.current, optimizerState: this.optimizer.state(), round, meta }), hash: paramHash(this.current) };
  }

  hashNow(): string {
    return paramHash(this.current);
  }

  /** The live parameter vector (the thread copies it out). */
  paramsNow(): Float32Array {
    return this.current;
  }

  async step(mean: Float32Array, round: number): Promise<StepInfo & { hash: string }> {
    return this.stepNow(mean, round);
  }

  async hash(): Promise<string> {
    return this.hashNow();
  }

  async checkpoint(round: number, meta: Record<string, unknown>): Promise<{ bytes: Uint8Array; hash: string }> {
    return this.checkpointNow(round, meta);
  }

  async params(): Promise<Float32Array> {
    return this.current.slice();
  }

  async close(): Promise<void> {}
}

/** Messages to the state thread (keeper-state.worker.ts) and its answers. */
export type KeeperStateRequest = { id: number } & (
  | { op: 'open'; optimizer: OptimizerConfigInput; checkpoint?: ArrayBuffer; params?: ArrayBuffer }
  | { op: 'step'; mean: ArrayBuffer; round: number }
  | { op: 'hash' }
  | { op: 'checkpoint'; round: number; meta: Record<string, unknown> }
  | { op: 'params' }
);
export interface KeeperStateResponse {
  id: number;
  error?: string;
  paramCount?: number;
  info?: StepInfo & { hash: string };
  hash?: string;
  bytes?: ArrayBuffer;
  params?: ArrayBuffer;
}

class ThreadKeeperState implements KeeperState {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (r: KeeperStateResponse) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;
  paramCount = 0;

  private constructor(private readonly worker: Worker) {
    this.worker.on('message', (res: KeeperStateResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (res.error) p.reject(new Error(res.error));
      else p.resolve(res);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => this.fail(new Error('the keeper state thread exited')));
  }

  static async start(url: URL, optimizer: OptimizerConfigInput, source: KeeperStateSource): Promise<ThreadKeeperState> {
    // The thread runs built JavaScript: without the source condition a test runner may have set.
    const execArgv = process.execArgv.filter((a, i, all) => a !== '@gradpool/source' && !(a === '--conditions' && all[i + 1] === '@gradpool/source'));
    const state = new ThreadKeeperState(new Worker(url, { execArgv }));
    // The source is copied into the thread (the caller keeps its buffers).
    const buffer = ('checkpoint' in source ? source.checkpoint : new Uint8Array(source.params.buffer, source.params.byteOffset, source.params.byteLength)).slice().buffer;
    try {
      state.paramCount = (await state.call({ op: 'open', optimizer, ...('checkpoint' in source ? { checkpoint: buffer } : { params: buffer }) }, [buffer])).paramCount!;
    } catch (err) {
      await state.close();
      throw err;
    }
    return state;
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private call(req: Omit<KeeperStateRequest, 'id'> & Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<KeeperStateResponse> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  async step(mean: Float32Array, round: number): Promise<StepInfo & { hash: string }> {
    const copy = mean.slice().buffer;
    return (await this.call({ op: 'step', mean: copy, round }, [copy])).info!;
  }

  async hash(): Promise<string> {
    return (await this.call({ op: 'hash' })).hash!;
  }

  async checkpoint(round: number, meta: Record<string, unknown>): Promise<{ bytes: Uint8Array; hash: string }> {
    const res = await this.call({ op: 'checkpoint', round, meta });
    return { bytes: new Uint8Array(res.bytes!), hash: res.hash! };
  }

  async params(): Promise<Float32Array> {
    return new Float32Array((await this.call({ op: 'params' })).params!);
  }

  async close(): Promise<void> {
    this.failed ??= new Error('the keeper state is closed');
    await this.worker.terminate();
  }
}
