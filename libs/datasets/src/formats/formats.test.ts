import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DatasetFormatError } from '../errors.js';
import { limitBytes } from './byte-reader.js';
import { parseCsv } from './csv.js';
import { parseIdx } from './idx.js';
import { npyHeader, parseNpy } from './npy.js';
import { ParsedSource, RecordBatch } from './types.js';

/** A byte source that yields `bytes` in chunks of `chunk` bytes (exercises boundaries). */
async function* src(bytes: Uint8Array, chunk = 7): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
}

async function collect(p: ParsedSource): Promise<{ features: number[]; labels: (string | number)[] }> {
  const features: number[] = [];
  const labels: (string | number)[] = [];
  for await (const b of p.batches as AsyncIterable<RecordBatch>) {
    features.push(...b.features);
    labels.push(...b.labels);
  }
  return { features, labels };
}

function idx(type: number, dims: number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const v = new DataView(out.buffer);
  out.set([0, 0, type, dims.length]);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(body, 4 + 4 * dims.length);
  return out;
}

function f32be(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setFloat32(i * 4, x, false));
  return out;
}

async function formatError(p: Promise<unknown>): Promise<DatasetFormatError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DatasetFormatError);
    return err as DatasetFormatError;
  }
  throw new Error('expected a DatasetFormatError');
}

const parseAll = async (p: Promise<ParsedSource>) => collect(await p);

describe('IDX', () => {
  const images = idx(0x08, [3, 2, 2], Uint8Array.from([0, 1, 2, 3, 10, 11, 12, 13, 255, 254, 253, 252]));
  const labels = idx(0x08, [3], Uint8Array.from([7, 0, 9]));

  it('parses uint8 images and labels', async () => {
    const p = await parseIdx(src(images), src(labels));
    expect(p.featureShape).toEqual([2, 2]);
    expect(p.sourceDtype).toBe('uint8');
    const r = await collect(p);
    expect(r.features).toEqual([0, 1, 2, 3, 10, 11, 12, 13, 255, 254, 253, 252]);
    expect(r.labels).toEqual([7, 0, 9]);
  });

  it('parses big-endian float32 images and gzipped files', async () => {
    const fimg = idx(0x0d, [2, 3], f32be([0.5, -1, 2, 3.25, 4, 5]));
    const r = await collect(await parseIdx(src(gzipSync(fimg)), src(gzipSync(idx(0x08, [2], Uint8Array.from([1, 2]))))));
    expect(r.features).toEqual([0.5, -1, 2, 3.25, 4, 5]);
    expect(r.labels).toEqual([1, 2]);
  });

  it('rejects a wrong magic number at byte 0', async () => {
    const bad = Uint8Array.from(images);
    bad[0] = 0x12;
    const e = await formatError(parseIdx(src(bad), src(labels), { imagesName: 'img.idx' }));
    expect(e.message).toMatch(/wrong magic number 0x12000803/);
    expect(e.position).toBe('img.idx, byte 0');
  });

  it('rejects an unsupported element type', async () => {
    const e = await formatError(parseIdx(src(idx(0x0b, [1, 2], new Uint8Array(4))), src(labels)));
    expect(e.message).toMatch(/int16.*not supported/);
    expect(e.position).toBe('images file, byte 2');
  });

  it('rejects a count mismatch between images and labels', async () => {
    const e = await formatError(parseIdx(src(images), src(idx(0x08, [2], Uint8Array.from([1, 2])))));
    expect(e.message).toMatch(/count mismatch: images file has 3 images, labels file has 2 labels/);
  });

  it('rejects a truncated file with the byte where it ended', async () => {
    const e = await formatError(parseAll(parseIdx(src(images.subarray(0, images.length - 2)), src(labels))));
    expect(e.message).toMatch(/ended early/);
    expect(e.position).toBe('images file, byte 26');
  });

  it('rejects trailing bytes, empty files and non-finite floats', async () => {
    const extra = new Uint8Array([...labels, 1, 2]);
    expect((await formatError(parseAll(parseIdx(src(images), src(extra))))).message).toMatch(/2 bytes after its 3 declared items/);
    expect((await formatError(parseIdx(src(new Uint8Array(0)), src(labels)))).message).toMatch(/images file is empty/);
    const nan = idx(0x0d, [1, 2], f32be([1, NaN]));
    const e = await formatError(parseAll(parseIdx(src(nan), src(idx(0x08, [1], Uint8Array.from([0]))))));
    expect(e.message).toMatch(/non-finite/);
    expect(e.position).toBe('images file, item 0, byte 16');
  });

  it('fails once a file is over the size limit', async () => {
    const e = await formatError(parseAll(parseIdx(limitBytes(src(images), 20, 'img'), src(labels))));
    expect(e.message).toMatch(/img is larger than the limit of 20 bytes/);
  });
});

describe('CSV', () => {
  const enc = (s: string) => new TextEncoder().encode(s);

  it('parses a header, a named label column and numeric features (CRLF, quotes)', async () => {
    const p = await parseCsv(src(enc('a,species,b\r\n1.5,setosa,2\r\n-3,"virginica",4e2\r\n\r\n')), { labelColumn: 'species' });
    expect(p.featureShape).toEqual([2]);
    expect(p.featureNames).toEqual(['a', 'b']);
    const r = await collect(p);
    expect(r.features).toEqual([1.5, 2, -3, 400]);
    expect(r.labels).toEqual(['setosa', 'virginica']);
  });

  it('names line and column of a ragged row', async () => {
    const e = await formatError(parseAll(parseCsv(src(enc('x,y,label\n1,2,a\n3,b\n')), { name: 'd.csv' })));
    expect(e.message).toMatch(/ragged row, expected 3 fields as in the header, found 2/);
    expect(e.position).toBe('d.csv, line 3');
  });

  it('names line and column of non-numeric and non-finite values', async () => {
    const e1 = await formatError(parseAll(parseCsv(src(enc('x,y,label\n1,2,a\n3,abc,b\n')))));
    expect(e1.message).toMatch(/"abc" is not a number/);
    expect(e1.position).toBe('CSV file, line 3, column 2 (y)');
    const e2 = await formatError(parseAll(parseCsv(src(enc('x,y,label\n1,NaN,a\n')))));
    expect(e2.message).toMatch(/"NaN" is not finite/);
    expect(e2.position).toBe('CSV file, line 2, column 2 (y)');
    const e3 = await formatError(parseAll(parseCsv(src(enc('x,y,label\nInfinity,1,a\n')))));
    expect(e3.message).toMatch(/is not finite/);
    const e4 = await formatError(parseAll(parseCsv(src(enc('x,y,label\n,1,a\n')))));
    expect(e4.message).toMatch(/"" is not a number/);
  });

  it('rejects a missing label column, an empty file and a header without rows', async () => {
    expect((await formatError(parseCsv(src(enc('x,y\n1,2\n')), { labelColumn: 'cls' }))).message).toMatch(/no label column "cls".*columns: x, y/);
    expect((await formatError(parseCsv(src(new Uint8Array(0))))).message).toMatch(/is empty/);
    expect((await formatError(parseAll(parseCsv(src(enc('x,label\n')))))).message).toMatch(/no data rows/);
  });
});

describe('NPY', () => {
  function npy(descr: string, shape: number[], body: Uint8Array): Uint8Array {
    const h = npyHeader(descr, shape);
    return new Uint8Array([...h, ...body]);
  }
  const f4le = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);
  const labels = npy('<i8', [2], new Uint8Array(new BigInt64Array([3n, 1n]).buffer));

  it('parses little-endian float32 features and int64 labels', async () => {
    const p = await parseNpy(src(npy('<f4', [2, 3], f4le([1, 2, 3, 4, 5, 6.5]))), src(labels));
    expect(p.featureShape).toEqual([3]);
    const r = await collect(p);
    expect(r.features).toEqual([1, 2, 3, 4, 5, 6.5]);
    expect(r.labels).toEqual([3, 1]);
  });

  it('parses big-endian float64 and uint8 labels', async () => {
    const body = new Uint8Array(16);
    const v = new DataView(body.buffer);
    v.setFloat64(0, 1.25, false);
    v.setFloat64(8, -2, false);
    const r = await collect(await parseNpy(src(npy('>f8', [2, 1], body)), src(npy('|u1', [2], Uint8Array.from([0, 4])))));
    expect(r.features).toEqual([1.25, -2]);
    expect(r.labels).toEqual([0, 4]);
  });

  it('rejects unsupported dtypes and Fortran order', async () => {
    const e = await formatError(parseNpy(src(npy('<c8', [2, 1], new Uint8Array(16))), src(labels), { featuresName: 'x.npy' }));
    expect(e.message).toMatch(/dtype "<c8" is not supported/);
    expect(e.position).toBe('x.npy, byte 10');
    const fortran = new TextDecoder().decode(npyHeader('<f4', [2, 1])).replace('False', 'True ');
    const e2 = await formatError(parseNpy(src(new Uint8Array([...new TextEncoder().encode(fortran).map((b, i) => (i < 10 ? npyHeader('<f4', [2, 1])[i] : b)), ...f4le([1, 2])])), src(labels)));
    expect(e2.message).toMatch(/Fortran-ordered arrays are not supported/);
  });

  it('rejects a wrong magic, a count mismatch and float labels', async () => {
    expect((await formatError(parseNpy(src(enc('hello world, not npy')), src(labels)))).message).toMatch(/wrong magic number/);
    const e = await formatError(parseNpy(src(npy('<f4', [3, 1], f4le([1, 2, 3]))), src(labels)));
    expect(e.message).toMatch(/count mismatch: features file has 3 samples, labels file has 2 labels/);
    expect((await formatError(parseNpy(src(npy('<f4', [1, 1], f4le([1]))), src(npy('<f4', [1], f4le([1])))))).message).toMatch(/labels must be integers/);
  });

  function enc(s: string) {
    return new TextEncoder().encode(s);
  }
});

describe('size limits through openSource', () => {
  it('limits the bytes a gzip file expands to', async () => {
    const { openSource } = await import('../sources.js');
    const csvText = `x,label\n${Array.from({ length: 2000 }, (_, i) => `${i},a`).join('\n')}\n`;
    const gz = gzipSync(new TextEncoder().encode(csvText));
    expect(gz.byteLength).toBeLessThan(8000);
    const e = await formatError(parseAll(openSource('csv', [{ name: 'big.csv.gz', bytes: src(gz, 4096) }], { maxFileBytes: 8000 })));
    expect(e.message).toMatch(/big\.csv\.gz \(decompressed\) is larger than the limit of 8000 bytes/);
  });
});
