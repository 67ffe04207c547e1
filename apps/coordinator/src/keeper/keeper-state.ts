/**
 * The authoritative parameters and optimizer state of one job, kept by its keeper, with
 * everything that touches them in bulk: restoring from a stored checkpoint and replaying the
 * committed updates after it, watching the job's data plane for each round's mean (round-watch.ts:
 * the gathers and the owner audit), stepping, hashing, encoding and storing checkpoints, and
 * publishing the committed updates.
 *
 * In the built coordinator all of it lives in a worker thread of its own (keeper-state.worker.ts)
 * with a NATS connection of its own: no P floats and no checkpoint bytes ever reach the
 * coordinator's event loop, which only decides and commits (shared/DESIGN.md, rule 1). Running
 * from sources (tests), `KeeperState.open` keeps it inline, on the coordinator's connection. Both
 * run the same code on the same bytes.
 */
import { type AuditResult, readUpdates } from '@gradpool/exchange';
import { createOptimizer, decodeCheckpoint, encodeCheckpoint, paramHash, type Optimizer, type OptimizerConfigInput, type StepInfo } from '@gradpool/training';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { startThread } from './thread.js';
import type { NatsConnection } from 'nats';
import { ObjectStores } from '../services/object-stores.js';
import { type ObservedRoundInfo, RoundWatch, type RoundWatchEvents, type RoundWatchSettings, type WatchedEpoch } from './round-watch.js';

/** Where a state starts: a checkpoint's bytes, one in the object store, or initial parameters (round 0, fresh optimizer). */
export type KeeperStateSource = { checkpoint: Uint8Array } | { stored: StoredObject } | { params: Float32Array };

/** An object in a JetStream object store bucket. */
export interface StoredObject {
  bucket: string;
  key: string;
}

/** The state's NATS: `nc` inline; in a thread, a connection of its own to `servers`. */
export interface KeeperConnection {
  nc: NatsConnection;
  servers: string[];
  /** A NATS credentials file (NATS_CREDS), read by the thread. */
  credsFile?: string;
}

export type WatchEvents = RoundWatchEvents & { onFailure: (err: Error) => void };

export interface KeeperStateOptions {
  /** Needed for a stored source, `replay`, `watch`, `storeSnapshot` and `publishObserved`. */
  conn?: KeeperConnection;
  /** The built worker (default: keeper-state.worker.js beside this file); inline where it does not exist. */
  workerUrl?: URL;
}

export interface KeeperState {
  readonly paramCount: number;
  /** Applies round `round`'s mean (not modified); resolves with the step's info and the hash after it. */
  step(mean: Float32Array, round: number): Promise<StepInfo & { hash: string }>;
  /** Applies the committed updates of rounds `from` … `to − 1` from the replay stream (replay.ts); resolves with how many. */
  replay(jobId: string, from: number, to: number): Promise<number>;
  /** The hash of the current parameters. */
  hash(): Promise<string>;
  /** A checkpoint of the current state, with `round` = the next round, and its parameter hash. */
  checkpoint(round: number, meta: Record<string, unknown>): Promise<{ bytes: Uint8Array; hash: string }>;
  /** Encodes the checkpoint of the current state (as `checkpoint`) and keeps it for `storeSnapshot`. */
  snapshot(round: number, meta: Record<string, unknown>): Promise<{ bytes: number; hash: string }>;
  /** Stores the snapshot of `round` in the object store (then forgets it); its size and sha256 (hex). */
  storeSnapshot(round: number, at: StoredObject): Promise<{ bytes: number; sha256: string }>;
  /** A copy of the current parameters. */
  params(): Promise<Float32Array>;
  /**
   * Starts watching the job's gathers (RoundWatch). Events come in the order the watch raised
   * them (an audit's verdict before its round); `onFailure` when the watch is gone for good (its
   * thread died, its connection closed).
   */
  watch(settings: RoundWatchSettings, events: WatchEvents): Promise<void>;
  /** A new (or updated) epoch, for the audit. */
  setEpoch(e: WatchedEpoch): void;
  /** Applies the watched mean of round `round` of epoch `epoch` (RoundWatch#take). */
  stepObserved(epoch: number, round: number): Promise<StepInfo & { hash: string }>;
  /** Publishes the mean last stepped with as round `round`'s committed update (RoundWatch#publish). */
  publishObserved(round: number, hash: string, dataState: string): Promise<void>;
  close(): Promise<void>;
}

export const KeeperState = {
  /** The state in its own thread where the built worker file exists, else inline. */
  async open(optimizer: OptimizerConfigInput, source: KeeperStateSource, opts: KeeperStateOptions = {}): Promise<KeeperState> {
    const url = opts.workerUrl ?? new URL('./keeper-state.worker.js', import.meta.url);
    if (url.protocol === 'file:' && existsSync(fileURLToPath(url))) return ThreadKeeperState.start(url, optimizer, source, opts.conn);
    return InlineKeeperState.open(optimizer, source, opts.conn?.nc ?? null);
  },
};

/** The state on this thread. Also what the worker thread runs. */
export class InlineKeeperState implements KeeperState {
  private watcher: RoundWatch | null = null;
  private stores: ObjectStores | null = null;
  /** Encoded checkpoints waiting to be stored, by round. */
  private readonly snapshots = new Map<number, Uint8Array>();
  private readonly closed = new AbortController();

  private constructor(
    private readonly current: Float32Array,
    private readonly optimizer: Optimizer,
    private readonly nc: NatsConnection | null,
  ) {
    if (nc) this.stores = new ObjectStores(nc);
  }

  static create(config: OptimizerConfigInput, source: { checkpoint: Uint8Array } | { params: Float32Array }, nc: NatsConnection | null = null): InlineKeeperState {
    if ('checkpoint' in source) {
      const cp = decodeCheckpoint(source.checkpoint);
      const opt = createOptimizer(config, cp.params.length);
      opt.load(cp.optimizerState);
      return new InlineKeeperState(cp.params, opt, nc);
    }
    return new InlineKeeperState(source.params, createOptimizer(config, source.params.length), nc);
  }

  static async open(config: OptimizerConfigInput, source: KeeperStateSource, nc: NatsConnection | null): Promise<InlineKeeperState> {
    if (!('stored' in source)) return InlineKeeperState.create(config, source, nc);
    if (!nc) throw new Error('a stored checkpoint needs a NATS connection');
    const { bucket, key } = source.stored;
    const bytes = await (await new ObjectStores(nc).of(bucket)).getBlob(key);
    if (!bytes) throw new Error(`checkpoint ${bucket}/${key} is missing`);
    return InlineKeeperState.create(config, { checkpoint: bytes }, nc);
  }

  private conn(what: string): NatsConnection {
    if (!this.nc) throw new Error(`the keeper state has no NATS connection to ${what}`);
    return this.nc;
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

  snapshotNow(round: number, meta: Record<string, unknown>): { bytes: number; hash: string } {
    const { bytes, hash } = this.checkpointNow(round, meta);
    this.snapshots.set(round, bytes);
    return { bytes: bytes.byteLength, hash };
  }

  hashNow(): string {
    return paramHash(this.current);
  }

  /** The live parameter vector (the thread copies it out). */
  paramsNow(): Float32Array {
    return this.current;
  }

  /** The watch on this state's connection. */
  watchNow(settings: RoundWatchSettings, events: RoundWatchEvents): void {
    if (this.watcher) throw new Error('the keeper state is watching already');
    this.watcher = new RoundWatch(this.conn('watch the gathers'), settings, events);
  }

  stepObservedNow(epoch: number, round: number): StepInfo & { hash: string } {
    if (!this.watcher) throw new Error('the keeper state is not watching');
    return this.stepNow(this.watcher.take(epoch, round), round);
  }

  async step(mean: Float32Array, round: number): Promise<StepInfo & { hash: string }> {
    return this.stepNow(mean, round);
  }

  async replay(jobId: string, from: number, to: number): Promise<number> {
    let n = 0;
    for await (const u of readUpdates(this.conn('replay updates'), jobId, from, to, { idleTimeoutMs: 10_000, signal: this.closed.signal })) {
      this.stepNow(u.update, u.round);
      n++;
    }
    return n;
  }

  async hash(): Promise<string> {
    return this.hashNow();
  }

  async checkpoint(round: number, meta: Record<string, unknown>): Promise<{ bytes: Uint8Array; hash: string }> {
    return this.checkpointNow(round, meta);
  }

  async snapshot(round: number, meta: Record<string, unknown>): Promise<{ bytes: number; hash: string }> {
    return this.snapshotNow(round, meta);
  }

  async storeSnapshot(round: number, at: StoredObject): Promise<{ bytes: number; sha256: string }> {
    const bytes = this.snapshots.get(round);
    if (!bytes) throw new Error(`no snapshot of round ${round} to store`);
    const stores = (this.stores ??= new ObjectStores(this.conn('store checkpoints')));
    try {
      await (await stores.of(at.bucket)).putBlob({ name: at.key }, bytes);
      return { bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
    } finally {
      this.snapshots.delete(round);
    }
  }

  async params(): Promise<Float32Array> {
    return this.current.slice();
  }

  async watch(settings: RoundWatchSettings, events: WatchEvents): Promise<void> {
    this.watchNow(settings, events);
    // The subscriptions are on the server before the keeper lets any member start.
    await this.nc!.flush();
  }

  setEpoch(e: WatchedEpoch): void {
    this.watcher?.setEpoch(e);
  }

  async stepObserved(epoch: number, round: number): Promise<StepInfo & { hash: string }> {
    return this.stepObservedNow(epoch, round);
  }

  async publishObserved(round: number, hash: string, dataState: string): Promise<void> {
    if (!this.watcher) throw new Error('the keeper state is not watching');
    await this.watcher.publish(round, hash, dataState);
  }

  async close(): Promise<void> {
    this.closed.abort();
    this.watcher?.close();
    this.watcher = null;
    this.snapshots.clear();
  }
}

/** Messages to the state thread (keeper-state.worker.ts) and its answers. */
export type KeeperStateRequest = { id: number } & (
  | { op: 'open'; optimizer: OptimizerConfigInput; checkpoint?: ArrayBuffer; params?: ArrayBuffer; stored?: StoredObject; servers?: string[]; credsFile?: string }
  | { op: 'step'; mean: ArrayBuffer; round: number }
  | { op: 'replay'; jobId: string; from: number; to: number }
  | { op: 'hash' }
  | { op: 'checkpoint'; round: number; meta: Record<string, unknown> }
  | { op: 'snapshot'; round: number; meta: Record<string, unknown> }
  | { op: 'storeSnapshot'; round: number; at: StoredObject }
  | { op: 'params' }
  | { op: 'watch'; settings: RoundWatchSettings }
  | { op: 'epoch'; epoch: WatchedEpoch }
  | { op: 'stepObserved'; epoch: number; round: number }
  | { op: 'publishObserved'; round: number; hash: string; dataState: string }
  | { op: 'close' }
);
/** A request without its id (distributed over the union). */
type RequestBody = KeeperStateRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;
/** What the thread's watch raises, in order, between the answers. */
export type KeeperStateEvent = { event: 'round'; round: ObservedRoundInfo } | { event: 'audit'; result: AuditResult } | { event: 'failed'; error: string };
export interface KeeperStateResponse {
  id: number;
  error?: string;
  paramCount?: number;
  info?: StepInfo & { hash: string };
  hash?: string;
  bytes?: ArrayBuffer;
  size?: number;
  sha256?: string;
  count?: number;
  params?: ArrayBuffer;
}

class ThreadKeeperState implements KeeperState {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (r: KeeperStateResponse) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;
  private events: WatchEvents | null = null;
  paramCount = 0;

  private constructor(private readonly worker: Worker) {
    this.worker.on('message', (res: KeeperStateResponse | KeeperStateEvent) => {
      if ('event' in res) return this.onEvent(res);
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (res.error) p.reject(new Error(res.error));
      else p.resolve(res);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => this.fail(new Error('the keeper state thread exited')));
  }

  static async start(url: URL, optimizer: OptimizerConfigInput, source: KeeperStateSource, conn?: KeeperConnection): Promise<ThreadKeeperState> {
    const state = new ThreadKeeperState(startThread(url));
    const nats = conn ? { servers: conn.servers, credsFile: conn.credsFile } : {};
    let req: RequestBody;
    let transfer: ArrayBuffer[] = [];
    if ('stored' in source) {
      req = { op: 'open', optimizer, stored: source.stored, ...nats };
    } else {
      // The source is copied into the thread (the caller keeps its buffers).
      const buffer = ('checkpoint' in source ? source.checkpoint : new Uint8Array(source.params.buffer, source.params.byteOffset, source.params.byteLength)).slice().buffer;
      req = { op: 'open', optimizer, ...('checkpoint' in source ? { checkpoint: buffer } : { params: buffer }), ...nats };
      transfer = [buffer];
    }
    try {
      state.paramCount = (await state.call(req, transfer)).paramCount!;
    } catch (err) {
      await state.close();
      throw err;
    }
    return state;
  }

  private fail(err: Error): void {
    const first = !this.failed;
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (first) this.events?.onFailure(err);
  }

  private onEvent(e: KeeperStateEvent): void {
    if (e.event === 'round') this.events?.onRound(e.round);
    else if (e.event === 'audit') this.events?.onAudit(e.result);
    else this.fail(new Error(e.error));
  }

  private call(req: RequestBody, transfer: ArrayBuffer[] = []): Promise<KeeperStateResponse> {
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

  async replay(jobId: string, from: number, to: number): Promise<number> {
    return (await this.call({ op: 'replay', jobId, from, to })).count!;
  }

  async hash(): Promise<string> {
    return (await this.call({ op: 'hash' })).hash!;
  }

  async checkpoint(round: number, meta: Record<string, unknown>): Promise<{ bytes: Uint8Array; hash: string }> {
    const res = await this.call({ op: 'checkpoint', round, meta });
    return { bytes: new Uint8Array(res.bytes!), hash: res.hash! };
  }

  async snapshot(round: number, meta: Record<string, unknown>): Promise<{ bytes: number; hash: string }> {
    const res = await this.call({ op: 'snapshot', round, meta });
    return { bytes: res.size!, hash: res.hash! };
  }

  async storeSnapshot(round: number, at: StoredObject): Promise<{ bytes: number; sha256: string }> {
    const res = await this.call({ op: 'storeSnapshot', round, at });
    return { bytes: res.size!, sha256: res.sha256! };
  }

  async params(): Promise<Float32Array> {
    return new Float32Array((await this.call({ op: 'params' })).params!);
  }

  async watch(settings: RoundWatchSettings, events: WatchEvents): Promise<void> {
    this.events = events;
    await this.call({ op: 'watch', settings });
  }

  setEpoch(epoch: WatchedEpoch): void {
    // Answered like any request; a failure shows in the next step.
    this.call({ op: 'epoch', epoch: { epoch: epoch.epoch, members: [...epoch.members], startRound: epoch.startRound } }).catch(() => undefined);
  }

  async stepObserved(epoch: number, round: number): Promise<StepInfo & { hash: string }> {
    return (await this.call({ op: 'stepObserved', epoch, round })).info!;
  }

  async publishObserved(round: number, hash: string, dataState: string): Promise<void> {
    await this.call({ op: 'publishObserved', round, hash, dataState });
  }

  async close(): Promise<void> {
    const first = !this.failed;
    this.failed ??= new Error('the keeper state is closed');
    this.events = null;
    if (first) {
      // Let the thread close its connection (its subscriptions leave the server at once).
      this.worker.postMessage({ op: 'close', id: this.next++ });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        this.worker.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    await this.worker.terminate();
  }
}
