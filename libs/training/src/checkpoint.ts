/**
 * Binary checkpoint format (little-endian), version 1:
 *
 *   offset 0   4 bytes  magic "GPCK"
 *          4   u32      version (1)
 *          8   u32      header length H in bytes (JSON, UTF-8, space-padded to a multiple of 4)
 *         12   H bytes  header: { round, paramCount, stateLengths: number[], meta }
 *   12 + H     4·P      parameters, float32
 *              4·Lᵢ     each optimizer state vector i, float32, in order
 *   end - 32   32       sha256 of every byte before it
 *
 * `paramHash` is the hex sha256 of a parameter vector's bytes (what workers report per round).
 */
import { createHash } from 'node:crypto';

export interface Checkpoint {
  params: Float32Array;
  optimizerState: Float32Array[];
  /** Updates applied so far (the next update is for this round). */
  round: number;
  /** JSON-serialisable extra data (job id, spec, optimizer config, …). */
  meta?: Record<string, unknown>;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const MAGIC = 0x4b435047; // "GPCK" read as little-endian u32
const VERSION = 1;

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function paramHash(params: Float32Array): string {
  return createHash('sha256').update(bytesOf(params)).digest('hex');
}

export function encodeCheckpoint(cp: Checkpoint): Uint8Array {
  const header = JSON.stringify({
    round: cp.round,
    paramCount: cp.params.length,
    stateLengths: cp.optimizerState.map((s) => s.length),
    meta: cp.meta ?? {},
  });
  let hb = Buffer.from(header, 'utf8');
  const pad = (4 - (hb.length % 4)) % 4;
  if (pad) hb = Buffer.concat([hb, Buffer.alloc(pad, 0x20)]);
  const arrays = [cp.params, ...cp.optimizerState];
  const dataBytes = arrays.reduce((s, a) => s + a.byteLength, 0);
  const out = new Uint8Array(12 + hb.length + dataBytes + 32);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, VERSION, true);
  dv.setUint32(8, hb.length, true);
  out.set(hb, 12);
  let off = 12 + hb.length;
  for (const a of arrays) {
    out.set(bytesOf(a), off);
    off += a.byteLength;
  }
  out.set(createHash('sha256').update(out.subarray(0, off)).digest(), off);
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array): Required<Checkpoint> {
  if (bytes.length < 44) throw new CheckpointError('checkpoint too short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw new CheckpointError('not a checkpoint (bad magic)');
  const version = dv.getUint32(4, true);
  if (version !== VERSION) throw new CheckpointError(`unsupported checkpoint version ${version}`);
  const body = bytes.length - 32;
  const sum = createHash('sha256').update(bytes.subarray(0, body)).digest();
  if (!Buffer.from(bytes.subarray(body)).equals(sum)) throw new CheckpointError('checkpoint checksum mismatch');
  const hlen = dv.getUint32(8, true);
  let header: { round: number; paramCount: number; stateLengths: number[]; meta: Record<string, unknown> };
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(12, 12 + hlen)).toString('utf8'));
  } catch {
    throw new CheckpointError('checkpoint header is not JSON');
  }
  const lengths = [header.paramCount, ...header.stateLengths];
  if (12 + hlen + lengths.reduce((s, l) => s + 4 * l, 0) !== body) throw new CheckpointError('checkpoint size does not match its header');
  let off = 12 + hlen;
  const arrays = lengths.map((l) => {
    // Copy: the source may not be 4-byte aligned, and the caller may reuse its buffer.
    const a = new Float32Array(l);
    new Uint8Array(a.buffer).set(bytes.subarray(off, off + 4 * l));
    off += 4 * l;
    return a;
  });
  return { params: arrays[0], optimizerState: arrays.slice(1), round: header.round, meta: header.meta };
}
