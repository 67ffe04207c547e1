// The worker agent process against the real coordinator process (real Postgres): a donor
// joins and an admin sees the worker online; Ctrl-C and the API drain it; it rides out a
// coordinator crash by itself; a refused token is exit 3 with a clear message.
import { AdminApi, CoordinatorProcess, createTestDatabase, WorkerProcess, type TestDatabase } from '@gradpool/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface WorkerRow {
  id: string;
  name: string;
  status: string;
  state: string;
  connected: boolean;
  capabilities: { backend: string; gflops: number; deviceName: string; memoryBytes: number; agentVersion: string; os: string; cpuCount: number };
}

let db: TestDatabase;
let coordinator: CoordinatorProcess;
let groupId: string;
let token: string;
const workers: WorkerProcess[] = [];

/** The coordinator's REST API with its admin key (libs/testing's client). */
function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  return new AdminApi(() => coordinator.httpUrl, coordinator.adminKey).request<T>(method, path, body);
}

const listWorkers = () => api<WorkerRow[]>('GET', `/v1/workers?group=${groupId}`);
const workerById = async (id: string) => (await listWorkers()).find((w) => w.id === id);

function startWorker(name: string, opts: { token?: string; stateDir?: string } = {}): WorkerProcess {
  const w = WorkerProcess.start({ coordinator: coordinator.grpcAddress, token: opts.token ?? token, name, stateDir: opts.stateDir });
  workers.push(w);
  return w;
}

/** Waits for the worker's n-th (1-based) accepted session and returns its worker id. */
async function sessionAccepted(w: WorkerProcess, n = 1): Promise<string> {
  const line = await w.waitForLine(
    (l) => l.json?.msg === 'session accepted' && w.lines.filter((x) => x.json?.msg === 'session accepted').indexOf(l) === n - 1,
    `session #${n} accepted`,
    60_000,
  );
  return line.json!.workerId as string;
}

beforeAll(async () => {
  db = await createTestDatabase('gp_e2e_worker');
  // Small heartbeats keep the suite fast; a long lease lets a worker keep its identity
  // across a coordinator restart.
  coordinator = await CoordinatorProcess.start({ databaseUrl: db.url, heartbeatIntervalMs: 200, heartbeatMisses: 3, leaseMs: 60_000 });
  groupId = (await api<{ id: string }>('POST', '/v1/groups', { name: 'e2e donors' })).id;
  token = (await api<{ token: string }>('POST', `/v1/groups/${groupId}/tokens`, {})).token;
});

afterAll(async () => {
  for (const w of workers) await w[Symbol.asyncDispose]();
  await coordinator?.[Symbol.asyncDispose]();
  await db?.drop();
});

describe('gradpool-worker against the coordinator', () => {
  it('joins, shows online with its capabilities, and drains on Ctrl-C (exit 0, status drained)', async () => {
    const w = startWorker('e2e-ctrl-c');
    const id = await sessionAccepted(w);
    const row = await workerById(id);
    expect(row, JSON.stringify(await listWorkers())).toMatchObject({ name: 'e2e-ctrl-c', status: 'online', connected: true, state: 'idle' });
    expect(row!.capabilities).toMatchObject({ backend: 'wasm', agentVersion: '0.1.0' });
    expect(row!.capabilities.gflops).toBeGreaterThan(0);
    expect(row!.capabilities.memoryBytes).toBeGreaterThan(0);
    expect(row!.capabilities.cpuCount).toBeGreaterThan(0);

    w.interrupt('SIGINT');
    const exit = await w.exited(30_000);
    expect(exit.code, w.output()).toBe(0);
    expect(w.output()).toMatch(/drain acknowledged/);
    expect((await workerById(id))?.status).toBe('drained');
  });

  it('exits 0 when an admin drains it through the API', async () => {
    const w = startWorker('e2e-api-drain');
    const id = await sessionAccepted(w);
    await api('POST', `/v1/workers/${id}/drain`);
    const exit = await w.exited(30_000);
    expect(exit.code, w.output()).toBe(0);
    expect(await w.waitForLog('drained; leaving', { initiatedBy: 'coordinator' }, 1_000)).toBeDefined();
    expect((await workerById(id))?.status).toBe('drained');
  });

  it('keeps its identity when restarted within the lease', async () => {
    const first = startWorker('e2e-restart');
    const id = await sessionAccepted(first);
    await first.kill();
    const second = startWorker('e2e-restart', { stateDir: first.stateDir });
    expect(await sessionAccepted(second)).toBe(id);
    expect(await second.waitForLog('registered', { keptIdentity: true }, 1_000)).toBeDefined();
    expect(await workerById(id)).toMatchObject({ status: 'online', connected: true });
    second.interrupt();
    expect((await second.exited(30_000)).code, second.output()).toBe(0);
  });

  it('refuses a bad or revoked token with exit 3 and a clear message', async () => {
    const bad = startWorker('e2e-bad-token', { token: 'gpj_not-a-real-token' });
    expect((await bad.exited(30_000)).code, bad.output()).toBe(3);
    expect(bad.output()).toMatch(/refused the join token \(unknown join token\); ask your group admin for a valid token/);

    const t = await api<{ id: string; token: string }>('POST', `/v1/groups/${groupId}/tokens`, {});
    await api('DELETE', `/v1/groups/${groupId}/tokens/${t.id}`);
    const revoked = startWorker('e2e-revoked-token', { token: t.token });
    expect((await revoked.exited(30_000)).code, revoked.output()).toBe(3);
    expect(revoked.output()).toMatch(/refused the join token \(this join token has been revoked\)/);
    expect((await listWorkers()).some((w) => w.name.startsWith('e2e-bad') || w.name.startsWith('e2e-revoked'))).toBe(false);
  });

  it('stops at once, without draining, on a second Ctrl-C (exit 130)', async () => {
    const w = startWorker('e2e-impatient');
    await sessionAccepted(w);
    // A frozen coordinator never acknowledges the drain, so the agent is still waiting for it.
    process.kill(coordinator.pid!, 'SIGSTOP');
    try {
      w.interrupt('SIGINT');
      await w.waitForLog('draining', { initiatedBy: 'worker' }, 30_000);
      w.interrupt('SIGINT');
      const exit = await w.exited(30_000);
      expect(exit.code, w.output()).toBe(130);
      expect(w.output()).toMatch(/SIGINT again: stopping now, without draining/);
    } finally {
      process.kill(coordinator.pid!, 'SIGCONT');
    }
  });

  // Last: it kills the coordinator.
  it('reconnects by itself after the coordinator is killed and restarted, and is online again', async () => {
    const w = startWorker('e2e-survivor');
    const id = await sessionAccepted(w);
    await coordinator.kill('SIGKILL');
    await w.waitForLog('session lost; reconnecting', {}, 30_000);
    await coordinator.restart();
    expect(await sessionAccepted(w, 2)).toBe(id);
    expect(await workerById(id)).toMatchObject({ status: 'online', connected: true });
    w.interrupt();
    expect((await w.exited(30_000)).code, w.output()).toBe(0);
    expect((await workerById(id))?.status).toBe('drained');
  });
});
