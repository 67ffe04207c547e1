/**
 * Deterministic inputs and reference results for exchange tests and benchmarks: seeded
 * gradients and the mean the protocol must produce, computed locally with the same codecs,
 * chunking and summation order.
 */
import { type Codec, CodecIds } from '../codecs/codec.js';
import { Fp32Codec } from '../codecs/fp32.codec.js';
import { Sparse32Codec, TopkCodec } from '../codecs/topk.codec.js';
import { ShardLayout } from '../layout.js';

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Member `member`'s gradient in `round`: values spread over several orders of magnitude. */
export function gradient(seed: number, member: number, round: number, size: number): Float32Array {
  const r = rng(seed * 1_000_003 + member * 7919 + round * 104_729);
  const g = new Float32Array(size);
  for (let i = 0; i < size; i++) g[i] = (r() - 0.5) * 10 ** (r() * 4 - 3);
  return g;
}

export interface Geometry {
  shards: number;
  reduceChunkElems: number;
  gatherChunkElems: number;
}

/**
 * The mean the exchange must return for these contributions, per shard: `contributors[s]` lists
 * the roster indices counted in shard s (ascending). Bit-exact: same codec, chunk boundaries,
 * float64 summation in roster order, float32 division, gather encoding.
 */
export function referenceMean(
  codec: Codec,
  size: number,
  geo: Geometry,
  grads: Float32Array[],
  samples: number[],
  contributors: number[][],
  clipNormRatio?: number,
): Float32Array {
  const layout = new ShardLayout(size, geo.shards);
  const out = new Float32Array(size);
  const gatherCodec = codec instanceof TopkCodec ? new Fp32Codec() : codec;
  for (let s = 0; s < geo.shards; s++) {
    const start = layout.start(s);
    const len = layout.length(s);
    const acc = new Float64Array(len);
    let total = 0;
    const encoded = (j: number, off: number, n: number) => {
      const buf = new Uint8Array(codec.payloadBytes(n));
      codec.encode(grads[j].slice(start + off, start + off + n), buf);
      return buf;
    };
    // Clipping as an owner does it: norms of the decoded contributions, float64, chunk by chunk.
    const weight = new Map(contributors[s].map((j) => [j, samples[j]]));
    if (clipNormRatio !== undefined) {
      const norms = new Map<number, number>();
      for (const j of contributors[s]) {
        if (!(samples[j] > 0)) continue;
        let ss = 0;
        for (let off = 0; off < len; off += geo.reduceChunkElems) {
          const n = Math.min(geo.reduceChunkElems, len - off);
          if (codec.sumSquares) {
            ss += codec.sumSquares(encoded(j, off, n), n);
            continue;
          }
          const v = new Float32Array(n);
          codec.decode(encoded(j, off, n), n, v, 0);
          for (let i = 0; i < n; i++) ss += v[i] * v[i];
        }
        norms.set(j, Math.sqrt(ss));
      }
      const sorted = [...norms.values()].sort((a, b) => a - b);
      const median = sorted[Math.floor((sorted.length - 1) / 2)];
      if (sorted.length >= 2 && median > 0) {
        for (const [j, norm] of norms) if (norm > clipNormRatio * median) weight.set(j, samples[j] * ((clipNormRatio * median) / norm));
      }
    }
    for (const j of contributors[s]) {
      for (let off = 0; off < len; off += geo.reduceChunkElems) {
        const n = Math.min(geo.reduceChunkElems, len - off);
        codec.accumulate(encoded(j, off, n), n, acc, off, weight.get(j)!);
      }
      total += samples[j];
    }
    const mean = new Float32Array(len);
    for (let i = 0; i < len; i++) mean[i] = acc[i] / total;
    for (let off = 0; off < len; off += geo.gatherChunkElems) {
      const n = Math.min(geo.gatherChunkElems, len - off);
      const part = mean.slice(off, off + n);
      if (codec instanceof TopkCodec) {
        const nz = Sparse32Codec.nonZeros(part);
        if (nz * 8 < n * 4) {
          const buf = new Uint8Array(nz * 8);
          Sparse32Codec.encode(part, nz, buf);
          Sparse32Codec.decode(buf, n, out, start + off);
          continue;
        }
      }
      const buf = new Uint8Array(gatherCodec.payloadBytes(n));
      gatherCodec.encode(part, buf);
      gatherCodec.decode(buf, n, out, start + off);
    }
  }
  return out;
}

/** The exact sample-weighted mean in float64 (no codec), for error bounds. */
export function trueMean(grads: Float32Array[], samples: number[], members: number[], start: number, end: number): Float64Array {
  const out = new Float64Array(end - start);
  let total = 0;
  for (const j of members) {
    total += samples[j];
    for (let i = start; i < end; i++) out[i - start] += samples[j] * grads[j][i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

export { CodecIds };
