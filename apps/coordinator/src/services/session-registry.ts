/**
 * Live worker sessions: workerId → the writer of its stream, for the sessions of THIS coordinator
 * process, plus a link to the other replicas of the cluster (SessionRelay, over NATS) for the
 * rest. Later code (scheduler, jobs) pushes Assignment / RosterUpdate / Unassignment messages with
 * `send(workerId, msg)` wherever the worker is connected, and subscribes to round reports, faults
 * and session changes with `on` — of every worker of the cluster, on the scheduling replica only.
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

export const SESSION_CLOSE_REASONS: readonly SessionCloseReason[] = ['superseded', 'silent', 'drained', 'shutdown'];

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

/** An event of one worker's session, as it travels between replicas. */
export type WorkerEvent =
  | { kind: 'roundReport'; workerId: string; report: RoundReport__Output }
  | { kind: 'fault'; workerId: string; fault: JobFault__Output }
  | { kind: 'attached'; workerId: string }
  | { kind: 'detached'; workerId: string; reason: SessionCloseReason | 'closed-by-worker' };

/** What one replica asks of the replica that holds a worker's session. */
export type SessionOp =
  | { op: 'send'; msg: CoordinatorMessage }
  | { op: 'drain'; reason: string }
  | { op: 'close'; reason: SessionCloseReason; message: string };

/** The other replicas of the cluster, as the registry sees them (SessionRelay). */
export interface SessionCluster {
  /** Hands `op` to whichever other replica holds the worker's session; true when one is known to. */
  forward(workerId: string, op: SessionOp): boolean;
  /** Tells the other replicas of an event of a session held here. */
  publish(event: WorkerEvent): void;
  /** Whether another live replica holds the worker's session. */
  holds(workerId: string): boolean;
  /** Whether any other live replica is known. */
  hasPeers(): boolean;
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
  private cluster: SessionCluster | undefined;
  private schedules: (() => boolean) | undefined;

  /** Links the registry to the other replicas (once, at start). */
  link(cluster: SessionCluster): void {
    this.cluster = cluster;
  }

  /**
   * Whether this replica is the one that schedules (holds the scheduler lock). With other
   * replicas alive, worker events reach `on` handlers only there: the keepers and the scheduler
   * act once per event in the cluster. A replica alone delivers them whatever the probe says.
   */
  setSchedulingProbe(probe: () => boolean): void {
    this.schedules = probe;
  }

  /** Makes `channel` the worker's live session; an older one is closed as superseded. */
  attach(workerId: string, channel: SessionChannel): void {
    const old = this.sessions.get(workerId);
    this.sessions.set(workerId, { channel, drainRequested: false });
    if (old && old.channel !== channel) old.channel.close('superseded', 'a newer session of this worker replaced this one');
    this.raise({ kind: 'attached', workerId });
  }

  /** Forgets `channel` if it is still the worker's live session. */
  detach(workerId: string, channel: SessionChannel, reason: SessionCloseReason | 'closed-by-worker' = 'closed-by-worker'): boolean {
    const cur = this.sessions.get(workerId);
    if (!cur || cur.channel !== channel) return false;
    this.sessions.delete(workerId);
    this.raise({ kind: 'detached', workerId, reason });
    return true;
  }

  /** Whether `channel` is the worker's live session. */
  isCurrent(workerId: string, channel: SessionChannel): boolean {
    return this.sessions.get(workerId)?.channel === channel;
  }

  /** Whether the worker has a live session here or on another live replica of the cluster. */
  has(workerId: string): boolean {
    return this.sessions.has(workerId) || (this.cluster?.holds(workerId) ?? false);
  }

  /** Whether the worker's live session is on this replica. */
  hasLocal(workerId: string): boolean {
    return this.sessions.has(workerId);
  }

  /**
   * Sends a message on the worker's live session, here or (through the relay) on the replica that
   * holds it. False when it has none here and no other replica is known to hold one; true for a
   * remote session means handed over, not written.
   */
  send(workerId: string, msg: CoordinatorMessage): boolean {
    const e = this.sessions.get(workerId);
    if (e) return e.channel.send(msg);
    return this.cluster?.forward(workerId, { op: 'send', msg }) ?? false;
  }

  /** Sends a DrainRequest once per stream; false when none was sent (or handed to another replica). */
  requestDrain(workerId: string, reason: string): boolean {
    const e = this.sessions.get(workerId);
    if (!e) return this.cluster?.forward(workerId, { op: 'drain', reason }) ?? false;
    if (e.drainRequested) return false;
    e.drainRequested = e.channel.send({ drain: { reason } });
    return e.drainRequested;
  }

  /** Ends the worker's live session, here or on the replica that holds it. */
  close(workerId: string, reason: SessionCloseReason, message: string): boolean {
    const e = this.sessions.get(workerId);
    if (!e) return this.cluster?.forward(workerId, { op: 'close', reason, message }) ?? false;
    this.sessions.delete(workerId);
    e.channel.close(reason, message);
    this.raise({ kind: 'detached', workerId, reason });
    return true;
  }

  /** Applies an operation another replica forwarded, if the worker's session is here; never forwards. */
  applyForwarded(workerId: string, op: SessionOp): boolean {
    if (!this.sessions.has(workerId)) return false;
    switch (op.op) {
      case 'send':
        return this.send(workerId, op.msg);
      case 'drain':
        return this.requestDrain(workerId, op.reason);
      case 'close':
        return this.close(workerId, op.reason, op.message);
    }
  }

  /** An event of a session held by another replica (from the relay). */
  receive(event: WorkerEvent): void {
    if (this.deliversEvents()) this.dispatch(event);
  }

  /** Ends every session of this replica (not the cluster's). */
  closeAll(reason: SessionCloseReason, message: string): void {
    for (const id of [...this.sessions.keys()]) this.close(id, reason, message);
  }

  /** Sessions of this replica. */
  get size(): number {
    return this.sessions.size;
  }

  /** Workers with a session on this replica (the relay announces them to the others). */
  workerIds(): string[] {
    return [...this.sessions.keys()];
  }

  on<K extends keyof WorkerMessageEvents>(event: K, handler: WorkerMessageEvents[K]): () => void {
    this.emitter.on(event, handler);
    return () => this.emitter.off(event, handler);
  }

  /** Called by the session layer for messages it does not handle itself. */
  emit<K extends 'roundReport' | 'fault'>(event: K, ...args: Parameters<WorkerMessageEvents[K]>): void {
    const [workerId, body] = args;
    this.raise(event === 'roundReport' ? { kind: 'roundReport', workerId, report: body as RoundReport__Output } : { kind: 'fault', workerId, fault: body as JobFault__Output });
  }

  /** An event of a session held here: to the other replicas, and to this one's handlers. */
  private raise(event: WorkerEvent): void {
    this.cluster?.publish(event);
    if (this.deliversEvents()) this.dispatch(event);
  }

  private deliversEvents(): boolean {
    return !this.schedules || !this.cluster?.hasPeers() || this.schedules();
  }

  private dispatch(e: WorkerEvent): void {
    switch (e.kind) {
      case 'roundReport':
        this.emitter.emit('roundReport', e.workerId, e.report);
        return;
      case 'fault':
        this.emitter.emit('fault', e.workerId, e.fault);
        return;
      case 'attached':
        this.emitter.emit('attached', e.workerId);
        return;
      case 'detached':
        this.emitter.emit('detached', e.workerId, e.reason);
    }
  }
}
