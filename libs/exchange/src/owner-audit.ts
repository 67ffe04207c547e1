import { randomInt } from 'node:crypto';
import { senderOf, subjects } from '@gradpool/protocol';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { clipBound, contributionNorm, type NormScratch } from './clipping.js';
import { codecFromWire, createCodec } from './codecs/index.js';
import { type Codec, CodecIds, type CodecSpec, f32View } from './codecs/codec.js';
import { Sparse32Codec } from './codecs/topk.codec.js';
import { type ChunkHeader, ChunkKinds, decodeChunk } from './header.js';
import { logger } from './logger.js';

/**
 * Owner audit: an observer that trusts no volunteer (the keeper) checks that a shard's owner
 * gathered the clipped mean of what it was sent (docs/jobs-protocol.md, "Owner audit").
 *
 * For a few shards of each round, picked at random and unpredictably, the auditor subscribes to
 * the shard's reduce messages before any owner may accept them (LEAD), and when the owner's gather arrives
 * it recomputes, from the contributions the gather lists, what the owner's own contribution must
 * have been: y = (Σn · mean − Σ_{others} w_j · x_j) / n_owner, with each other contribution
 * weighted as the owner must have weighted it (its samples, scaled to the norm bound). An owner
 * never publishes its contribution to its own shards, so y is the only freedom an honest owner
 * has; an honest one's y is its own gradient, scaled to the bound like anyone's. So the check is
 * ‖y‖ ≤ bound (plus the gather codec's documented error and a 10 % slack). An owner that
 * published any other mean, or dropped, altered or re-weighted someone's contribution, fails it
 * by more than that, unless the change is one a clipped contributor could have made anyway.
 *
 * Costs the auditor K·P/S elements per audited shard per round (one owner's inbound), and the
 * owner nothing: it cannot see which shards are audited.
 */
export interface OwnerAuditOptions {
  nc: NatsConnection;
  jobId: string;
  /** The job's codec (reduce messages). */
  codec: CodecSpec;
  /** The job's clipped-mean ratio (`aggregation.ratio`). */
  clipNormRatio: number;
  /** An epoch's roster (member ids in roster order) and first round; undefined when unknown. */
  rosterOf: (epoch: number) => { members: readonly string[]; startRound: number } | undefined;
  /**
   * Shards audited per round: a number, or 'auto' (default): as many as `bytesPerRound` of
   * reduce messages allow (each costs K·P/S elements), at least one; so small jobs have every
   * shard audited and large ones a few at random.
   */
  shardsPerRound?: number | 'auto';
  /** With 'auto': the reduce bytes a round's audits may take in (default 8 MiB: 2M float32). */
  bytesPerRound?: number;
  /**
   * The share of wall time the audits may take on this thread (default 0.1): past it, rounds go
   * unaudited until the time is earned back. A fast job (tens of rounds a second) would otherwise
   * spend the event loop on audits, and the keeper that runs them would fall behind its gathers.
   */
  cpuShare?: number;
  onResult: (result: AuditResult) => void;
  /** Test seam: which `count` shards of `shardCount` round `round` audits (default: at random). */
  pick?: (round: number, shardCount: number, count: number) => number[];
}

export interface AuditResult {
  /** `violation`: the owner's gather is not the clipped mean of what it lists (proof in `reason`). */
  verdict: 'ok' | 'violation' | 'unverifiable';
  epoch: number;
  round: number;
  shard: number;
  /** The owner's worker id. */
  owner: string;
  reason: string;
  /** ‖Σn·mean − Σ_{others} w_j·x_j‖ (= n_owner·‖y‖), and the most an honest owner reaches. */
  residual?: number;
  allowed?: number;
}

/** Relative slack on the bound an owner's implied contribution may reach. */
const SLACK = 0.1;
/** Beyond the audited rounds' window, an audit that never completed is dropped. */
const KEEP_ROUNDS = 8;
/**
 * Rounds past a member's current one whose messages it buffers (RoundExchangeOptions.
 * maxRoundsAhead's default; before its first round of an epoch, past Roster.startRound).
 */
const OWNER_WINDOW = 2;
/**
 * A gather of round f makes the auditor watch round f + LEAD. An audit must see every message the
 * owner could have summed, so the subscription must be on the server before the owner accepts
 * anything of that round: an owner accepts round R once it entered R − OWNER_WINDOW, after every
 * gather of round R − OWNER_WINDOW − 1. So a watch is armed only if, once the server has confirmed
 * the subscription (a flush), no gather of that round has reached the auditor yet (the server
 * delivers in order); LEAD leaves rounds of margin for that.
 */
const LEAD = 5;

interface Contribution {
  samples: number;
  chunkCount: number;
  chunks: (Uint8Array | undefined)[];
  offsets: number[];
  lengths: number[];
  count: number;
  /** Chunks that disagree (samples, geometry, bytes of a repeat) or fail validation. */
  conflict: boolean;
  /** A chunk arrived after the gather began: the owner cannot have summed it as we saw it. */
  late: boolean;
}

interface GatherParts {
  owner: string;
  ownerIndex: number;
  shardLength: number;
  chunkCount: number;
  contributors: number[];
  contributorSamples: number[];
  samples: number;
  chunks: ({ codec: number; param: number; offset: number; length: number; payload: Uint8Array } | undefined)[];
  count: number;
}

interface EpochAttempt {
  contributions: Map<number, Contribution>;
  gather: GatherParts | null;
}

interface Audit {
  round: number;
  shard: number;
  sub: Subscription;
  attempts: Map<number, EpochAttempt>;
  /** The subscription was on the server before any owner could accept this round (see LEAD). */
  armed: boolean;
  done: boolean;
}

export class OwnerAuditor {
  private readonly codec: Codec;
  private readonly audits = new Map<string, Audit>();
  private readonly gatherCodecs = new Map<string, Codec | null>();
  private readonly normScratch: NormScratch = { values: new Float32Array(0) };
  private frontier = -1;
  private closed = false;
  /** Milliseconds spent in audit work, and earned by the CPU share (`allowance`). */
  private spent = 0;
  private earned = 0;
  private lastEarn = performance.now();
  private readonly log;
  readonly stats = { ok: 0, violations: 0, unverifiable: 0 };

  constructor(private readonly opts: OwnerAuditOptions) {
    if (!(opts.clipNormRatio >= 1 && Number.isFinite(opts.clipNormRatio))) throw new RangeError(`clipNormRatio must be a finite number ≥ 1, not ${opts.clipNormRatio}`);
    this.codec = createCodec(opts.codec);
    this.log = logger.child({ jobId: opts.jobId, component: 'owner-audit' });
  }

  /** Every validated gather chunk the keeper's observer accepts (GatherObserverOptions.onGather). */
  observe(h: ChunkHeader, payload: Uint8Array): void {
    if (this.closed) return;
    const t0 = performance.now();
    try {
      this.onGather(h, payload);
    } finally {
      this.spent += performance.now() - t0;
    }
  }

  /** Milliseconds of audit work that the CPU share still allows now (earned over time, at most a second's worth). */
  private allowance(): number {
    const now = performance.now();
    const share = this.opts.cpuShare ?? 0.1;
    this.earned = Math.min(this.spent + 1000 * share, this.earned + (now - this.lastEarn) * share);
    this.lastEarn = now;
    return this.earned - this.spent;
  }

  private onGather(h: ChunkHeader, payload: Uint8Array): void {
    if (h.round > this.frontier) this.advance(h.round, h.shardCount, this.allowance() > 0 ? this.shardsFor(h) : 0);
    const a = this.audits.get(key(h.round, h.shard));
    if (!a || a.done || h.kind !== ChunkKinds.gather) return;
    const at = this.attempt(a, h.epoch);
    const g = (at.gather ??= {
      owner: h.senderId,
      ownerIndex: h.senderIndex,
      shardLength: h.shardLength,
      chunkCount: h.chunkCount,
      contributors: h.contributors,
      contributorSamples: h.contributorSamples,
      samples: h.samples,
      chunks: new Array(h.chunkCount),
      count: 0,
    });
    if (g.chunks[h.chunk] || h.chunk >= g.chunkCount || g.owner !== h.senderId) return;
    g.chunks[h.chunk] = { codec: h.codec, param: h.codecParam, offset: h.offset, length: h.length, payload };
    if (++g.count === g.chunkCount) this.tryVerify(a, h.epoch);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.audits.values()) this.drop(a);
    this.audits.clear();
  }

  /** How many shards a round audits, for a layout like this gather's. */
  private shardsFor(h: ChunkHeader): number {
    const n = this.opts.shardsPerRound ?? 'auto';
    if (n !== 'auto') return Math.min(n, h.shardCount);
    const members = this.opts.rosterOf(h.epoch)?.members.length ?? h.contributors.length;
    const perShard = Math.max(1, members) * Math.ceil(h.totalSize / h.shardCount) * 4;
    return Math.max(1, Math.min(h.shardCount, Math.floor((this.opts.bytesPerRound ?? 8 * 1024 * 1024) / perShard)));
  }

  /** Round `round` is under way: audit `count` shards of a round ahead, forget old ones. */
  private advance(round: number, shardCount: number, count: number): void {
    // Rounds up to frontier + LEAD are watched already.
    const from = this.frontier < 0 ? round + LEAD : Math.max(round + LEAD, this.frontier + LEAD + 1);
    this.frontier = round;
    for (let r = from; r <= round + LEAD; r++) {
      if (count <= 0) continue;
      for (const shard of this.opts.pick?.(r, shardCount, count) ?? pickShards(shardCount, count)) this.watch(r, shard);
    }
    for (const a of this.audits.values()) {
      if (a.round >= round - KEEP_ROUNDS) continue;
      for (const [epoch, at] of a.attempts) {
        if (!a.done && at.gather && at.gather.count === at.gather.chunkCount) this.report(a, epoch, { verdict: 'unverifiable', reason: 'the round moved on before every listed contribution arrived' });
      }
      this.drop(a);
    }
  }

  private watch(round: number, shard: number): void {
    const k = key(round, shard);
    if (this.audits.has(k)) return;
    const audit: Audit = { round, shard, attempts: new Map(), armed: false, done: false, sub: null as unknown as Subscription };
    audit.sub = this.opts.nc.subscribe(subjects.reduceAttempts(this.opts.jobId, round, shard), {
      callback: (err, msg) => {
        if (err) return this.log.warn({ err: err.message, round, shard }, 'audit subscription failed');
        try {
          this.onReduce(audit, msg);
        } catch (e) {
          this.log.error({ err: e, round, shard }, 'audit handler failed');
        }
      },
    });
    this.audits.set(k, audit);
    this.opts.nc.flush().then(
      () => {
        if (audit.done) return;
        if (this.frontier >= round - OWNER_WINDOW - 1) return this.drop(audit);
        audit.armed = true;
      },
      () => this.drop(audit),
    );
  }

  private drop(a: Audit): void {
    a.done = true;
    a.sub.unsubscribe();
    this.audits.delete(key(a.round, a.shard));
  }

  private attempt(a: Audit, epoch: number): EpochAttempt {
    let at = a.attempts.get(epoch);
    if (!at) a.attempts.set(epoch, (at = { contributions: new Map(), gather: null }));
    return at;
  }

  /** A reduce message of an audited shard: kept as the owner must have received it. */
  private onReduce(a: Audit, msg: Msg): void {
    const t0 = performance.now();
    try {
      this.keepReduce(a, msg);
    } finally {
      this.spent += performance.now() - t0;
    }
  }

  private keepReduce(a: Audit, msg: Msg): void {
    if (a.done) return;
    let h: ChunkHeader;
    let payload: Uint8Array;
    try {
      ({ header: h, payload } = decodeChunk(msg.data));
    } catch {
      return; // the owner rejects (and reports) it too
    }
    if (h.kind !== ChunkKinds.reduce || h.jobId !== this.opts.jobId || h.round !== a.round || h.shard !== a.shard) return;
    if (senderOf(msg.subject, subjects.reduceHead(this.opts.jobId, h.epoch, h.round, h.shard)) !== h.senderId) return;
    if (this.opts.rosterOf(h.epoch)?.members[h.senderIndex] !== h.senderId) return;
    if (h.codec !== this.codec.id || h.codecParam !== this.codec.param || h.chunk >= h.chunkCount) return;
    const at = this.attempt(a, h.epoch);
    let c = at.contributions.get(h.senderIndex);
    if (!c) {
      c = { samples: h.samples, chunkCount: h.chunkCount, chunks: new Array(h.chunkCount), offsets: [], lengths: [], count: 0, conflict: false, late: false };
      at.contributions.set(h.senderIndex, c);
    }
    const seen = c.chunks[h.chunk];
    if (seen) {
      if (!sameBytes(seen, payload)) c.conflict = true;
      return;
    }
    if (c.samples !== h.samples || c.chunkCount !== h.chunkCount || this.codec.validate(payload, h.length) !== null) {
      c.conflict = true;
      return;
    }
    if (at.gather) c.late = true;
    c.chunks[h.chunk] = aligned(payload);
    c.offsets[h.chunk] = h.offset;
    c.lengths[h.chunk] = h.length;
    c.count++;
  }

  /**
   * Verifies once the gather is complete. Every contribution it lists reached the owner before
   * the gather left it, so (one server delivering in order) it reached us before the gather too:
   * one that did not, or arrived late, is not judged (a contributor that sends the owner other
   * bytes than it lets us see must not get an honest owner blamed).
   */
  private tryVerify(a: Audit, epoch: number): void {
    const at = a.attempts.get(epoch);
    const g = at?.gather;
    if (a.done || !at || !g || g.count !== g.chunkCount) return;
    const roster = this.opts.rosterOf(epoch);
    let result: Omit<AuditResult, 'epoch' | 'round' | 'shard' | 'owner'>;
    const unclean = g.contributors.filter((j) => {
      if (j === g.ownerIndex) return false;
      const c = at.contributions.get(j);
      return !c || c.count !== c.chunkCount || c.late;
    });
    if (!a.armed) {
      result = { verdict: 'unverifiable', reason: 'the watch was not confirmed in time' };
    } else if (!roster || a.round < roster.startRound + OWNER_WINDOW + 1) {
      // Before its first round of an epoch an owner buffers up to OWNER_WINDOW rounds past it,
      // maybe from before our watch: the first rounds of an epoch are not judged.
      result = { verdict: 'unverifiable', reason: 'one of the first rounds of its epoch' };
    } else if (unclean.length > 0) {
      result = { verdict: 'unverifiable', reason: `no complete contribution before the gather from roster index ${unclean.join(', ')}` };
    } else {
      try {
        result = this.verify(at.contributions, g);
      } catch (err) {
        result = { verdict: 'unverifiable', reason: `audit failed: ${(err as Error).message}` };
      }
    }
    this.report(a, epoch, result);
    this.drop(a);
  }

  private report(a: Audit, epoch: number, r: Omit<AuditResult, 'epoch' | 'round' | 'shard' | 'owner'>): void {
    const g = a.attempts.get(epoch)?.gather;
    const result: AuditResult = { ...r, epoch, round: a.round, shard: a.shard, owner: g?.owner ?? '?' };
    if (result.verdict === 'ok') this.stats.ok++;
    else if (result.verdict === 'violation') this.stats.violations++;
    else this.stats.unverifiable++;
    if (result.verdict === 'violation') this.log.warn(result, 'owner audit failed');
    else this.log.debug(result, 'owner audited');
    try {
      this.opts.onResult(result);
    } catch (err) {
      this.log.error({ err }, 'onResult threw');
    }
  }

  /** The check itself (see the class comment). */
  private verify(contributions: Map<number, Contribution>, g: GatherParts): Omit<AuditResult, 'epoch' | 'round' | 'shard' | 'owner'> {
    const L = g.shardLength;
    const o = g.ownerIndex;
    const total = g.samples;
    const at = g.contributors.indexOf(o);
    const nOwner = at >= 0 ? g.contributorSamples[at] : 0;
    // The gathered mean, and a bound on its distance from the owner's exact float32 mean.
    const mean = new Float32Array(L);
    let err2 = 0;
    let covered = 0;
    for (const c of g.chunks) {
      if (!c) return { verdict: 'unverifiable', reason: 'incomplete gather' };
      const part = mean.subarray(c.offset, c.offset + c.length);
      if (c.codec === CodecIds.sparse32) Sparse32Codec.decode(aligned(c.payload), c.length, mean, c.offset);
      else {
        const k = `${c.codec}:${c.param}`;
        if (!this.gatherCodecs.has(k)) this.gatherCodecs.set(k, codecFromWire(c.codec, c.param));
        const codec = this.gatherCodecs.get(k);
        if (!codec) return { verdict: 'unverifiable', reason: `unknown gather codec ${k}` };
        codec.decode(aligned(c.payload), c.length, mean, c.offset);
      }
      err2 += decodeError(c.codec, c.param, c.payload, c.length, part) ** 2;
      covered += c.length;
    }
    if (covered !== L) return { verdict: 'unverifiable', reason: 'gather chunks do not cover the shard' };
    // The other contributions, decoded as the owner summed them, and their norms as it took them.
    const others: { j: number; samples: number; x: Float32Array; norm: number }[] = [];
    for (let i = 0; i < g.contributors.length; i++) {
      const j = g.contributors[i];
      if (j === o) continue;
      const c = contributions.get(j)!;
      if (c.conflict) return { verdict: 'unverifiable', reason: `roster index ${j} sent chunks that disagree` };
      if (c.samples !== g.contributorSamples[i]) {
        return { verdict: 'violation', reason: `the gather lists ${g.contributorSamples[i]} samples for roster index ${j}, whose chunks carry ${c.samples}` };
      }
      const x = new Float32Array(L);
      let off = 0;
      for (let k = 0; k < c.chunkCount; k++) {
        if (c.offsets[k] !== off || off + c.lengths[k] > L) return { verdict: 'unverifiable', reason: `roster index ${j}'s chunks do not tile the shard` };
        this.codec.decode(c.chunks[k]!, c.lengths[k], x, off);
        off += c.lengths[k];
      }
      if (off !== L) return { verdict: 'unverifiable', reason: `roster index ${j}'s chunks do not tile the shard` };
      const norm = c.samples > 0 ? contributionNorm(this.codec, c.chunks.map((p, k) => ({ payload: p!, length: c.lengths[k] })), this.normScratch) : -1;
      others.push({ j, samples: c.samples, x, norm });
    }
    return judgeGather({ mean, meanError: Math.sqrt(err2), total, ownerSamples: nOwner, others, clipNormRatio: this.opts.clipNormRatio });
  }
}

/** A gather to judge: what `OwnerAuditor` decoded, or (tests) any owner's arithmetic. */
export interface GatherToJudge {
  /** The gathered mean as decoded. */
  mean: Float32Array;
  /** A bound on ‖decoded mean − the owner's exact float32 mean‖ (`decodeError`). */
  meanError: number;
  /** Σ samples the gather lists, and the owner's own share of them. */
  total: number;
  ownerSamples: number;
  /** Every other contribution the gather lists, decoded, with its norm (−1: no samples). */
  others: readonly { samples: number; x: Float32Array; norm: number }[];
  clipNormRatio: number;
}

/**
 * The audit's check (see `OwnerAuditor`): is `mean` a clipped mean of `others` and one more
 * contribution of `ownerSamples` samples, clipped like any? 'ok', or 'violation' with the proof.
 */
export function judgeGather(input: GatherToJudge): Omit<AuditResult, 'epoch' | 'round' | 'shard' | 'owner'> {
  const { mean, meanError: errNorm, total, ownerSamples: nOwner, others, clipNormRatio } = input;
  const L = mean.length;
  let meanNorm2 = 0;
  for (let i = 0; i < L; i++) meanNorm2 += mean[i] * mean[i];
  let residual: Float64Array | null = null;
  // The residual n_owner·y when the owner scaled to `bound` (null: nobody was scaled), and the
  // most an honest owner's reaches: n_owner·cap, cap = the bound (its own norm is unknown).
  const evaluate = (bound: number | null, cap: number): Candidate => {
    residual ??= new Float64Array(L);
    for (let i = 0; i < L; i++) residual[i] = mean[i] * total;
    let scale = total * Math.sqrt(meanNorm2);
    for (const x of others) {
      const w = x.samples * (bound !== null && x.norm > bound ? bound / x.norm : 1);
      if (w === 0) continue;
      const v = x.x;
      for (let i = 0; i < L; i++) residual[i] -= w * v[i];
      scale += w * Math.max(x.norm, 0);
    }
    let r2 = 0;
    for (let i = 0; i < L; i++) r2 += residual[i] * residual[i];
    const tolerance = 2 * total * errNorm + 1e-9 * scale + 1e-30;
    return { bound: bound ?? 0, residual: Math.sqrt(r2), allowed: nOwner * cap * (1 + SLACK) + tolerance };
  };
  const candidates: Candidate[] = [];
  const sorted = others
    .filter((x) => x.norm >= 0)
    .map((x) => x.norm)
    .sort((a, b) => a - b);
  if (nOwner === 0) {
    // The owner brought no samples: its norm is not in the median, and y must be 0.
    const bound = clipBound(sorted, clipNormRatio);
    candidates.push(evaluate(bound, 0));
  } else {
    // The owner's own norm ν is unknown, and the bound is ratio × the lower median of the
    // others' norms and ν. With the others' sorted b₀ ≤ … ≤ b_{m−1} and k = ⌊m/2⌋ that median
    // is b_{k−1} for ν ≤ b_{k−1}, ν between b_{k−1} and b_k, and b_k above: every bound in
    // ratio·[b_{k−1}, b_k] (b_{−1} = 0) is one an honest owner may have used. An owner with
    // ν = 0 when b_{k−1} = 0 scaled nobody, and y = 0.
    const m = sorted.length;
    if (m === 0) return { verdict: 'unverifiable', reason: 'no norm bound: fewer than two contributions with samples, or a zero median' };
    const k = Math.floor(m / 2);
    const lo = k === 0 ? 0 : sorted[k - 1];
    const hi = sorted[k];
    // A zero median for any ν > 0: the owner scaled nobody, itself included, so y is unbounded.
    if (!(hi > 0)) return { verdict: 'unverifiable', reason: 'no norm bound: a zero median' };
    const ratio = clipNormRatio;
    if (lo === 0) candidates.push(evaluate(null, 0));
    candidates.push(bestBound({ others, mean, total, meanNorm: Math.sqrt(meanNorm2), errNorm, nOwner }, ratio * lo, ratio * hi));
  }
  const best = candidates.reduce((a, b) => (b.residual - b.allowed < a.residual - a.allowed ? b : a));
  if (best.residual <= best.allowed) return { verdict: 'ok', reason: 'the gather is a clipped mean of what it lists', residual: best.residual, allowed: best.allowed };
  return {
    verdict: 'violation',
    reason:
      nOwner > 0
        ? `the owner's implied contribution has norm ${fmt(best.residual / nOwner)}, over the bound ${fmt(best.bound)} (allowed with codec error and slack: ${fmt(best.allowed / nOwner)})`
        : `the gathered mean is ${fmt(best.residual / total)} away from the mean of what it lists (allowed: ${fmt(best.allowed / total)})`,
    residual: best.residual,
    allowed: best.allowed,
  };
}

/**
 * The bound B in [bLo, bHi] that makes the owner look most honest: the least
 * ‖R(B)‖ − c·B, R(B) = Σn·mean − Σ_{others} n_j·min(1, B/‖x_j‖)·x_j. Between two of the
 * others' norms R is linear in B (R = U − B·W: U the unscaled ones, W the scaled ones over
 * their norms), so ‖R‖ − c·B is convex there: a golden-section search on the quadratic form
 * finds each segment's least, then ‖U − B·W‖ is summed directly at it. Contributions scaled
 * for every B (norm ≥ bHi, as an attacker's) only ever enter W, so no huge term is added to U
 * and taken out again.
 */
function bestBound(g: { others: readonly { samples: number; x: Float32Array; norm: number }[]; mean: Float32Array; total: number; meanNorm: number; errNorm: number; nOwner: number }, bLo: number, bHi: number): Candidate {
  const { others, mean, total, nOwner } = g;
  const L = mean.length;
  const c = nOwner * (1 + SLACK);
  const weighed = others.filter((x) => x.samples > 0 && x.norm >= 0).sort((a, b) => b.norm - a.norm);
  const points = [bHi, ...new Set(weighed.map((x) => x.norm).filter((n) => n > bLo && n < bHi)), bLo];
  const U = new Float64Array(L);
  const W = new Float64Array(L);
  for (let i = 0; i < L; i++) U[i] = total * mean[i];
  let next = 0;
  for (; next < weighed.length && weighed[next].norm >= bHi; next++) {
    const { samples, x, norm } = weighed[next];
    const f = samples / norm;
    for (let i = 0; i < L; i++) W[i] += f * x[i];
  }
  for (let k = next; k < weighed.length; k++) {
    const { samples, x } = weighed[k];
    for (let i = 0; i < L; i++) U[i] -= samples * x[i];
  }
  let best: Candidate | null = null;
  for (let s = 0; s + 1 < points.length; s++) {
    const high = points[s];
    const low = points[s + 1];
    // Below `high`, those with that norm are scaled too (norms below bHi: moderate terms).
    for (; next < weighed.length && weighed[next].norm >= high; next++) {
      const { samples, x, norm } = weighed[next];
      const f = samples / norm;
      for (let i = 0; i < L; i++) {
        U[i] += samples * x[i];
        W[i] += f * x[i];
      }
    }
    let d = 0;
    let b = 0;
    let a = 0;
    for (let i = 0; i < L; i++) {
      d += U[i] * U[i];
      b += U[i] * W[i];
      a += W[i] * W[i];
    }
    const f = (B: number) => Math.sqrt(Math.max(0, d - 2 * b * B + a * B * B)) - c * B;
    let [x0, x1] = [low, high];
    const phi = (Math.sqrt(5) - 1) / 2;
    let p = x1 - phi * (x1 - x0);
    let q = x0 + phi * (x1 - x0);
    let fp = f(p);
    let fq = f(q);
    for (let it = 0; it < 80 && x1 - x0 > 1e-15 * high; it++) {
      if (fp <= fq) {
        x1 = q;
        q = p;
        fq = fp;
        p = x1 - phi * (x1 - x0);
        fp = f(p);
      } else {
        x0 = p;
        p = q;
        fp = fq;
        q = x0 + phi * (x1 - x0);
        fq = f(q);
      }
    }
    const B = [low, high, (x0 + x1) / 2].reduce((u, v) => (f(v) < f(u) ? v : u));
    let r2 = 0;
    for (let i = 0; i < L; i++) {
      const r = U[i] - B * W[i];
      r2 += r * r;
    }
    let scale = total * g.meanNorm;
    for (const x of weighed) scale += x.samples * Math.min(x.norm, B);
    const e: Candidate = { bound: B, residual: Math.sqrt(r2), allowed: c * B + 2 * total * g.errNorm + 1e-9 * scale + 1e-30 };
    if (!best || e.residual - e.allowed < best.residual - best.allowed) best = e;
  }
  return best!;
}

interface Candidate {
  bound: number;
  residual: number;
  allowed: number;
}


/**
 * An upper bound on ‖decoded − exact float32 mean‖₂ over one gather chunk, from each codec's
 * documented error bound (codecs/*.codec.ts), doubled where rounding could add to it.
 */
export function decodeError(codec: number, param: number, payload: Uint8Array, length: number, decoded: Float32Array): number {
  let n2 = 0;
  for (let i = 0; i < decoded.length; i++) n2 += decoded[i] * decoded[i];
  const norm = Math.sqrt(n2);
  const f32 = 2 ** -24 * norm;
  switch (codec) {
    case CodecIds.fp32:
    case CodecIds.sparse32:
      return f32;
    case CodecIds.fp16:
      // Half an ulp: 2⁻¹¹ relative for normal halves, 2⁻²⁵ absolute below them.
      return 2 ** -11 * norm + 2 ** -25 * Math.sqrt(length) + f32;
    case CodecIds.bf16:
      return 2 ** -8 * norm + 1e-38 * Math.sqrt(length) + f32;
    case CodecIds.int8: {
      // Half a step (scale/2) per element, plus float32 rounding of scale and product
      // (relative 2⁻²³ of absmax = 127·scale).
      const B = param;
      const nb = Math.ceil(length / B);
      const scales = f32View(payload, 0, nb);
      let e2 = 0;
      for (let b = 0; b < nb; b++) {
        const len = Math.min(B, length - b * B);
        const e = scales[b] * (0.5 + 127 * 2 ** -22);
        e2 += len * e * e;
      }
      return Math.sqrt(e2) + f32;
    }
    default:
      return Infinity;
  }
}

/** `count` distinct shards of `shardCount`, uniformly at random from a CSPRNG (owners must not guess). */
function pickShards(shardCount: number, count: number): number[] {
  const picked = new Set<number>();
  while (picked.size < count) picked.add(randomInt(shardCount));
  return [...picked];
}

function key(round: number, shard: number): string {
  return `${round}.${shard}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/** A copy of a payload not 4-byte aligned (typed views need it); see round-exchange.ts. */
function aligned(payload: Uint8Array): Uint8Array {
  if ((payload.byteOffset & 3) === 0) return payload;
  const copy = new Uint8Array(payload.byteLength);
  copy.set(payload);
  return copy;
}

function fmt(x: number): string {
  return x.toPrecision(4);
}
