/** Opening dataset files by format, with the size limit applied to each file. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { DatasetFormatError } from './errors.js';
import { ByteSource, limitBytes, maybeGunzip } from './formats/byte-reader.js';
import { parseCsv } from './formats/csv.js';
import { parseIdx } from './formats/idx.js';
import { parseNpy } from './formats/npy.js';
import { ParsedSource } from './formats/types.js';

export type DatasetFormat = 'idx' | 'csv' | 'npy';
export const DATASET_FORMATS: readonly DatasetFormat[] = ['idx', 'csv', 'npy'];

/** Default per-file limit: 4 GiB. */
export const DEFAULT_MAX_FILE_BYTES = 4 * 1024 ** 3;

export interface SourceOptions {
  /** CSV: the label column (default `label`). */
  labelColumn?: string;
  /** Largest accepted file (compressed and decompressed), default 4 GiB. */
  maxFileBytes?: number;
}

export interface NamedSource {
  name: string;
  bytes: ByteSource;
}

/** How many files each format takes: IDX and NPY `[features/images, labels]`, CSV `[table]`. */
export function filesPerSource(format: DatasetFormat): number {
  return format === 'csv' ? 1 : 2;
}

/** Parses one source (one split's files) of `format`. */
export async function openSource(format: DatasetFormat, files: NamedSource[], opts: SourceOptions = {}): Promise<ParsedSource> {
  const want = filesPerSource(format);
  if (files.length !== want) {
    const which = format === 'csv' ? 'one CSV file' : format === 'idx' ? 'two files: images, labels' : 'two files: features, labels';
    throw new DatasetFormatError(`format ${format} takes ${which}; got ${files.length}`);
  }
  const limit = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  // The limit applies to the bytes received and, for gzip, to the bytes they expand to.
  // (The parsers' own gunzip step then sees non-gzip bytes and passes them through.)
  const lim = (f: NamedSource) => limitBytes(maybeGunzip(limitBytes(f.bytes, limit, f.name), f.name), limit, `${f.name} (decompressed)`);
  switch (format) {
    case 'idx':
      return parseIdx(lim(files[0]), lim(files[1]), { imagesName: files[0].name, labelsName: files[1].name });
    case 'npy':
      return parseNpy(lim(files[0]), lim(files[1]), { featuresName: files[0].name, labelsName: files[1].name });
    case 'csv':
      return parseCsv(lim(files[0]), { labelColumn: opts.labelColumn, name: files[0].name });
    default:
      throw new DatasetFormatError(`unknown format ${JSON.stringify(format)} (expected idx, csv or npy)`);
  }
}

/** Opens files on disk as named sources; a file over the limit fails before any parsing. */
export async function fileSources(paths: string[], opts: SourceOptions = {}): Promise<NamedSource[]> {
  const limit = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const out: NamedSource[] = [];
  for (const p of paths) {
    const s = await stat(p);
    const name = basename(p);
    if (s.size > limit) throw new DatasetFormatError(`${name} is ${s.size} bytes, larger than the limit of ${limit} bytes`, `${name}, byte ${limit}`);
    if (s.size === 0) throw new DatasetFormatError(`${name} is empty`, `${name}, byte 0`);
    out.push({ name, bytes: createReadStream(p, { highWaterMark: 1 << 20 }) });
  }
  return out;
}
