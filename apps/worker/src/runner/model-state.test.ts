/**
 * Reading a checkpoint while NATS stops answering for a moment (the server frozen with SIGSTOP):
 * the read is retried and succeeds; one that keeps timing out is a runner error, never
 * 'bad-checkpoint' (which would blame the checkpoint and keep the worker out for 5 minutes).
 */
import { startNatsServer, type StartedNatsServer } from '@gradpool/testing';
import { encodeCheckpoint } from '@gradpool/training';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerFault } from './faults.js';
import { CheckpointReader } from './model-state.js';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const TIMEOUT_MS = 400;
let dir: string;
let server: StartedNatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gp-checkpoint-read-'));
  server = await startNatsServer(NATS_SERVER, join(dir, 'js'));
  nc = await connect({ servers: server.url });
  const os = await nc.jetstream().views.os('gp_ckpt_test');
  await os.putBlob({ name: 'round-3' }, encodeCheckpoint({ params: Float32Array.from([1, 2, 3]), optimizerState: [], round: 3 }));
});
afterAll(async () => {
  await nc?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});


describe('CheckpointReader', () => {
  it('retries a read that timed out and returns the checkpoint', async () => {
    const retries: number[] = [];
    let retried!: () => void;
    const firstRetry = new Promise<void>((r) => (retried = r));
    const reader = new CheckpointReader(nc, 'gp_ckpt_test', {
      timeoutMs: TIMEOUT_MS,
      onRetry: (n) => {
        retries.push(n);
        retried();
      },
    });
    // Frozen until the first attempt has timed out and a retry is under way (a fixed 700 ms could
    // end, on a loaded machine, before the read had even been sent: no retry, a failed test).
    const thawed = server.freezeUntil(firstRetry);
    const cp = await reader.read('round-3');
    await thawed;
    expect(cp.round).toBe(3);
    expect([...cp.params]).toEqual([1, 2, 3]);
    expect(retries.length).toBeGreaterThanOrEqual(1);
  });

  it('reports a read that keeps timing out as a runner error, not a bad checkpoint', async () => {
    const reader = new CheckpointReader(nc, 'gp_ckpt_test', { timeoutMs: TIMEOUT_MS, attempts: 2, firstDelayMs: 50 });
    // Frozen until the read has given up (every attempt timed out), however long that takes here.
    let settled!: () => void;
    const thawed = server.freezeUntil(new Promise<void>((r) => (settled = r)));
    const err = await reader.read('round-3').catch((e: unknown) => e);
    settled();
    await thawed;
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(RunnerFault);
    expect(String(err)).toMatch(/checkpoint gp_ckpt_test\/round-3 could not be read: TIMEOUT/);
    expect((await reader.rounds())).toEqual([3]);
  });

  it('still calls a missing checkpoint a bad checkpoint', async () => {
    const reader = new CheckpointReader(nc, 'gp_ckpt_test', { timeoutMs: TIMEOUT_MS });
    const err = await reader.read('round-9').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunnerFault);
    expect((err as RunnerFault).kind).toBe('bad-checkpoint');
  });
});
