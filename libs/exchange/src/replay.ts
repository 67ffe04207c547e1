/**
 * The keeper's stream of committed updates (docs/jobs-protocol.md, "Catching up"): the keeper
 * publishes each committed round's averaged update; a late joiner loads a checkpoint and replays
 * the updates since with `readUpdates`, applying `optimizer.step(params, update, round)`.
 */
import { UPDATE_HEADERS, UPDATES_STREAM, updateSubjects } from '@gradpool/protocol';
import { headers as natsHeaders, type JetStreamClient, type JetStreamManager, type NatsConnection } from 'nats';
import { ExchangeError } from './errors.js';

/** Elements per update message (512 KiB of float32, well under NATS' default max_payload). */
export const UPDATE_CHUNK_ELEMS = 128 * 1024;

export class ReplayError extends ExchangeError {
  override name = 'ReplayError';
}

export interface ReplayedUpdate {
  round: number;
  /** The exact vector the keeper's optimizer applied in `round`. */
  update: Float32Array;
  /** The keeper's paramHash after applying it. */
  paramHash: string;
  /** The job's data state after the round ('' when the stream did not say). */
  dataState: string;
}

/** Creates the updates stream if it does not exist (idempotent). */
export async function ensureUpdatesStream(jsm: JetStreamManager, opts: { maxAgeMs?: number; replicas?: number } = {}): Promise<void> {
  try {
    await jsm.streams.info(UPDATES_STREAM);
  } catch {
    try {
      await jsm.streams.add({
        name: UPDATES_STREAM,
        subjects: [updateSubjects.all],
        max_age: (opts.maxAgeMs ?? 7 * 24 * 3600 * 1000) * 1_000_000,
        num_replicas: opts.replicas ?? 1,
      });
    } catch (err) {
      // Another keeper may have created it meanwhile.
      await jsm.streams.info(UPDATES_STREAM).catch(() => {
        throw err;
      });
    }
  }
}

/**
 * Publishes one round's update in chunks; returns the stream sequence of its first chunk. A chunk
 * whose acknowledgement does not come in time (a loaded server) is published again with the same
 * message id, which the stream de-duplicates, so a slow ack never fails the keeper's commit.
 */
export async function publishUpdate(
  js: JetStreamClient,
  jobId: string,
  round: number,
  update: Float32Array,
  paramHash: string,
  dataState = '',
  opts: { ackTimeoutMs?: number; attempts?: number } = {},
): Promise<number> {
  const attempts = opts.attempts ?? 4;
  const chunks = Math.max(1, Math.ceil(update.length / UPDATE_CHUNK_ELEMS));
  const subject = updateSubjects.round(jobId, round);
  let first = 0;
  for (let c = 0; c < chunks; c++) {
    const off = c * UPDATE_CHUNK_ELEMS;
    const part = update.subarray(off, Math.min(update.length, off + UPDATE_CHUNK_ELEMS));
    const h = natsHeaders();
    h.set(UPDATE_HEADERS.round, String(round));
    h.set(UPDATE_HEADERS.chunk, String(c));
    h.set(UPDATE_HEADERS.chunks, String(chunks));
    h.set(UPDATE_HEADERS.offset, String(off));
    h.set(UPDATE_HEADERS.size, String(update.length));
    h.set(UPDATE_HEADERS.paramHash, paramHash);
    if (dataState) h.set(UPDATE_HEADERS.dataState, dataState);
    const data = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
    const msgID = `${jobId}.${round}.${c}.${paramHash.slice(0, 16)}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const ack = await js.publish(subject, data, { headers: h, msgID, timeout: opts.ackTimeoutMs ?? 15_000 });
        if (c === 0) first = ack.seq;
        break;
      } catch (err) {
        if (attempt >= attempts || (err as { code?: string }).code !== 'TIMEOUT') throw err;
      }
    }
  }
  return first;
}

/** Drops a job's updates stored before stream sequence `seq` (those a newer checkpoint covers). */
export async function purgeUpdatesBefore(jsm: JetStreamManager, jobId: string, seq: number): Promise<void> {
  await jsm.streams.purge(UPDATES_STREAM, { filter: updateSubjects.job(jobId), seq });
}

/** Drops the stored update of one round (an update published but never committed). */
export async function purgeUpdateRound(jsm: JetStreamManager, jobId: string, round: number): Promise<void> {
  await jsm.streams.purge(UPDATES_STREAM, { filter: updateSubjects.round(jobId, round) });
}

/** Drops every stored update of a job (it finished). */
export async function purgeUpdates(jsm: JetStreamManager, jobId: string): Promise<void> {
  await jsm.streams.purge(UPDATES_STREAM, { filter: updateSubjects.job(jobId) });
}

export interface ReadUpdatesOptions {
  signal?: AbortSignal;
  /** Gives up when no message arrived for this long while rounds are still missing (default 30 s). */
  idleTimeoutMs?: number;
}

/**
 * Yields the updates of rounds `from` … `to - 1` in order, waiting for the ones the keeper has
 * not published yet. Throws ReplayError when a round in the range is no longer stored (load a
 * newer checkpoint) or nothing arrives within `idleTimeoutMs`.
 */
export async function* readUpdates(nc: NatsConnection, jobId: string, from: number, to: number, opts: ReadUpdatesOptions = {}): AsyncGenerator<ReplayedUpdate> {
  if (to <= from) return;
  const js = nc.jetstream();
  // One filter subject as a string: nats-server 2.9 does not know filter_subjects (lists).
  const consumer = await js.consumers.get(UPDATES_STREAM, { filterSubjects: updateSubjects.job(jobId) });
  const idle = opts.idleTimeoutMs ?? 30_000;
  let want = from;
  let cur: { round: number; update: Float32Array; hash: string; dataState: string; got: boolean[]; left: number } | null = null;
  let lastMsgAt = Date.now();
  try {
    while (want < to) {
      opts.signal?.throwIfAborted();
      const m = await consumer.next({ expires: Math.min(5000, Math.max(1000, idle)) });
      if (!m) {
        if (Date.now() - lastMsgAt > idle) throw new ReplayError(`no update of round ${want} for job ${jobId} within ${idle} ms`);
        continue;
      }
      lastMsgAt = Date.now();
      const h = m.headers;
      const round = Number(h?.get(UPDATE_HEADERS.round));
      const chunk = Number(h?.get(UPDATE_HEADERS.chunk));
      const chunks = Number(h?.get(UPDATE_HEADERS.chunks));
      const offset = Number(h?.get(UPDATE_HEADERS.offset));
      const size = Number(h?.get(UPDATE_HEADERS.size));
      const hash = h?.get(UPDATE_HEADERS.paramHash) ?? '';
      if (![round, chunk, chunks, offset, size].every(Number.isSafeInteger)) throw new ReplayError(`malformed update message (seq ${m.seq})`);
      if (round < want) continue;
      if (round > want) throw new ReplayError(`the update of round ${want} is no longer stored (the stream starts later); load a newer checkpoint`);
      if (!cur || cur.round !== round || cur.hash !== hash) {
        cur = { round, update: new Float32Array(size), hash, dataState: '', got: [], left: chunks };
      }
      cur.dataState ||= h?.get(UPDATE_HEADERS.dataState) ?? '';
      if (cur.got[chunk]) continue;
      if (offset + m.data.length / 4 > size || m.data.length % 4 !== 0) throw new ReplayError(`update chunk ${chunk} of round ${round} does not fit`);
      new Uint8Array(cur.update.buffer).set(m.data, offset * 4);
      cur.got[chunk] = true;
      if (--cur.left === 0) {
        yield { round, update: cur.update, paramHash: hash, dataState: cur.dataState };
        cur = null;
        want++;
      }
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
