/**
 * `npm run bench codec-work [-- --P 25M --K 2,4,8 --codecs fp32,fp16,bf16,int8,topk --reps 5]`
 *
 * The codec work one member does in one round of the round protocol, on one thread, without
 * NATS: what a round costs a member's JS thread before a single byte moves. Per round a member
 * encodes its whole gradient (P elements), validates and sums the K contributions to the shards
 * it owns (P/K each, float64), divides and encodes those shards' mean (P/K), and validates and
 * decodes every shard's gather (P). Each step runs chunk by chunk, in the exchange's default
 * chunk size, through the same Codec calls as round-exchange.ts. Next to it: one plain copy of P
 * float32 (`Float32Array#set`), the memory's pace on this machine. topk runs its own owner path:
 * the sum and mean on the contributions' entries only (`sumMeanSparse`, here over K copies of one
 * payload, so the union of supports is one member's), then a sparse gather.
 *
 * The last column is the clipped mean's extra owner work (the job default; clipping.ts): the
 * norm of each of the K contributions to the owned shards, not in the total.
 *
 * Median of `--reps` after one warm-up. This is the floor of a member's CPU per round that the
 * loopback bench (`npm run bench exchange`) cannot go below while the codec runs on the thread
 * that also does the NATS I/O.
 */
import { createCodec, parseCodecSpec, Sparse32Codec, SparseEntries, TopkCodec } from '../codecs/index.js';
import type { Codec, CodecSpec } from '../codecs/codec.js';
import { contributionNorm, type NormScratch } from '../clipping.js';
import { arg, median, parseCount } from './args.js';

const P = parseCount(arg('P', '25M'));
const Ks = arg('K', '2,4,8').split(',').map(Number);
const specs = arg('codecs', 'fp32,fp16,bf16,int8,topk').split(',').map(parseCodecSpec);
const reps = Number(arg('reps', '5'));
/** The exchange's default message size (round-exchange.ts `chunkBytes`) less header room. */
const CHUNK_BYTES = 512 * 1024 - 1024;

function timed(fn: () => void): number {
  fn();
  const xs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

/** A gradient-like vector: mostly small values, a few larger ones, deterministic. */
function gradient(n: number): Float32Array {
  const g = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    g[i] = ((s / 2 ** 32 - 0.5) * 0.02) / (1 + (i % 97 === 0 ? 0 : 9));
  }
  return g;
}

interface Steps {
  encode: number;
  sum: number;
  mean: number;
  decode: number;
  /** The clipped mean's extra owner work: the norm of each of the K contributions to the owned shards. */
  norms: number;
}

function measure(spec: CodecSpec, K: number, grad: Float32Array, out: Float32Array): Steps {
  const codec: Codec = createCodec(spec);
  const ce = codec.elementsFor(CHUNK_BYTES);
  const shard = Math.floor(P / K);
  const chunks = (n: number) => Math.ceil(n / ce);
  // One message's payload per chunk of a shard, as the owner and the gathering members hold them.
  const encoded = Array.from({ length: chunks(shard) }, (_, c) => {
    const len = Math.min(ce, shard - c * ce);
    const dst = new Uint8Array(codec.payloadBytes(len));
    codec.encode(grad.subarray(c * ce, c * ce + len), dst);
    return { len, dst };
  });
  const scratch = new Uint8Array(codec.payloadBytes(ce));
  // The clipped mean (the job default): each contribution's norm, as round-exchange.ts takes it.
  const normScratch: NormScratch = { values: new Float32Array(0) };
  const chunkList = encoded.map(({ len, dst }) => ({ payload: dst, length: len }));
  const norms = timed(() => {
    for (let j = 0; j < K; j++) contributionNorm(codec, chunkList, normScratch);
  });
  const acc = codec.newAccumulator?.(ce) ?? new Float64Array(ce);
  const mean = new Float32Array(ce);

  // Encode the whole gradient, chunk by chunk (every shard, one's own included).
  const encode = timed(() => {
    for (let o = 0; o < P; o += ce) codec.encode(grad.subarray(o, Math.min(P, o + ce)), scratch.subarray(0, codec.payloadBytes(Math.min(ce, P - o))));
  });
  const total = Array.from({ length: K }, (_, j) => 100 + j).reduce((x, y) => x + y, 0);
  if (codec instanceof TopkCodec) {
    // topk as the exchange runs it: validate, then the sum and mean on the contributions'
    // entries only (sumMeanSparse), then the gather of the mean, sparse (here: its union of
    // supports is one member's, K copies of the same gradient).
    const entries = new SparseEntries();
    const sparseAcc = new Float64Array(ce);
    const sum = timed(() => {
      entries.count = 0;
      for (const [c, { len, dst }] of encoded.entries()) {
        for (let j = 1; j < K; j++) if (codec.validate(dst, len) !== null) throw new Error('invalid payload');
        codec.sumMeanSparse(Array.from({ length: K }, (_, j) => ({ payload: dst, weight: 100 + j })), len, total, c * ce, sparseAcc, entries);
      }
    });
    const meanMs = timed(() => Sparse32Codec.encodeEntries(entries, 0, entries.count, 0, new Uint8Array(entries.count * 8)));
    const decode = timed(() => {
      for (let s = 0; s < K; s++) for (const [c, { len, dst }] of encoded.entries()) codec.decode(dst, len, out, s * shard + c * ce);
    });
    return { encode, sum, mean: meanMs, decode, norms };
  }
  // The owned shards (P/K in all): validate the K − 1 received contributions, sum all K.
  const sum = timed(() => {
    for (const { len, dst } of encoded) {
      const a = acc.subarray(0, len);
      a.fill(0);
      for (let j = 0; j < K; j++) {
        if (j > 0 && codec.validate(dst, len) !== null) throw new Error('invalid payload');
        codec.accumulate(dst, len, a, 0, 100 + j);
      }
    }
  });
  // Their mean, encoded for the gather.
  const meanMs = timed(() => {
    for (const { len } of encoded) {
      const a = acc.subarray(0, len);
      const dst = scratch.subarray(0, codec.payloadBytes(len));
      if (codec.encodeMean?.(a, total, dst) != null) continue;
      const m = mean.subarray(0, len);
      for (let i = 0; i < len; i++) m[i] = a[i] / total;
      codec.encode(m, dst);
    }
  });
  // Every shard's gather (K shards' worth of P/K): validate the K − 1 received, decode all.
  const decode = timed(() => {
    for (let s = 0; s < K; s++) {
      for (let c = 0; c < encoded.length; c++) {
        const { len, dst } = encoded[c];
        if (s > 0 && codec.validate(dst, len) !== null) throw new Error('invalid payload');
        codec.decode(dst, len, out, s * shard + c * ce);
      }
    }
  });
  return { encode, sum, mean: meanMs, decode, norms };
}

const grad = gradient(P);
const out = new Float32Array(P);
const copyMs = timed(() => out.set(grad));
console.log(`P = ${P}; one copy of P float32 (Float32Array#set): ${copyMs.toFixed(1)} ms (${((P * 4 * 2) / copyMs / 1e6).toFixed(1)} GB/s read + written)`);
console.log('');
console.log('| K | codec | encode P ms | validate + sum owned ms | mean + encode owned ms | validate + decode P ms | total ms | total / copy of P | + norms owned ms (clipped mean) |');
console.log('|---|---|---|---|---|---|---|---|---|');
const totals = new Map<string, number>();
for (const K of Ks) {
  for (const spec of specs) {
    const s = measure(spec, K, grad, out);
    const total = s.encode + s.sum + s.mean + s.decode;
    totals.set(`${K}/${spec.name}`, total);
    console.log(`| ${K} | ${spec.name} | ${s.encode.toFixed(1)} | ${s.sum.toFixed(1)} | ${s.mean.toFixed(1)} | ${s.decode.toFixed(1)} | ${total.toFixed(1)} | ${(total / copyMs).toFixed(2)} | ${s.norms.toFixed(1)} |`);
  }
}
if (specs.some((s) => s.name === 'int8') && specs.some((s) => s.name === 'fp32')) {
  console.log('');
  for (const K of Ks) console.log(`K = ${K}: int8 codec work / fp32 codec work = ${(totals.get(`${K}/int8`)! / totals.get(`${K}/fp32`)!).toFixed(2)}`);
}
