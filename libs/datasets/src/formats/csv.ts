/**
 * CSV with a header row: one column (named by the user, default `label`) holds the class
 * label (a name or an integer), every other column is a numeric feature. Streams line by line.
 * Positions in errors are 1-based lines (the header is line 1) and columns.
 */
import { DatasetFormatError } from '../errors.js';
import { ByteSource, maybeGunzip } from './byte-reader.js';
import { BATCH_BYTES, ParsedSource, RecordBatch } from './types.js';

export interface CsvOptions {
  /** Name of the label column (default `label`). */
  labelColumn?: string;
  /** Field delimiter (default `,`). */
  delimiter?: string;
  /** File name for messages. */
  name?: string;
}

const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

function splitFields(line: string, delimiter: string): string[] {
  if (!line.includes('"')) return line.split(delimiter).map((f) => f.trim());
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === delimiter) {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  out.push(cur.trim());
  return out;
}

async function* lines(src: ByteSource): AsyncIterable<string> {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let rest = '';
  for await (const chunk of src) {
    rest += decoder.decode(chunk, { stream: true });
    let nl: number;
    let start = 0;
    while ((nl = rest.indexOf('\n', start)) >= 0) {
      let line = rest.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      yield line;
      start = nl + 1;
    }
    rest = rest.slice(start);
  }
  rest += decoder.decode();
  if (rest.endsWith('\r')) rest = rest.slice(0, -1);
  if (rest.length > 0) yield rest;
}

/** Parses a CSV file with a header row into record batches (labels as strings). */
export async function parseCsv(src: ByteSource, opts: CsvOptions = {}): Promise<ParsedSource> {
  const what = opts.name ?? 'CSV file';
  const delimiter = opts.delimiter ?? ',';
  const labelColumn = opts.labelColumn ?? 'label';
  const it = lines(maybeGunzip(src, what))[Symbol.asyncIterator]();
  let lineNo = 0;
  let first = await it.next();
  lineNo++;
  while (!first.done && first.value.trim() === '') {
    first = await it.next();
    lineNo++;
  }
  if (first.done) throw new DatasetFormatError(`${what} is empty`, `${what}, line 1`);
  const header = splitFields(first.value.replace(/^\uFEFF/, ''), delimiter);
  const labelIdx = header.indexOf(labelColumn);
  if (labelIdx < 0) {
    throw new DatasetFormatError(
      `${what}: no label column ${JSON.stringify(labelColumn)} in the header (columns: ${header.join(', ')})`,
      `${what}, line ${lineNo}`,
    );
  }
  const featureNames = header.filter((_, i) => i !== labelIdx);
  const dim = featureNames.length;
  if (dim === 0) throw new DatasetFormatError(`${what}: the header has no feature columns besides ${JSON.stringify(labelColumn)}`, `${what}, line ${lineNo}`);
  const width = header.length;
  // At most 4096 rows per batch: text parsing is slower per value than binary formats, and the
  // importer yields to the event loop between batches.
  const perBatch = Math.max(1, Math.min(4096, Math.floor(BATCH_BYTES / (dim * 4))));
  const headerLine = lineNo;

  async function* batches(): AsyncIterable<RecordBatch> {
    let line = headerLine;
    let item = 0;
    let features = new Float32Array(perBatch * dim);
    let labels: string[] = [];
    let blankAt = 0;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      line++;
      const text = r.value;
      if (text.trim() === '') {
        if (blankAt === 0) blankAt = line;
        continue;
      }
      if (blankAt !== 0) throw new DatasetFormatError(`${what}: blank line inside the data`, `${what}, line ${blankAt}`);
      const fields = splitFields(text, delimiter);
      if (fields.length !== width) {
        throw new DatasetFormatError(
          `${what}: ragged row, expected ${width} fields as in the header, found ${fields.length}`,
          `${what}, line ${line}`,
        );
      }
      const base = labels.length * dim;
      let k = 0;
      for (let c = 0; c < width; c++) {
        const f = fields[c];
        if (c === labelIdx) {
          if (f === '') throw new DatasetFormatError(`${what}: empty label`, `${what}, line ${line}, column ${c + 1} (${header[c]})`);
          continue;
        }
        const x = f === '' ? NaN : Number(f);
        if (!Number.isFinite(x)) {
          const why = NON_FINITE.test(f) || x === Infinity || x === -Infinity ? 'is not finite' : 'is not a number';
          throw new DatasetFormatError(`${what}: value ${JSON.stringify(f)} ${why}`, `${what}, line ${line}, column ${c + 1} (${header[c]})`);
        }
        features[base + k++] = x;
      }
      labels.push(fields[labelIdx]);
      if (labels.length === perBatch) {
        yield { count: labels.length, features, labels, firstItem: item };
        item += labels.length;
        features = new Float32Array(perBatch * dim);
        labels = [];
      }
    }
    if (labels.length > 0) yield { count: labels.length, features: features.subarray(0, labels.length * dim), labels, firstItem: item };
    else if (item === 0) throw new DatasetFormatError(`${what} has a header but no data rows`, `${what}, line ${headerLine + 1}`);
  }
  return { featureShape: [dim], sourceDtype: 'float64', declaredCount: null, batches: batches(), featureNames };
}
