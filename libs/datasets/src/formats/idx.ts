/**
 * IDX (the MNIST family): a 4-byte magic `00 00 TT NN` (TT element type, NN dimension count),
 * NN big-endian uint32 sizes, then big-endian elements. Images and labels come in two files
 * whose first dimension must agree. Either may be gzipped.
 */
import { DatasetFormatError } from '../errors.js';
import { ByteReader, ByteSource, maybeGunzip } from './byte-reader.js';
import { BATCH_BYTES, ParsedSource, RecordBatch } from './types.js';

const IDX_TYPES: Record<number, { name: string; size: number }> = {
  0x08: { name: 'uint8', size: 1 },
  0x09: { name: 'int8', size: 1 },
  0x0b: { name: 'int16', size: 2 },
  0x0c: { name: 'int32', size: 4 },
  0x0d: { name: 'float32', size: 4 },
  0x0e: { name: 'float64', size: 8 },
};

interface IdxHeader {
  type: number;
  dims: number[];
}

async function readHeader(r: ByteReader, allowed: number[]): Promise<IdxHeader> {
  const magic = await r.readExactly(4, 'the magic number');
  const hex = Array.from(magic, (b) => b.toString(16).padStart(2, '0')).join('');
  if (magic[0] !== 0 || magic[1] !== 0 || !(magic[2] in IDX_TYPES) || magic[3] === 0) {
    throw new DatasetFormatError(`${r.what}: wrong magic number 0x${hex}, expected 0x0000TTNN (an IDX file)`, `${r.what}, byte 0`);
  }
  const type = magic[2];
  if (!allowed.includes(type)) {
    const names = allowed.map((t) => IDX_TYPES[t].name).join(', ');
    throw new DatasetFormatError(
      `${r.what}: element type ${IDX_TYPES[type].name} (0x${type.toString(16)}) is not supported here; supported: ${names}`,
      `${r.what}, byte 2`,
    );
  }
  const nd = magic[3];
  const raw = await r.readExactly(4 * nd, 'the dimension sizes');
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) {
    const d = view.getUint32(i * 4, false);
    if (d === 0 && i > 0) throw new DatasetFormatError(`${r.what}: dimension ${i} is 0`, `${r.what}, byte ${4 + i * 4}`);
    dims.push(d);
  }
  return { type, dims };
}

export interface IdxOptions {
  imagesName?: string;
  labelsName?: string;
}

/** Parses an IDX images file and an IDX labels file into record batches. */
export async function parseIdx(images: ByteSource, labels: ByteSource, opts: IdxOptions = {}): Promise<ParsedSource> {
  const ri = new ByteReader(maybeGunzip(images, opts.imagesName ?? 'images file'), opts.imagesName ?? 'images file');
  const rl = new ByteReader(maybeGunzip(labels, opts.labelsName ?? 'labels file'), opts.labelsName ?? 'labels file');
  if (await ri.atEnd()) throw new DatasetFormatError(`${ri.what} is empty`, `${ri.what}, byte 0`);
  if (await rl.atEnd()) throw new DatasetFormatError(`${rl.what} is empty`, `${rl.what}, byte 0`);
  const hi = await readHeader(ri, [0x08, 0x0d]);
  const hl = await readHeader(rl, [0x08, 0x0c]);
  if (hi.dims.length < 2) {
    throw new DatasetFormatError(`${ri.what}: expected at least 2 dimensions (count, features…), found ${hi.dims.length}`, `${ri.what}, byte 3`);
  }
  if (hl.dims.length !== 1) {
    throw new DatasetFormatError(`${rl.what}: expected 1 dimension (count), found ${hl.dims.length}`, `${rl.what}, byte 3`);
  }
  const count = hi.dims[0];
  if (hl.dims[0] !== count) {
    throw new DatasetFormatError(
      `count mismatch: ${ri.what} has ${count} images, ${rl.what} has ${hl.dims[0]} labels`,
      `${rl.what}, byte 4`,
    );
  }
  if (count === 0) throw new DatasetFormatError(`${ri.what} declares 0 samples`, `${ri.what}, byte 4`);
  const featureShape = hi.dims.slice(1);
  const dim = featureShape.reduce((a, b) => a * b, 1);
  const isize = IDX_TYPES[hi.type].size;
  const lsize = IDX_TYPES[hl.type].size;
  const recordBytes = dim * isize;
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / (dim * 4)));

  async function* batches(): AsyncIterable<RecordBatch> {
    let item = 0;
    while (item < count) {
      const n = Math.min(perBatch, count - item);
      const raw = await ri.readExactly(n * recordBytes, `images ${item}..${item + n - 1}`);
      const rawL = await rl.readExactly(n * lsize, `labels ${item}..${item + n - 1}`);
      const features = new Float32Array(n * dim);
      if (hi.type === 0x08) {
        for (let i = 0; i < features.length; i++) features[i] = raw[i];
      } else {
        const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        for (let i = 0; i < features.length; i++) {
          const x = v.getFloat32(i * 4, false);
          if (!Number.isFinite(x)) {
            const s = item + Math.floor(i / dim);
            throw new DatasetFormatError(`${ri.what}: image ${s} has a non-finite value ${x}`, `${ri.what}, item ${s}, byte ${ri.offset - raw.byteLength + i * 4}`);
          }
          features[i] = x;
        }
      }
      const labelsOut = new Int32Array(n);
      if (hl.type === 0x08) labelsOut.set(rawL);
      else {
        const v = new DataView(rawL.buffer, rawL.byteOffset, rawL.byteLength);
        for (let i = 0; i < n; i++) labelsOut[i] = v.getInt32(i * 4, false);
      }
      yield { count: n, features, labels: labelsOut, firstItem: item };
      item += n;
    }
    for (const r of [ri, rl]) {
      if (!(await r.atEnd())) {
        const at = r.offset;
        const extra = await r.drainCount();
        throw new DatasetFormatError(`${r.what} has ${extra} bytes after its ${count} declared items`, `${r.what}, byte ${at}`);
      }
    }
  }
  return { featureShape, sourceDtype: IDX_TYPES[hi.type].name, declaredCount: count, batches: batches() };
}
