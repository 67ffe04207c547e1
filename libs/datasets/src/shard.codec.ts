/**
 * The one definition of a shard's bytes. Little-endian throughout.
 *
 *   offset  size  field
 *   0       4     magic "GPSH"
 *   4       2     version (1)
 *   6       1     feature dtype (1 = float32)
 *   7       1     label dtype (1 = int32)
 *   8       4     sample count N
 *   12      4     features per sample D (product of the shape)
 *   16      1     normalisation (0 none, 1 scale, 2 standardise)
 *   17      1     rank R of the per-sample shape
 *   18      2     reserved (0)
 *   20      4·R   shape
 *   …             zero padding to a multiple of 8 (= header length H)
 *   H       4·N·D features, sample-major (fixed-size records: sample i at H + 4·D·i)
 *   H+4ND   4·N   labels (class indices)
 *
 * Features and labels are stored as two contiguous blocks so that decoding yields
 * typed-array views on the shard's bytes, with no copy. A shard is named by the sha256 of
 * exactly these bytes.
 */
import { createHash } from 'node:crypto';
import { ShardFormatError } from './errors.js';

export const SHARD_MAGIC = 0x48535047; // "GPSH" read as little-endian uint32
export const SHARD_VERSION = 1;

export type NormalisationKind = 'none' | 'scale' | 'standardise';
const NORM_CODES: Record<NormalisationKind, number> = { none: 0, scale: 1, standardise: 2 };
const NORM_KINDS: NormalisationKind[] = ['none', 'scale', 'standardise'];

export interface ShardHeader {
  count: number;
  shape: number[];
  normalisation: NormalisationKind;
}

export interface DecodedShard extends ShardHeader {
  /** Features per sample (product of `shape`). */
  dim: number;
  /** `count × dim` float32, sample-major. */
  features: Float32Array;
  /** `count` class indices. */
  labels: Int32Array;
}

/** Header length in bytes for a shape of rank `rank`. */
export function shardHeaderBytes(rank: number): number {
  return Math.ceil((20 + 4 * rank) / 8) * 8;
}

/** Bytes of one sample (features + label). */
export function recordBytes(shape: number[]): number {
  return 4 * shape.reduce((a, b) => a * b, 1) + 4;
}

/** Total encoded size of a shard of `count` samples. */
export function shardBytes(shape: number[], count: number): number {
  return shardHeaderBytes(shape.length) + count * recordBytes(shape);
}

/** Encodes a shard; `features` holds `count × prod(shape)` values. */
export function encodeShard(header: ShardHeader, features: Float32Array, labels: Int32Array): Uint8Array {
  const dim = header.shape.reduce((a, b) => a * b, 1);
  const n = header.count;
  if (features.length !== n * dim) throw new ShardFormatError(`features have ${features.length} values, expected ${n}×${dim}`);
  if (labels.length !== n) throw new ShardFormatError(`labels have ${labels.length} values, expected ${n}`);
  const h = shardHeaderBytes(header.shape.length);
  const out = new Uint8Array(h + 4 * n * dim + 4 * n);
  const v = new DataView(out.buffer);
  v.setUint32(0, SHARD_MAGIC, true);
  v.setUint16(4, SHARD_VERSION, true);
  v.setUint8(6, 1);
  v.setUint8(7, 1);
  v.setUint32(8, n, true);
  v.setUint32(12, dim, true);
  v.setUint8(16, NORM_CODES[header.normalisation]);
  v.setUint8(17, header.shape.length);
  header.shape.forEach((d, i) => v.setUint32(20 + 4 * i, d, true));
  new Float32Array(out.buffer, h, n * dim).set(features);
  new Int32Array(out.buffer, h + 4 * n * dim, n).set(labels);
  return out;
}

/** Reads and checks a shard's header. */
export function decodeShardHeader(bytes: Uint8Array): ShardHeader & { dim: number; headerBytes: number } {
  if (bytes.byteLength < 20) throw new ShardFormatError(`shard is ${bytes.byteLength} bytes, shorter than a header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== SHARD_MAGIC) throw new ShardFormatError('not a shard: wrong magic');
  const version = v.getUint16(4, true);
  if (version !== SHARD_VERSION) throw new ShardFormatError(`shard version ${version} is not supported`);
  if (v.getUint8(6) !== 1 || v.getUint8(7) !== 1) throw new ShardFormatError('unsupported shard dtypes');
  const count = v.getUint32(8, true);
  const dim = v.getUint32(12, true);
  const norm = NORM_KINDS[v.getUint8(16)];
  if (!norm) throw new ShardFormatError(`unknown normalisation code ${v.getUint8(16)}`);
  const rank = v.getUint8(17);
  const headerBytes = shardHeaderBytes(rank);
  if (bytes.byteLength < headerBytes) throw new ShardFormatError('shard header is truncated');
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(v.getUint32(20 + 4 * i, true));
  if (shape.reduce((a, b) => a * b, 1) !== dim) throw new ShardFormatError(`shape ${shape.join('×')} does not match ${dim} features`);
  const expected = headerBytes + 4 * count * dim + 4 * count;
  if (bytes.byteLength !== expected) throw new ShardFormatError(`shard is ${bytes.byteLength} bytes, header says ${expected}`);
  return { count, dim, shape, normalisation: norm, headerBytes };
}

/** Decodes a shard into typed-array views on its bytes (copied once only if misaligned). */
export function decodeShard(bytes: Uint8Array): DecodedShard {
  const h = decodeShardHeader(bytes);
  const buf = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  const features = new Float32Array(buf.buffer, buf.byteOffset + h.headerBytes, h.count * h.dim);
  const labels = new Int32Array(buf.buffer, buf.byteOffset + h.headerBytes + 4 * h.count * h.dim, h.count);
  return { count: h.count, dim: h.dim, shape: h.shape, normalisation: h.normalisation, features, labels };
}

/** Lower-case hex sha256: a shard's content address. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Samples per shard for a target shard size in bytes (at least 1). */
export function samplesPerShard(shape: number[], targetBytes: number): number {
  return Math.max(1, Math.floor((targetBytes - shardHeaderBytes(shape.length)) / recordBytes(shape)));
}

/** Default target shard size: a worker's share of a round is a handful of shards. */
export const DEFAULT_SHARD_BYTES = 2 * 1024 * 1024;
