/**
 * A job member in its own process, driven over IPC by exchange tests and the benchmark:
 * `fork(dist/testing/member-process.js)`, send `init`, then `round` commands; replies with
 * results. Fault modes make it misbehave the way volunteers do.
 */
import { subjects } from '@gradpool/protocol';
import { connect, type NatsConnection } from 'nats';
import { createCodec } from '../codecs/index.js';
import type { CodecSpec } from '../codecs/codec.js';
import { allocateChunk, ChunkKinds, senderIdentity } from '../header.js';
import { ShardLayout } from '../layout.js';
import { RoundExchange } from '../round-exchange.js';
import { gradient } from './fixtures.js';

export interface MemberInit {
  type: 'init';
  natsUrl: string;
  jobId: string;
  size: number;
  members: string[];
  selfId: string;
  epoch: number;
  codec: CodecSpec;
  deadlineMs: number;
  gatherTimeoutMs?: number;
  shards?: number;
  quorum?: number;
  chunkBytes?: number;
  /** Robust aggregation as an owner (RoundExchangeOptions.clipNormRatio). */
  clipNormRatio?: number;
  seed: number;
}

export type Fault = 'die-mid-round' | 'evil' | 'hold' | 'impersonate';

export interface RoundCommand {
  type: 'round';
  round: number;
  samples: number;
  /** Gradient of this round: gradient(seed, gradMember ?? index, gradRound ?? round, size). */
  gradRound?: number;
  /** Sends its gradient times this (a member sending a huge but finite gradient). */
  gradScale?: number;
  roster?: { epoch: number; members: string[] };
  fault?: Fault;
  /** Return the mean itself (base64) rather than only its hash. */
  returnMean?: boolean;
  /** Skip hashing the mean (benchmark: large P). */
  noHash?: boolean;
  /** Run the round `repeat` times (rounds round, round+1, …) and report each (benchmark). */
  repeat?: number;
}

export interface RoundReply {
  type: 'result';
  ok: boolean;
  round: number;
  error?: { name: string; message: string; owners?: string[] };
  mean?: string;
  meanHash?: string;
  contributors?: string[];
  totalSamples?: number;
  shards?: { shard: number; contributors: number[]; totalSamples: number }[];
  bytesSent?: number;
  bytesReceived?: number;
  totalMs?: number;
  /** Wall-clock (ms since the epoch, sub-ms) when allReduce was called and when it resolved. */
  startedAt?: number;
  endedAt?: number;
  /** CPU time (user + system, ms) this member process used during allReduce (benchmark). */
  cpuMs?: number;
  geometry?: { shards: number; reduceChunkElems: number; gatherChunkElems: number; quorum: number };
  rejects?: { sender: string; reason: string }[];
  stats?: RoundExchange['stats'];
}

let nc: NatsConnection;
let ex: RoundExchange;
let init: MemberInit;
let release: (() => void) | null = null;
let cached: { index: number; round: number; grad: Float32Array } | null = null;
const rejects: { sender: string; reason: string }[] = [];

function send(m: unknown): void {
  process.send!(m);
}

async function hash(bytes: Uint8Array): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(bytes).digest('hex');
}

/** Publishes the first half of this member's chunks for the first shard another member owns, then dies. */
async function dieMidRound(cmd: RoundCommand, grad: Float32Array): Promise<never> {
  const { layout, geometry } = ex;
  const members = ex.roster.members;
  const self = members.indexOf(init.selfId);
  const codec = createCodec(init.codec);
  const s = [...Array(layout.shards).keys()].find((x) => ShardLayout.owner(x, members.length) !== self)!;
  const len = layout.length(s);
  const ce = geometry.reduceChunkElems;
  const chunkCount = Math.ceil(len / ce);
  const id = senderIdentity(init.jobId, init.selfId);
  for (let c = 0; c < Math.max(1, Math.floor(chunkCount / 2)); c++) {
    const offset = c * ce;
    const length = Math.min(ce, len - offset);
    const { message, payload } = allocateChunk(
      { kind: ChunkKinds.reduce, codec: codec.id, epoch: ex.roster.epoch, round: cmd.round, shard: s, chunk: c, chunkCount, offset, length, samples: cmd.samples, shardLength: len, codecParam: codec.param, payloadBytes: codec.payloadBytes(length), senderIndex: self, shardStart: layout.start(s), shardCount: layout.shards, totalSize: init.size, contributors: [], contributorSamples: [] },
      id,
    );
    const start = layout.start(s) + offset;
    codec.encode(grad.subarray(start, start + length), payload);
    nc.publish(subjects.reduce(init.jobId, ex.roster.epoch, cmd.round, s, init.selfId), message);
  }
  await nc.flush();
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

/** Before its honest round, sends garbage, a NaN chunk, a wrong-sized chunk and another job's chunk to member 0's first shard. */
async function misbehave(cmd: RoundCommand, grad: Float32Array): Promise<void> {
  const { layout, geometry } = ex;
  const members = ex.roster.members;
  const self = members.indexOf(init.selfId);
  const codec = createCodec(init.codec);
  const s = 0;
  const subject = subjects.reduce(init.jobId, ex.roster.epoch, cmd.round, s, init.selfId);
  const len = layout.length(s);
  const ce = geometry.reduceChunkElems;
  const chunkCount = Math.ceil(len / ce);
  const base = { kind: ChunkKinds.reduce, codec: codec.id, epoch: ex.roster.epoch, round: cmd.round, shard: s, chunk: 0, chunkCount, offset: 0, samples: cmd.samples, shardLength: len, codecParam: codec.param, senderIndex: self, shardStart: 0, shardCount: layout.shards, totalSize: init.size, contributors: [], contributorSamples: [] };
  const length = Math.min(ce, len);
  // 1. garbage bytes
  nc.publish(subject, new Uint8Array(300).map((_, i) => (i * 37) & 0xff));
  // 2. a chunk for another job
  const other = allocateChunk({ ...base, length, payloadBytes: codec.payloadBytes(length) }, senderIdentity('another-job', init.selfId));
  codec.encode(new Float32Array(length).fill(1e6), other.payload);
  nc.publish(subject, other.message);
  // 3. a wrong-sized chunk (claims one element fewer)
  const short = allocateChunk({ ...base, length: length - 1, payloadBytes: codec.payloadBytes(length - 1) }, senderIdentity(init.jobId, init.selfId));
  nc.publish(subject, short.message);
  // 4. a NaN chunk: fp32 payload full of NaN (the owner then excludes this sender from shard 0)
  if (codec.id === 1) {
    const nan = allocateChunk({ ...base, length, payloadBytes: codec.payloadBytes(length) }, senderIdentity(init.jobId, init.selfId));
    new Float32Array(nan.payload.buffer, nan.payload.byteOffset, length).fill(NaN);
    nc.publish(subject, nan.message);
  }
  // 5. the same valid chunk twice (shard 1, owned by member 1), before the honest round sends it again.
  if (layout.shards > 1 && ShardLayout.owner(1, members.length) !== self) {
    const len1 = layout.length(1);
    const n1 = Math.min(ce, len1);
    const dup = allocateChunk({ ...base, shard: 1, chunkCount: Math.ceil(len1 / ce), length: n1, shardLength: len1, shardStart: layout.start(1), payloadBytes: codec.payloadBytes(n1) }, senderIdentity(init.jobId, init.selfId));
    codec.encode(grad.subarray(layout.start(1), layout.start(1) + n1), dup.payload);
    const subject1 = subjects.reduce(init.jobId, ex.roster.epoch, cmd.round, 1, init.selfId);
    nc.publish(subject1, dup.message);
    nc.publish(subject1, dup.message);
  }
  await nc.flush();
}

/**
 * Before its honest round, impersonates member 1 on the subjects its own NATS permissions allow
 * (sender token = its own id): a reduce chunk of shard 0 and a gather of shard 1 (member 1's) whose
 * headers name member 1, all 1e6 (they would corrupt the mean if counted).
 */
async function impersonate(cmd: RoundCommand): Promise<void> {
  const { layout, geometry } = ex;
  const members = ex.roster.members;
  const victim = 1;
  const codec = createCodec(init.codec);
  const id = senderIdentity(init.jobId, members[victim]);
  const common = { codec: codec.id, epoch: ex.roster.epoch, round: cmd.round, chunk: 0, offset: 0, codecParam: codec.param, senderIndex: victim, shardCount: layout.shards, totalSize: init.size };
  const len0 = layout.length(0);
  const n0 = Math.min(geometry.reduceChunkElems, len0);
  const reduce = allocateChunk(
    { ...common, kind: ChunkKinds.reduce, shard: 0, chunkCount: Math.ceil(len0 / geometry.reduceChunkElems), length: n0, samples: cmd.samples, shardLength: len0, payloadBytes: codec.payloadBytes(n0), shardStart: layout.start(0), contributors: [], contributorSamples: [] },
    id,
  );
  codec.encode(new Float32Array(n0).fill(1e6), reduce.payload);
  nc.publish(subjects.reduce(init.jobId, ex.roster.epoch, cmd.round, 0, init.selfId), reduce.message);
  const len1 = layout.length(1);
  const n1 = Math.min(geometry.gatherChunkElems, len1);
  const all = members.map((_, i) => i);
  const gather = allocateChunk(
    {
      ...common,
      kind: ChunkKinds.gather,
      shard: 1,
      chunkCount: Math.ceil(len1 / geometry.gatherChunkElems),
      length: n1,
      samples: cmd.samples * members.length,
      shardLength: len1,
      payloadBytes: codec.payloadBytes(n1),
      shardStart: layout.start(1),
      contributors: all,
      contributorSamples: all.map(() => cmd.samples),
    },
    id,
  );
  codec.encode(new Float32Array(n1).fill(1e6), gather.payload);
  nc.publish(subjects.gather(init.jobId, ex.roster.epoch, cmd.round, 1, init.selfId), gather.message);
  await nc.flush();
}

async function runRound(cmd: RoundCommand, round: number): Promise<RoundReply> {
  const index = (cmd.roster?.members ?? ex.roster.members).indexOf(init.selfId);
  const gradRound = cmd.gradRound ?? round;
  if (!cached || cached.index !== index || cached.round !== gradRound) cached = { index, round: gradRound, grad: gradient(init.seed, index, gradRound, init.size) };
  const grad = cmd.gradScale === undefined ? cached.grad : cached.grad.map((x) => x * cmd.gradScale!);
  if (cmd.roster) ex.setRoster({ ...cmd.roster, selfId: init.selfId });
  if (cmd.fault === 'die-mid-round') await dieMidRound({ ...cmd, round }, grad);
  if (cmd.fault === 'evil') await misbehave({ ...cmd, round }, grad);
  if (cmd.fault === 'impersonate') await impersonate({ ...cmd, round });
  if (cmd.fault === 'hold') await new Promise<void>((r) => (release = r));
  const startedAt = performance.timeOrigin + performance.now();
  const cpu0 = process.cpuUsage();
  try {
    const r = await ex.allReduce(round, grad, cmd.samples, { onPhase: (phase) => send({ type: 'phase', phase, round }) });
    const endedAt = performance.timeOrigin + performance.now();
    const cpu = process.cpuUsage(cpu0);
    const bytes = new Uint8Array(r.mean.buffer, r.mean.byteOffset, r.mean.byteLength);
    const mean = cmd.returnMean ? Buffer.from(bytes).toString('base64') : undefined;
    const meanHash = cmd.noHash ? undefined : await hash(bytes);
    // Done with it: the next round writes its mean here (as the training runner does). Poisoned
    // first (not in the benchmark): a later round that left any element unwritten fails the tests.
    if (!cmd.noHash) r.mean.fill(Number.NaN);
    ex.recycle(r.mean);
    return {
      type: 'result',
      ok: true,
      round,
      mean,
      meanHash,
      startedAt,
      endedAt,
      cpuMs: (cpu.user + cpu.system) / 1000,
      contributors: r.contributors,
      totalSamples: r.totalSamples,
      shards: r.shards.map(({ shard, contributors, totalSamples }) => ({ shard, contributors, totalSamples })),
      bytesSent: r.bytesSent,
      bytesReceived: r.bytesReceived,
      totalMs: r.timings.totalMs,
      geometry: ex.geometry,
      rejects: rejects.splice(0),
      stats: { ...ex.stats },
    };
  } catch (err) {
    const e = err as Error & { owners?: string[] };
    return { type: 'result', ok: false, round, error: { name: e.name, message: e.message, owners: e.owners }, geometry: ex.geometry, rejects: rejects.splice(0), stats: { ...ex.stats } };
  }
}

// The parent (a test or the benchmark) went away: never outlive it.
process.on('disconnect', () => process.exit(0));

process.on('message', (m: MemberInit | RoundCommand | { type: 'go' } | { type: 'exit' }) => {
  void (async () => {
    if (m.type === 'init') {
      init = m;
      nc = await connect({ servers: m.natsUrl, noEcho: true, maxReconnectAttempts: -1, reconnectTimeWait: 100, name: m.selfId });
      ex = new RoundExchange({
        nc,
        jobId: m.jobId,
        size: m.size,
        roster: { epoch: m.epoch, members: m.members, selfId: m.selfId },
        codec: m.codec,
        deadlineMs: m.deadlineMs,
        gatherTimeoutMs: m.gatherTimeoutMs,
        shards: m.shards,
        quorum: m.quorum,
        chunkBytes: m.chunkBytes,
        clipNormRatio: m.clipNormRatio,
        onReject: (sender, reason) => rejects.push({ sender, reason }),
      });
      await nc.flush();
      send({ type: 'ready', geometry: ex.geometry });
    } else if (m.type === 'round') {
      for (let i = 0; i < (m.repeat ?? 1); i++) send(await runRound(m, m.round + i));
    } else if (m.type === 'go') {
      release?.();
    } else if (m.type === 'exit') {
      await ex.close();
      await nc.close();
      process.exit(0);
    }
  })().catch((err) => {
    process.stderr.write(`member ${init?.selfId}: ${(err as Error).stack}\n`);
    process.exit(1);
  });
});
