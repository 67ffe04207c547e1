// The agent against a real grpc-js server implementing WorkerService (a small coordinator of
// our own: the real component on the wire, not a mock of the agent's collaborators).
import * as grpc from '@grpc/grpc-js';
import {
  SESSION_METADATA,
  loadWorkerProto,
  type CoordinatorMessage,
  type RegisterRequest__Output,
  type RegisterResponse,
  type WorkerMessage__Output,
  type WorkerServiceHandlers,
} from '@gradpool/protocol';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerAgent, type AgentOutcome } from './agent.js';
import { seededRandom } from './backoff.js';
import { workerClientFactory } from './grpc-client.js';
import { MemoryIdentityStore } from './identity-store.js';
import { silentLogger } from './logger.js';
import { FAULT_TRAINING_UNAVAILABLE, type AssignmentRunner, type RunnerContext } from './runner.js';
import type { AgentPhase, AgentSnapshot } from './status.js';

type ServerCall = grpc.ServerDuplexStream<WorkerMessage__Output, CoordinatorMessage>;

interface SessionRecord {
  workerId: string;
  call: ServerCall;
  messages: WorkerMessage__Output[];
  ended: boolean;
}

/** A minimal WorkerService: tokens, identities, sessions; records what workers send. */
class TestCoordinator extends EventEmitter {
  readonly registers: RegisterRequest__Output[] = [];
  readonly sessions: SessionRecord[] = [];
  readonly rejectedSessions: string[] = [];
  tokens = new Set(['good-token']);
  /** workerId → secret of identities the coordinator honours. */
  secrets = new Map<string, string>();
  autoAckDrain = true;
  heartbeatIntervalMs = 40;
  private server?: grpc.Server;
  private nextId = 1;
  port = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = new grpc.Server();
    server.addService(loadWorkerProto().gradpool.v1.WorkerService.service, this.handlers());
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
  }

  /** Kills every stream and the listener at once (a crashed coordinator). */
  stop(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }

  /** A crash and a restart on the same port; `forget` drops every identity (leases expired). */
  async restart(forget = false): Promise<void> {
    this.stop();
    if (forget) this.secrets.clear();
    await this.start();
  }

  send(workerId: string, msg: CoordinatorMessage): void {
    const s = this.sessions.findLast((x) => x.workerId === workerId && !x.ended);
    if (!s) throw new Error(`no open session of ${workerId}`);
    s.call.write(msg);
  }

  /** Ends the worker's open session with a gRPC error status. */
  fail(workerId: string, code: grpc.status, details: string): void {
    const s = this.sessions.findLast((x) => x.workerId === workerId && !x.ended);
    if (!s) throw new Error(`no open session of ${workerId}`);
    s.ended = true;
    s.call.emit('error', { code, details });
  }

  messages(): WorkerMessage__Output[] {
    return this.sessions.flatMap((s) => s.messages);
  }

  /** Resolves when `pred` holds (checked on every change), rejects after `timeoutMs`. */
  waitFor(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('change', check);
      };
      this.on('change', check);
      check();
    });
  }

  private handlers(): WorkerServiceHandlers {
    return {
      Register: (call, callback) => {
        const req = call.request;
        this.registers.push(req);
        this.emit('change');
        if (!this.tokens.has(req.joinToken)) return callback({ code: grpc.status.UNAUTHENTICATED, details: 'join token not valid' });
        const keep = req.previousWorkerId && this.secrets.get(req.previousWorkerId) === req.previousSessionSecret;
        const workerId = keep ? req.previousWorkerId : `w${this.nextId++}`;
        const secret = `secret-${workerId}-${this.registers.length}`;
        this.secrets.set(workerId, secret);
        const res: RegisterResponse = {
          workerId,
          sessionSecret: secret,
          groupId: 'g1',
          nats: { servers: ['nats://127.0.0.1:4222'] },
          heartbeatIntervalMs: this.heartbeatIntervalMs,
          leaseMs: 1_000,
        };
        callback(null, res);
      },
      Session: (call: ServerCall) => {
        const workerId = String(call.metadata.get(SESSION_METADATA.workerId)[0] ?? '');
        const secret = String(call.metadata.get(SESSION_METADATA.secret)[0] ?? '');
        if (!workerId || this.secrets.get(workerId) !== secret) {
          this.rejectedSessions.push(workerId);
          this.emit('change');
          call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'unknown session' });
          return;
        }
        const rec: SessionRecord = { workerId, call, messages: [], ended: false };
        this.sessions.push(rec);
        call.on('data', (msg: WorkerMessage__Output) => {
          rec.messages.push(msg);
          if (msg.body === 'drain' && this.autoAckDrain) call.write({ drainAck: {} });
          this.emit('change');
        });
        call.on('end', () => {
          rec.ended = true;
          call.end();
          this.emit('change');
        });
        call.on('error', () => {
          rec.ended = true;
          this.emit('change');
        });
        call.on('cancelled', () => {
          rec.ended = true;
          this.emit('change');
        });
        call.write({ accepted: { workerId, heartbeatIntervalMs: this.heartbeatIntervalMs, leaseMs: 1_000 } });
        this.emit('change');
      },
    };
  }
}

const capabilities = {
  backend: 'cpu',
  deviceName: 'test cpu',
  memoryBytes: '1073741824',
  gflops: 1.5,
  agentVersion: '0.0.0-test',
  os: 'linux x64 test',
  cpuCount: 2,
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function setup(opts: { token?: string; store?: MemoryIdentityStore; drainTimeoutMs?: number; runner?: AssignmentRunner } = {}) {
  const coordinator = new TestCoordinator();
  await coordinator.start();
  cleanups.push(() => coordinator.stop());
  const store = opts.store ?? new MemoryIdentityStore();
  const status = new EventEmitter();
  const agent = new WorkerAgent(
    {
      coordinator: coordinator.address,
      token: opts.token ?? 'good-token',
      name: 'test-worker',
      capabilities,
      registerTimeoutMs: 2_000,
      acceptTimeoutMs: 2_000,
      drainTimeoutMs: opts.drainTimeoutMs ?? 2_000,
      backoff: { baseMs: 20, capMs: 200 },
    },
    {
      createClient: workerClientFactory(coordinator.address, { insecure: true }),
      logger: silentLogger(),
      random: seededRandom(42),
      identityStore: store,
      runner: opts.runner,
      status: { update: (snapshot) => status.emit('update', snapshot) },
    },
  );
  cleanups.push(() => agent[Symbol.asyncDispose]());
  const controller = new AbortController();
  const outcome: Promise<AgentOutcome> = agent.run(controller.signal);
  return { coordinator, agent, controller, outcome, store, status };
}

/** Resolves when the agent's status reaches `phase` (at once if it already has). */
function statusReaches(agent: WorkerAgent, status: EventEmitter, phase: AgentPhase, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const onUpdate = (s: AgentSnapshot) => {
      if (s.phase !== phase) return;
      clearTimeout(timer);
      status.off('update', onUpdate);
      resolve();
    };
    const timer = setTimeout(() => {
      status.off('update', onUpdate);
      reject(new Error(`timed out waiting for phase ${phase}`));
    }, timeoutMs);
    status.on('update', onUpdate);
    onUpdate(agent.snapshot());
  });
}

const heartbeats = (c: TestCoordinator, workerId?: string) =>
  c.sessions.filter((s) => !workerId || s.workerId === workerId).flatMap((s) => s.messages.filter((m) => m.body === 'heartbeat'));

describe('WorkerAgent', () => {
  it('registers with its capabilities, heartbeats, and drains on abort', async () => {
    const { coordinator, agent, controller, outcome, store } = await setup();
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 2, 'two heartbeats');

    expect(coordinator.registers).toHaveLength(1);
    expect(coordinator.registers[0]).toMatchObject({
      joinToken: 'good-token',
      workerName: 'test-worker',
      previousWorkerId: '',
      capabilities: { backend: 'cpu', deviceName: 'test cpu', memoryBytes: '1073741824', gflops: 1.5, cpuCount: 2 },
    });
    expect(heartbeats(coordinator)[0].heartbeat).toMatchObject({ state: 'WORKER_STATE_IDLE', jobId: '' });
    expect(Number(heartbeats(coordinator)[0].heartbeat!.sentAtMs)).toBeGreaterThan(0);
    expect(agent.snapshot()).toMatchObject({ phase: 'online', workerId: 'w1' });
    expect(await store.load()).toMatchObject({ workerId: 'w1', coordinator: coordinator.address, groupId: 'g1' });

    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'drained', initiatedBy: 'worker' });
    const sent = coordinator.sessions[0].messages;
    const drainAt = sent.findIndex((m) => m.body === 'drain');
    expect(drainAt).toBeGreaterThan(0);
    expect(sent[drainAt - 1].heartbeat?.state).toBe('WORKER_STATE_DRAINING');
    expect(agent.snapshot().phase).toBe('drained');
  });

  it('drains when the coordinator asks', async () => {
    const { coordinator, outcome } = await setup();
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    coordinator.send('w1', { drain: { reason: 'admin asked' } });
    expect(await outcome).toMatchObject({ kind: 'drained', initiatedBy: 'coordinator', reason: 'admin asked' });
    expect(coordinator.messages().some((m) => m.body === 'drain')).toBe(true);
  });

  it('gives up at once on a refused token', async () => {
    const { coordinator, outcome } = await setup({ token: 'stolen-token' });
    expect(await outcome).toMatchObject({ kind: 'rejected', code: 'unauthenticated', message: 'join token not valid' });
    expect(coordinator.registers).toHaveLength(1);
    expect(coordinator.sessions).toHaveLength(0);
  });

  it('reconnects by itself with the same identity after the coordinator restarts', async () => {
    const { coordinator, controller, outcome } = await setup();
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    await coordinator.restart();
    await coordinator.waitFor(() => coordinator.sessions.length >= 2 && coordinator.sessions[1].messages.length > 0, 'a second session');
    expect(coordinator.sessions[1].workerId).toBe('w1');
    expect(coordinator.registers).toHaveLength(1);
    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'drained' });
  });

  it('registers again with its previous identity when the session is refused', async () => {
    const { coordinator, controller, outcome } = await setup();
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    await coordinator.restart(true);
    await coordinator.waitFor(() => coordinator.registers.length >= 2 && heartbeats(coordinator, 'w2').length > 0, 'a new registration');
    expect(coordinator.rejectedSessions).toContain('w1');
    expect(coordinator.registers[1]).toMatchObject({ previousWorkerId: 'w1', joinToken: 'good-token' });
    expect(coordinator.registers[1].previousSessionSecret).toMatch(/^secret-w1-/);
    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'drained' });
  });

  it('presents a stored identity of the same coordinator when it starts', async () => {
    const coordinator = new TestCoordinator();
    await coordinator.start();
    const address = coordinator.address;
    coordinator.stop();
    // Same port again, with the identity known: the restarted agent keeps it.
    const store = new MemoryIdentityStore({ workerId: 'w7', sessionSecret: 's7', groupId: 'g1', coordinator: address, savedAtMs: 1 });
    const agent = new WorkerAgent(
      { coordinator: address, token: 'good-token', name: 'again', capabilities, backoff: { baseMs: 20, capMs: 200 } },
      { createClient: workerClientFactory(address, { insecure: true }), logger: silentLogger(), random: seededRandom(1), identityStore: store },
    );
    cleanups.push(() => agent[Symbol.asyncDispose]());
    coordinator.secrets.set('w7', 's7');
    await coordinator.start();
    cleanups.push(() => coordinator.stop());
    const controller = new AbortController();
    const outcome = agent.run(controller.signal);
    await coordinator.waitFor(() => heartbeats(coordinator, 'w7').length > 0, 'heartbeat of w7');
    expect(coordinator.registers[0]).toMatchObject({ previousWorkerId: 'w7', previousSessionSecret: 's7' });
    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'drained' });
  });

  it('keeps assignments and rosters, and says with a JobFault that it cannot train yet', async () => {
    const { coordinator, agent, controller, outcome } = await setup();
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    coordinator.send('w1', {
      roster: { jobId: 'j1', epoch: 2, startRound: '0', members: [{ workerId: 'w1', index: 0, samplesPerRound: 32, ownedShards: [0] }] },
    });
    coordinator.send('w1', { assignment: { jobId: 'j1', jobName: 'mnist', specJson: '{}', checkpointRound: '5' } });
    await coordinator.waitFor(() => coordinator.messages().some((m) => m.body === 'fault'), 'a job fault');
    const fault = coordinator.messages().find((m) => m.body === 'fault')!.fault!;
    expect(fault).toMatchObject({ jobId: 'j1', epoch: 2, round: '5', kind: FAULT_TRAINING_UNAVAILABLE });
    expect(agent.latestRosters()).toMatchObject([{ jobId: 'j1', epoch: 2 }]);
    coordinator.send('w1', { unassignment: { jobId: 'j1', reason: 'cancelled' } });
    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'drained' });
    expect(agent.latestRosters()).toEqual([]);
  });

  it('hands assignments to its runner: progress in heartbeats, reports sent, resync after stop, rosters kept', async () => {
    const runs: Array<{ jobId: string; checkpointRound: string; signal: AbortSignal; ctx: RunnerContext; stopped: boolean }> = [];
    const events = new EventEmitter();
    const runner: AssignmentRunner = {
      run: (assignment, signal, ctx) =>
        new Promise<void>((resolve) => {
          const run = { jobId: assignment.jobId, checkpointRound: assignment.checkpointRound, signal, ctx, stopped: false };
          runs.push(run);
          // The runner sees rosters that came before its assignment.
          ctx.progress({ state: 'WORKER_STATE_TRAINING', round: '7', status: `epoch ${ctx.latestRoster()?.epoch}` });
          ctx.report({ jobId: assignment.jobId, epoch: 1, round: '7', loss: 0.5, samples: '32' });
          events.emit('run');
          signal.addEventListener('abort', () => {
            run.stopped = true;
            resolve();
          });
        }),
    };
    const { coordinator, agent, controller, outcome } = await setup({ runner });
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    coordinator.send('w1', { roster: { jobId: 'j1', epoch: 1, startRound: '0', members: [{ workerId: 'w1', index: 0, samplesPerRound: 32 }] } });
    coordinator.send('w1', { assignment: { jobId: 'j1', jobName: 'mnist', specJson: '{}', checkpointRound: '0' } });
    await coordinator.waitFor(
      () => heartbeats(coordinator).some((m) => m.heartbeat!.state === 'WORKER_STATE_TRAINING' && m.heartbeat!.jobId === 'j1'),
      'a training heartbeat',
    );
    const hb = heartbeats(coordinator).find((m) => m.heartbeat!.state === 'WORKER_STATE_TRAINING')!.heartbeat!;
    expect(hb).toMatchObject({ round: '7', status: 'epoch 1' });
    expect(coordinator.messages().find((m) => m.body === 'roundReport')?.roundReport).toMatchObject({ jobId: 'j1', round: '7', loss: 0.5 });
    expect(agent.snapshot()).toMatchObject({ jobId: 'j1', round: '7' });

    // A fresh assignment of the same job: the old run stops before the new one starts.
    const second = new Promise((resolve) => events.once('run', resolve));
    coordinator.send('w1', { assignment: { jobId: 'j1', jobName: 'mnist', specJson: '{}', checkpointRound: '50' } });
    await second;
    expect(runs.map((r) => [r.checkpointRound, r.stopped])).toEqual([
      ['0', true],
      ['50', false],
    ]);
    expect(runs[1].ctx.latestRoster()?.epoch).toBe(1);

    // Draining stops the runner first.
    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'drained' });
    expect(runs[1].stopped).toBe(true);
    const sent = coordinator.sessions[0].messages;
    expect(sent.findIndex((m) => m.body === 'drain')).toBeGreaterThan(0);
  });

  it('keeps what the runner sends while disconnected and delivers it after reconnecting', async () => {
    let ctx: RunnerContext | undefined;
    const started = new EventEmitter();
    const runner: AssignmentRunner = {
      run: (_a, signal, c) =>
        new Promise<void>((resolve) => {
          ctx = c;
          started.emit('run');
          signal.addEventListener('abort', () => resolve());
        }),
    };
    const { coordinator, controller, outcome, agent, status } = await setup({ runner });
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    const running = new Promise((resolve) => started.once('run', resolve));
    coordinator.send('w1', { assignment: { jobId: 'j9', jobName: 'x', specJson: '{}', checkpointRound: '0' } });
    await running;
    coordinator.stop();
    // Once the agent knows the session is gone (a message written into a stream that is
    // breaking, before anyone knows, is lost: the stream has no acknowledgements).
    await statusReaches(agent, status, 'reconnecting');
    ctx!.report({ jobId: 'j9', round: '3', loss: 1.25 });
    await coordinator.start();
    await coordinator.waitFor(() => coordinator.sessions.length >= 2 && coordinator.sessions[1].messages.some((m) => m.body === 'roundReport'), 'the queued report');
    expect(coordinator.sessions[1].messages.find((m) => m.body === 'roundReport')!.roundReport).toMatchObject({ jobId: 'j9', round: '3', loss: 1.25 });
    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'drained' });
  });

  it('leaves unacknowledged when stopped while the coordinator is unreachable', async () => {
    const { coordinator, controller, outcome, agent, status } = await setup();
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    coordinator.stop();
    await statusReaches(agent, status, 'reconnecting');
    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'unacknowledged' });
  });

  it('reconnects when the coordinator ends a silent session, and stops when another agent took its identity over', async () => {
    const { coordinator, outcome } = await setup();
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    coordinator.fail('w1', grpc.status.DEADLINE_EXCEEDED, 'no heartbeat for 15000 ms');
    await coordinator.waitFor(() => coordinator.sessions.length >= 2 && coordinator.sessions[1].messages.length > 0, 'a second session');
    coordinator.fail('w1', grpc.status.ABORTED, 'superseded by a newer session');
    expect(await outcome).toMatchObject({ kind: 'unacknowledged', reason: expect.stringContaining('another agent took over') });
    expect(coordinator.registers).toHaveLength(1);
  });

  it('leaves unacknowledged when the DrainAck does not come in time', async () => {
    const { coordinator, controller, outcome } = await setup({ drainTimeoutMs: 300 });
    coordinator.autoAckDrain = false;
    await coordinator.waitFor(() => heartbeats(coordinator).length >= 1, 'a heartbeat');
    controller.abort();
    expect(await outcome).toMatchObject({ kind: 'unacknowledged', reason: expect.stringContaining('no DrainAck') });
  });
});
