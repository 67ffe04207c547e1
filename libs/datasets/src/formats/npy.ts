/**
 * NPY (numpy's .npy): magic `\x93NUMPY`, version, a Python-literal header dict
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (N, …)}`, then the raw array in C order.
 * A features array (N, …) and a labels array (N,) come in two files.
 */
import { DatasetFormatError } from '../errors.js';
import { ByteReader, ByteSource, maybeGunzip } from './byte-reader.js';
import { BATCH_BYTES, ParsedSource, RecordBatch } from './types.js';

interface NpyDtype {
  kind: 'f' | 'i' | 'u';
  size: number;
  little: boolean;
  name: string;
}

interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
}

const SUPPORTED: Record<string, number[]> = { f: [4, 8], i: [1, 2, 4, 8], u: [1, 2, 4] };

function parseDescr(descr: string, what: string, at: string): NpyDtype {
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!m || !(m[2] in SUPPORTED) || !SUPPORTED[m[2]].includes(Number(m[3]))) {
    throw new DatasetFormatError(
      `${what}: dtype ${JSON.stringify(descr)} is not supported (supported: float32/64, int8/16/32/64, uint8/16/32, either endianness)`,
      at,
    );
  }
  const kind = m[2] as NpyDtype['kind'];
  const size = Number(m[3]);
  const names = { f: 'float', i: 'int', u: 'uint' };
  return { kind, size, little: m[1] !== '>', name: `${names[kind]}${size * 8}` };
}

async function readHeader(r: ByteReader): Promise<NpyHeader> {
  const magic = await r.readExactly(8, 'the NPY magic and version');
  const expected = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (!expected.every((b, i) => magic[i] === b)) {
    throw new DatasetFormatError(`${r.what}: wrong magic number, expected \\x93NUMPY (an .npy file)`, `${r.what}, byte 0`);
  }
  const major = magic[6];
  if (major < 1 || major > 3) throw new DatasetFormatError(`${r.what}: NPY version ${major} is not supported`, `${r.what}, byte 6`);
  const lenBytes = await r.readExactly(major === 1 ? 2 : 4, 'the header length');
  const lv = new DataView(lenBytes.buffer, lenBytes.byteOffset, lenBytes.byteLength);
  const hlen = major === 1 ? lv.getUint16(0, true) : lv.getUint32(0, true);
  if (hlen > 1 << 20) throw new DatasetFormatError(`${r.what}: header length ${hlen} is implausible`, `${r.what}, byte 8`);
  const headerAt = r.offset;
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(await r.readExactly(hlen, 'the header'));
  const at = `${r.what}, byte ${headerAt}`;
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(text);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) {
    throw new DatasetFormatError(`${r.what}: header is not a dict with descr, fortran_order and shape: ${text.trim()}`, at);
  }
  if (fortran[1] === 'True') {
    throw new DatasetFormatError(`${r.what}: Fortran-ordered arrays are not supported (save with numpy.ascontiguousarray)`, at);
  }
  const dims = shape[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new DatasetFormatError(`${r.what}: bad shape (${shape[1]})`, at);
  return { dtype: parseDescr(descr[1], r.what, at), shape: dims };
}

function reader(dt: NpyDtype): (v: DataView, off: number) => number {
  const le = dt.little;
  switch (`${dt.kind}${dt.size}`) {
    case 'f4': return (v, o) => v.getFloat32(o, le);
    case 'f8': return (v, o) => v.getFloat64(o, le);
    case 'i1': return (v, o) => v.getInt8(o);
    case 'i2': return (v, o) => v.getInt16(o, le);
    case 'i4': return (v, o) => v.getInt32(o, le);
    case 'i8': return (v, o) => Number(v.getBigInt64(o, le));
    case 'u1': return (v, o) => v.getUint8(o);
    case 'u2': return (v, o) => v.getUint16(o, le);
    default: return (v, o) => v.getUint32(o, le);
  }
}

export interface NpyOptions {
  featuresName?: string;
  labelsName?: string;
}

/** Parses a features .npy (N, …) and a labels .npy (N,) of integer class labels. */
export async function parseNpy(featuresSrc: ByteSource, labelsSrc: ByteSource, opts: NpyOptions = {}): Promise<ParsedSource> {
  const rf = new ByteReader(maybeGunzip(featuresSrc, opts.featuresName ?? 'features file'), opts.featuresName ?? 'features file');
  const rl = new ByteReader(maybeGunzip(labelsSrc, opts.labelsName ?? 'labels file'), opts.labelsName ?? 'labels file');
  if (await rf.atEnd()) throw new DatasetFormatError(`${rf.what} is empty`, `${rf.what}, byte 0`);
  if (await rl.atEnd()) throw new DatasetFormatError(`${rl.what} is empty`, `${rl.what}, byte 0`);
  const hf = await readHeader(rf);
  const hl = await readHeader(rl);
  if (hf.shape.length < 2) throw new DatasetFormatError(`${rf.what}: expected shape (N, features…), found (${hf.shape.join(', ')})`, `${rf.what}, byte 10`);
  if (hl.shape.length !== 1) throw new DatasetFormatError(`${rl.what}: expected shape (N,), found (${hl.shape.join(', ')})`, `${rl.what}, byte 10`);
  if (hl.dtype.kind === 'f') throw new DatasetFormatError(`${rl.what}: labels must be integers, found ${hl.dtype.name}`, `${rl.what}, byte 10`);
  const count = hf.shape[0];
  if (hl.shape[0] !== count) {
    throw new DatasetFormatError(`count mismatch: ${rf.what} has ${count} samples, ${rl.what} has ${hl.shape[0]} labels`, `${rl.what}, byte 10`);
  }
  if (count === 0) throw new DatasetFormatError(`${rf.what} has 0 samples`, `${rf.what}, byte 10`);
  const featureShape = hf.shape.slice(1);
  const dim = featureShape.reduce((a, b) => a * b, 1);
  const fsize = hf.dtype.size;
  const lsize = hl.dtype.size;
  const readF = reader(hf.dtype);
  const readL = reader(hl.dtype);
  const fastF32 = hf.dtype.kind === 'f' && fsize === 4 && hf.dtype.little;
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / (dim * 4)));

  async function* batches(): AsyncIterable<RecordBatch> {
    let item = 0;
    while (item < count) {
      const n = Math.min(perBatch, count - item);
      const raw = await rf.readExactly(n * dim * fsize, `samples ${item}..${item + n - 1}`);
      const rawAt = rf.offset - raw.byteLength;
      const rawL = await rl.readExactly(n * lsize, `labels ${item}..${item + n - 1}`);
      let features: Float32Array;
      if (fastF32) {
        features = new Float32Array(n * dim);
        new Uint8Array(features.buffer).set(raw);
      } else {
        features = new Float32Array(n * dim);
        const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        for (let i = 0; i < features.length; i++) features[i] = readF(v, i * fsize);
      }
      for (let i = 0; i < features.length; i++) {
        if (!Number.isFinite(features[i])) {
          const s = item + Math.floor(i / dim);
          throw new DatasetFormatError(`${rf.what}: sample ${s} has a non-finite value ${features[i]}`, `${rf.what}, item ${s}, byte ${rawAt + i * fsize}`);
        }
      }
      const labels = new Int32Array(n);
      const lv = new DataView(rawL.buffer, rawL.byteOffset, rawL.byteLength);
      for (let i = 0; i < n; i++) labels[i] = readL(lv, i * lsize);
      yield { count: n, features, labels, firstItem: item };
      item += n;
    }
    for (const r of [rf, rl]) {
      if (!(await r.atEnd())) {
        const at = r.offset;
        const extra = await r.drainCount();
        throw new DatasetFormatError(`${r.what} has ${extra} bytes after its ${count} declared items`, `${r.what}, byte ${at}`);
      }
    }
  }
  return { featureShape, sourceDtype: hf.dtype.name, declaredCount: count, batches: batches() };
}

/** Encodes an .npy file (v1 header, C order); used by tests and the benchmark. */
export function npyHeader(descr: string, shape: number[]): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pre = 10;
  let padded = dict;
  while ((pre + padded.length + 1) % 64 !== 0) padded += ' ';
  padded += '\n';
  const out = new Uint8Array(pre + padded.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, padded.length, true);
  for (let i = 0; i < padded.length; i++) out[pre + i] = padded.charCodeAt(i);
  return out;
}
