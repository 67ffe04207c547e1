/**
 * Revoking a worker's NATS user against a nats-server in operator mode (the configuration of
 * `natsServerConfig`, which the deployments use): the account pushed with the user revoked closes
 * its connection and refuses its sign-in; other users and JetStream go on; a restarted server
 * still refuses it; one that lost its resolver's directory has forgotten the update until it is
 * pushed again.
 */
import { startSecuredNatsServer, type SecuredNats } from '@gradpool/testing';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOperator } from '@nats-io/nkeys';
import { connect, credsAuthenticator, Events } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountRevocations, RevocationPushError } from './revocations.js';
import { WorkerCredentialIssuer } from './worker-credentials.js';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
let dir: string;
let nats: SecuredNats;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gp-nats-revoke-'));
  nats = await startSecuredNatsServer(NATS_SERVER, dir);
});
afterAll(async () => {
  await nats?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const as = (creds: string, reconnect = false) =>
  connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)), maxReconnectAttempts: reconnect ? -1 : 0, reconnectTimeWait: 100 });

async function refusal(creds: string): Promise<string> {
  try {
    await (await as(creds)).close();
    return 'connected';
  } catch (err) {
    return (err as Error).message;
  }
}

describe('AccountRevocations', () => {
  it('closes a revoked user at once and refuses it; other users and JetStream are untouched', async () => {
    const issuer = WorkerCredentialIssuer.fromSeed(nats.setup.account.seed, { ttlMs: 3_600_000 });
    const revoked = await issuer.forJob('w1', 'job1');
    const kept = await issuer.forJob('w2', 'job1');
    const revocations = AccountRevocations.fromSeeds(nats.setup.operatorSeed, nats.setup.account.seed);
    const system = await as(readFileSync(nats.coordinatorEnv.GRADPOOL_NATS_SYSTEM_CREDS, 'utf8'), true);
    const coordinator = await as(nats.setup.coordinatorCreds, true);
    const kv = await coordinator.jetstream().views.kv('revoke_test');
    await kv.put('k', new Uint8Array([1]));
    const w1 = await as(revoked.creds, true);
    const w2 = await as(kept.creds, true);
    const w1Closed = w1.closed();

    await revocations.push(system, { [revoked.userKey]: revoked.issuedAt });
    expect(String(await w1Closed)).toMatch(/authorization violation/i);
    expect(await refusal(revoked.creds)).toMatch(/authorization violation/i);
    await w2.flush();
    expect(w2.isClosed()).toBe(false);
    expect(Array.from((await kv.get('k'))!.value)).toEqual([1]);

    // The server keeps the update in its resolver's directory: restarted, it still refuses the
    // user, before anyone pushes again.
    const reconnect = () =>
      (async () => {
        for await (const st of system.status()) if (st.type === Events.Reconnect) return;
      })();
    let reconnected = reconnect();
    await nats.restart();
    expect(await refusal(revoked.creds)).toMatch(/authorization violation/i);
    await reconnected;
    // A server that lost that directory starts from the preloaded account: the user signs in
    // again until the list is pushed (the coordinator pushes after a reconnect).
    reconnected = reconnect();
    await nats.restart({ forgetAccounts: true });
    expect(await refusal(revoked.creds)).toBe('connected');
    await reconnected;
    await revocations.push(system, { [revoked.userKey]: revoked.issuedAt });
    expect(await refusal(revoked.creds)).toMatch(/authorization violation/i);
    // Pushed without it, the user may sign in again.
    await revocations.push(system, {});
    expect(await refusal(revoked.creds)).toBe('connected');
    await Promise.all([system, coordinator, w2].map((c) => c.close()));
  });

  it('says why a push failed, and refuses seeds of the wrong kind', async () => {
    const revocations = AccountRevocations.fromSeeds(nats.setup.operatorSeed, nats.setup.account.seed);
    // A user of the Gradpool account, not of the system account: nobody answers the update.
    const notSystem = await as(nats.setup.coordinatorCreds);
    await expect(revocations.push(notSystem, {}, 1000)).rejects.toThrow(RevocationPushError);
    await notSystem.close();
    // Another operator's seed: refused before anything is pushed. The server's resolver would
    // store an account it did not sign ("jwt updated") and lock every user out, across restarts.
    const stranger = AccountRevocations.fromSeeds(new TextDecoder().decode(createOperator().getSeed()), nats.setup.account.seed);
    const system = await as(readFileSync(nats.coordinatorEnv.GRADPOOL_NATS_SYSTEM_CREDS, 'utf8'));
    const err = await stranger.push(system, {}, 2000).catch((e: Error) => e);
    expect(err).toBeInstanceOf(RevocationPushError);
    expect((err as Error).message).toMatch(/the NATS servers hold the account A\w+ signed by the operator O\w+, not by this operator seed's O\w+/);
    expect(await refusal(nats.setup.coordinatorCreds)).toBe('connected');
    await system.close();
    // The system user may push the Gradpool account's updates and nothing else of the system account.
    const sys = await as(readFileSync(nats.coordinatorEnv.GRADPOOL_NATS_SYSTEM_CREDS, 'utf8'));
    const denied = await sys.request('$SYS.REQ.SERVER.PING', new Uint8Array(), { timeout: 1000 }).then(
      () => 'answered',
      (e: Error) => e.message,
    );
    expect(denied).toMatch(/permissions violation for publish to "\$SYS\.REQ\.SERVER\.PING"/i);
    await sys.close();
    expect(() => AccountRevocations.fromSeeds(nats.setup.account.seed, nats.setup.account.seed)).toThrow(/operator seed/);
    expect(() => AccountRevocations.fromSeeds(nats.setup.operatorSeed, 'SUfoo')).toThrow(/account seed/);
  });
});
