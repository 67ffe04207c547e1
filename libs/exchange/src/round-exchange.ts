import { lastToken, senderOf, subjects } from '@gradpool/protocol';
import { Events, type Msg, type NatsConnection, type Subscription } from 'nats';
import { createCodec } from './codecs/index.js';
import { type Codec, CodecIds, type CodecSpec } from './codecs/codec.js';
import { Fp32Codec } from './codecs/fp32.codec.js';
import { ErrorFeedback, Sparse32Codec, SparseEntries, TopkCodec } from './codecs/topk.codec.js';
import {
  ConnectionLostError,
  ExchangeUsageError,
  InvalidMeanError,
  OwnerMissingError,
  QuorumNotMetError,
  RoundAbortedError,
} from './errors.js';
import {
  allocateChunk,
  type ChunkHeader,
  ChunkKinds,
  decodeChunk,
  decodeResend,
  encodeResend,
  headerBytes,
  HeaderError,
  type SenderIdentity,
  senderIdentity,
} from './header.js';
import { clipFactors, contributionNorm, type NormScratch } from './clipping.js';
import { defaultShards, type Roster, ShardLayout, validateRoster } from './layout.js';
import { logger } from './logger.js';

/** Who sent a rejected message and why (for reputation). `sender` is '?' when unattributable. */
export type RejectHandler = (sender: string, reason: string) => void;

export interface RoundExchangeOptions {
  nc: NatsConnection;
  jobId: string;
  /** P: elements in the flat parameter/gradient vector. */
  size: number;
  roster: Roster;
  codec: CodecSpec;
  /** Shards per epoch: a number, or a function of (size, members); default 4 per member. */
  shards?: number | ((size: number, members: number) => number);
  /** An owner reduces with whoever has sent everything this long after it entered the round. */
  deadlineMs: number;
  /** A member waits this long after entering the round for every averaged shard; default 2·deadline + 1 s. */
  gatherTimeoutMs?: number;
  /** Fewest contributors (the owner included) a shard needs at the deadline; default ⌈K/2⌉. */
  quorum?: number | ((members: number) => number);
  /** Target message size; default min(512 KiB, max_payload / 2). */
  chunkBytes?: number;
  /** Rounds ahead of the current one whose messages are buffered (default 2); later ones dropped. */
  maxRoundsAhead?: number;
  /** Bytes of future-round messages buffered at most (default 2·P·4 + 16 MiB). */
  maxBufferedBytes?: number;
  /**
   * Robust aggregation (the job spec's `aggregation: {kind: 'clipped-mean', ratio}`): an owner
   * scales each contribution to a shard down to at most `ratio` × the (lower) median L2 norm of
   * the shard's contributions that carry samples, before the sample-weighted mean. A member that
   * sends a huge but finite gradient then moves the mean by at most its share of that bound.
   * Off by default: the plain sample-weighted mean.
   */
  clipNormRatio?: number;
  onReject?: RejectHandler;
  /** Called when an owner scales a contribution down (`clipNormRatio`): who, where, by how much. */
  onClip?: (sender: string, info: { round: number; shard: number; norm: number; bound: number }) => void;
}

export interface AllReduceOptions {
  signal?: AbortSignal;
  /** A new roster (new epoch) for this round: the re-run after OwnerMissingError. */
  roster?: Roster;
  /** Progress hook (tests and metrics): 'published' once every own chunk is handed to NATS. */
  onPhase?: (phase: 'published') => void;
}

export interface ShardResult {
  shard: number;
  owner: string;
  /** Roster indices whose gradient is in this shard's mean, ascending. */
  contributors: number[];
  /** Each contributor's n, same order. */
  contributorSamples: number[];
  totalSamples: number;
}

export interface RoundTimings {
  /** Encoding and handing every own chunk to NATS. */
  publishMs: number;
  /** From entering the round until the last averaged shard arrived. */
  totalMs: number;
}

export interface AllReduceResult {
  epoch: number;
  round: number;
  /** The sample-weighted mean, bit-identical on every member and observer. */
  mean: Float32Array;
  /** Members counted in every shard (the usual case: everyone on time), by id, roster order. */
  contributors: string[];
  /** Σ n over `contributors`. */
  totalSamples: number;
  shards: ShardResult[];
  /** Payload + header bytes this member published / received for the round. */
  bytesSent: number;
  bytesReceived: number;
  timings: RoundTimings;
}

export interface ExchangeStats {
  rejected: number;
  duplicates: number;
  late: number;
  droppedAhead: number;
  republished: number;
  /** Chunks written into a spent message instead of a fresh buffer (`release`). */
  reusedMessages: number;
  /** Contributions this owner scaled down (`clipNormRatio`). */
  clipped: number;
}

/** Owner-side state of one owned shard in one round. */
interface OwnerShard {
  shard: number;
  /** payloads[sender][chunk]; kept until the shard is summed in `finalize`. */
  payloads: (Uint8Array | undefined)[][];
  counts: number[];
  samples: number[];
  complete: boolean[];
  excluded: boolean[];
  /** Next roster index to decide on (counted or skipped), in roster order. */
  next: number;
  /** Senders counted in the sum. */
  added: boolean[];
  done: boolean;
  /** The published gather (or abort) messages, for resend requests. */
  messages: Uint8Array[];
}

/** Member-side assembly of one shard's averaged chunks. */
interface GatherShard {
  received: boolean[];
  count: number;
  chunkCount: number;
  contributors: number[] | null;
  contributorSamples: number[];
  samples: number;
  done: boolean;
  aborted: boolean;
}

interface RoundState {
  round: number;
  entered: boolean;
  owned: Map<number, OwnerShard>;
  gathers: GatherShard[];
  gathersDone: number;
  mean: Float32Array | null;
  /** Own reduce messages by shard, for resend requests. */
  sent: Map<number, Uint8Array[]>;
  bufferedBytes: number;
  bytesSent: number;
  bytesReceived: number;
  deadlineTimer: NodeJS.Timeout | null;
  waiter: { resolve: () => void; reject: (e: Error) => void } | null;
}

interface EpochState {
  roster: Roster;
  self: number;
  members: number;
  layout: ShardLayout;
  reduceChunkElems: number;
  gatherChunkElems: number;
  ownedShards: number[];
  quorum: number;
  subs: Subscription[];
  rounds: Map<number, RoundState>;
  /** Highest round entered in this epoch (−1 before the first). */
  current: number;
  /** Highest round finished (successfully or not) — messages for it or earlier are late. */
  finished: number;
  /** Set when the epoch's subscriptions are fresh: the first round asks peers to resend. */
  needsResend: boolean;
}

const MAX_HEADER_SLACK = 1024;
/** '.', the NATS token separator. */
const DOT = 0x2e;

/** mean[i] = float32(acc[i] / total), in one pass (a small function, so that it is optimised
 * on its own); false when any value is non-finite. */
function meanOf(acc: Float64Array, total: number, mean: Float32Array): boolean {
  let bad = 0;
  for (let i = 0; i < mean.length; i++) {
    const m = Math.fround(acc[i] / total);
    mean[i] = m;
    // m - m is NaN for ±Infinity and NaN, 0 otherwise; NaN !== 0.
    bad |= m - m !== 0 ? 1 : 0;
  }
  return bad === 0;
}

/** nats.js hands payloads at any byte offset; copy a misaligned one once, so that validate,
 * accumulate and decode all get zero-copy typed views of it. (int8 skips this: its values are
 * bytes, and f32View copies only its scales, 1/(blockSize/4 + 1) of the payload, when misaligned.) */
function aligned(payload: Uint8Array): Uint8Array {
  if ((payload.byteOffset & 3) === 0) return payload;
  const copy = new Uint8Array(payload.byteLength);
  copy.set(payload);
  return copy;
}

/**
 * One job member's side of the round protocol (shared/DESIGN.md): reduce-scatter of encoded
 * gradient chunks to shard owners and all-gather of the averaged shards, through NATS.
 *
 * Use one instance per (job, member) for the job's lifetime; call `allReduce` once per round.
 * After `OwnerMissingError`, call `allReduce` again with the new roster (new epoch) and the
 * same gradient. Give it a connection made with `noEcho: true` (otherwise it receives, and
 * drops, its own gathers) and `maxReconnectAttempts: -1`.
 */
export class RoundExchange {
  readonly codec: Codec;
  readonly stats: ExchangeStats = { rejected: 0, duplicates: 0, late: 0, droppedAhead: 0, republished: 0, reusedMessages: 0, clipped: 0 };
  private readonly nc: NatsConnection;
  private readonly jobId: string;
  private readonly size: number;
  private readonly opts: RoundExchangeOptions;
  private readonly chunkBytes: number;
  private readonly gatherCodec: Codec;
  private readonly ef: ErrorFeedback | null;
  private epoch!: EpochState;
  private identity!: SenderIdentity;
  private readonly controlSub: Subscription;
  private busy = false;
  private closed = false;
  /** One reduce chunk's float64 accumulator and one float32 scratch for the mean being encoded,
   * reused by every shard and round. */
  private chunkAcc: Float64Array | null = null;
  private meanScratch = new Float32Array(0);
  /** Decoded contribution chunks whose norm `contributionWeights` takes. */
  private readonly normScratch: NormScratch = { values: new Float32Array(0) };
  /** topk: the owner's sparse mean of a shard, and a zeroed float64 accumulator of a reduce chunk. */
  private sparseMean: SparseEntries | null = null;
  private sparseAcc: Float64Array | null = null;
  /** Means handed back through `recycle` (and those of failed rounds), written over by later
   * rounds instead of allocating P fresh floats each round (see `recycle`). */
  private readonly spareMeans: Float32Array[] = [];
  /** Spent messages by byte length, written over by later chunks of the same size (`release`). */
  private readonly spareMessages = new Map<number, Uint8Array[]>();
  private spareMessageBytes = 0;
  private readonly log;

  constructor(opts: RoundExchangeOptions) {
    this.opts = opts;
    this.nc = opts.nc;
    this.jobId = opts.jobId;
    this.size = opts.size;
    subjects.job(opts.jobId);
    if (!(opts.deadlineMs > 0)) throw new ExchangeUsageError('deadlineMs must be positive');
    if (opts.clipNormRatio !== undefined && !(opts.clipNormRatio >= 1 && Number.isFinite(opts.clipNormRatio))) {
      throw new ExchangeUsageError(`clipNormRatio must be a finite number ≥ 1, not ${opts.clipNormRatio}`);
    }
    this.codec = createCodec(opts.codec);
    this.gatherCodec = this.codec instanceof TopkCodec ? new Fp32Codec() : this.codec;
    this.ef = this.codec instanceof TopkCodec ? new ErrorFeedback(opts.size) : null;
    const maxPayload = this.nc.info?.max_payload ?? 1024 * 1024;
    this.chunkBytes = Math.min(opts.chunkBytes ?? 512 * 1024, Math.floor(maxPayload / 2));
    if (this.chunkBytes < 4096) throw new ExchangeUsageError(`chunkBytes ${this.chunkBytes} is too small`);
    this.log = logger.child({ jobId: opts.jobId, workerId: opts.roster.selfId });
    this.setRoster(opts.roster);
    this.controlSub = this.nc.subscribe(subjects.exchangeControlAll(this.jobId), { callback: (err, msg) => !err && this.guard(() => this.onControl(msg)) });
    void this.watchStatus();
    const onClosed = () => {
      if (this.closed) return;
      this.closed = true;
      for (const st of this.epoch.rounds.values()) st.waiter?.reject(new ConnectionLostError('the NATS connection closed'));
    };
    void this.nc.closed().then(onClosed, onClosed);
  }

  /** The current epoch's roster. */
  get roster(): Roster {
    return this.epoch.roster;
  }

  /** Shard geometry of the current epoch. */
  get layout(): ShardLayout {
    return this.epoch.layout;
  }

  /** topk only: the untransmitted gradient mass kept for the next round (error feedback); null otherwise. */
  get residual(): Float32Array | null {
    return this.ef?.residual ?? null;
  }

  /** Chunk geometry of the current epoch (elements per reduce / gather chunk). */
  get geometry(): { shards: number; reduceChunkElems: number; gatherChunkElems: number; quorum: number } {
    const ep = this.epoch;
    return { shards: ep.layout.shards, reduceChunkElems: ep.reduceChunkElems, gatherChunkElems: ep.gatherChunkElems, quorum: ep.quorum };
  }

  /** Switches to a new membership epoch (subscriptions follow the shards this member owns). */
  setRoster(roster: Roster): void {
    const self = validateRoster(roster);
    if (this.epoch) {
      if (roster.epoch === this.epoch.roster.epoch) return;
      if (roster.epoch < this.epoch.roster.epoch) throw new ExchangeUsageError(`epoch ${roster.epoch} is older than ${this.epoch.roster.epoch}`);
      this.dropEpoch();
    }
    const K = roster.members.length;
    const S = typeof this.opts.shards === 'function' ? this.opts.shards(this.size, K) : (this.opts.shards ?? defaultShards(this.size, K));
    const layout = new ShardLayout(this.size, S);
    const slack = headerBytes(1024, 1024, K) - headerBytes(0, 0, 0) + MAX_HEADER_SLACK;
    const reduceChunkElems = this.codec.elementsFor(this.chunkBytes - slack);
    const gatherChunkElems = this.gatherCodec.elementsFor(this.chunkBytes - slack);
    const q = this.opts.quorum;
    const quorum = typeof q === 'function' ? q(K) : (q ?? Math.ceil(K / 2));
    const ownedShards: number[] = [];
    for (let s = 0; s < S; s++) if (ShardLayout.owner(s, K) === self) ownedShards.push(s);
    this.identity = senderIdentity(this.jobId, roster.selfId);
    const epoch: EpochState = {
      roster: { epoch: roster.epoch, members: [...roster.members], selfId: roster.selfId, startRound: roster.startRound },
      self,
      members: K,
      layout,
      reduceChunkElems,
      gatherChunkElems,
      ownedShards,
      quorum: Math.max(1, Math.min(K, quorum)),
      subs: [],
      rounds: new Map(),
      current: -1,
      finished: -1,
      needsResend: true,
    };
    this.epoch = epoch;
    for (const s of ownedShards) {
      epoch.subs.push(this.nc.subscribe(subjects.reduceShardRounds(this.jobId, roster.epoch, s), { callback: (err, msg) => !err && this.guard(() => this.onReduce(epoch, msg)) }));
    }
    epoch.subs.push(this.nc.subscribe(subjects.gatherEpoch(this.jobId, roster.epoch), { callback: (err, msg) => !err && this.guard(() => this.onGather(epoch, msg)) }));
  }

  /**
   * Averages `grad` (this member's gradient over `samples` samples) with the other members'
   * for `round`. Resolves with the sample-weighted mean; rejects with OwnerMissingError,
   * QuorumNotMetError, RoundAbortedError or ConnectionLostError, never hangs past the gather
   * timeout. `grad` is not modified.
   */
  async allReduce(round: number, grad: Float32Array, samples: number, options: AllReduceOptions = {}): Promise<AllReduceResult> {
    if (this.closed) throw new ConnectionLostError('exchange is closed');
    if (this.busy) throw new ExchangeUsageError('allReduce is already running');
    if (grad.length !== this.size) throw new ExchangeUsageError(`gradient has ${grad.length} elements, expected ${this.size}`);
    if (!Number.isSafeInteger(round) || round < 0) throw new ExchangeUsageError(`bad round ${round}`);
    // 0 is allowed: a member with nothing to compute this round (its lane is empty in a data
    // epoch's short last round) still takes part, so owners need not wait for it.
    if (!(samples >= 0) || !Number.isSafeInteger(samples)) throw new ExchangeUsageError(`samples must be an integer ≥ 0, got ${samples}`);
    options.signal?.throwIfAborted();
    if (options.roster) this.setRoster(options.roster);
    const ep = this.epoch;
    if (round <= ep.finished) throw new ExchangeUsageError(`round ${round} of epoch ${ep.roster.epoch} already ran; re-run it in a new epoch`);
    this.busy = true;
    const started = performance.now();
    const st = this.roundState(ep, round);
    st.entered = true;
    ep.current = Math.max(ep.current, round);
    const log = this.log.child({ round, epoch: ep.roster.epoch });
    let gatherTimer: NodeJS.Timeout | null = null;
    let onAbort: (() => void) | null = null;
    try {
      const done = new Promise<void>((resolve, reject) => {
        st.waiter = { resolve, reject };
      });
      // Unhandled until awaited below; the publish loop may take a while.
      done.catch(() => undefined);
      if (st.gathersDone === ep.layout.shards) st.waiter?.resolve();
      this.checkAborted(ep, st);
      onAbort = () => st.waiter?.reject(new RoundAbortedError(`round ${round} aborted`));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const gatherTimeout = this.opts.gatherTimeoutMs ?? 2 * this.opts.deadlineMs + 1000;
      gatherTimer = setTimeout(() => st.waiter?.reject(this.missingOwnersError(ep, st)), gatherTimeout);
      st.deadlineTimer = setTimeout(
        () =>
          this.guard(() => {
            for (const o of st.owned.values()) if (!o.done) this.finalize(ep, st, o);
          }),
        this.opts.deadlineMs,
      );
      if (ep.needsResend) {
        ep.needsResend = false;
        // Our subscriptions must be on the server before peers resend; a closed connection's
        // flush never settles, so it races the round's own failure.
        await Promise.race([this.nc.flush().catch(() => undefined), done]);
        this.publish(subjects.exchangeControl(this.jobId, ep.roster.selfId), encodeResend(ep.roster.epoch, round, ep.self));
      }
      await this.publishRound(ep, st, grad, samples, options.signal);
      const publishMs = performance.now() - started;
      options.onPhase?.('published');
      await done;
      return this.result(ep, st, publishMs, performance.now() - started);
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'round failed');
      throw err;
    } finally {
      if (gatherTimer) clearTimeout(gatherTimer);
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
      st.waiter = null;
      this.finishRound(ep, round);
      this.busy = false;
    }
  }

  /**
   * Hands back a result's `mean` once the caller is done with it (it must not be read or kept
   * after this): a later round writes its mean into the same memory. Optional, but at large P
   * it matters: a fresh P-float mean every round is P·4 bytes of first-touch page faults and
   * garbage (100 MB at P = 25M, the largest per-round cost of an int8 member before this;
   * docs/bench/exchange.md). Every element of a recycled buffer is overwritten before a round
   * resolves with it (each shard's gather writes its whole range).
   */
  recycle(mean: Float32Array): void {
    if (mean.length !== this.size || mean.byteOffset !== 0 || mean.buffer.byteLength !== this.size * 4) return;
    // One spare is enough when a caller recycles every round's mean before the next.
    if (this.spareMeans.length >= 1 || this.spareMeans.includes(mean)) return;
    this.spareMeans.push(mean);
  }

  /** Unsubscribes; a running allReduce rejects with ConnectionLostError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dropEpoch();
    this.controlSub.unsubscribe();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A spent message of `bytes` bytes to write over, or undefined (allocateChunk allocates). */
  private spareMessage(bytes: number): Uint8Array | undefined {
    const m = this.spareMessages.get(bytes)?.pop();
    if (m) {
      this.spareMessageBytes -= bytes;
      this.stats.reusedMessages++;
    }
    return m;
  }

  /**
   * Makes messages this member published (and will never republish) reusable for later chunks:
   * no fresh buffer per chunk per round, so much less garbage. nats.js holds a reference to a
   * published payload until it copies its outbound queue into the socket — longer while it is
   * disconnected — so they are reused only after a flush (a PING answered after everything
   * queued before it was written) succeeds; if it fails they are left to the GC.
   */
  private release(messages: Uint8Array[]): void {
    if (messages.length === 0 || this.closed) return;
    // About one round of fp32 messages (a member sends (K−1)/K·P + P/K elements a round).
    const cap = Math.max(16 * 1024 * 1024, 1.5 * this.size * 4);
    this.nc.flush().then(
      () => {
        if (this.closed) return;
        for (const m of messages) {
          if (this.spareMessageBytes + m.byteLength > cap) return;
          let list = this.spareMessages.get(m.byteLength);
          if (!list) this.spareMessages.set(m.byteLength, (list = []));
          list.push(m);
          this.spareMessageBytes += m.byteLength;
        }
      },
      () => undefined,
    );
  }

  /** Publishes, or reports the connection lost: nats.js throws once closed or draining. */
  private publish(subject: string, data: Uint8Array): void {
    if (this.nc.isClosed() || this.nc.isDraining()) throw new ConnectionLostError('the NATS connection is closed');
    this.nc.publish(subject, data);
  }

  /** A throw inside a subscription callback would close the connection's reader: never let one out. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'message handler failed');
      this.reject('?', `message handler failed: ${(err as Error).message}`);
    }
  }

  // ---- sending ----

  private async publishRound(ep: EpochState, st: RoundState, grad: Float32Array, samples: number, signal?: AbortSignal): Promise<void> {
    const src = this.ef ? this.ef.compensate(grad) : grad;
    const topk = this.codec instanceof TopkCodec ? this.codec : null;
    const { layout, reduceChunkElems: ce, roster } = ep;
    let sinceYield = 0;
    for (let s = 0; s < layout.shards; s++) {
      const start = layout.start(s);
      const len = layout.length(s);
      const chunkCount = Math.ceil(len / ce);
      const owner = ShardLayout.owner(s, ep.members);
      const subject = subjects.reduce(this.jobId, roster.epoch, st.round, s, roster.selfId);
      const messages: Uint8Array[] = [];
      for (let c = 0; c < chunkCount; c++) {
        const offset = c * ce;
        const length = Math.min(ce, len - offset);
        const payloadBytes = this.codec.payloadBytes(length);
        const { message, payload } = allocateChunk(
          {
            kind: ChunkKinds.reduce,
            codec: this.codec.id,
            epoch: roster.epoch,
            round: st.round,
            shard: s,
            chunk: c,
            chunkCount,
            offset,
            length,
            samples,
            shardLength: len,
            codecParam: this.codec.param,
            payloadBytes,
            senderIndex: ep.self,
            shardStart: start,
            shardCount: layout.shards,
            totalSize: this.size,
            contributors: [],
            contributorSamples: [],
          },
          this.identity,
          this.spareMessage(headerBytes(this.identity.jobId.length, this.identity.senderId.length, 0) + payloadBytes),
        );
        this.codec.encode(src.subarray(start + offset, start + offset + length), payload);
        if (topk && this.ef) this.ef.sent(start + offset, topk.indices(payload, length));
        messages.push(message);
        if (owner === ep.self) {
          const o = st.owned.get(s);
          if (o && !o.done) this.addChunk(ep, st, o, ep.self, c, samples, payload);
        } else {
          this.publish(subject, message);
          st.bytesSent += message.byteLength;
          sinceYield += message.byteLength;
          // Let the socket drain and incoming chunks be reduced while we publish.
          if (sinceYield >= 4 * 1024 * 1024) {
            sinceYield = 0;
            await new Promise((r) => setImmediate(r));
            signal?.throwIfAborted();
            if (this.closed) throw new ConnectionLostError('exchange closed');
          }
        }
      }
      st.sent.set(s, messages);
    }
  }

  // ---- owner: reduce ----

  private onReduce(ep: EpochState, msg: Msg): void {
    if (ep !== this.epoch) return;
    let h: ChunkHeader;
    let payload: Uint8Array;
    try {
      ({ header: h, payload } = decodeChunk(msg.data));
    } catch (e) {
      return this.reject('?', `malformed reduce message: ${(e as HeaderError).message}`);
    }
    if (this.codec.id !== CodecIds.int8) payload = aligned(payload);
    const sender = this.attribute(ep, h, msg.subject);
    if (h.kind !== ChunkKinds.reduce) return this.reject(sender, `kind ${h.kind} on a reduce subject`);
    if (h.jobId !== this.jobId) return this.reject(sender, `chunk for job ${JSON.stringify(h.jobId)}`);
    const from = h.epoch === ep.roster.epoch ? senderOf(msg.subject, subjects.reduceHead(this.jobId, h.epoch, h.round, h.shard)) : null;
    if (from === null) return this.reject(sender, `header (epoch ${h.epoch}, round ${h.round}, shard ${h.shard}) does not match subject ${msg.subject}`);
    if (from !== h.senderId) return this.rejectForged(ep, from, h.senderId);
    if (sender === '?') return this.reject(`${h.senderId}`, `sender ${JSON.stringify(h.senderId)} is not member ${h.senderIndex} of epoch ${h.epoch}`);
    const j = h.senderIndex;
    if (j === ep.self) return;
    if (!ep.ownedShards.includes(h.shard)) return this.reject(sender, `shard ${h.shard} is not owned by ${ep.roster.selfId}`);
    if (h.round <= ep.finished) {
      this.stats.late++;
      return;
    }
    if (this.tooFarAhead(ep, h.round)) {
      this.stats.droppedAhead++;
      return;
    }
    const reason = this.checkGeometry(ep, h, ep.reduceChunkElems) ?? this.checkCodec(h, [this.codec]);
    if (reason) return this.reject(sender, reason);
    if (!(h.samples >= 0) || !Number.isSafeInteger(h.samples)) return this.reject(sender, `bad sample count ${h.samples}`);
    const st = this.roundState(ep, h.round);
    const o = st.owned.get(h.shard)!;
    if (o.done) {
      this.stats.late++;
      return;
    }
    if (o.excluded[j]) return;
    if (o.complete[j] || o.payloads[j]?.[h.chunk]) {
      this.stats.duplicates++;
      return;
    }
    if (o.samples[j] !== -1 && o.samples[j] !== h.samples) {
      return this.exclude(ep, st, o, j, `sample count changed from ${o.samples[j]} to ${h.samples} within a round`);
    }
    const bad = this.codec.validate(payload, h.length);
    if (bad) return this.exclude(ep, st, o, j, bad);
    if (!st.entered) {
      const cap = this.opts.maxBufferedBytes ?? 2 * this.size * 4 + 16 * 1024 * 1024;
      if (this.bufferedBytes(ep) + msg.data.byteLength > cap) {
        this.stats.droppedAhead++;
        return;
      }
      st.bufferedBytes += msg.data.byteLength;
    }
    st.bytesReceived += msg.data.byteLength;
    this.addChunk(ep, st, o, j, h.chunk, h.samples, payload);
  }

  private addChunk(ep: EpochState, st: RoundState, o: OwnerShard, j: number, chunk: number, samples: number, payload: Uint8Array): void {
    const chunkCount = Math.ceil(ep.layout.length(o.shard) / ep.reduceChunkElems);
    const row = (o.payloads[j] ??= new Array(chunkCount));
    if (row[chunk]) return;
    row[chunk] = payload;
    o.samples[j] = samples;
    if (++o.counts[j] < chunkCount) return;
    o.complete[j] = true;
    this.advance(ep, o, false);
    if (o.complete.every((c, i) => c || o.excluded[i])) this.finalize(ep, st, o);
  }

  /** Counts complete senders in roster order; at the deadline (`final`) skips the rest. */
  private advance(ep: EpochState, o: OwnerShard, final: boolean): void {
    while (o.next < ep.members) {
      const j = o.next;
      if (o.complete[j]) {
        o.added[j] = true;
      } else if (!final && !o.excluded[j]) {
        return;
      }
      o.next++;
    }
  }

  /**
   * The float64 sum Σ_j n_j·x_j of reduce chunk `c` (n elements) over the counted senders, in
   * roster order for every element, in one reused chunk-long accumulator that stays in cache (a
   * shard-long one was zeroed, summed into and read back through main memory, several passes of
   * 8 bytes per element). The codec's own accumulator where it has one (int8: WebAssembly memory,
   * summed without copies).
   */
  private sumChunk(ep: EpochState, o: OwnerShard, c: number, n: number, len: number, weights: Float64Array): Float64Array {
    // No longer than the shard (topk's chunks can span millions of elements).
    const need = Math.min(ep.reduceChunkElems, len);
    if (!this.chunkAcc || this.chunkAcc.length < need) this.chunkAcc = this.codec.newAccumulator?.(need) ?? new Float64Array(need);
    const acc = this.chunkAcc.subarray(0, n);
    acc.fill(0);
    for (let j = 0; j < ep.members; j++) if (o.added[j]) this.codec.accumulate(o.payloads[j][c]!, n, acc, 0, weights[j]);
    return acc;
  }

  /**
   * Each counted contributor's weight in shard `o`'s sum: its samples, times its clip factor
   * when `clipNormRatio` is set (clipping.ts: min(1, bound / its norm), bound = ratio × the
   * lower median of the norms of the contributions with samples).
   */
  private contributionWeights(ep: EpochState, st: RoundState, o: OwnerShard, len: number): Float64Array {
    const weights = new Float64Array(ep.members);
    for (let j = 0; j < ep.members; j++) if (o.added[j]) weights[j] = o.samples[j];
    const ratio = this.opts.clipNormRatio;
    if (ratio === undefined) return weights;
    const ce = ep.reduceChunkElems;
    const norms = new Float64Array(ep.members).fill(-1);
    for (let j = 0; j < ep.members; j++) {
      if (!o.added[j] || !(o.samples[j] > 0)) continue;
      const chunks = [];
      for (let c = 0, off = 0; off < len; c++, off += ce) chunks.push({ payload: o.payloads[j][c]!, length: Math.min(ce, len - off) });
      norms[j] = contributionNorm(this.codec, chunks, this.normScratch);
    }
    const clip = clipFactors(norms, ratio);
    if (!clip) return weights;
    for (let j = 0; j < ep.members; j++) {
      if (clip.factors[j] < 1) {
        weights[j] = o.samples[j] * clip.factors[j];
        this.stats.clipped++;
        this.opts.onClip?.(ep.roster.members[j], { round: st.round, shard: o.shard, norm: norms[j], bound: clip.bound });
      }
    }
    return weights;
  }

  private exclude(ep: EpochState, st: RoundState, o: OwnerShard, j: number, reason: string): void {
    o.excluded[j] = true;
    o.payloads[j] = [];
    this.reject(ep.roster.members[j], `round ${st.round} shard ${o.shard}: ${reason}`);
    this.advance(ep, o, false);
    if (o.complete.every((c, i) => c || o.excluded[i])) this.finalize(ep, st, o);
  }

  /** Computes, validates and publishes the shard's mean (or an abort without quorum). */
  private finalize(ep: EpochState, st: RoundState, o: OwnerShard): void {
    if (o.done || ep !== this.epoch) return;
    o.done = true;
    this.advance(ep, o, true);
    const contributors: number[] = [];
    const contributorSamples: number[] = [];
    let total = 0;
    for (let j = 0; j < ep.members; j++) {
      if (o.added[j]) {
        contributors.push(j);
        contributorSamples.push(o.samples[j]);
        total += o.samples[j];
      }
    }
    const s = o.shard;
    const len = ep.layout.length(s);
    const subject = subjects.gather(this.jobId, ep.roster.epoch, st.round, s, ep.roster.selfId);
    const base = {
      epoch: ep.roster.epoch,
      round: st.round,
      shard: s,
      shardLength: len,
      senderIndex: ep.self,
      shardStart: ep.layout.start(s),
      shardCount: ep.layout.shards,
      totalSize: this.size,
    };
    // Without quorum, or with only members that brought no samples, there is no mean.
    if (contributors.length < ep.quorum || total === 0) {
      const { message } = allocateChunk(
        { ...base, kind: ChunkKinds.abort, codec: 0, chunk: 0, chunkCount: 0, offset: 0, length: 0, samples: 0, codecParam: 0, payloadBytes: 0, contributors, contributorSamples },
        this.identity,
      );
      o.payloads = [];
      o.messages = [message];
      this.publish(subject, message);
      st.bytesSent += message.byteLength;
      this.markAborted(ep, st, s);
      return;
    }
    const gce = ep.gatherChunkElems;
    const chunkCount = Math.ceil(len / gce);
    const hb = headerBytes(this.identity.jobId.length, this.identity.senderId.length, contributors.length);
    const header = (c: number, length: number, codec: number, codecParam: number, payloadBytes: number) =>
      allocateChunk(
        { ...base, kind: ChunkKinds.gather, codec, chunk: c, chunkCount, offset: c * gce, length, samples: total, codecParam, payloadBytes, contributors, contributorSamples },
        this.identity,
        this.spareMessage(hb + payloadBytes),
      );
    const gathers: { message: Uint8Array; payload: Uint8Array; codec: number }[] = [];
    const weights = this.contributionWeights(ep, st, o, len);
    let finite = true;
    if (this.gatherCodec === this.codec && gce === ep.reduceChunkElems) {
      // Gather chunks are the reduce chunks: each chunk's mean goes straight into its message
      // (int8: divided and quantised in one pass inside WebAssembly, `encodeMean`).
      for (let c = 0; c < chunkCount && finite; c++) {
        const length = Math.min(gce, len - c * gce);
        const acc = this.sumChunk(ep, o, c, length, len, weights);
        const g = { ...header(c, length, this.codec.id, this.codec.param, this.codec.payloadBytes(length)), codec: this.codec.id };
        const fused = this.codec.encodeMean?.(acc, total, g.payload) ?? null;
        if (fused === null) {
          if (this.meanScratch.length < length) this.meanScratch = new Float32Array(length);
          const mean = this.meanScratch.subarray(0, length);
          finite = meanOf(acc, total, mean);
          if (finite) this.codec.encode(mean, g.payload);
        } else {
          finite = fused;
        }
        gathers.push(g);
      }
    } else {
      // topk: the mean of the sparse contributions, computed on their entries only (a dense sum
      // of the shard was four passes over it), then gathered in chunks of the gather codec's size,
      // each sparse or dense fp32, whichever is smaller.
      const topk = this.codec as TopkCodec;
      const ce = ep.reduceChunkElems;
      const entries = (this.sparseMean ??= new SparseEntries());
      entries.count = 0;
      if (!this.sparseAcc || this.sparseAcc.length < Math.min(ce, len)) this.sparseAcc = new Float64Array(Math.min(ce, len));
      for (let c = 0, offset = 0; offset < len && finite; c++, offset += ce) {
        const contributions: { payload: Uint8Array; weight: number }[] = [];
        for (let j = 0; j < ep.members; j++) if (o.added[j]) contributions.push({ payload: o.payloads[j][c]!, weight: weights[j] });
        finite = topk.sumMeanSparse(contributions, Math.min(ce, len - offset), total, offset, this.sparseAcc, entries);
      }
      for (let c = 0, p = 0; c < chunkCount && finite; c++) {
        const offset = c * gce;
        const length = Math.min(gce, len - offset);
        let q = p;
        while (q < entries.count && entries.idx[q] < offset + length) q++;
        const dense = this.gatherCodec.payloadBytes(length);
        const sparse = (q - p) * 8 < dense;
        const g = sparse
          ? { ...header(c, length, CodecIds.sparse32, 0, (q - p) * 8), codec: CodecIds.sparse32 }
          : { ...header(c, length, this.gatherCodec.id, this.gatherCodec.param, dense), codec: this.gatherCodec.id };
        if (sparse) {
          Sparse32Codec.encodeEntries(entries, p, q, offset, g.payload);
        } else {
          if (this.meanScratch.length < length) this.meanScratch = new Float32Array(length);
          const part = this.meanScratch.subarray(0, length);
          part.fill(0);
          for (let k = p; k < q; k++) part[entries.idx[k] - offset] = entries.val[k];
          this.gatherCodec.encode(part, g.payload);
        }
        gathers.push(g);
        p = q;
      }
    }
    o.payloads = [];
    if (!finite) {
      // Unreachable for validated finite inputs (a weighted mean is within their range).
      this.log.error({ round: st.round, shard: s }, 'non-finite mean');
      st.waiter?.reject(new InvalidMeanError(`shard ${s} of round ${st.round}: non-finite mean`));
      return;
    }
    gathers.forEach(({ message, payload, codec }, c) => {
      o.messages.push(message);
      this.publish(subject, message);
      st.bytesSent += message.byteLength;
      // Our own copy comes from the same bytes, through the same decoder as everyone's.
      const g = this.gatherShard(ep, st, s, chunkCount);
      this.acceptGather(ep, st, s, g, c, Math.min(gce, len - c * gce), c * gce, codec, payload, contributors, contributorSamples, total);
    });
  }

  // ---- member: gather ----

  private onGather(ep: EpochState, msg: Msg): void {
    if (ep !== this.epoch) return;
    let h: ChunkHeader;
    let payload: Uint8Array;
    try {
      ({ header: h, payload } = decodeChunk(msg.data));
    } catch (e) {
      return this.reject('?', `malformed gather message: ${(e as HeaderError).message}`);
    }
    if (this.codec.id !== CodecIds.int8) payload = aligned(payload);
    const sender = this.attribute(ep, h, msg.subject);
    if (h.kind !== ChunkKinds.gather && h.kind !== ChunkKinds.abort) return this.reject(sender, `kind ${h.kind} on a gather subject`);
    if (h.jobId !== this.jobId) return this.reject(sender, `gather for job ${JSON.stringify(h.jobId)}`);
    const from = h.epoch === ep.roster.epoch ? senderOf(msg.subject, subjects.gatherHead(this.jobId, h.epoch, h.round, h.shard)) : null;
    if (from === null) return this.reject(sender, `header (epoch ${h.epoch}, round ${h.round}, shard ${h.shard}) does not match subject ${msg.subject}`);
    if (from !== h.senderId) return this.rejectForged(ep, from, h.senderId);
    if (h.shard >= ep.layout.shards) return this.reject(sender, `no shard ${h.shard}`);
    const owner = ShardLayout.owner(h.shard, ep.members);
    if (sender === '?' || h.senderIndex !== owner) return this.reject(h.senderId, `gather of shard ${h.shard} not from its owner`);
    if (owner === ep.self) return;
    if (h.round <= ep.finished) {
      this.stats.late++;
      return;
    }
    if (this.tooFarAhead(ep, h.round)) {
      this.stats.droppedAhead++;
      return;
    }
    const st = this.roundState(ep, h.round);
    st.bytesReceived += msg.data.byteLength;
    if (h.kind === ChunkKinds.abort) {
      this.markAborted(ep, st, h.shard);
      return;
    }
    const reason = this.checkGeometry(ep, h, ep.gatherChunkElems) ?? this.checkGatherCodec(h, payload) ?? this.checkContributors(ep, h);
    if (reason) return this.reject(sender, reason);
    const g = this.gatherShard(ep, st, h.shard, h.chunkCount);
    if (g.done || g.received[h.chunk]) {
      this.stats.duplicates++;
      return;
    }
    if (g.contributors && (g.samples !== h.samples || g.contributors.join() !== h.contributors.join() || g.contributorSamples.join() !== h.contributorSamples.join())) {
      return this.reject(sender, `shard ${h.shard}: contributors or Σn differ between chunks`);
    }
    this.acceptGather(ep, st, h.shard, g, h.chunk, h.length, h.offset, h.codec, payload, h.contributors, h.contributorSamples, h.samples);
  }

  private acceptGather(
    ep: EpochState,
    st: RoundState,
    s: number,
    g: GatherShard,
    chunk: number,
    length: number,
    offset: number,
    codec: number,
    payload: Uint8Array,
    contributors: number[],
    contributorSamples: number[],
    samples: number,
  ): void {
    if (g.received[chunk]) return;
    st.mean ??= this.spareMeans.pop() ?? new Float32Array(this.size);
    const at = ep.layout.start(s) + offset;
    if (codec === CodecIds.sparse32) Sparse32Codec.decode(payload, length, st.mean, at);
    else this.gatherCodec.decode(payload, length, st.mean, at);
    g.received[chunk] = true;
    g.contributors ??= contributors;
    g.contributorSamples = contributorSamples;
    g.samples = samples;
    if (++g.count === g.chunkCount) {
      g.done = true;
      if (++st.gathersDone === ep.layout.shards) st.waiter?.resolve();
    }
  }

  private markAborted(ep: EpochState, st: RoundState, s: number): void {
    const g = this.gatherShard(ep, st, s, 0);
    g.aborted = true;
    this.checkAborted(ep, st);
  }

  private checkAborted(ep: EpochState, st: RoundState): void {
    const shards = st.gathers.flatMap((g, s) => (g?.aborted ? [s] : []));
    if (shards.length > 0) st.waiter?.reject(new QuorumNotMetError(shards, ep.roster.epoch, st.round, ep.quorum));
  }

  // ---- validation helpers ----

  /**
   * The header's sender when it is the roster member at the header's index and the subject's
   * sender token (pinned to the publisher by its NATS permissions) names it too; else '?', so a
   * forged header never gets an innocent member blamed.
   */
  private attribute(ep: EpochState, h: ChunkHeader, subject: string): string {
    const id = h.senderId;
    const ok = h.senderIndex < ep.members && ep.roster.members[h.senderIndex] === id && subject.endsWith(id) && subject.charCodeAt(subject.length - id.length - 1) === DOT;
    return ok ? id : '?';
  }

  private checkGeometry(ep: EpochState, h: ChunkHeader, chunkElems: number): string | null {
    const { layout } = ep;
    if (h.shard >= layout.shards || h.shardCount !== layout.shards || h.totalSize !== this.size) {
      return `shard ${h.shard} of ${h.shardCount} (size ${h.totalSize}) does not fit the layout of ${layout.shards} shards of ${this.size}`;
    }
    const len = layout.length(h.shard);
    const chunkCount = Math.ceil(len / chunkElems);
    const offset = h.chunk * chunkElems;
    if (
      h.shardLength !== len ||
      h.shardStart !== layout.start(h.shard) ||
      h.chunkCount !== chunkCount ||
      h.chunk >= chunkCount ||
      h.offset !== offset ||
      h.length !== Math.min(chunkElems, len - offset)
    ) {
      return `chunk ${h.chunk}/${h.chunkCount} [${h.offset}, +${h.length}) of a shard of ${h.shardLength} does not match shard ${h.shard} (${len} elements, ${chunkCount} chunks)`;
    }
    return null;
  }

  private checkCodec(h: ChunkHeader, allowed: Codec[]): string | null {
    return allowed.some((c) => c.id === h.codec && c.param === h.codecParam) ? null : `codec ${h.codec}:${h.codecParam} is not the job's ${this.codec.name}`;
  }

  private checkGatherCodec(h: ChunkHeader, payload: Uint8Array): string | null {
    if (h.codec === CodecIds.sparse32 && this.codec instanceof TopkCodec) return Sparse32Codec.validate(payload, h.length);
    return this.checkCodec(h, [this.gatherCodec]) ?? this.gatherCodec.validate(payload, h.length);
  }

  private checkContributors(ep: EpochState, h: ChunkHeader): string | null {
    const c = h.contributors;
    if (c.length === 0 || c.length > ep.members) return `gather lists ${c.length} contributors`;
    let sum = 0;
    for (let i = 0; i < c.length; i++) {
      if (c[i] >= ep.members || (i > 0 && c[i] <= c[i - 1])) return 'gather contributors not ascending roster indices';
      const n = h.contributorSamples[i];
      if (!(n >= 0) || !Number.isSafeInteger(n)) return `bad contributor sample count ${n}`;
      sum += n;
    }
    if (sum !== h.samples) return `Σn ${h.samples} is not the sum of the contributors' ${sum}`;
    return null;
  }

  /**
   * A message whose subject names a sender other than its header's. Per-worker publish permissions
   * pin a subject's sender token to the publisher, so the subject is the one to blame (when it is a
   * member); the header's sender may be an innocent member being impersonated.
   */
  private rejectForged(ep: EpochState, subjectSender: string, headerSender: string): void {
    const blame = ep.roster.members.includes(subjectSender) ? subjectSender : '?';
    this.reject(blame, `subject sender ${JSON.stringify(subjectSender)} is not the header's sender ${JSON.stringify(headerSender)}`);
  }

  private reject(sender: string, reason: string): void {
    this.stats.rejected++;
    this.log.warn({ sender, reason }, 'rejected message');
    try {
      this.opts.onReject?.(sender, reason);
    } catch (err) {
      this.log.error({ err }, 'onReject threw');
    }
  }

  // ---- state ----

  private roundState(ep: EpochState, round: number): RoundState {
    let st = ep.rounds.get(round);
    if (st) return st;
    st = {
      round,
      entered: false,
      owned: new Map(),
      gathers: [],
      gathersDone: 0,
      mean: null,
      sent: new Map(),
      bufferedBytes: 0,
      bytesSent: 0,
      bytesReceived: 0,
      deadlineTimer: null,
      waiter: null,
    };
    const K = ep.members;
    for (const s of ep.ownedShards) {
      st.owned.set(s, {
        shard: s,
        payloads: [],
        counts: new Array(K).fill(0),
        samples: new Array(K).fill(-1),
        complete: new Array(K).fill(false),
        excluded: new Array(K).fill(false),
        added: new Array(K).fill(false),
        next: 0,
        done: false,
        messages: [],
      });
    }
    ep.rounds.set(round, st);
    return st;
  }

  private gatherShard(ep: EpochState, st: RoundState, s: number, chunkCount: number): GatherShard {
    let g = st.gathers[s];
    if (!g) {
      g = { received: [], count: 0, chunkCount: 0, contributors: null, contributorSamples: [], samples: 0, done: false, aborted: false };
      st.gathers[s] = g;
    }
    if (chunkCount > 0 && g.chunkCount === 0) g.chunkCount = chunkCount;
    return g;
  }

  /** Beyond the buffering window. Before its first round of an epoch a member knows where it
   * starts only from `Roster.startRound`; without it, it accepts any round then, bounded by bytes. */
  private tooFarAhead(ep: EpochState, round: number): boolean {
    const window = this.opts.maxRoundsAhead ?? 2;
    if (!ep.rounds.has(round)) {
      // At most `window` + 1 rounds not yet entered are held at once (each may hold a P-sized mean).
      let waiting = 0;
      for (const st of ep.rounds.values()) if (!st.entered) waiting++;
      if (waiting > window) return true;
    }
    if (ep.current < 0 && ep.finished < 0) return ep.roster.startRound !== undefined && round > ep.roster.startRound + window;
    return round > Math.max(ep.current, ep.finished + 1) + window;
  }

  private bufferedBytes(ep: EpochState): number {
    let n = 0;
    for (const st of ep.rounds.values()) if (!st.entered) n += st.bufferedBytes;
    return n;
  }

  private missingOwnersError(ep: EpochState, st: RoundState): Error {
    const aborted = st.gathers.flatMap((g, s) => (g?.aborted ? [s] : []));
    if (aborted.length > 0) return new QuorumNotMetError(aborted, ep.roster.epoch, st.round, ep.quorum);
    const shards: number[] = [];
    const owners = new Set<string>();
    for (let s = 0; s < ep.layout.shards; s++) {
      if (!st.gathers[s]?.done) {
        shards.push(s);
        owners.add(ep.roster.members[ShardLayout.owner(s, ep.members)]);
      }
    }
    return new OwnerMissingError([...owners], shards, ep.roster.epoch, st.round);
  }

  private result(ep: EpochState, st: RoundState, publishMs: number, totalMs: number): AllReduceResult {
    const shards: ShardResult[] = st.gathers.map((g, s) => ({
      shard: s,
      owner: ep.roster.members[ShardLayout.owner(s, ep.members)],
      contributors: g.contributors!,
      contributorSamples: g.contributorSamples,
      totalSamples: g.samples,
    }));
    const everywhere = ep.roster.members.flatMap((_, j) => (shards.every((r) => r.contributors.includes(j)) ? [j] : []));
    // Σn over the members counted in every shard, in roster order (same sum on every member).
    let totalSamples = 0;
    const first = shards[0];
    for (const j of everywhere) totalSamples += first.contributorSamples[first.contributors.indexOf(j)];
    if (this.ef) {
      for (const r of shards) {
        this.ef.commit(ep.layout.start(r.shard), ep.layout.start(r.shard + 1), r.contributors.includes(ep.self));
      }
    }
    const mean = st.mean!;
    // Handed to the caller: no longer ours to reuse (unless the caller recycles it).
    st.mean = null;
    return {
      epoch: ep.roster.epoch,
      round: st.round,
      mean,
      contributors: everywhere.map((j) => ep.roster.members[j]),
      totalSamples,
      shards,
      bytesSent: st.bytesSent,
      bytesReceived: st.bytesReceived,
      timings: { publishMs, totalMs },
    };
  }

  /** Ends `round`: later messages for it (or earlier rounds) are late; its own gathers are kept for resends. */
  private finishRound(ep: EpochState, round: number): void {
    ep.finished = Math.max(ep.finished, round);
    for (const [r, st] of ep.rounds) {
      if (r < round) {
        if (st.deadlineTimer) clearTimeout(st.deadlineTimer);
        this.reclaimMean(st);
        // Its gathers can no longer be asked for again.
        this.release([...st.owned.values()].flatMap((o) => o.messages));
        ep.rounds.delete(r);
      } else if (r === round) {
        // Not our chunks of an owned shard still to be summed (a failed round's deadline may
        // still finalize it): the owner's sum reads them.
        this.release([...st.sent].flatMap(([shard, messages]) => (st.owned.get(shard)?.done === false ? [] : messages)));
        st.sent.clear();
        this.reclaimMean(st);
      }
    }
  }

  /** A mean that never reached a caller (a failed or abandoned round) goes back to the spares. */
  private reclaimMean(st: RoundState): void {
    if (st.mean) this.recycle(st.mean);
    st.mean = null;
  }

  private dropEpoch(): void {
    const ep = this.epoch;
    for (const sub of ep.subs) sub.unsubscribe();
    for (const st of ep.rounds.values()) {
      if (st.deadlineTimer) clearTimeout(st.deadlineTimer);
      st.waiter?.reject(new ConnectionLostError('exchange closed or moved to a new epoch'));
      // A round in allReduce may have resolved already (its result not yet built): keep its mean.
      if (!st.entered) this.reclaimMean(st);
    }
    ep.rounds.clear();
  }

  // ---- resends and reconnection ----

  private onControl(msg: Msg): void {
    const r = decodeResend(msg.data);
    const ep = this.epoch;
    if (!r || r.epoch !== ep.roster.epoch || r.senderIndex === ep.self || r.senderIndex >= ep.members) return;
    const from = lastToken(msg.subject);
    if (from !== ep.roster.members[r.senderIndex]) return this.rejectForged(ep, from, ep.roster.members[r.senderIndex]);
    const st = ep.rounds.get(r.round);
    if (!st) return;
    this.republish(ep, st, r.senderIndex);
  }

  /** Republishes what member `to` (or everyone, when null) may have missed of round st. */
  private republish(ep: EpochState, st: RoundState, to: number | null): void {
    for (const [s, messages] of st.sent) {
      const owner = ShardLayout.owner(s, ep.members);
      if (owner === ep.self || (to !== null && owner !== to)) continue;
      const subject = subjects.reduce(this.jobId, ep.roster.epoch, st.round, s, ep.roster.selfId);
      for (const m of messages) {
        this.publish(subject, m);
        this.stats.republished++;
      }
    }
    for (const o of st.owned.values()) {
      if (!o.done) continue;
      const subject = subjects.gather(this.jobId, ep.roster.epoch, st.round, o.shard, ep.roster.selfId);
      for (const m of o.messages) {
        this.publish(subject, m);
        this.stats.republished++;
      }
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.closed) break;
      if (s.type !== Events.Reconnect) continue;
      const ep = this.epoch;
      this.log.info({ epoch: ep.roster.epoch }, 'reconnected; resending the rounds in flight');
      // Peers may have published a round we had not reached while we were away (one that has
      // finished the round before can be a round ahead): the next round we enter asks for it again.
      ep.needsResend = true;
      this.guard(() => {
        for (const st of ep.rounds.values()) {
          if (!st.entered && !st.owned.size) continue;
          this.republish(ep, st, null);
          this.publish(subjects.exchangeControl(this.jobId, ep.roster.selfId), encodeResend(ep.roster.epoch, st.round, ep.self));
        }
      });
    }
  }
}
