import { describe, expect, it } from 'vitest';
import { ShardFormatError } from './errors.js';
import { decodeShard, decodeShardHeader, encodeShard, samplesPerShard, sha256Hex, shardBytes } from './shard.codec.js';

describe('shard codec', () => {
  const shape = [2, 3];
  const features = Float32Array.from({ length: 4 * 6 }, (_, i) => i / 7 - 1);
  const labels = Int32Array.from([3, 0, 9, 1]);

  it('round-trips header, features and labels into typed-array views', () => {
    const bytes = encodeShard({ count: 4, shape, normalisation: 'standardise' }, features, labels);
    expect(bytes.byteLength).toBe(shardBytes(shape, 4));
    const d = decodeShard(bytes);
    expect(d).toMatchObject({ count: 4, dim: 6, shape, normalisation: 'standardise' });
    expect(d.features).toEqual(features);
    expect(d.labels).toEqual(labels);
    expect(d.features.buffer).toBe(bytes.buffer); // a view, not a copy
  });

  it('decodes from a misaligned view by copying once', () => {
    const bytes = encodeShard({ count: 4, shape, normalisation: 'none' }, features, labels);
    const padded = new Uint8Array(bytes.byteLength + 1);
    padded.set(bytes, 1);
    const d = decodeShard(padded.subarray(1));
    expect(d.features).toEqual(features);
    expect(d.labels).toEqual(labels);
  });

  it('is deterministic (same content, same address)', () => {
    const a = encodeShard({ count: 4, shape, normalisation: 'scale' }, features, labels);
    const b = encodeShard({ count: 4, shape, normalisation: 'scale' }, Float32Array.from(features), Int32Array.from(labels));
    expect(sha256Hex(a)).toBe(sha256Hex(b));
    expect(sha256Hex(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects bad magic, version, truncation and mismatched arrays', () => {
    const bytes = encodeShard({ count: 4, shape, normalisation: 'none' }, features, labels);
    const bad = Uint8Array.from(bytes);
    bad[0] = 0;
    expect(() => decodeShardHeader(bad)).toThrow(/wrong magic/);
    const v2 = Uint8Array.from(bytes);
    v2[4] = 2;
    expect(() => decodeShardHeader(v2)).toThrow(/version 2/);
    expect(() => decodeShard(bytes.subarray(0, bytes.length - 1))).toThrow(ShardFormatError);
    expect(() => encodeShard({ count: 3, shape, normalisation: 'none' }, features, labels)).toThrow(ShardFormatError);
  });

  it('sizes shards to the target', () => {
    const n = samplesPerShard([28, 28, 1], 2 * 1024 * 1024);
    expect(shardBytes([28, 28, 1], n)).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(shardBytes([28, 28, 1], n + 1)).toBeGreaterThan(2 * 1024 * 1024);
  });
});
