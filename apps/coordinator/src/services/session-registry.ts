/**
 * Live worker sessions of THIS coordinator process: workerId → the writer of its stream.
 * Later code (scheduler, jobs) pushes Assignment / RosterUpdate / Unassignment messages with
 * `send(workerId, msg)` and subscribes to round reports and faults with `onMessage`.
 * Knows nothing of gRPC: the gRPC layer wraps each stream in a SessionChannel.
 */
import { Injectable } from '@nestjs/common';
import type { CoordinatorMessage, JobFault__Output, RoundReport__Output } from '@gradpool/protocol';
import { EventEmitter } from 'node:events';

/** Why the coordinator ends a session; the gRPC layer maps it to a status code. */
export type SessionCloseReason =
  /** A newer session of the same worker replaced this one. */
  | 'superseded'
  /** No heartbeat within interval × misses. */
  | 'silent'
  /** The worker drained; the stream ends normally. */
  | 'drained'
  /** The coordinator is shutting down. */
  | 'shutdown';

/** One worker's stream, as seen by the domain. */
export interface SessionChannel {
  /** Queues a message; false when the stream is closed. */
  send(msg: CoordinatorMessage): boolean;
  /** Ends the stream (idempotent). */
  close(reason: SessionCloseReason, message: string): void;
  readonly closed: boolean;
}

export interface WorkerMessageEvents {
  roundReport: (workerId: string, report: RoundReport__Output) => void;
  fault: (workerId: string, fault: JobFault__Output) => void;
  /** A session was opened (or replaced an older one). */
  attached: (workerId: string) => void;
  /** A session ended, for whatever reason. */
  detached: (workerId: string, reason: SessionCloseReason | 'closed-by-worker') => void;
}

interface Entry {
  channel: SessionChannel;
  /** A DrainRequest was sent on this stream (sent at most once per stream). */
  drainRequested: boolean;
}

@Injectable()
export class SessionRegistry {
  private readonly sessions = new Map<string, Entry>();
  private readonly emitter = new EventEmitter();

  /** Makes `channel` the worker's live session; an older one is closed as superseded. */
  attach(workerId: string, channel: SessionChannel): void {
    const old = this.sessions.get(workerId);
    this.sessions.set(workerId, { channel, drainRequested: false });
    if (old && old.channel !== channel) old.channel.close('superseded', 'a newer session of this worker replaced this one');
    this.emitter.emit('attached', workerId);
  }

  /** Forgets `channel` if it is still the worker's live session. */
  detach(workerId: string, channel: SessionChannel, reason: SessionCloseReason | 'closed-by-worker' = 'closed-by-worker'): boolean {
    const cur = this.sessions.get(workerId);
    if (!cur || cur.channel !== channel) return false;
    this.sessions.delete(workerId);
    this.emitter.emit('detached', workerId, reason);
    return true;
  }

  /** Whether `channel` is the worker's live session. */
  isCurrent(workerId: string, channel: SessionChannel): boolean {
    return this.sessions.get(workerId)?.channel === channel;
  }

  has(workerId: string): boolean {
    return this.sessions.has(workerId);
  }

  /** Sends a message on the worker's live session; false when it has none here. */
  send(workerId: string, msg: CoordinatorMessage): boolean {
    const e = this.sessions.get(workerId);
    return e ? e.channel.send(msg) : false;
  }

  /** Sends a DrainRequest once per stream; false when none was sent. */
  requestDrain(workerId: string, reason: string): boolean {
    const e = this.sessions.get(workerId);
    if (!e || e.drainRequested) return false;
    e.drainRequested = e.channel.send({ drain: { reason } });
    return e.drainRequested;
  }

  /** Ends the worker's live session, if any. */
  close(workerId: string, reason: SessionCloseReason, message: string): boolean {
    const e = this.sessions.get(workerId);
    if (!e) return false;
    this.sessions.delete(workerId);
    e.channel.close(reason, message);
    this.emitter.emit('detached', workerId, reason);
    return true;
  }

  closeAll(reason: SessionCloseReason, message: string): void {
    for (const id of [...this.sessions.keys()]) this.close(id, reason, message);
  }

  get size(): number {
    return this.sessions.size;
  }

  workerIds(): string[] {
    return [...this.sessions.keys()];
  }

  on<K extends keyof WorkerMessageEvents>(event: K, handler: WorkerMessageEvents[K]): () => void {
    this.emitter.on(event, handler);
    return () => this.emitter.off(event, handler);
  }

  /** Called by the session layer for messages it does not handle itself. */
  emit<K extends 'roundReport' | 'fault'>(event: K, ...args: Parameters<WorkerMessageEvents[K]>): void {
    this.emitter.emit(event, ...args);
  }
}
