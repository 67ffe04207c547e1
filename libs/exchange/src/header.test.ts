import { describe, expect, it } from 'vitest';
import { allocateChunk, ChunkKinds, decodeChunk, decodeResend, encodeResend, HeaderError, senderIdentity } from './header.js';

const h = {
  kind: ChunkKinds.gather,
  codec: 4,
  epoch: 7,
  round: 2 ** 40 + 3,
  shard: 5,
  chunk: 2,
  chunkCount: 9,
  offset: 1234,
  length: 99,
  samples: 320,
  shardLength: 5000,
  codecParam: 64,
  payloadBytes: 13,
  senderIndex: 3,
  shardStart: 25_000,
  shardCount: 20,
  totalSize: 100_000,
  contributors: [0, 2, 3],
  contributorSamples: [100, 100.5, 119.5],
};

describe('chunk header', () => {
  it('a reused message of the right size is written over whole (padding zeroed), the same bytes as a fresh one', () => {
    const id = senderIdentity('job-1', 'w');
    const fresh = allocateChunk(h, id);
    fresh.payload.fill(9);
    const spent = new Uint8Array(fresh.message.byteLength).fill(0xee);
    const reused = allocateChunk(h, id, spent);
    expect(reused.message).toBe(spent);
    reused.payload.fill(9);
    expect(Buffer.from(reused.message).equals(Buffer.from(fresh.message))).toBe(true);
    // Another size is not reused.
    expect(allocateChunk(h, id, new Uint8Array(fresh.message.byteLength + 8)).message.byteLength).toBe(fresh.message.byteLength);
  });
  it('round-trips every field and puts the payload at an 8-aligned offset', () => {
    const { message, payload } = allocateChunk(h, senderIdentity('job-1', 'wörker'));
    expect(payload.byteOffset % 8).toBe(0);
    payload.fill(7);
    const d = decodeChunk(message);
    expect(d.header).toEqual({ ...h, jobId: 'job-1', senderId: 'wörker' });
    expect(Array.from(d.payload)).toEqual(new Array(13).fill(7));
  });
  it('rejects truncated, padded, foreign and inconsistent messages', () => {
    const { message } = allocateChunk(h, senderIdentity('job-1', 'w'));
    expect(() => decodeChunk(message.subarray(0, 40))).toThrow(HeaderError);
    expect(() => decodeChunk(message.subarray(0, message.length - 1))).toThrow(/header says/);
    const longer = new Uint8Array(message.length + 1);
    longer.set(message);
    expect(() => decodeChunk(longer)).toThrow(/header says/);
    const bad = message.slice();
    bad[0] ^= 1;
    expect(() => decodeChunk(bad)).toThrow(/magic/);
    const kind = message.slice();
    kind[4] = 9;
    expect(() => decodeChunk(kind)).toThrow(/kind/);
    const len = message.slice();
    new DataView(len.buffer).setUint16(62, 200, true);
    expect(() => decodeChunk(len)).toThrow(HeaderError);
    const round = message.slice();
    new DataView(round.buffer).setFloat64(16, 1.5, true);
    expect(() => decodeChunk(round)).toThrow(/round/);
  });
  it('resend requests round-trip and reject anything else', () => {
    expect(decodeResend(encodeResend(3, 12, 4))).toEqual({ epoch: 3, round: 12, senderIndex: 4 });
    expect(decodeResend(new Uint8Array(24))).toBeNull();
    expect(decodeResend(new Uint8Array(5))).toBeNull();
  });
});
