/**
 * Streaming byte input for the parsers: a size limit, transparent gunzip, and a reader that
 * hands out exact byte counts while tracking the position (for error messages).
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DatasetFormatError } from '../errors.js';

/** Anything that yields bytes: a Node Readable, a web stream, an async generator. */
export type ByteSource = AsyncIterable<Uint8Array>;

/** Fails with a `DatasetFormatError` once more than `limit` bytes have come through. */
export async function* limitBytes(src: ByteSource, limit: number, what: string): ByteSource {
  let total = 0;
  for await (const chunk of src) {
    total += chunk.byteLength;
    if (total > limit) {
      throw new DatasetFormatError(`${what} is larger than the limit of ${limit} bytes`, `${what}, byte ${limit}`);
    }
    yield chunk;
  }
}

/** Passes bytes through, gunzipping them when they start with the gzip magic (1f 8b). */
export async function* maybeGunzip(src: ByteSource, what: string): ByteSource {
  const it = src[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.byteLength === 0) first = await it.next();
  if (first.done) return;
  const head = first.value;
  async function* rest(): ByteSource {
    yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (head.byteLength >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = Readable.from(rest()).pipe(createGunzip());
    try {
      for await (const chunk of gunzip) yield chunk as Uint8Array;
    } catch (err) {
      if (err instanceof DatasetFormatError) throw err;
      throw new DatasetFormatError(`${what} is not valid gzip: ${(err as Error).message}`, `${what}`);
    }
    return;
  }
  yield* rest();
}

/** Reads exact byte counts from a source; `offset` is the number of bytes consumed so far. */
export class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private done = false;
  offset = 0;

  constructor(
    src: ByteSource,
    readonly what: string,
  ) {
    this.it = src[Symbol.asyncIterator]();
  }

  /** Buffers until `n` bytes are available or the source ends; returns how many are. */
  private async fill(n: number): Promise<number> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      if (r.value.byteLength > 0) {
        this.chunks.push(r.value);
        this.buffered += r.value.byteLength;
      }
    }
    return Math.min(n, this.buffered);
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    let out: Uint8Array;
    if (first.byteLength >= n) {
      out = first.subarray(0, n);
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0];
        const k = Math.min(c.byteLength, n - at);
        out.set(c.subarray(0, k), at);
        at += k;
        if (k === c.byteLength) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    this.offset += n;
    return out;
  }

  /** Exactly `n` bytes; throws a `DatasetFormatError` naming `expecting` if the source ends first. */
  async readExactly(n: number, expecting: string): Promise<Uint8Array> {
    const have = await this.fill(n);
    if (have < n) {
      throw new DatasetFormatError(
        `${this.what} ended early: expected ${n} more bytes for ${expecting}, found ${have}`,
        `${this.what}, byte ${this.offset + have}`,
      );
    }
    return this.take(n);
  }

  /**
   * Up to `maxRecords` whole records of `recordSize` bytes (at least one unless the source
   * has ended, then an empty array). A trailing partial record is an error.
   */
  async readRecords(recordSize: number, maxRecords: number, expecting: string): Promise<Uint8Array> {
    await this.fill(recordSize);
    const records = Math.min(maxRecords, Math.floor(this.buffered / recordSize));
    if (records === 0) {
      if (this.buffered === 0) return new Uint8Array(0);
      throw new DatasetFormatError(
        `${this.what} ended inside ${expecting}: ${this.buffered} of ${recordSize} bytes`,
        `${this.what}, byte ${this.offset + this.buffered}`,
      );
    }
    return this.take(records * recordSize);
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return (await this.fill(1)) === 0;
  }

  /** Bytes the reader has pulled from its source but not yet handed out, plus what remains. */
  async drainCount(): Promise<number> {
    let n = 0;
    while ((await this.fill(1)) > 0) {
      n += this.buffered;
      this.offset += this.buffered;
      this.chunks = [];
      this.buffered = 0;
    }
    return n;
  }
}

/** Copies `bytes` into an aligned buffer when needed so typed-array views can be made on it. */
export function aligned(bytes: Uint8Array, alignment: number): Uint8Array {
  return bytes.byteOffset % alignment === 0 ? bytes : new Uint8Array(bytes);
}
