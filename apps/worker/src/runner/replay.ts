/**
 * Catching up from the keeper's stream of committed updates (libs/protocol job-streams.ts):
 * each committed round's averaged gradient, in chunks with NATS headers (round, chunk/chunks,
 * offset/size, the keeper's parameter hash after the round); the payload is the chunk's float32
 * elements, little-endian. A member that is behind applies them with the same optimizer code
 * and compares its hash with the keeper's after each round.
 */
import { UPDATE_HEADERS, updateSubjects } from '@gradpool/protocol';
import { isStatusMessage, isTransientNatsError, openFilteredFeed, type FilteredFeed } from '@gradpool/nats-auth';
import { DeliverPolicy, type Msg, type NatsConnection } from 'nats';
import { FaultKinds, RunnerFault } from './faults.js';

export interface ReplayedUpdate {
  round: number;
  /** The averaged gradient the keeper applied in `round` (P elements). */
  mean: Float32Array;
  /** The keeper's parameter hash after the round ('' if the stream did not say). */
  paramHash: string;
  /** The job's data state after the round ('' if the stream did not say). */
  dataState: string;
}

export interface ReplayOptions {
  nc: NatsConnection;
  stream: string;
  jobId: string;
  /** P. */
  size: number;
  /** Replay rounds [from, to). */
  from: number;
  to: number;
  signal: AbortSignal;
  /** Longest wait for the next message (the keeper may still be committing the last rounds). */
  idleTimeoutMs: number;
}

interface Assembly {
  mean: Float32Array;
  chunks: number;
  received: Set<number>;
  paramHash: string;
  dataState: string;
}

function intHeader(m: Msg, name: string): number {
  const v = Number(m.headers?.get(name));
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`header ${name} is ${JSON.stringify(m.headers?.get(name) ?? null)}`);
  return v;
}

/** Yields the committed updates of rounds [from, to) in order; throws RunnerFault 'replay-gap'. */
export async function* replayUpdates(o: ReplayOptions): AsyncGenerator<ReplayedUpdate> {
  if (o.to <= o.from) return;
  let feed: FilteredFeed;
  try {
    // A consumer with its filter in the create subject, so a worker's NATS user limited to its job can read it.
    feed = await openFilteredFeed(o.nc, o.stream, updateSubjects.job(o.jobId), DeliverPolicy.All);
  } catch (err) {
    // Still timing out after retries: NATS' trouble (a runner error), not a gap in the stream.
    if (isTransientNatsError(err)) throw new Error(`cannot read the updates stream ${o.stream}: ${(err as Error).message}`, { cause: err });
    throw new RunnerFault(FaultKinds.replayGap, `cannot read the updates stream ${o.stream}: ${(err as Error).message}`);
  }
  const sub = feed.sub;
  const it = sub[Symbol.asyncIterator]();
  const pending = new Map<number, Assembly>();
  let next = o.from;
  try {
    while (next < o.to) {
      o.signal.throwIfAborted();
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const stop = new Promise<'timeout' | 'abort'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), o.idleTimeoutMs);
        onAbort = () => resolve('abort');
        o.signal.addEventListener('abort', onAbort, { once: true });
      });
      const got = await Promise.race([it.next(), stop]);
      clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort!);
      if (got === 'abort') throw o.signal.reason instanceof Error ? o.signal.reason : new Error('aborted');
      if (got === 'timeout') {
        throw new RunnerFault(FaultKinds.replayGap, `the updates stream ${o.stream} had no round ${next} of job ${o.jobId} within ${o.idleTimeoutMs} ms (need rounds up to ${o.to - 1})`);
      }
      if (got.done) throw new RunnerFault(FaultKinds.replayGap, `the updates stream ${o.stream} ended before round ${next}`);
      const m = got.value;
      if (isStatusMessage(o.nc, m)) continue;
      let round: number, chunk: number, chunks: number, offset: number, size: number;
      try {
        round = intHeader(m, UPDATE_HEADERS.round);
        chunk = intHeader(m, UPDATE_HEADERS.chunk);
        chunks = intHeader(m, UPDATE_HEADERS.chunks);
        offset = intHeader(m, UPDATE_HEADERS.offset);
        size = intHeader(m, UPDATE_HEADERS.size);
      } catch (err) {
        throw new RunnerFault(FaultKinds.replayGap, `malformed update message on ${m.subject}: ${(err as Error).message}`);
      }
      if (round < next) continue; // before our checkpoint, or a duplicate of an applied round
      if (round > next && !pending.has(next)) {
        throw new RunnerFault(FaultKinds.replayGap, `the updates stream ${o.stream} has round ${round} of job ${o.jobId} but not round ${next}`);
      }
      const len = m.data.byteLength / 4;
      if (size !== o.size || !Number.isInteger(len) || offset + len > size || chunk >= chunks) {
        throw new RunnerFault(FaultKinds.replayGap, `update chunk ${chunk}/${chunks} of round ${round} ([${offset}, +${len}) of ${size}) does not fit ${o.size} parameters`);
      }
      let a = pending.get(round);
      if (!a) {
        a = { mean: new Float32Array(o.size), chunks, received: new Set(), paramHash: '', dataState: '' };
        pending.set(round, a);
      }
      if (a.received.has(chunk)) continue;
      // The payload may not be 4-byte aligned in the message buffer: copy bytes, not floats.
      new Uint8Array(a.mean.buffer, offset * 4, len * 4).set(m.data);
      a.received.add(chunk);
      a.paramHash ||= m.headers?.get(UPDATE_HEADERS.paramHash) ?? '';
      a.dataState ||= m.headers?.get(UPDATE_HEADERS.dataState) ?? '';
      for (let done = pending.get(next); done && done.received.size === done.chunks && next < o.to; done = pending.get(next)) {
        pending.delete(next);
        yield { round: next, mean: done.mean, paramHash: done.paramHash, dataState: done.dataState };
        next++;
      }
    }
  } finally {
    await feed.close();
  }
}

/**
 * The newest update the keeper has published for the job (its round and the keeper's hash after
 * it), or null when the stream holds none or cannot be asked.
 */
export async function latestUpdate(nc: NatsConnection, stream: string, jobId: string, waitMs = 5000): Promise<{ round: number; paramHash: string } | null> {
  let feed: FilteredFeed;
  try {
    feed = await openFilteredFeed(nc, stream, updateSubjects.job(jobId), DeliverPolicy.Last);
  } catch {
    return null;
  }
  try {
    if (feed.pending === 0) return null;
    const it = feed.sub[Symbol.asyncIterator]();
    const deadline = Date.now() + waitMs;
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const got = await Promise.race([it.next(), new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
      if (!got || got.done) return null;
      if (isStatusMessage(nc, got.value)) continue;
      const h = got.value.headers;
      const round = Number(h?.get(UPDATE_HEADERS.round));
      if (!Number.isSafeInteger(round) || round < 0) return null;
      return { round, paramHash: h?.get(UPDATE_HEADERS.paramHash) ?? '' };
    }
  } finally {
    await feed.close();
  }
}
