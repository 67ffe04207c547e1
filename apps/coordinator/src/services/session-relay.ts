/**
 * The session relay: makes SessionRegistry cluster-wide over NATS. Several coordinator replicas
 * may share one database behind a load balancer; a worker's gRPC stream lives in the replica it
 * reached, while the scheduling replica (the lock holder) pushes to and hears from every worker.
 *
 * On the cluster's control subjects (`subjects.control(cluster)`, cluster = the database's name):
 * - `push.<workerId>`: an operation (send / drain / close) for a session another replica holds;
 *   every replica receives it, the one holding the session applies it.
 * - `evt.<kind>.<workerId>`: attached, detached, roundReport, fault of a session held by the
 *   sender; the other replicas re-emit it on their registry (handlers run on the scheduler only).
 * - `presence.<replicaId>`: each replica's session list every PRESENCE_PERIOD_MS (and at start,
 *   asking the others to answer, and an empty farewell at shutdown); a replica that stays silent
 *   for PRESENCE_EXPIRY_MS is forgotten with its sessions.
 * Protobuf payloads are encoded by the gRPC method's own (de)serialisers, so a relayed message
 * is the same bytes as on the worker's stream (uint64 as decimal strings, like gRPC's side).
 * Malformed messages are logged and dropped; nothing here throws into NATS' dispatch.
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { isToken, loadWorkerProto, subjects, type CoordinatorMessage, type WorkerMessage } from '@gradpool/protocol';
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from 'nats';
import { createHash, randomBytes } from 'node:crypto';
import type { CoordinatorConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { CONFIG, LOGGER, NATS } from '../tokens.js';
import { SESSION_CLOSE_REASONS, SessionRegistry, type SessionCluster, type SessionCloseReason, type SessionOp, type WorkerEvent } from './session-registry.js';
import { shutdownPart } from '../shutdown.js';

/** How often a replica announces its sessions (ms). */
export const PRESENCE_PERIOD_MS = 5000;
/** A replica not heard of for this long is gone, with its sessions (ms). */
export const PRESENCE_EXPIRY_MS = 3 * PRESENCE_PERIOD_MS;

const H_REPLICA = 'Gp-Replica';
const H_OP = 'Gp-Op';
const EMPTY = new Uint8Array(0);
const OPS = ['send', 'drain', 'close'] as const;
const DETACH_REASONS: readonly string[] = [...SESSION_CLOSE_REASONS, 'closed-by-worker'];

interface Peer {
  workers: Set<string>;
  expiresAt: number;
}

interface Presence {
  workers: string[];
  /** The sender just started: every replica answers with its own list. */
  ask?: boolean;
  /** The sender is shutting down: forget it now. */
  bye?: boolean;
}

/**
 * The cluster's name on the control subjects: the database's name (every replica of a cluster
 * uses the same database, maybe through other hosts), as a subject token. Two clusters on one
 * NATS need databases of different names (or separate NATS accounts).
 */
export function clusterName(databaseUrl: string): string {
  let name = '';
  try {
    const u = new URL(databaseUrl);
    name = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres';
  } catch {
    // Not a URL: a digest of the whole string.
    name = createHash('sha256').update(databaseUrl).digest('hex').slice(0, 16);
  }
  const t = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  return isToken(t) ? t : 'postgres';
}

const session = () => loadWorkerProto().gradpool.v1.WorkerService.service.Session;

/** Encodes a message for a worker's stream as gRPC would. */
export function encodeCoordinatorMessage(msg: CoordinatorMessage): Uint8Array {
  return session().responseSerialize(msg);
}

/** Decodes what `encodeCoordinatorMessage` wrote (the shape gRPC's client would see). */
export function decodeCoordinatorMessage(data: Uint8Array): CoordinatorMessage {
  return session().responseDeserialize(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

function encodeWorkerMessage(msg: WorkerMessage): Uint8Array {
  return session().requestSerialize(msg);
}

function decodeWorkerMessage(data: Uint8Array) {
  return session().requestDeserialize(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** The relay of one replica. Linked into SessionRegistry at module init. */
@Injectable()
export class SessionRelay implements SessionCluster, OnModuleInit, OnApplicationShutdown {
  /** This process's id on the control subjects (fresh at every start). */
  readonly replicaId = randomBytes(8).toString('hex');
  readonly cluster: string;
  private readonly root: string;
  private readonly peers = new Map<string, Peer>();
  private readonly log: Logger;
  private sub: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    @Inject(CONFIG) config: CoordinatorConfig,
    @Inject(NATS) private readonly nc: NatsConnection,
    @Inject(LOGGER) logger: Logger,
    private readonly registry: SessionRegistry,
  ) {
    this.cluster = clusterName(config.databaseUrl);
    this.root = subjects.control(this.cluster);
    this.log = logger.child({ component: 'session-relay', replicaId: this.replicaId, cluster: this.cluster });
  }

  onModuleInit(): void {
    this.sub = this.nc.subscribe(subjects.controlAll(this.cluster), {
      callback: (err, m) => {
        if (err) {
          this.log.warn({ err }, 'control subscription failed');
          return;
        }
        try {
          this.onMessage(m);
        } catch (e) {
          this.log.warn({ err: e, subject: m.subject }, 'control message dropped');
        }
      },
    });
    this.registry.link(this);
    this.announce({ ask: true });
    this.timer = setInterval(() => {
      this.prune();
      this.announce({});
    }, PRESENCE_PERIOD_MS);
    this.timer.unref();
  }

  /** After the gRPC server ended its sessions (beforeApplicationShutdown): a farewell, then quiet. */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.announce({ bye: true });
    this.closed = true;
    this.sub?.unsubscribe();
    await shutdownPart('session relay flush', () => this.nc.flush().catch(() => undefined));
  }

  forward(workerId: string, op: SessionOp): boolean {
    let data: Uint8Array;
    if (op.op === 'send') data = encodeCoordinatorMessage(op.msg);
    else if (op.op === 'drain') data = encodeCoordinatorMessage({ drain: { reason: op.reason } });
    else data = new TextEncoder().encode(JSON.stringify({ reason: op.reason, message: op.message }));
    this.publish_(subjects.sessionPush(this.cluster, workerId), data, op.op);
    return this.holds(workerId);
  }

  publish(e: WorkerEvent): void {
    let data: Uint8Array = EMPTY;
    if (e.kind === 'roundReport') data = encodeWorkerMessage({ roundReport: e.report });
    else if (e.kind === 'fault') data = encodeWorkerMessage({ fault: e.fault });
    else if (e.kind === 'detached') data = new TextEncoder().encode(e.reason);
    this.publish_(subjects.sessionEvent(this.cluster, e.kind, e.workerId), data);
  }

  holds(workerId: string): boolean {
    const now = Date.now();
    for (const p of this.peers.values()) if (p.expiresAt > now && p.workers.has(workerId)) return true;
    return false;
  }

  hasPeers(): boolean {
    const now = Date.now();
    for (const p of this.peers.values()) if (p.expiresAt > now) return true;
    return false;
  }

  /** Live replicas other than this one, with the workers each holds (for tests and debugging). */
  peerSessions(): Map<string, string[]> {
    const now = Date.now();
    return new Map([...this.peers].filter(([, p]) => p.expiresAt > now).map(([id, p]) => [id, [...p.workers]]));
  }

  private publish_(subject: string, data: Uint8Array, op?: string): void {
    if (this.closed || this.nc.isClosed()) return;
    const h = natsHeaders();
    h.set(H_REPLICA, this.replicaId);
    if (op) h.set(H_OP, op);
    try {
      this.nc.publish(subject, data, { headers: h });
    } catch (err) {
      this.log.warn({ err, subject }, 'control publish failed');
    }
  }

  private announce(extra: Omit<Presence, 'workers'>): void {
    const body: Presence = { workers: extra.bye ? [] : this.registry.workerIds(), ...extra };
    this.publish_(subjects.replicaPresence(this.cluster, this.replicaId), new TextEncoder().encode(JSON.stringify(body)));
  }

  private prune(): void {
    const now = Date.now();
    for (const [id, p] of this.peers) if (p.expiresAt <= now) this.peers.delete(id);
  }

  /** The replica `id`, heard of now. */
  private touch(id: string): Peer {
    let p = this.peers.get(id);
    if (!p || p.expiresAt <= Date.now()) {
      p = { workers: new Set(), expiresAt: 0 };
      this.peers.set(id, p);
    }
    p.expiresAt = Date.now() + PRESENCE_EXPIRY_MS;
    return p;
  }

  private drop(m: Msg, why: string): void {
    this.log.warn({ subject: m.subject, why }, 'control message dropped');
  }

  private onMessage(m: Msg): void {
    if (this.closed) return;
    const from = m.headers?.get(H_REPLICA) ?? '';
    if (!isToken(from)) return this.drop(m, 'no valid replica id');
    if (!m.subject.startsWith(`${this.root}.`)) return this.drop(m, 'foreign subject');
    const parts = m.subject.slice(this.root.length + 1).split('.');
    switch (parts[0]) {
      case 'push':
        if (parts.length !== 2 || !isToken(parts[1])) return this.drop(m, 'bad push subject');
        // Our own forwards too: the session may have reached this replica meanwhile.
        return this.onPush(m, parts[1]);
      case 'evt':
        if (parts.length !== 3 || !isToken(parts[2])) return this.drop(m, 'bad event subject');
        if (from === this.replicaId) return;
        return this.onEvent(m, from, parts[1], parts[2]);
      case 'presence':
        if (parts.length !== 2 || parts[1] !== from) return this.drop(m, 'bad presence subject');
        if (from === this.replicaId) return;
        return this.onPresence(m, from);
      default:
        return this.drop(m, 'unknown control subject');
    }
  }

  private onPush(m: Msg, workerId: string): void {
    if (!this.registry.hasLocal(workerId)) return;
    const op = m.headers?.get(H_OP) ?? '';
    if (!(OPS as readonly string[]).includes(op)) return this.drop(m, 'unknown push op');
    let forwarded: SessionOp;
    if (op === 'send') {
      forwarded = { op: 'send', msg: decodeCoordinatorMessage(m.data) };
    } else if (op === 'drain') {
      const reason = decodeCoordinatorMessage(m.data).drain?.reason;
      if (typeof reason !== 'string') return this.drop(m, 'drain without a reason');
      forwarded = { op: 'drain', reason };
    } else {
      const c = JSON.parse(new TextDecoder().decode(m.data)) as { reason?: unknown; message?: unknown };
      if (!(SESSION_CLOSE_REASONS as readonly unknown[]).includes(c.reason) || typeof c.message !== 'string') return this.drop(m, 'bad close');
      forwarded = { op: 'close', reason: c.reason as SessionCloseReason, message: c.message };
    }
    this.registry.applyForwarded(workerId, forwarded);
  }

  private onEvent(m: Msg, from: string, kind: string, workerId: string): void {
    let e: WorkerEvent;
    switch (kind) {
      case 'attached':
        e = { kind, workerId };
        break;
      case 'detached': {
        const reason = new TextDecoder().decode(m.data);
        if (!DETACH_REASONS.includes(reason)) return this.drop(m, 'bad detach reason');
        e = { kind, workerId, reason: reason as SessionCloseReason | 'closed-by-worker' };
        break;
      }
      case 'roundReport': {
        const w = decodeWorkerMessage(m.data);
        if (w.body !== 'roundReport' || !w.roundReport) return this.drop(m, 'not a round report');
        e = { kind, workerId, report: w.roundReport };
        break;
      }
      case 'fault': {
        const w = decodeWorkerMessage(m.data);
        if (w.body !== 'fault' || !w.fault) return this.drop(m, 'not a fault');
        e = { kind, workerId, fault: w.fault };
        break;
      }
      default:
        return this.drop(m, 'unknown event kind');
    }
    const peer = this.touch(from);
    if (e.kind === 'attached') peer.workers.add(workerId);
    if (e.kind === 'detached') peer.workers.delete(workerId);
    this.registry.receive(e);
  }

  private onPresence(m: Msg, from: string): void {
    const p = JSON.parse(new TextDecoder().decode(m.data)) as Partial<Presence>;
    if (!p || !Array.isArray(p.workers)) return this.drop(m, 'bad presence');
    if (p.bye) {
      this.peers.delete(from);
      return;
    }
    const peer = this.touch(from);
    peer.workers = new Set(p.workers.filter((w): w is string => typeof w === 'string' && isToken(w)));
    if (p.ask) this.announce({});
  }
}
