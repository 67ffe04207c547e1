import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_DATABASE_URL, DEFAULT_NATS_URL, toConfig } from './config.js';

describe('toConfig', () => {
  it('fills defaults and freezes the result', () => {
    const c = toConfig({});
    expect(c).toEqual({
      databaseUrl: DEFAULT_DATABASE_URL,
      databasePoolMax: 10,
      natsServers: [DEFAULT_NATS_URL],
      natsAdvertise: [DEFAULT_NATS_URL],
      workerNats: { user: '', password: '', token: '' },
      http: { host: '0.0.0.0', port: 8080 },
      grpc: { host: '0.0.0.0', port: 50051 },
      adminKey: undefined,
      heartbeat: { intervalMs: 5000, misses: 3 },
      leaseMs: 60_000,
      logLevel: 'info',
      datasets: {},
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.http)).toBe(true);
    expect(Object.isFrozen(c.natsServers)).toBe(true);
  });

  it('passes dataset settings through to DatasetsModule', () => {
    const c = toConfig({ GRADPOOL_DATASET_MAX_FILE_BYTES: '1048576', GRADPOOL_SHARD_BYTES: '65536', GRADPOOL_TMP_DIR: '/var/tmp/gp' });
    expect(c.datasets).toEqual({ maxFileBytes: 1_048_576, shardBytes: 65_536, tmpDir: '/var/tmp/gp' });
    expect(() => toConfig({ GRADPOOL_SHARD_BYTES: '12' })).toThrow(/GRADPOOL_SHARD_BYTES/);
    expect(toConfig({ GRADPOOL_DATASET_BUCKETS: 'shared' }).datasets).toEqual({ buckets: 'shared' });
    expect(() => toConfig({ GRADPOOL_DATASET_BUCKETS: 'one' })).toThrow(/GRADPOOL_DATASET_BUCKETS.*per-dataset or shared/);
  });

  it('passes the owner audit rate through to the keeper', () => {
    expect(toConfig({ GRADPOOL_AUDIT_SHARDS_PER_ROUND: '4' }).jobs).toEqual({ keeper: { auditShardsPerRound: 4 } });
    expect(toConfig({ GRADPOOL_AUDIT_SHARDS_PER_ROUND: '0' }).jobs).toEqual({ keeper: { auditShardsPerRound: 0 } });
    expect(toConfig({ GRADPOOL_AUDIT_SHARDS_PER_ROUND: 'auto' }).jobs).toEqual({ keeper: { auditShardsPerRound: 'auto' } });
    expect(toConfig({}).jobs).toBeUndefined();
    expect(() => toConfig({ GRADPOOL_AUDIT_SHARDS_PER_ROUND: '-1' })).toThrow(/GRADPOOL_AUDIT_SHARDS_PER_ROUND/);
  });

  it('reads every variable, treats blanks as unset, and splits NATS server lists', () => {
    const c = toConfig({
      DATABASE_URL: 'postgresql://u:p@db:5432/gp',
      GRADPOOL_DB_POOL_MAX: '1',
      NATS_URL: 'nats://a:4222, nats://b:4222',
      GRADPOOL_NATS_ADVERTISE: 'nats.example.org:4222',
      GRADPOOL_HTTP_HOST: '127.0.0.1',
      GRADPOOL_HTTP_PORT: '0',
      GRADPOOL_GRPC_PORT: '0',
      GRADPOOL_ADMIN_KEY: 'a-long-enough-admin-key',
      GRADPOOL_HEARTBEAT_INTERVAL_MS: '100',
      GRADPOOL_HEARTBEAT_MISSES: '5',
      GRADPOOL_LEASE_MS: '500',
      LOG_LEVEL: 'silent',
      GRADPOOL_GRPC_HOST: ' ',
    });
    expect(c.natsServers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(c.natsAdvertise).toEqual(['nats.example.org:4222']);
    expect(c.http).toEqual({ host: '127.0.0.1', port: 0 });
    expect(c.grpc).toEqual({ host: '0.0.0.0', port: 0 });
    expect(c.databasePoolMax).toBe(1);
    expect(c.heartbeat).toEqual({ intervalMs: 100, misses: 5 });
  });

  it('does not advertise the coordinator\'s own NATS credentials to workers', () => {
    const c = toConfig({ NATS_URL: 'nats://coord:secret@nats-0:4222,tls://nats-1:4222' });
    expect(c.natsServers).toEqual(['nats://coord:secret@nats-0:4222', 'tls://nats-1:4222']);
    expect(c.natsAdvertise).toEqual(['nats://nats-0:4222', 'tls://nats-1:4222']);
  });

  it('turns on per-worker NATS users with an account seed, and reads the coordinator\'s credentials file', () => {
    const seed = `SA${'B'.repeat(56)}`;
    const c = toConfig({ GRADPOOL_NATS_ACCOUNT_SEED: ` ${seed} `, NATS_CREDS: '/etc/gradpool/coordinator.creds' });
    expect(c.workerNatsUsers).toEqual({ accountSeed: seed, ttlMs: 24 * 3_600_000, revocation: undefined });
    expect(c.natsCredsFile).toBe('/etc/gradpool/coordinator.creds');
    expect(toConfig({}).workerNatsUsers).toBeUndefined();
    const op = `SO${'C'.repeat(56)}`;
    const r = toConfig({ GRADPOOL_NATS_ACCOUNT_SEED: seed, GRADPOOL_NATS_OPERATOR_SEED: op, GRADPOOL_NATS_SYSTEM_CREDS: '/etc/gradpool/system.creds' });
    expect(r.workerNatsUsers?.revocation).toEqual({ operatorSeed: op, systemCredsFile: '/etc/gradpool/system.creds' });
  });

  it.each([
    [{ GRADPOOL_HTTP_PORT: 'eighty' }, /GRADPOOL_HTTP_PORT/],
    [{ GRADPOOL_GRPC_PORT: '70000' }, /GRADPOOL_GRPC_PORT/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be a postgres/],
    [{ NATS_URL: ',' }, /NATS_URL/],
    [{ GRADPOOL_ADMIN_KEY: 'short' }, /GRADPOOL_ADMIN_KEY: must be at least 16/],
    [{ GRADPOOL_HEARTBEAT_MISSES: '0' }, /GRADPOOL_HEARTBEAT_MISSES/],
    [{ GRADPOOL_HEARTBEAT_INTERVAL_MS: '1.5' }, /GRADPOOL_HEARTBEAT_INTERVAL_MS/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ GRADPOOL_HTTP_PORT: '9000', GRADPOOL_GRPC_PORT: '9000' }, /GRADPOOL_HTTP_PORT and GRADPOOL_GRPC_PORT are both 9000/],
    [{ GRADPOOL_WORKER_NATS_USER: 'w' }, /GRADPOOL_WORKER_NATS_USER and GRADPOOL_WORKER_NATS_PASSWORD go together/],
    [{ GRADPOOL_NATS_ACCOUNT_SEED: `SA${'A'.repeat(56)}`, GRADPOOL_NATS_OPERATOR_SEED: `SO${'A'.repeat(56)}` }, /GRADPOOL_NATS_OPERATOR_SEED and GRADPOOL_NATS_SYSTEM_CREDS go together/],
    [{ GRADPOOL_NATS_OPERATOR_SEED: `SO${'A'.repeat(56)}`, GRADPOOL_NATS_SYSTEM_CREDS: '/x' }, /need GRADPOOL_NATS_ACCOUNT_SEED/],
    [{ GRADPOOL_NATS_ACCOUNT_SEED: `SA${'A'.repeat(56)}`, GRADPOOL_NATS_OPERATOR_SEED: `SA${'A'.repeat(56)}`, GRADPOOL_NATS_SYSTEM_CREDS: '/x' }, /GRADPOOL_NATS_OPERATOR_SEED: must be a NATS operator nkey seed/],
    [{ GRADPOOL_WORKER_NATS_TOKEN: 't', GRADPOOL_WORKER_NATS_USER: 'w', GRADPOOL_WORKER_NATS_PASSWORD: 'p' }, /not both/],
    [{ GRADPOOL_LEASE_MS: '1000' }, /GRADPOOL_LEASE_MS \(1000\) must be at least .*\(15000\)/],
    [{ GRADPOOL_NATS_ACCOUNT_SEED: 'SUAFOO' }, /GRADPOOL_NATS_ACCOUNT_SEED: must be a NATS account nkey seed/],
    [{ GRADPOOL_NATS_ACCOUNT_SEED: `SA${'A'.repeat(56)}`, GRADPOOL_WORKER_NATS_TOKEN: 't' }, /every worker gets its own NATS user; unset GRADPOOL_WORKER_NATS/],
    [{ GRADPOOL_WORKER_NATS_TTL_MS: '1000' }, /GRADPOOL_WORKER_NATS_TTL_MS/],
  ])('rejects %o naming the variable', (env, message) => {
    expect(() => toConfig(env)).toThrow(ConfigError);
    expect(() => toConfig(env)).toThrow(message);
  });
});
