import { lastToken, senderOf, subjects } from '@gradpool/protocol';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { codecFromWire } from './codecs/index.js';
import { type Codec, CodecIds } from './codecs/codec.js';
import { Sparse32Codec } from './codecs/topk.codec.js';
import { type ChunkHeader, ChunkKinds, decodeChunk } from './header.js';
import { ShardLayout } from './layout.js';
import { logger } from './logger.js';
import type { RejectHandler } from './round-exchange.js';

/** One round's averaged vector as every member assembled it. */
export interface ObservedRound {
  epoch: number;
  round: number;
  /** Bit-identical to the members' `allReduce(...).mean`. */
  mean: Float32Array;
  /** Per shard: owner id, contributing roster indices and their samples. */
  shards: { shard: number; owner: string; contributors: number[]; contributorSamples: number[]; totalSamples: number }[];
  /** Roster indices counted in every shard, ascending, and their Σn. */
  contributors: number[];
  totalSamples: number;
}

export interface GatherObserverOptions {
  nc: NatsConnection;
  jobId: string;
  /** Rounds assembled at once; the oldest incomplete one is dropped beyond this (default 4). */
  maxPending?: number;
  /** Finished rounds queued for a slow consumer before the oldest is dropped (default 16). */
  maxQueued?: number;
  onReject?: RejectHandler;
  /** Every validated gather chunk, as accepted (the owner audit's input: OwnerAuditor#observe). */
  onGather?: (header: ChunkHeader, payload: Uint8Array) => void;
}

interface Pending {
  epoch: number;
  round: number;
  size: number;
  shardCount: number;
  mean: Float32Array;
  shards: (ObservedRound['shards'][number] & { received: boolean[]; count: number; chunkCount: number })[];
  done: number;
}

/**
 * The keeper's view of a job's data plane: subscribes to every gather subject of the job and
 * yields each round's full averaged vector, decoded from the same bytes with the same code as
 * the members (so it is bit-identical to theirs), with contributors and Σn. Rounds that never
 * complete (an owner died; the round is re-run in a new epoch) are dropped.
 *
 *   const obs = new GatherObserver({ nc, jobId });
 *   for await (const r of obs) apply(r.mean);
 */
export class GatherObserver implements AsyncIterable<ObservedRound> {
  private readonly sub: Subscription;
  private readonly pending = new Map<string, Pending>();
  private readonly queue: ObservedRound[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  private readonly codecs = new Map<string, Codec | null>();
  private readonly log;
  /** Highest (epoch, round) yielded; older gathers are late. */
  private last = { epoch: -1, round: -1 };

  constructor(private readonly opts: GatherObserverOptions) {
    this.log = logger.child({ jobId: opts.jobId, component: 'gather-observer' });
    this.sub = opts.nc.subscribe(subjects.gatherAll(opts.jobId), {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.onMessage(msg);
        } catch (e) {
          this.reject('?', `handler failed: ${(e as Error).message}`);
        }
      },
    });
    void opts.nc.closed().then(() => this.close());
  }

  private reject(sender: string, reason: string): void {
    this.log.warn({ sender, reason }, 'rejected gather');
    this.opts.onReject?.(sender, reason);
  }

  private onMessage(msg: Msg): void {
    let h;
    let payload;
    try {
      ({ header: h, payload } = decodeChunk(msg.data));
    } catch (e) {
      return this.reject('?', (e as Error).message);
    }
    if (h.kind === ChunkKinds.abort) return;
    // The subject's owner token is pinned to the publisher by its NATS permissions, so rejects
    // blame it rather than the header's sender, who may be impersonated.
    const owner = lastToken(msg.subject);
    if (h.kind !== ChunkKinds.gather || h.jobId !== this.opts.jobId) return this.reject(owner, 'not a gather of this job');
    if (senderOf(msg.subject, subjects.gatherHead(this.opts.jobId, h.epoch, h.round, h.shard)) === null) return this.reject(owner, 'header does not match subject');
    if (owner !== h.senderId) return this.reject(owner, `subject sender ${JSON.stringify(owner)} is not the header's sender ${JSON.stringify(h.senderId)}`);
    if (h.epoch < this.last.epoch || (h.epoch === this.last.epoch && h.round <= this.last.round)) return;
    if (h.shard >= h.shardCount || h.shardCount === 0 || h.totalSize === 0 || h.shardCount > h.totalSize) return this.reject(h.senderId, 'bad layout');
    const layout = new ShardLayout(h.totalSize, h.shardCount);
    if (h.shardStart !== layout.start(h.shard) || h.shardLength !== layout.length(h.shard)) return this.reject(h.senderId, 'bad shard geometry');
    if (h.offset + h.length > h.shardLength || h.chunk >= h.chunkCount) return this.reject(h.senderId, 'bad chunk geometry');
    let reason: string | null;
    let codec: Codec | null = null;
    if (h.codec === CodecIds.sparse32) reason = Sparse32Codec.validate(payload, h.length);
    else {
      const key = `${h.codec}:${h.codecParam}`;
      if (!this.codecs.has(key)) this.codecs.set(key, codecFromWire(h.codec, h.codecParam));
      codec = this.codecs.get(key)!;
      reason = codec ? codec.validate(payload, h.length) : `unknown codec ${key}`;
    }
    if (reason) return this.reject(h.senderId, reason);
    const key = `${h.epoch}.${h.round}`;
    let p = this.pending.get(key);
    if (!p) {
      p = { epoch: h.epoch, round: h.round, size: h.totalSize, shardCount: h.shardCount, mean: new Float32Array(h.totalSize), shards: [], done: 0 };
      this.pending.set(key, p);
      this.trimPending();
    }
    if (p.size !== h.totalSize || p.shardCount !== h.shardCount) return this.reject(h.senderId, 'layout differs within a round');
    let s = p.shards[h.shard];
    if (!s) {
      s = {
        shard: h.shard,
        owner: h.senderId,
        contributors: h.contributors,
        contributorSamples: h.contributorSamples,
        totalSamples: h.samples,
        received: [],
        count: 0,
        chunkCount: h.chunkCount,
      };
      p.shards[h.shard] = s;
    }
    if (s.received[h.chunk]) return;
    if (s.chunkCount !== h.chunkCount || s.totalSamples !== h.samples || s.contributors.join() !== h.contributors.join()) {
      return this.reject(h.senderId, 'chunks of a shard disagree');
    }
    const at = h.shardStart + h.offset;
    if (codec) codec.decode(payload, h.length, p.mean, at);
    else Sparse32Codec.decode(payload, h.length, p.mean, at);
    s.received[h.chunk] = true;
    this.opts.onGather?.(h, payload);
    if (++s.count === s.chunkCount && ++p.done === p.shardCount) this.complete(key, p);
  }

  private trimPending(): void {
    const max = this.opts.maxPending ?? 4;
    while (this.pending.size > max) {
      const oldest = this.pending.keys().next().value as string;
      this.log.info({ round: oldest }, 'dropping an incomplete round');
      this.pending.delete(oldest);
    }
  }

  private complete(key: string, p: Pending): void {
    this.pending.delete(key);
    const shards = p.shards.map(({ shard, owner, contributors, contributorSamples, totalSamples }) => ({ shard, owner, contributors, contributorSamples, totalSamples }));
    const first = shards[0];
    const contributors = first.contributors.filter((j) => shards.every((s) => s.contributors.includes(j)));
    let totalSamples = 0;
    for (const j of contributors) totalSamples += first.contributorSamples[first.contributors.indexOf(j)];
    this.last = { epoch: p.epoch, round: p.round };
    // Anything older can no longer be yielded in order.
    for (const [k, q] of this.pending) if (q.epoch < p.epoch || (q.epoch === p.epoch && q.round < p.round)) this.pending.delete(k);
    this.queue.push({ epoch: p.epoch, round: p.round, mean: p.mean, shards, contributors, totalSamples });
    const maxQueued = this.opts.maxQueued ?? 16;
    while (this.queue.length > maxQueued) this.queue.shift();
    this.wake?.();
  }

  /** Resolves with the next finished round, or null once closed. */
  async next(signal?: AbortSignal): Promise<ObservedRound | null> {
    for (;;) {
      const r = this.queue.shift();
      if (r) return r;
      if (this.closed) return null;
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ObservedRound> {
    for (;;) {
      const r = await this.next();
      if (!r) return;
      yield r;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sub.unsubscribe();
    this.wake?.();
  }
}
