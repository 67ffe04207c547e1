/**
 * The chunk header: a fixed little-endian binary layout documented in
 * protos/gradpool/v1/exchange.proto (`ChunkHeader`), followed by the payload at an 8-aligned
 * offset. Encoding writes header and payload into one buffer, so publishing a chunk is one
 * allocation and no copy of the tensor beyond the codec's own write.
 */
export const HEADER_MAGIC = 0x31585047;
export const FIXED_HEADER_BYTES = 80;
/** Per contributor: u32 roster index, f64 samples. */
export const CONTRIBUTOR_BYTES = 12;
export const ChunkKinds = { reduce: 1, gather: 2, abort: 3 } as const;
export type ChunkKind = (typeof ChunkKinds)[keyof typeof ChunkKinds];

export interface ChunkHeader {
  kind: ChunkKind;
  codec: number;
  epoch: number;
  round: number;
  shard: number;
  chunk: number;
  chunkCount: number;
  offset: number;
  length: number;
  samples: number;
  shardLength: number;
  codecParam: number;
  payloadBytes: number;
  senderIndex: number;
  jobId: string;
  senderId: string;
  /** First element of the shard in the flat vector. */
  shardStart: number;
  /** Shards of the epoch's layout, and the flat vector's size (an observer assembles from these). */
  shardCount: number;
  totalSize: number;
  /** Gather only: contributing roster indices, ascending. */
  contributors: number[];
  /** Gather only: each contributor's n, same order. */
  contributorSamples: number[];
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder('utf-8', { fatal: true });

export class HeaderError extends Error {
  override name = 'HeaderError';
}

/** Bytes of the header (fixed part, strings, contributors, padding) for these variable parts. */
export function headerBytes(jobIdBytes: number, senderIdBytes: number, contributors: number): number {
  return Math.ceil((FIXED_HEADER_BYTES + jobIdBytes + senderIdBytes + contributors * CONTRIBUTOR_BYTES) / 8) * 8;
}

/** Pre-encoded strings of one sender, reused for every chunk it writes. */
export interface SenderIdentity {
  jobId: Uint8Array;
  senderId: Uint8Array;
}
export function senderIdentity(jobId: string, senderId: string): SenderIdentity {
  return { jobId: utf8.encode(jobId), senderId: utf8.encode(senderId) };
}

/**
 * Allocates a message for `h` and writes its header; returns the message and the payload view
 * (8-aligned, `h.payloadBytes` long) for the codec to fill.
 */
export function allocateChunk(
  h: Omit<ChunkHeader, 'jobId' | 'senderId'>,
  id: SenderIdentity,
  /** A spent message of exactly the size needed, written over instead of allocating (its
   * payload bytes must then all be written by the caller, as every codec's encode does). */
  reuse?: Uint8Array,
): { message: Uint8Array; payload: Uint8Array } {
  const hb = headerBytes(id.jobId.length, id.senderId.length, h.contributors.length);
  const message = reuse?.byteLength === hb + h.payloadBytes && reuse.byteOffset === 0 ? reuse : new Uint8Array(hb + h.payloadBytes);
  const dv = new DataView(message.buffer);
  dv.setUint32(0, HEADER_MAGIC, true);
  dv.setUint8(4, h.kind);
  dv.setUint8(5, h.codec);
  dv.setUint16(6, hb, true);
  dv.setUint32(8, h.epoch, true);
  dv.setUint32(12, h.shard, true);
  dv.setFloat64(16, h.round, true);
  dv.setUint32(24, h.chunk, true);
  dv.setUint32(28, h.chunkCount, true);
  dv.setUint32(32, h.offset, true);
  dv.setUint32(36, h.length, true);
  dv.setFloat64(40, h.samples, true);
  dv.setUint32(48, h.shardLength, true);
  dv.setUint32(52, h.codecParam, true);
  dv.setUint32(56, h.payloadBytes, true);
  dv.setUint16(60, h.senderIndex, true);
  dv.setUint16(62, id.jobId.length, true);
  dv.setUint16(64, id.senderId.length, true);
  dv.setUint16(66, h.contributors.length, true);
  dv.setUint32(68, h.shardStart, true);
  dv.setUint32(72, h.shardCount, true);
  dv.setUint32(76, h.totalSize, true);
  let at = FIXED_HEADER_BYTES;
  message.set(id.jobId, at);
  at += id.jobId.length;
  message.set(id.senderId, at);
  at += id.senderId.length;
  for (let i = 0; i < h.contributors.length; i++) {
    dv.setUint32(at, h.contributors[i], true);
    dv.setFloat64(at + 4, h.contributorSamples[i], true);
    at += CONTRIBUTOR_BYTES;
  }
  // The padding up to the payload (stale in a reused message).
  message.fill(0, at, hb);
  return { message, payload: message.subarray(hb) };
}

/**
 * Parses a received message. Throws HeaderError on anything malformed (bad magic, lengths that
 * do not add up, invalid UTF-8); never reads outside `data`.
 */
export function decodeChunk(data: Uint8Array): { header: ChunkHeader; payload: Uint8Array } {
  if (data.byteLength < FIXED_HEADER_BYTES) throw new HeaderError(`message of ${data.byteLength} bytes is shorter than a header`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dv.getUint32(0, true) !== HEADER_MAGIC) throw new HeaderError('bad magic');
  const kind = dv.getUint8(4);
  if (kind !== ChunkKinds.reduce && kind !== ChunkKinds.gather && kind !== ChunkKinds.abort) throw new HeaderError(`bad kind ${kind}`);
  const hb = dv.getUint16(6, true);
  const jobBytes = dv.getUint16(62, true);
  const senderBytes = dv.getUint16(64, true);
  const nContrib = dv.getUint16(66, true);
  if (hb !== headerBytes(jobBytes, senderBytes, nContrib)) throw new HeaderError(`header length ${hb} does not match its fields`);
  const payloadBytes = dv.getUint32(56, true);
  if (hb + payloadBytes !== data.byteLength) {
    throw new HeaderError(`message is ${data.byteLength} bytes, header says ${hb} + ${payloadBytes}`);
  }
  const round = dv.getFloat64(16, true);
  const samples = dv.getFloat64(40, true);
  if (!Number.isSafeInteger(round) || round < 0) throw new HeaderError(`bad round ${round}`);
  let at = FIXED_HEADER_BYTES;
  let jobId: string;
  let senderId: string;
  try {
    jobId = utf8d.decode(data.subarray(at, at + jobBytes));
    at += jobBytes;
    senderId = utf8d.decode(data.subarray(at, at + senderBytes));
    at += senderBytes;
  } catch {
    throw new HeaderError('invalid UTF-8 in job or sender id');
  }
  const contributors: number[] = [];
  const contributorSamples: number[] = [];
  for (let i = 0; i < nContrib; i++, at += CONTRIBUTOR_BYTES) {
    contributors.push(dv.getUint32(at, true));
    contributorSamples.push(dv.getFloat64(at + 4, true));
  }
  return {
    header: {
      kind: kind as ChunkKind,
      codec: dv.getUint8(5),
      epoch: dv.getUint32(8, true),
      shard: dv.getUint32(12, true),
      round,
      chunk: dv.getUint32(24, true),
      chunkCount: dv.getUint32(28, true),
      offset: dv.getUint32(32, true),
      length: dv.getUint32(36, true),
      samples,
      shardLength: dv.getUint32(48, true),
      codecParam: dv.getUint32(52, true),
      payloadBytes,
      senderIndex: dv.getUint16(60, true),
      jobId,
      senderId,
      shardStart: dv.getUint32(68, true),
      shardCount: dv.getUint32(72, true),
      totalSize: dv.getUint32(76, true),
      contributors,
      contributorSamples,
    },
    payload: data.subarray(hb),
  };
}

/** A resend request (exchange.proto `ResendRequest`): fixed 24 bytes. */
export const RESEND_MAGIC = 0x4e585047;
export function encodeResend(epoch: number, round: number, senderIndex: number): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, RESEND_MAGIC, true);
  dv.setUint32(4, epoch, true);
  dv.setFloat64(8, round, true);
  dv.setUint16(16, senderIndex, true);
  return b;
}
export function decodeResend(b: Uint8Array): { epoch: number; round: number; senderIndex: number } | null {
  if (b.byteLength !== 24) return null;
  const dv = new DataView(b.buffer, b.byteOffset, 24);
  if (dv.getUint32(0, true) !== RESEND_MAGIC) return null;
  const round = dv.getFloat64(8, true);
  if (!Number.isSafeInteger(round) || round < 0) return null;
  return { epoch: dv.getUint32(4, true), round, senderIndex: dv.getUint16(16, true) };
}
