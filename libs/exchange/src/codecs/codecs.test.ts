import { describe, expect, it } from 'vitest';
import { rng } from '../testing/fixtures.js';
import { bf16ToF32, f32ToHalf, halfToF32 } from './index.js';
import { Bf16Codec, type Codec, createCodec, ErrorFeedback, Fp16Codec, Int8Codec, Sparse32Codec, TopkCodec } from './index.js';

function sample(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (r() - 0.5) * 10 ** (r() * 8 - 5);
  v[0] = 0;
  v[1] = -0;
  if (n > 3) v[2] = 2 ** -30;
  return v;
}

function roundTrip(codec: Codec, v: Float32Array): Float32Array {
  const buf = new Uint8Array(codec.payloadBytes(v.length));
  codec.encode(v, buf);
  expect(codec.validate(buf, v.length)).toBeNull();
  const out = new Float32Array(v.length);
  codec.decode(buf, v.length, out, 0);
  // accumulate must agree with decode exactly.
  const acc = new Float64Array(v.length);
  codec.accumulate(buf, v.length, acc, 0, 3);
  for (let i = 0; i < v.length; i++) if (acc[i] !== 3 * out[i]) throw new Error(`accumulate differs at ${i}`);
  return out;
}

describe('codecs: documented error bounds', () => {
  const n = 10_007;
  it('fp32 is exact', () => {
    const v = sample(n, 1);
    expect(Array.from(roundTrip(createCodec({ name: 'fp32' }), v))).toEqual(Array.from(v));
  });
  it('fp16: |err| ≤ max(|x|·2⁻¹¹, 2⁻²⁵), saturating beyond 65504', () => {
    const v = sample(n, 2).map((x) => Math.max(-65504, Math.min(65504, x)));
    const out = roundTrip(createCodec({ name: 'fp16' }), v);
    for (let i = 0; i < n; i++) expect(Math.abs(out[i] - v[i])).toBeLessThanOrEqual(Math.max(Math.abs(v[i]) * 2 ** -11, 2 ** -25));
    expect(halfToF32(f32ToHalf(1e9))).toBe(65504);
    expect(halfToF32(f32ToHalf(-Infinity))).toBe(-65504);
    expect(halfToF32(f32ToHalf(1 + 2 ** -11))).toBe(1); // tie to even
    expect(halfToF32(f32ToHalf(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    expect(halfToF32(f32ToHalf(2 ** -24))).toBe(2 ** -24);
  });
  it('bf16: |err| ≤ |x|·2⁻⁸', () => {
    const v = sample(n, 3);
    const out = roundTrip(createCodec({ name: 'bf16' }), v);
    for (let i = 0; i < n; i++) expect(Math.abs(out[i] - v[i])).toBeLessThanOrEqual(Math.abs(v[i]) * 2 ** -8);
    expect(bf16ToF32(0x3f80)).toBe(1);
  });
  for (const block of [1, 7, 64, 256]) {
    it(`int8 (block ${block}): |err| ≤ absmax(block)/254`, () => {
      const v = sample(n, 4 + block);
      const codec = new Int8Codec(block);
      const out = roundTrip(codec, v);
      for (let b = 0; b < n; b += block) {
        let am = 0;
        for (let i = b; i < Math.min(n, b + block); i++) am = Math.max(am, Math.abs(v[i]));
        for (let i = b; i < Math.min(n, b + block); i++) expect(Math.abs(out[i] - v[i])).toBeLessThanOrEqual((am / 254) * (1 + 2 ** -20));
      }
    });
  }
  it('int8: subnormal and extreme blocks keep their signs and the bound; a block with NaN or ±Infinity is rejected', () => {
    const codec = new Int8Codec(4);
    const v = new Float32Array([1e-40, -3e-41, 7e-42, -1e-40, 3.4e38, -3.4e38, 1e38, 0, 1.4e-45, -1.4e-45, 0, 0]);
    const out = roundTrip(codec, v);
    for (let b = 0; b < v.length; b += 4) {
      let am = 0;
      for (let i = b; i < b + 4; i++) am = Math.max(am, Math.abs(v[i]));
      for (let i = b; i < b + 4; i++) {
        expect(Math.sign(out[i]) * Math.sign(v[i])).not.toBe(-1);
        // Subnormal scales are coarse: allow a whole step of the float32 scale's own rounding.
        expect(Math.abs(out[i] - v[i])).toBeLessThanOrEqual(am / 254 + (am < 2 ** -100 ? 2 ** -149 * 128 : am * 2 ** -20));
      }
    }
    expect(out[4]).toBe(Math.fround(127 * Math.fround(3.4e38 / 127)));
    for (const bad of [NaN, -NaN, Infinity, -Infinity]) {
      const w = new Float32Array([1, bad, 2, 3, 4, 5, 6, 7]);
      const buf = new Uint8Array(codec.payloadBytes(w.length));
      codec.encode(w, buf);
      expect(codec.validate(buf, w.length)).toMatch(/scale .* in block 0/);
    }
  });
  it('int8 decodes, accumulates and validates a payload at a misaligned byte offset (as nats.js hands them) like an aligned one', () => {
    const codec = new Int8Codec(64);
    const v = sample(1000, 31);
    const buf = new Uint8Array(codec.payloadBytes(v.length));
    codec.encode(v, buf);
    const big = new Uint8Array(buf.length + 3);
    big.set(buf, 1);
    const odd = big.subarray(1, 1 + buf.length);
    expect(codec.validate(odd, v.length)).toBeNull();
    const a = new Float32Array(v.length);
    const b = new Float32Array(v.length);
    codec.decode(buf, v.length, a, 0);
    codec.decode(odd, v.length, b, 0);
    expect(Array.from(b)).toEqual(Array.from(a));
    const acc = new Float64Array(v.length + 5);
    codec.accumulate(odd, v.length, acc, 5, 2);
    for (let i = 0; i < v.length; i++) expect(acc[5 + i]).toBe(2 * a[i]);
  });
  it('int8 quotients match round-to-nearest except at exact ties', () => {
    const block = 64;
    const codec = new Int8Codec(block);
    const v = sample(4096, 77);
    for (let i = 128; i < 192; i++) v[i] = (i - 160) * 2; // block 2: absmax 64, near-ties x/s ≈ k·127/32
    const buf = new Uint8Array(codec.payloadBytes(v.length));
    codec.encode(v, buf);
    const nb = Math.ceil(v.length / block);
    const scales = new Float32Array(buf.buffer, 0, nb);
    const q = new Int8Array(buf.buffer, nb * 4, v.length);
    for (let i = 0; i < v.length; i++) {
      const s = scales[Math.floor(i / block)];
      const y = v[i] * (1 / s);
      const r = Math.round(y);
      if (Math.abs(y - Math.trunc(y)) === 0.5) expect(Math.abs(q[i] - y)).toBe(0.5);
      else expect(q[i] - r).toBe(0);
    }
  });
  it('topk sends exactly the m largest magnitudes, exact, ties to the lower index', () => {
    const codec = new TopkCodec(0.1);
    const v = sample(1000, 9);
    const out = roundTrip(codec, v);
    const m = codec.count(1000);
    expect(m).toBe(100);
    const kept = Array.from(out).filter((x) => x !== 0).length;
    expect(kept).toBeLessThanOrEqual(m);
    const threshold = Array.from(v).map(Math.abs).sort((a, b) => b - a)[m - 1];
    for (let i = 0; i < 1000; i++) {
      if (out[i] !== 0) expect(out[i]).toBe(v[i]);
      if (Math.abs(v[i]) > threshold) expect(out[i]).toBe(v[i]);
      else if (out[i] === 0) expect(Math.abs(v[i])).toBeLessThanOrEqual(threshold);
    }
    const ties = new Float32Array(10).fill(1);
    const t = roundTrip(new TopkCodec(0.3), ties);
    expect(Array.from(t)).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('fp16 and bf16: the WebAssembly SIMD decode and check are bit-identical to the scalar code', () => {
  for (const [name, simd, scalar, exp] of [
    ['fp16', new Fp16Codec(), new Fp16Codec({ simd: false }), 0x7c00],
    ['bf16', new Bf16Codec(), new Bf16Codec({ simd: false }), 0x7f80],
  ] as const) {
    it(`${name}: decodes all 65 536 values the same, from any byte offset into an offset view`, () => {
      const values = new Uint16Array(65_536 + 5).map((_, i) => i & 0xffff);
      const bytes = new Uint8Array(values.buffer);
      for (const at of [0, 1]) {
        const payload = new Uint8Array(bytes.length + 1).subarray(at, at + bytes.length);
        payload.set(bytes);
        const a = new Float32Array(values.length + 3);
        const b = new Float32Array(values.length + 3);
        simd.decode(payload, values.length, a, 3);
        scalar.decode(bytes, values.length, b, 3);
        expect(Buffer.compare(new Uint8Array(a.buffer), new Uint8Array(b.buffer)), `byte offset ${at}`).toBe(0);
      }
    });
    it(`${name}: sums into its WebAssembly accumulator as the scalar code sums into a plain one`, () => {
      for (const n of [1, 7, 8, 9, 32 * 1024 + 5, 70_001]) {
        const payload = new Uint8Array(simd.payloadBytes(n));
        simd.encode(sample(n, n), payload);
        const odd = new Uint8Array(payload.length + 1);
        odd.set(payload, 1);
        const aa = simd.newAccumulator(n + 5);
        const ab = new Float64Array(n + 5);
        expect(aa.every((x) => x === 0)).toBe(true);
        for (const w of [3, 0.37, 1e-7]) {
          simd.accumulate(odd.subarray(1), n, aa, 5, w);
          scalar.accumulate(payload, n, ab, 5, w);
        }
        expect(Buffer.compare(new Uint8Array(aa.buffer, aa.byteOffset, aa.byteLength), new Uint8Array(ab.buffer)), `n=${n}`).toBe(0);
        // Into a plain array it takes the scalar path, with the same result.
        const ac = new Float64Array(n + 5);
        for (const w of [3, 0.37, 1e-7]) simd.accumulate(payload, n, ac, 5, w);
        expect(Array.from(ac)).toEqual(Array.from(ab));
      }
    });
    it(`${name}: names the same first non-finite element, in the SIMD part or the tail`, () => {
      const n = 40_003;
      const payload = new Uint8Array(simd.payloadBytes(n));
      simd.encode(sample(n, 12), payload);
      expect(simd.validate(payload, n)).toBeNull();
      for (const at of [0, 7, 8, 32 * 1024 + 1, n - 3, n - 1]) {
        for (const h of [exp, exp | 0x8000, exp | 0x200, exp | 1]) {
          const bad = payload.slice();
          new DataView(bad.buffer).setUint16(at * 2, h, true);
          new DataView(bad.buffer).setUint16(Math.min(n - 1, at + 5) * 2, exp, true);
          expect(simd.validate(bad, n)).toBe(`non-finite value at element ${at}`);
          expect(scalar.validate(bad, n)).toBe(`non-finite value at element ${at}`);
        }
      }
    });
  }
});

describe('topk: the sampled selection sends exactly the full selection', () => {
  /** The m largest |x|, ties to the lower index, as ascending indices: sort, the oracle. */
  function reference(v: Float32Array, m: number): number[] {
    const order = Array.from(v.keys()).sort((a, b) => Math.abs(v[b]) - Math.abs(v[a]) || a - b);
    return order.slice(0, m).sort((a, b) => a - b);
  }
  /** Gradient-like values, heavy ties, a few huge ones, constant, and a sorted ramp (a sample's worst case). */
  const inputs: [string, (n: number, seed: number) => Float32Array][] = [
    ['gradient-like', (n, seed) => sample(n, seed)],
    ['few distinct magnitudes', (n, seed) => {
      const r = rng(seed);
      return Float32Array.from({ length: n }, () => (Math.floor(r() * 5) - 2) * 0.25);
    }],
    ['a few huge values', (n, seed) => {
      const v = sample(n, seed);
      for (let i = 0; i < n; i += 997) v[i] = 1e30 * (i % 2 ? 1 : -1);
      return v;
    }],
    ['constant', (n) => new Float32Array(n).fill(-3)],
    ['ascending ramp', (n) => Float32Array.from({ length: n }, (_, i) => i * 1e-3)],
  ];
  for (const [name, make] of inputs) {
    it(`${name}: the same indices and values as sorting, for several k and lengths`, () => {
      for (const fraction of [0.001, 0.01, 0.1, 0.3]) {
        const codec = new TopkCodec(fraction);
        for (const n of [20_000, 131_071]) {
          const v = make(n, n + Math.round(fraction * 1e4));
          const m = codec.count(n);
          const buf = new Uint8Array(codec.payloadBytes(n));
          codec.encode(v, buf);
          expect(codec.validate(buf, n)).toBeNull();
          const idx = Array.from(new Uint32Array(buf.buffer, 0, m));
          expect(idx, `${name} k=${fraction} n=${n}`).toEqual(reference(v, m));
          const val = new Float32Array(buf.buffer, m * 4, m);
          expect(Array.from(val)).toEqual(idx.map((i) => v[i]));
        }
      }
    });
  }
});

describe('topk: the candidate pass in WebAssembly, on error feedback\'s compensated vector', () => {
  it('sends the same bytes as the TypeScript pass, NaN and heavy ties included', () => {
    const n = 131_071;
    const makers: ((v: Float32Array) => void)[] = [
      (v) => v.set(sample(n, 3)),
      (v) => v.set(sample(n, 4).map((x, i) => (i % 1000 === 7 ? 1e30 : x))),
      (v) => v.set(sample(n, 5).map((x, i) => (i === 777 ? NaN : x))),
      (v) => v.fill(0.5),
    ];
    for (const make of makers) {
      for (const fraction of [0.001, 0.01, 0.2]) {
        const codec = new TopkCodec(fraction);
        const ef = new ErrorFeedback(n + 5);
        const g = new Float32Array(n + 5);
        make(g.subarray(5));
        const c = ef.compensate(g).subarray(5);
        expect(ef.accelerated).toBe(true);
        const a = new Uint8Array(codec.payloadBytes(n));
        const b = new Uint8Array(codec.payloadBytes(n));
        codec.encode(c, a);
        codec.encode(Float32Array.from(c), b);
        expect(Buffer.compare(a, b), `k=${fraction}`).toBe(0);
      }
    }
  });
});

describe('int8: WebAssembly SIMD kernels are bit-identical to the scalar code', () => {
  /** Random values over 8 decades with zero, subnormal, tiny and huge blocks mixed in. */
  function mixed(n: number, block: number, seed: number): Float32Array {
    const v = sample(n, seed);
    const r = rng(seed + 1);
    for (let b = 0; b < n; b += block) {
      const kind = Math.floor(r() * 8);
      const hi = Math.min(n, b + block);
      for (let i = b; i < hi; i++) {
        if (kind === 0) v[i] = 0;
        else if (kind === 1) v[i] = (r() - 0.5) * 1e-40; // subnormal scale
        else if (kind === 2) v[i] = (r() - 0.5) * 6e38;
        else if (kind === 3) v[i] = ((i % 5) - 2) * 0.5; // ties of x/s
      }
    }
    return v;
  }
  const simd = (block: number) => new Int8Codec(block);
  const scalar = (block: number) => new Int8Codec(block, { simd: false });

  it('runs accelerated on this Node', () => {
    expect(simd(64).accelerated).toBe(true);
    expect(scalar(64).accelerated).toBe(false);
  });
  for (const block of [1, 3, 16, 64, 100, 4096]) {
    it(`block ${block}: encode, decode and accumulate agree for ragged lengths and tiles`, () => {
      for (const n of [0, 1, 15, 17, 64, 65, 1000, 70_001]) {
        const v = mixed(n, block, n + block);
        const a = simd(block);
        const b = scalar(block);
        const bytes = a.payloadBytes(n);
        // An 8-aligned payload inside a larger message, as allocateChunk makes them.
        const ma = new Uint8Array(bytes + 24).subarray(8, 8 + bytes);
        const mb = new Uint8Array(bytes);
        a.encode(v, ma);
        b.encode(v, mb);
        expect(Buffer.compare(ma, mb), `encode n=${n}`).toBe(0);
        expect(a.validate(ma, n)).toBeNull();
        // Decode from a misaligned payload into an offset view.
        const odd = new Uint8Array(bytes + 3);
        odd.set(ma, 1);
        const da = new Float32Array(n + 7);
        const db = new Float32Array(n + 7);
        a.decode(odd.subarray(1, 1 + bytes), n, da, 5);
        b.decode(mb, n, db, 5);
        expect(Buffer.compare(new Uint8Array(da.buffer), new Uint8Array(db.buffer)), `decode n=${n}`).toBe(0);
        // Accumulate twice into a WebAssembly accumulator and a plain one.
        const aa = a.newAccumulator(n + 5);
        const ab = new Float64Array(n + 5);
        expect(aa.every((x) => x === 0)).toBe(true);
        for (const w of [3, 0.37]) {
          a.accumulate(odd.subarray(1, 1 + bytes), n, aa, 5, w);
          b.accumulate(mb, n, ab, 5, w);
        }
        expect(Buffer.compare(new Uint8Array(aa.buffer, aa.byteOffset, aa.byteLength), new Uint8Array(ab.buffer)), `accumulate n=${n}`).toBe(0);
        // The SIMD codec also accumulates exactly into a plain array (its scalar path).
        const ac = new Float64Array(n + 5);
        a.accumulate(ma, n, ac, 5, 3);
        a.accumulate(ma, n, ac, 5, 0.37);
        expect(Array.from(ac)).toEqual(Array.from(ab));
      }
    });
  }
  for (const block of [1, 16, 64, 100]) {
    it(`block ${block}: encodeMean gives the bytes of float32(acc / total) then encode, and flags non-finite means`, () => {
      let compared = 0;
      for (const n of [1, 15, 17, 1000, 70_001]) {
        const a = simd(block);
        const acc = a.newAccumulator(n + 9).subarray(0, n);
        const v = mixed(n, block, 3 * n + block);
        // Sums of a few weighted contributions, as an owner holds them (some huge: |mean| up to ~1e39 overflows float32).
        for (let i = 0; i < n; i++) acc[i] = v[i] * 37 + (i % 7) * 1e-3 - v[(i * 13) % n] * 5;
        const total = 37 + 11;
        const mean = new Float32Array(n);
        let finite = true;
        for (let i = 0; i < n; i++) {
          mean[i] = Math.fround(acc[i] / total);
          if (!Number.isFinite(mean[i])) finite = false;
        }
        const bytes = a.payloadBytes(n);
        const fused = new Uint8Array(bytes + 40).subarray(8, 8 + bytes);
        const ok = a.encodeMean(acc, total, fused);
        expect(ok, `n=${n}`).toBe(finite);
        if (!finite) continue;
        const ref = new Uint8Array(bytes);
        scalar(block).encode(mean, ref);
        expect(Buffer.compare(fused, ref), `encodeMean n=${n}`).toBe(0);
        compared++;
      }
      expect(compared).toBe(5);
      // A NaN or ±Infinity anywhere (first, middle, last element) is reported.
      for (const at of [0, 500, 999]) {
        const acc = simd(block).newAccumulator(1000);
        acc.fill(1.5);
        acc[at] = at === 500 ? Infinity : NaN;
        expect(simd(block).encodeMean(acc, 3, new Uint8Array(simd(block).payloadBytes(1000)))).toBe(false);
      }
      // Not a WebAssembly accumulator, or the scalar codec: the caller divides and encodes.
      expect(simd(block).encodeMean(new Float64Array(10), 2, new Uint8Array(simd(block).payloadBytes(10)))).toBeNull();
      expect(scalar(block).encodeMean(scalar(block).newAccumulator(10), 2, new Uint8Array(scalar(block).payloadBytes(10)))).toBeNull();
    });
  }
  for (const block of [1, 7, 64, 4096, 200_000]) {
    it(`block ${block}: sumSquares (the clipped mean's norm) gives the same bits on both paths, and the norm of the decoded values within 2⁻²³`, () => {
      for (const n of [0, 1, 17, 65, 1000, 70_001, 300_000]) {
        // Full-scale values: every block has some q = ±127 (the widest integer sums).
        const v = sample(n, n + block).map((x, i) => (i % 3 === 0 ? Math.sign(x) || 1 : x));
        const a = simd(block);
        const b = scalar(block);
        const payload = new Uint8Array(a.payloadBytes(n));
        a.encode(v, payload);
        const ss = a.sumSquares(payload, n);
        expect(ss, `n=${n}`).toBe(b.sumSquares(payload, n));
        const decoded = new Float32Array(n);
        a.decode(payload, n, decoded, 0);
        let ref = 0;
        for (let i = 0; i < n; i++) ref += decoded[i] * decoded[i];
        expect(Math.abs(ss - ref), `n=${n}`).toBeLessThanOrEqual(ref * 2 ** -23 + 1e-300);
      }
    });
  }

  it('blocks holding NaN or ±Infinity: same non-finite scales and zero values on both paths', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const v = sample(300, 8);
      v[70] = bad;
      v[299] = bad;
      const ma = new Uint8Array(simd(64).payloadBytes(300));
      const mb = new Uint8Array(ma.length);
      simd(64).encode(v, ma);
      scalar(64).encode(v, mb);
      const sa = new Float32Array(ma.buffer, 0, 5);
      const sb = new Float32Array(mb.buffer, 0, 5);
      for (let b = 0; b < 5; b++) expect(Object.is(sa[b], sb[b]) || (Number.isNaN(sa[b]) && Number.isNaN(sb[b]))).toBe(true);
      expect(Buffer.compare(ma.subarray(20), mb.subarray(20))).toBe(0);
      expect(simd(64).validate(ma, 300)).toMatch(/scale .* in block 1/);
    }
  });
});

describe('fp16 and bf16: the WebAssembly SIMD encode is bit-identical to the scalar code', () => {
  /**
   * Float32 bit patterns: a stride through all 2³² (every sign, exponent and NaN payload), every
   * value around each boundary of the encodings (half subnormal/normal, 2⁻²⁵ and 2⁻²⁴, ties in the
   * dropped bits, the largest finite half and bf16, ±Infinity, NaNs), and random values.
   */
  function patterns(): Uint32Array {
    const out: number[] = [];
    for (let i = 0; i < 1 << 20; i++) out.push((i * 4093 + (i >>> 7)) >>> 0);
    const edges = [0, 0x33000000, 0x33800000, 0x387fc000, 0x387fe000, 0x38800000, 0x3f000000, 0x477fe000, 0x477fefff, 0x477ff000, 0x47800000, 0x7f7f7fff, 0x7f7f8000, 0x7f7fffff, 0x7f800000, 0x7f800001, 0x7fc00000, 0x7fffffff];
    for (const e of edges) for (let d = -40; d <= 40; d++) for (const sign of [0, 0x80000000]) out.push(((e + d) | sign) >>> 0);
    // Ties and near-ties of the bits dropped by each encoding, over a range of exponents.
    for (let exp = 90; exp < 150; exp++) {
      for (const low of [0x0fff, 0x1000, 0x1001, 0x3000, 0x7fff, 0x8000, 0x8001, 0x18000]) out.push(((exp << 23) | low) >>> 0, ((exp << 23) | 0x2000 | low) >>> 0);
    }
    const r = rng(77);
    for (let i = 0; i < 50_000; i++) out.push(Math.floor(r() * 2 ** 32) >>> 0);
    return Uint32Array.from(out);
  }
  const bits = patterns();
  const values = new Float32Array(bits.buffer);

  for (const [name, simd, scalar] of [
    ['fp16', new Fp16Codec(), new Fp16Codec({ simd: false })],
    ['bf16', new Bf16Codec(), new Bf16Codec({ simd: false })],
  ] as const) {
    it(`${name}: runs accelerated on this Node, and every pattern encodes to the same bits`, () => {
      expect(simd.accelerated).toBe(true);
      expect(scalar.accelerated).toBe(false);
      const a = new Uint8Array(simd.payloadBytes(values.length));
      const b = new Uint8Array(scalar.payloadBytes(values.length));
      simd.encode(values, a);
      scalar.encode(values, b);
      const ha = new Uint16Array(a.buffer);
      const hb = new Uint16Array(b.buffer);
      const firstDiff = ha.findIndex((h, i) => h !== hb[i]);
      expect(firstDiff, firstDiff < 0 ? '' : `bits 0x${bits[firstDiff].toString(16)}: simd 0x${ha[firstDiff].toString(16)}, scalar 0x${hb[firstDiff].toString(16)}`).toBe(-1);
    });
    it(`${name}: ragged lengths, offset sources and targets, several tiles`, () => {
      for (const n of [0, 1, 7, 8, 9, 31, 32 * 1024 - 1, 32 * 1024 + 9, 100_003]) {
        const src = sample(n + 3, n).subarray(3);
        const a = new Uint8Array(simd.payloadBytes(n) + 6).subarray(2, 2 + simd.payloadBytes(n));
        const b = new Uint8Array(scalar.payloadBytes(n));
        simd.encode(src, a);
        scalar.encode(src, b);
        expect(Buffer.compare(a, b), `n=${n}`).toBe(0);
      }
    });
  }
});

describe('codecs: validation', () => {
  it('rejects non-finite values, wrong sizes, bad scales and bad indices', () => {
    const fp32 = createCodec({ name: 'fp32' });
    const b = new Uint8Array(16);
    new Float32Array(b.buffer).set([1, 2, NaN, 4]);
    expect(fp32.validate(b, 4)).toMatch(/non-finite/);
    expect(fp32.validate(b, 3)).toMatch(/bytes/);
    const fp16 = createCodec({ name: 'fp16' });
    expect(fp16.validate(new Uint8Array(new Uint16Array([0x3c00, 0x7c00]).buffer), 2)).toMatch(/non-finite/);
    const bf16 = createCodec({ name: 'bf16' });
    expect(bf16.validate(new Uint8Array(new Uint16Array([0x3f80, 0x7fc0]).buffer), 2)).toMatch(/non-finite/);
    const int8 = new Int8Codec(4);
    const ib = new Uint8Array(int8.payloadBytes(4));
    new Float32Array(ib.buffer, 0, 1)[0] = Infinity;
    expect(int8.validate(ib, 4)).toMatch(/scale/);
    const topk = new TopkCodec(0.5);
    const tb = new Uint8Array(topk.payloadBytes(4));
    new Uint32Array(tb.buffer, 0, 2).set([3, 1]);
    expect(topk.validate(tb, 4)).toMatch(/order/);
    new Uint32Array(tb.buffer, 0, 2).set([1, 9]);
    expect(topk.validate(tb, 4)).toMatch(/range/);
    expect(Sparse32Codec.validate(new Uint8Array(12), 4)).toMatch(/size/);
  });
  it('decodes from misaligned buffers', () => {
    const codec = createCodec({ name: 'fp32' });
    const v = Float32Array.from([1, 2, 3]);
    const big = new Uint8Array(13);
    const aligned = new Uint8Array(12);
    codec.encode(v, aligned);
    big.set(aligned, 1);
    const out = new Float32Array(3);
    codec.decode(big.subarray(1), 3, out, 0);
    expect(Array.from(out)).toEqual([1, 2, 3]);
  });
});

describe('topk error feedback', () => {
  it('over many rounds, every coordinate’s accumulated gradient is transmitted (sent + residual = Σ grads)', () => {
    const n = 2000;
    const rounds = 300;
    const codec = new TopkCodec(0.01);
    const ef = new ErrorFeedback(n);
    const sent = new Float64Array(n);
    const total = new Float64Array(n);
    const buf = new Uint8Array(codec.payloadBytes(n));
    const out = new Float32Array(n);
    const r = rng(5);
    let maxResidual = 0;
    for (let t = 0; t < rounds; t++) {
      // Each coordinate has a small persistent drift plus noise: without feedback most would never be sent.
      const g = new Float32Array(n);
      for (let i = 0; i < n; i++) g[i] = 1e-3 * ((i % 7) - 3) + (r() - 0.5) * 1e-3;
      for (let i = 0; i < n; i++) total[i] += g[i];
      const c = ef.compensate(g);
      codec.encode(c, buf);
      ef.sent(0, codec.indices(buf, n));
      ef.commit(0, n, true);
      codec.decode(buf, n, out, 0);
      for (let i = 0; i < n; i++) sent[i] += out[i];
      for (let i = 0; i < n; i++) maxResidual = Math.max(maxResidual, Math.abs(ef.residual[i]));
    }
    for (let i = 0; i < n; i++) {
      // Conservation, up to float32 rounding of the running residual.
      expect(Math.abs(sent[i] + ef.residual[i] - total[i])).toBeLessThan(1e-4 * rounds * 1e-2 + 1e-5);
    }
    // Every coordinate with persistent drift was transmitted, and the residual stays bounded.
    const transmitted = Array.from(sent).filter((x, i) => i % 7 === 3 || x !== 0).length;
    expect(transmitted).toBe(n);
    expect(maxResidual).toBeLessThan(0.5);
    const driftSent = Array.from(sent).map((x, i) => x / total[i]).filter((_, i) => i % 7 !== 3);
    // The residual is bounded while Σ grads grows linearly, so sent/total → 1 with more rounds.
    for (const ratio of driftSent) expect(ratio).toBeGreaterThan(0.5);
  });
  it('runs in WebAssembly SIMD here, with the same bits as the TypeScript loop over rounds and ragged sizes', () => {
    for (const n of [1, 3, 4, 5, 32 * 1024 + 3, 100_001]) {
      const a = new ErrorFeedback(n);
      const b = new ErrorFeedback(n, { simd: false });
      expect(a.accelerated).toBe(true);
      expect(b.accelerated).toBe(false);
      const codec = new TopkCodec(0.05);
      const buf = new Uint8Array(codec.payloadBytes(n));
      for (let t = 0; t < 4; t++) {
        // An offset view, as a runner's flat gradient may be; values over many decades.
        const g = sample(n + 1, 31 * n + t).subarray(1);
        const ca = a.compensate(g);
        const cb = b.compensate(g);
        expect(Buffer.compare(new Uint8Array(ca.buffer, ca.byteOffset, ca.byteLength), new Uint8Array(cb.buffer, cb.byteOffset, cb.byteLength)), `n=${n} t=${t}`).toBe(0);
        codec.encode(ca, buf);
        for (const ef of [a, b]) {
          ef.sent(0, codec.indices(buf, n));
          ef.commit(0, n, t !== 2);
        }
        expect(Array.from(a.residual)).toEqual(Array.from(b.residual));
      }
    }
    expect(() => new ErrorFeedback(4).compensate(new Float32Array(3))).toThrow(/3 elements, expected 4/);
  });
  it('a failed round commits nothing: the residual is unchanged', () => {
    const ef = new ErrorFeedback(4);
    ef.residual.set([1, 2, 3, 4]);
    ef.compensate(Float32Array.from([1, 1, 1, 1]));
    ef.sent(0, Uint32Array.from([3]));
    expect(Array.from(ef.residual)).toEqual([1, 2, 3, 4]);
    ef.commit(0, 4, true);
    expect(Array.from(ef.residual)).toEqual([2, 3, 4, 0]);
    ef.compensate(Float32Array.from([0, 0, 0, 0]));
    ef.sent(0, Uint32Array.from([2]));
    ef.commit(0, 4, false); // this member was not counted: nothing was transmitted
    expect(Array.from(ef.residual)).toEqual([2, 3, 4, 0]);
  });
});
