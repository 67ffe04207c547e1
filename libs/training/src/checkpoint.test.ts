import { describe, expect, it } from 'vitest';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, paramHash } from './checkpoint.js';

describe('checkpoint format', () => {
  const cp = {
    params: Float32Array.from([1, -2.5, 3e-8, NaN]),
    optimizerState: [Float32Array.from([0, 1, 2, 3]), Float32Array.from([4, 5, 6, 7])],
    round: 42,
    meta: { jobId: 'j1', optimizer: { kind: 'adam' } },
  };

  it('round-trips bytes, round and meta', () => {
    const bytes = encodeCheckpoint(cp);
    // Decoding from an unaligned view must work too.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const back = decodeCheckpoint(shifted.subarray(1));
    expect(back.round).toBe(42);
    expect(back.meta).toEqual(cp.meta);
    expect(paramHash(back.params)).toBe(paramHash(cp.params));
    expect(back.optimizerState.map((s) => Array.from(s))).toEqual(cp.optimizerState.map((s) => Array.from(s)));
  });

  it('detects corruption', () => {
    const bytes = encodeCheckpoint(cp);
    bytes[bytes.length - 40] ^= 1;
    expect(() => decodeCheckpoint(bytes)).toThrow(CheckpointError);
    expect(() => decodeCheckpoint(new Uint8Array(10))).toThrow(CheckpointError);
  });

  it('paramHash is the sha256 of the little-endian float32 bytes', () => {
    expect(paramHash(new Float32Array([0]))).toBe('df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119');
    // A view hashes only its own bytes.
    expect(paramHash(new Float32Array([5, 0]).subarray(1))).toBe(paramHash(new Float32Array([0])));
  });
});
