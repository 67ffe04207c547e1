/**
 * The worker agent: register → session → heartbeats; hands assignments to a runner; reconnects
 * with jittered backoff when the coordinator goes away; drains on request (ours or the
 * coordinator's). Session semantics: protos/gradpool/v1/worker.proto.
 */
import * as grpc from '@grpc/grpc-js';
import {
  SESSION_METADATA,
  WorkerState,
  type Assignment__Output,
  type Capabilities__Output,
  type CoordinatorMessage__Output,
  type NatsAccess__Output,
  type RegisterRequest,
  type RegisterResponse__Output,
  type RosterUpdate__Output,
  type WorkerMessage,
  type WorkerServiceClient,
} from '@gradpool/protocol';
import type { Logger } from 'pino';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { sleep, systemClock, type Clock } from './clock.js';
import type { WorkerClientFactory } from './grpc-client.js';
import { MemoryIdentityStore, type IdentityStore } from './identity-store.js';
import { UnavailableRunner, type AssignmentRunner, type RunnerContext, type RunnerProgress } from './runner.js';
import type { AgentPhase, AgentSnapshot, StatusSink } from './status.js';

export interface AgentOptions {
  /** `host:port` of the coordinator's gRPC endpoint (for logs and the identity file). */
  coordinator: string;
  token: string;
  name: string;
  capabilities: Capabilities__Output;
  /** Deadline of each Register call. */
  registerTimeoutMs?: number;
  /** How long a new session may take to send `accepted`. */
  acceptTimeoutMs?: number;
  /** How long to wait for DrainAck after sending DrainNotice. */
  drainTimeoutMs?: number;
  /** How long runners get to stop when draining. */
  runnerStopTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** Messages kept while disconnected (oldest dropped beyond this). */
  outboxLimit?: number;
}

export interface AgentDeps {
  createClient: WorkerClientFactory;
  logger: Logger;
  clock?: Clock;
  /** In [0, 1); jitter of the reconnect backoff. */
  random?: () => number;
  runner?: AssignmentRunner;
  identityStore?: IdentityStore;
  status?: StatusSink;
}

/** How `run` ended; bin.ts maps it to an exit code. */
export type AgentOutcome =
  | { kind: 'drained'; initiatedBy: 'worker' | 'coordinator'; reason: string }
  /** Stopped without the coordinator's DrainAck (unreachable, or no ack within the deadline). */
  | { kind: 'unacknowledged'; reason: string }
  /** Registration refused: a fatal error that retrying cannot fix. */
  | { kind: 'rejected'; code: 'unauthenticated' | 'invalid-argument'; message: string };

interface Registration {
  workerId: string;
  sessionSecret: string;
  groupId: string;
  nats: NatsAccess__Output | null;
  heartbeatIntervalMs: number;
  leaseMs: number;
}

type SessionResult =
  | { kind: 'drained'; initiatedBy: 'worker' | 'coordinator'; reason: string }
  | { kind: 'unacknowledged'; reason: string }
  | { kind: 'unauthenticated'; message: string }
  | { kind: 'broken'; accepted: boolean; reason: string };

interface JobSlot {
  assignment: Assignment__Output;
  /** The newest data-plane access for the job: the assignment's, then each NatsAccessRefresh. */
  nats: NatsAccess__Output | null;
  controller: AbortController;
  done: Promise<void>;
  listeners: Set<(roster: RosterUpdate__Output) => void>;
}

const DEFAULT_HEARTBEAT_MS = 5_000;

/** A gRPC status' name (`UNAVAILABLE`), for messages. */
function statusName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? String(code);
}

/** grpc-js details without the empty "Resolution note:" it appends to connection errors. */
function cleanDetails(details: string): string {
  const clean = details.replace(/\.?\s*Resolution note:\s*$/, '').trim();
  // A TLS client talking to a plaintext server sees a bare OpenSSL record error.
  if (/SSL routines|wrong version number/i.test(clean)) return `TLS handshake failed; if the coordinator serves plaintext gRPC, use --insecure (${clean})`;
  return clean;
}

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export class WorkerAgent implements AsyncDisposable {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly runner: AssignmentRunner;
  private readonly identityStore: IdentityStore;
  private readonly opts: Required<Omit<AgentOptions, 'capabilities' | 'coordinator' | 'token' | 'name'>>;

  private client?: WorkerServiceClient;
  private call?: grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output>;
  private registration?: Registration;
  /** Sends on the open, accepted session; undefined while disconnected. */
  private send?: (msg: WorkerMessage) => boolean;
  private readonly outbox: WorkerMessage[] = [];
  private readonly jobs = new Map<string, JobSlot>();
  private readonly rosters = new Map<string, RosterUpdate__Output>();
  private progressState: RunnerProgress = { state: WorkerState.WORKER_STATE_IDLE };
  private draining = false;
  private readonly closing = new AbortController();
  private readonly snap: AgentSnapshot;

  constructor(
    private readonly options: AgentOptions,
    private readonly deps: AgentDeps,
  ) {
    this.log = deps.logger.child({ component: 'agent' });
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
    this.runner = deps.runner ?? new UnavailableRunner();
    this.identityStore = deps.identityStore ?? new MemoryIdentityStore();
    this.opts = {
      registerTimeoutMs: options.registerTimeoutMs ?? 10_000,
      acceptTimeoutMs: options.acceptTimeoutMs ?? 10_000,
      drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
      runnerStopTimeoutMs: options.runnerStopTimeoutMs ?? 5_000,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      outboxLimit: options.outboxLimit ?? 1_000,
    };
    this.snap = { phase: 'starting', coordinator: options.coordinator, backend: options.capabilities.backend, heartbeatsSent: 0 };
  }

  /** The agent's state as the status display shows it. */
  snapshot(): AgentSnapshot {
    return { ...this.snap };
  }

  /** Assignments being worked on, by job id. */
  assignments(): Assignment__Output[] {
    return [...this.jobs.values()].map((s) => s.assignment);
  }

  /** Newest roster received per job. */
  latestRosters(): RosterUpdate__Output[] {
    return [...this.rosters.values()];
  }

  /**
   * Runs until drained. Aborting `signal` (Ctrl-C) starts a drain: tell the coordinator,
   * wait for its ack (bounded by drainTimeoutMs), return.
   */
  async run(external: AbortSignal): Promise<AgentOutcome> {
    if (this.closing.signal.aborted) throw new Error('WorkerAgent is closed');
    // Closing the agent also ends run(), as a drain that no one will wait for.
    const signal = AbortSignal.any([external, this.closing.signal]);
    this.client ??= this.deps.createClient();
    const stored = await this.identityStore.load();
    const previous = stored && stored.coordinator === this.options.coordinator ? stored : undefined;
    let reg = await this.registerWithRetry(signal, previous);
    if ('kind' in reg) return this.finish(reg);

    let attempt = 0;
    let lastTryAfterAbort = false;
    for (;;) {
      const result = await this.runSession(reg, signal);
      switch (result.kind) {
        case 'drained':
        case 'unacknowledged':
          return this.finish(result);
        case 'unauthenticated': {
          this.log.warn({ workerId: reg.workerId, reason: result.message }, 'session refused (lease expired?); registering again');
          const next = await this.registerWithRetry(signal, { workerId: reg.workerId, sessionSecret: reg.sessionSecret });
          if ('kind' in next) return this.finish(next);
          if (next.workerId !== reg.workerId) {
            this.log.warn({ previousWorkerId: reg.workerId, workerId: next.workerId }, 'the coordinator gave us a new identity; stopping current work');
            await this.stopJobs('new worker identity');
          }
          reg = next;
          attempt = 0;
          continue;
        }
        case 'broken': {
          if (result.accepted) attempt = 0;
          if (signal.aborted) {
            // Interrupted while the coordinator was unreachable: one more try to say goodbye.
            if (lastTryAfterAbort) return this.finish({ kind: 'unacknowledged', reason: `coordinator unreachable: ${result.reason}` });
            lastTryAfterAbort = true;
            continue;
          }
          const delayMs = backoffDelay(attempt++, this.random, this.opts.backoff);
          this.log.warn({ workerId: reg.workerId, reason: result.reason, retryInMs: delayMs, attempt }, 'session lost; reconnecting');
          this.setPhase('reconnecting', `retry in ${(delayMs / 1000).toFixed(1)}s: ${result.reason}`);
          // An abort during the wait falls through to the one last try above.
          await sleep(this.clock, delayMs, signal);
          continue;
        }
      }
    }
  }

  /** Closes the stream and the channel and stops runners; safe to call more than once. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.closing.abort();
    this.call?.cancel();
    this.call = undefined;
    await this.stopJobs('agent closed');
    this.client?.close();
    this.client = undefined;
  }

  // ---- registration ----

  private async registerWithRetry(
    signal: AbortSignal,
    previous: { workerId: string; sessionSecret: string } | undefined,
  ): Promise<Registration | AgentOutcome> {
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) return { kind: 'unacknowledged', reason: 'interrupted before the coordinator accepted this worker' };
      this.setPhase('registering');
      try {
        return await this.register(previous, signal);
      } catch (err) {
        if (signal.aborted) continue;
        const code = grpcCode(err);
        const details = cleanDetails((err as { details?: string }).details || (err as Error).message);
        if (code === grpc.status.UNAUTHENTICATED) return { kind: 'rejected', code: 'unauthenticated', message: details };
        if (code === grpc.status.INVALID_ARGUMENT) return { kind: 'rejected', code: 'invalid-argument', message: details };
        const delayMs = backoffDelay(attempt, this.random, this.opts.backoff);
        const reason = code === undefined ? details : `${statusName(code)}: ${details}`;
        this.log.warn({ reason, retryInMs: delayMs, attempt: attempt + 1 }, 'registration failed; retrying');
        this.setPhase('registering', `retry in ${(delayMs / 1000).toFixed(1)}s: ${reason}`);
        await sleep(this.clock, delayMs, signal);
      }
    }
  }

  private async register(previous: { workerId: string; sessionSecret: string } | undefined, signal: AbortSignal): Promise<Registration> {
    const client = this.client;
    if (!client) throw new Error('agent closed');
    const request: RegisterRequest = {
      joinToken: this.options.token,
      workerName: this.options.name,
      capabilities: this.options.capabilities,
      previousWorkerId: previous?.workerId ?? '',
      previousSessionSecret: previous?.sessionSecret ?? '',
    };
    const res = await new Promise<RegisterResponse__Output>((resolve, reject) => {
      // Ctrl-C must not wait for the deadline of a call to an unresponsive coordinator.
      const onAbort = () => call.cancel();
      const call = client.Register(request, { deadline: Date.now() + this.opts.registerTimeoutMs }, (err, value) => {
        signal.removeEventListener('abort', onAbort);
        if (err || !value) reject(err ?? new Error('empty RegisterResponse'));
        else resolve(value);
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
    if (!res.workerId || !res.sessionSecret) throw new Error('RegisterResponse without worker id or session secret');
    const reg: Registration = {
      workerId: res.workerId,
      sessionSecret: res.sessionSecret,
      groupId: res.groupId,
      nats: res.nats,
      heartbeatIntervalMs: res.heartbeatIntervalMs || DEFAULT_HEARTBEAT_MS,
      leaseMs: res.leaseMs,
    };
    this.registration = reg;
    this.snap.workerId = reg.workerId;
    const kept = previous?.workerId === reg.workerId;
    this.log.info(
      { workerId: reg.workerId, groupId: reg.groupId, heartbeatIntervalMs: reg.heartbeatIntervalMs, leaseMs: reg.leaseMs, keptIdentity: kept },
      'registered',
    );
    try {
      await this.identityStore.save({
        workerId: reg.workerId,
        sessionSecret: reg.sessionSecret,
        groupId: reg.groupId,
        coordinator: this.options.coordinator,
        savedAtMs: this.clock.now(),
      });
    } catch (err) {
      // Not fatal: the worker runs, it only cannot keep its identity across a restart.
      this.log.warn({ err }, 'could not save the worker identity');
    }
    return reg;
  }

  // ---- session ----

  private runSession(reg: Registration, signal: AbortSignal): Promise<SessionResult> {
    this.setPhase('connecting');
    return new Promise<SessionResult>((resolve) => {
      if (!this.client || this.closing.signal.aborted) return resolve({ kind: 'unacknowledged', reason: 'agent closed' });
      const metadata = new grpc.Metadata();
      metadata.set(SESSION_METADATA.workerId, reg.workerId);
      metadata.set(SESSION_METADATA.secret, reg.sessionSecret);
      const call = this.client.Session(metadata);
      this.call = call;

      let accepted = false;
      let settled = false;
      let halfClosed = false;
      let drain: { by: 'worker' | 'coordinator'; reason: string; acked: boolean } | undefined;
      const timers = new Set<() => void>();
      const later = (ms: number, fn: () => void): (() => void) => {
        const cancel = this.clock.setTimeout(() => {
          timers.delete(cancel);
          fn();
        }, ms);
        timers.add(cancel);
        return cancel;
      };

      const write = (msg: WorkerMessage): boolean => {
        if (settled || halfClosed) return false;
        call.write(msg);
        return true;
      };

      const finish = (result: SessionResult) => {
        if (settled) return;
        settled = true;
        for (const cancel of timers) cancel();
        timers.clear();
        signal.removeEventListener('abort', onAbort);
        if (this.send === write) this.send = undefined;
        if (this.call === call) this.call = undefined;
        call.cancel();
        resolve(result);
      };

      const heartbeat = () => {
        const p = this.progressState;
        const firstJob = this.jobs.keys().next();
        write({
          heartbeat: {
            state: this.draining ? WorkerState.WORKER_STATE_DRAINING : p.state,
            jobId: firstJob.done ? '' : firstJob.value,
            round: p.round ?? '0',
            status: p.status ?? '',
            sentAtMs: String(this.clock.now()),
          },
        });
        this.snap.heartbeatsSent++;
        this.publish();
      };

      const startDrain = (by: 'worker' | 'coordinator', reason: string) => {
        if (drain || settled) return;
        drain = { by, reason, acked: false };
        this.draining = true;
        this.setPhase('draining', reason);
        this.log.info({ workerId: reg.workerId, initiatedBy: by, reason }, 'draining');
        void (async () => {
          await this.stopJobs(`draining: ${reason}`);
          if (settled) return;
          heartbeat();
          write({ drain: { reason } });
          later(this.opts.drainTimeoutMs, () =>
            finish({ kind: 'unacknowledged', reason: `no DrainAck within ${this.opts.drainTimeoutMs} ms` }),
          );
        })();
      };

      const onAbort = () => {
        // Before `accepted` we cannot drain yet; the accepted handler looks at the signal.
        if (accepted) startDrain('worker', 'stopped by the donor (SIGINT/SIGTERM)');
      };
      signal.addEventListener('abort', onAbort, { once: true });

      const cancelAcceptWait = later(this.opts.acceptTimeoutMs, () =>
        finish({ kind: 'broken', accepted: false, reason: `no SessionAccepted within ${this.opts.acceptTimeoutMs} ms` }),
      );

      call.on('data', (msg: CoordinatorMessage__Output) => {
        if (settled) return;
        this.snap.lastContactAtMs = this.clock.now();
        switch (msg.body) {
          case 'accepted': {
            if (accepted) return;
            accepted = true;
            cancelAcceptWait();
            const intervalMs = msg.accepted?.heartbeatIntervalMs || reg.heartbeatIntervalMs;
            this.log.info({ workerId: reg.workerId, heartbeatIntervalMs: intervalMs }, 'session accepted');
            this.send = write;
            this.setPhase('online');
            this.flushOutbox();
            const beat = () => {
              heartbeat();
              later(intervalMs, beat);
            };
            beat();
            if (signal.aborted) startDrain('worker', 'stopped by the donor (SIGINT/SIGTERM)');
            return;
          }
          case 'assignment':
            if (msg.assignment) this.startJob(msg.assignment);
            return;
          case 'roster':
            if (msg.roster) this.applyRoster(msg.roster);
            return;
          case 'unassignment':
            if (msg.unassignment) this.stopJob(msg.unassignment.jobId, msg.unassignment.reason || 'unassigned');
            return;
          case 'drain':
            startDrain('coordinator', msg.drain?.reason || 'requested by the coordinator');
            return;
          case 'natsRefresh': {
            const slot = msg.natsRefresh ? this.jobs.get(msg.natsRefresh.jobId) : undefined;
            if (slot && msg.natsRefresh?.nats) {
              slot.nats = msg.natsRefresh.nats;
              this.log.debug({ jobId: msg.natsRefresh.jobId }, 'data-plane credentials refreshed');
            }
            return;
          }
          case 'drainAck':
            if (!drain) {
              this.log.warn({ workerId: reg.workerId }, 'DrainAck without a drain; ignored');
              return;
            }
            drain.acked = true;
            this.log.info({ workerId: reg.workerId, initiatedBy: drain.by }, 'drain acknowledged');
            // Half-close and let the coordinator end the call; do not wait for it forever.
            halfClosed = true;
            call.end();
            later(2_000, () => finish({ kind: 'drained', initiatedBy: drain!.by, reason: drain!.reason }));
            return;
          default:
            this.log.warn({ body: msg.body }, 'unknown coordinator message; ignored');
        }
      });

      // Errors arrive again as 'status', which decides; this listener only keeps them handled.
      call.on('error', () => {});
      call.on('status', (st: grpc.StatusObject) => {
        if (drain?.acked) return finish({ kind: 'drained', initiatedBy: drain.by, reason: drain.reason });
        if (st.code === grpc.status.UNAUTHENTICATED) return finish({ kind: 'unauthenticated', message: st.details });
        // The coordinator ends a session with ABORTED when a newer one of the same worker
        // replaced it: another agent runs with this identity, and fighting it would not help.
        if (st.code === grpc.status.ABORTED && accepted)
          return finish({ kind: 'unacknowledged', reason: `another agent took over this worker's session (${st.details || 'superseded'})` });
        const reason = `${statusName(st.code)}${st.details ? `: ${cleanDetails(st.details)}` : ''}`;
        if (drain) return finish({ kind: 'unacknowledged', reason: `session ended before the drain was acknowledged (${reason})` });
        finish({ kind: 'broken', accepted, reason });
      });
    });
  }

  // ---- jobs ----

  private sendOrQueue(msg: WorkerMessage): void {
    if (this.send?.(msg)) return;
    this.outbox.push(msg);
    if (this.outbox.length > this.opts.outboxLimit) {
      this.outbox.shift();
      this.log.warn({ limit: this.opts.outboxLimit }, 'outbox full while disconnected; dropped the oldest message');
    }
  }

  private flushOutbox(): void {
    while (this.outbox.length > 0 && this.send) {
      if (!this.send(this.outbox[0])) return;
      this.outbox.shift();
    }
  }

  private startJob(assignment: Assignment__Output): void {
    const jobId = assignment.jobId;
    const log = this.log.child({ jobId });
    if (this.draining) {
      log.warn('assignment while draining; ignored');
      return;
    }
    // A fresh assignment of a running job (a resync) replaces its runner once the old one has
    // stopped; the job's roster stays.
    const previous = this.jobs.has(jobId) ? this.stopJob(jobId, 'replaced by a new assignment', false) : Promise.resolve();
    log.info({ jobName: assignment.jobName, checkpointRound: assignment.checkpointRound }, 'assignment received');
    const reg = this.registration!;
    const controller = new AbortController();
    const slot: JobSlot = { assignment, nats: assignment.nats, controller, done: Promise.resolve(), listeners: new Set() };
    const context: RunnerContext = {
      workerId: reg.workerId,
      groupId: reg.groupId,
      nats: reg.nats,
      jobNats: () => slot.nats,
      latestRoster: () => this.rosters.get(jobId),
      onRoster: (listener) => {
        slot.listeners.add(listener);
        return () => slot.listeners.delete(listener);
      },
      progress: (p) => {
        if (this.jobs.get(jobId) !== slot) return;
        this.progressState = p;
        this.snap.round = p.round;
        this.publish();
      },
      report: (report) => this.sendOrQueue({ roundReport: report }),
      fault: (fault) => {
        log.warn({ kind: fault.kind, message: fault.message }, 'job fault');
        this.sendOrQueue({ fault });
      },
    };
    this.jobs.set(jobId, slot);
    this.snap.jobId = jobId;
    this.publish();
    slot.done = previous
      .then(() => (controller.signal.aborted ? undefined : this.runner.run(assignment, controller.signal, context)))
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        log.error({ err }, 'runner failed');
        context.fault({ jobId, kind: 'runner-error', message: err instanceof Error ? err.message : String(err) });
      })
      .finally(() => {
        if (this.jobs.get(jobId) !== slot) return;
        this.jobs.delete(jobId);
        if (this.jobs.size === 0) {
          this.progressState = { state: WorkerState.WORKER_STATE_IDLE };
          this.snap.jobId = undefined;
          this.snap.round = undefined;
        }
        this.publish();
      });
  }

  private applyRoster(roster: RosterUpdate__Output): void {
    const known = this.rosters.get(roster.jobId);
    if (known && known.epoch > roster.epoch) {
      this.log.warn({ jobId: roster.jobId, epoch: roster.epoch, knownEpoch: known.epoch }, 'stale roster; ignored');
      return;
    }
    this.rosters.set(roster.jobId, roster);
    this.log.info({ jobId: roster.jobId, epoch: roster.epoch, members: roster.members.length }, 'roster update');
    for (const listener of this.jobs.get(roster.jobId)?.listeners ?? []) listener(roster);
  }

  private stopJob(jobId: string, reason: string, forgetRoster = true): Promise<void> {
    const slot = this.jobs.get(jobId);
    if (forgetRoster) this.rosters.delete(jobId);
    if (!slot) {
      this.log.info({ jobId, reason }, 'unassignment of a job we do not run; ignored');
      return Promise.resolve();
    }
    this.log.info({ jobId, reason }, 'stopping job');
    slot.controller.abort(new Error(reason));
    return slot.done;
  }

  /** Aborts every runner and waits for them, at most runnerStopTimeoutMs. */
  private async stopJobs(reason: string): Promise<void> {
    const done = [...this.jobs.keys()].map((id) => this.stopJob(id, reason));
    if (done.length === 0) return;
    const deadline = new AbortController();
    const timedOut = sleep(this.clock, this.opts.runnerStopTimeoutMs, deadline.signal).then((elapsed) => elapsed);
    const stopped = Promise.allSettled(done).then(() => false);
    if (await Promise.race([stopped, timedOut])) {
      this.log.warn({ timeoutMs: this.opts.runnerStopTimeoutMs }, 'runners did not stop in time; leaving them');
    }
    deadline.abort();
  }

  // ---- status ----

  private setPhase(phase: AgentPhase, detail?: string): void {
    this.snap.phase = phase;
    this.snap.detail = detail;
    this.publish();
  }

  private publish(): void {
    this.deps.status?.update(this.snapshot());
  }

  private finish(outcome: AgentOutcome | SessionResult): AgentOutcome {
    switch (outcome.kind) {
      case 'drained':
        this.setPhase('drained', outcome.reason);
        this.log.info({ workerId: this.registration?.workerId, initiatedBy: outcome.initiatedBy }, 'drained; leaving');
        return outcome;
      case 'unacknowledged':
        this.setPhase('stopped', outcome.reason);
        this.log.warn({ workerId: this.registration?.workerId, reason: outcome.reason }, 'leaving without the coordinator\'s acknowledgement');
        return outcome;
      case 'rejected':
        this.setPhase('stopped', outcome.message);
        this.log.error({ code: outcome.code, reason: outcome.message }, 'registration refused');
        return outcome;
      default:
        throw new Error(`unexpected final outcome ${outcome.kind}`);
    }
  }
}
