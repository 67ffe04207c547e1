/**
 * A worker's NATS user is taken away as soon as the worker leaves the job it was issued for, not
 * when it lapses (NatsRevocationService, docs/nats-auth.md): a real coordinator on Postgres and a
 * nats-server in operator mode. The server closes the user's connection and refuses it; the
 * revocation is pushed again to a server that restarted without its resolver's directory; users
 * of a worker still on its job stay.
 */
import { startSecuredNatsServer, type SecuredNats } from '@gradpool/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOperator } from '@nats-io/nkeys';
import { connect, credsAuthenticator } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsRevocationService } from '../../apps/coordinator/src/services/nats-revocation.service.js';
import { WorkerNatsAccessService } from '../../apps/coordinator/src/services/worker-nats-access.service.js';
import { waitFor } from './foundation-helpers.js';
import { groupWithToken, jobsEnv, onlineFakeWorker, startJobsCoordinator, type FakeWorker, type JobsCoordinator, type JobsEnv } from './jobs-helpers.js';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
let env: JobsEnv;
let dir: string;
let nats: SecuredNats;
let c: JobsCoordinator;
let w: FakeWorker;

beforeAll(async () => {
  env = await jobsEnv();
  dir = mkdtempSync(join(tmpdir(), 'gp-revoke-'));
  nats = await startSecuredNatsServer(NATS_SERVER, dir);
  c = await startJobsCoordinator(env, nats.coordinatorEnv);
  const { token } = await groupWithToken(c, 'revocation');
  w = await onlineFakeWorker(c, env.sql, token, 'revoked-worker');
});

afterAll(async () => {
  w?.close();
  await c?.close();
  await nats?.close();
  await env?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** 'connected', or the server's reason for refusing `creds`. */
async function signIn(creds: string): Promise<string> {
  try {
    await (await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)), maxReconnectAttempts: 0 })).close();
    return 'connected';
  } catch (err) {
    return (err as Error).message;
  }
}

async function setJob(workerId: string, jobId: string | null): Promise<void> {
  await env.sql.query('update workers set current_job_id = $2 where id = $1', [workerId, jobId]);
}

describe('revoking workers\' NATS users', () => {
  it('revokes a user once its worker leaves the job, closes its connection, and keeps it refused across a server restart', async () => {
    const access = c.handle.app.get(WorkerNatsAccessService);
    const revocation = c.handle.app.get(NatsRevocationService);
    expect(revocation.enabled).toBe(true);
    // A job the scheduler leaves alone (it has ended), that the worker is assigned to.
    const job = (await env.sql.query(`insert into jobs (name, spec, status) values ('revocation', '{}'::jsonb, 'completed') returning id`)).rows[0].id as string;
    await setJob(w.id, job);
    const first = (await access.forJob(w.id, job))!;
    const live = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(first.creds!)), maxReconnectAttempts: 0 });
    const closed = live.closed();

    // Still on its job: nothing is revoked.
    await revocation.pass();
    await live.flush();
    expect(live.isClosed()).toBe(false);
    const rows = async () => (await env.sql.query('select user_key, revoked_at from worker_nats_users where worker_id = $1 order by issued_at', [w.id])).rows;
    expect((await rows()).map((r) => r.revoked_at)).toEqual([null]);

    // Off the job: revoked within a pass; the server closes the connection and refuses the user.
    await setJob(w.id, null);
    await revocation.pass();
    expect((await rows())[0].revoked_at).not.toBeNull();
    expect(String(await closed)).toMatch(/authorization violation/i);
    expect(await signIn(first.creds!)).toMatch(/authorization violation/i);
    const events = (await env.sql.query(`select worker_id, data from events where job_id = $1 and type = 'worker.nats-revoked'`, [job])).rows;
    expect(events).toEqual([{ worker_id: w.id, data: { users: 1 } }]);

    // A server that lost its resolver's directory (a restart keeps it: revocations.test.ts) has
    // forgotten the update: the service pushes the list again after its reconnect.
    await nats.restart({ forgetAccounts: true });
    await waitFor(async () => (/authorization violation/i.test(await signIn(first.creds!)) ? true : undefined), 'the revoked user refused again after the restart', 20_000);

    // Assigned again, the worker gets a new user, which works; the old one stays refused.
    await setJob(w.id, job);
    const second = (await access.forJob(w.id, job))!;
    await revocation.pass();
    expect(await signIn(second.creds!)).toBe('connected');
    expect(await signIn(first.creds!)).toMatch(/authorization violation/i);
  });

  it('refuses to start with an operator seed the servers do not trust, saying which settings to check', async () => {
    const stranger = new TextDecoder().decode(createOperator().getSeed());
    await expect(startJobsCoordinator(env, { ...nats.coordinatorEnv, GRADPOOL_NATS_OPERATOR_SEED: stranger })).rejects.toThrow(
      /cannot push workers' NATS revocations: the NATS servers hold the account A\w+ signed by the operator O\w+, not by this operator seed's O\w+.*GRADPOOL_NATS_OPERATOR_SEED and GRADPOOL_NATS_SYSTEM_CREDS/,
    );
    // Nothing was pushed: the coordinator's own user still signs in (a stored account of another
    // operator would have locked every user of the account out).
    const own = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(nats.setup.coordinatorCreds)), maxReconnectAttempts: 0 });
    await own.close();
  });
});
