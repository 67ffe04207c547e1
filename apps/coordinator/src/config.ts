/**
 * Coordinator configuration: `toConfig(env)` turns the environment (read only by main.ts) into a
 * validated, frozen object. Invalid values fail at boot with a message naming the variable.
 */
import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface CoordinatorConfig {
  readonly databaseUrl: string;
  /** Connections in the coordinator's pool (1 for an embedded PGlite, which serves one at a time). */
  readonly databasePoolMax: number;
  /** NATS servers the coordinator itself connects to. */
  readonly natsServers: readonly string[];
  /** NATS servers handed to workers at registration (they may reach NATS by another address). */
  readonly natsAdvertise: readonly string[];
  /** Credentials handed to workers with the NATS servers (empty strings when none). */
  readonly workerNats: { readonly user: string; readonly password: string; readonly token: string };
  /** A NATS credentials file (user JWT + seed) for the coordinator's own connections (NATS_CREDS). */
  readonly natsCredsFile: string | undefined;
  /**
   * Per-worker NATS users (libs/nats-auth): the seed of the NATS account that holds Gradpool's
   * subjects signs, for each worker and job, a user limited to that job (docs/nats-auth.md).
   * Unset: every worker gets `workerNats`.
   */
  readonly workerNatsUsers:
    | {
        readonly accountSeed: string;
        readonly ttlMs: number;
        /** Revoking users before they lapse: the operator's seed re-signs the account, a system user pushes it. */
        readonly revocation: { readonly operatorSeed: string; readonly systemCredsFile: string } | undefined;
      }
    | undefined;
  readonly http: { readonly host: string; readonly port: number };
  readonly grpc: { readonly host: string; readonly port: number };
  /** Bootstrap admin API key; when absent and no admin key exists, one is generated at first start. */
  readonly adminKey: string | undefined;
  readonly heartbeat: { readonly intervalMs: number; readonly misses: number };
  /** A worker that reconnects within this many ms of its last heartbeat keeps its identity. */
  readonly leaseMs: number;
  readonly logLevel: LogLevel;
  /** Dataset import settings; unset fields take DatasetsModule's defaults. */
  readonly datasets?: {
    readonly maxFileBytes?: number;
    readonly shardBytes?: number;
    readonly tmpDir?: string;
    /** Where new imports keep their shards: a bucket per dataset (default) or the shared bucket. */
    readonly buckets?: 'per-dataset' | 'shared';
  };
  /** Jobs settings from the environment (tests pass more: JobsSettings in jobs.module.ts). */
  readonly jobs?: { readonly keeper?: { readonly auditShardsPerRound?: number | 'auto' } };
}

/** The environment variables the coordinator reads (all optional). */
export const ENV_VARS = [
  'DATABASE_URL',
  'GRADPOOL_DB_POOL_MAX',
  'NATS_URL',
  'GRADPOOL_NATS_ADVERTISE',
  'GRADPOOL_WORKER_NATS_USER',
  'GRADPOOL_WORKER_NATS_PASSWORD',
  'GRADPOOL_WORKER_NATS_TOKEN',
  'NATS_CREDS',
  'GRADPOOL_NATS_ACCOUNT_SEED',
  'GRADPOOL_WORKER_NATS_TTL_MS',
  'GRADPOOL_NATS_OPERATOR_SEED',
  'GRADPOOL_NATS_SYSTEM_CREDS',
  'GRADPOOL_HTTP_HOST',
  'GRADPOOL_HTTP_PORT',
  'GRADPOOL_GRPC_HOST',
  'GRADPOOL_GRPC_PORT',
  'GRADPOOL_ADMIN_KEY',
  'GRADPOOL_HEARTBEAT_INTERVAL_MS',
  'GRADPOOL_HEARTBEAT_MISSES',
  'GRADPOOL_LEASE_MS',
  'LOG_LEVEL',
  'GRADPOOL_DATASET_MAX_FILE_BYTES',
  'GRADPOOL_SHARD_BYTES',
  'GRADPOOL_DATASET_BUCKETS',
  'GRADPOOL_TMP_DIR',
  'GRADPOOL_AUDIT_SHARDS_PER_ROUND',
] as const;
export type EnvVar = (typeof ENV_VARS)[number];
export type Env = Partial<Record<EnvVar, string | undefined>>;

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** Thrown for an invalid configuration; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const int = (min: number, max: number, dflt: number) =>
  z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ error: 'must be a number' })
      .int('must be an integer')
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`)
      .default(dflt),
  );
const port = (dflt: number) => int(0, 65_535, dflt);

const serverList = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
  .pipe(
    z
      .array(
        z.string().refine((u) => {
          try {
            // nats.js accepts host:port too; a scheme makes it a URL.
            new URL(u.includes('://') ? u : `nats://${u}`);
            return true;
          } catch {
            return false;
          }
        }, 'not a NATS URL'),
      )
      .min(1, 'at least one server'),
  );

const envSchema = z.object({
  DATABASE_URL: z.preprocess(
    blankToUndefined,
    z
      .string()
      .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must be a postgres:// URL')
      .default(DEFAULT_DATABASE_URL),
  ),
  GRADPOOL_DB_POOL_MAX: int(1, 1000, 10),
  NATS_URL: z.preprocess(blankToUndefined, serverList.default([DEFAULT_NATS_URL])),
  GRADPOOL_NATS_ADVERTISE: z.preprocess(blankToUndefined, serverList.optional()),
  GRADPOOL_WORKER_NATS_USER: z.preprocess(blankToUndefined, z.string().optional()),
  GRADPOOL_WORKER_NATS_PASSWORD: z.preprocess(blankToUndefined, z.string().optional()),
  GRADPOOL_WORKER_NATS_TOKEN: z.preprocess(blankToUndefined, z.string().optional()),
  NATS_CREDS: z.preprocess(blankToUndefined, z.string().optional()),
  GRADPOOL_NATS_ACCOUNT_SEED: z.preprocess(
    blankToUndefined,
    z
      .string()
      .trim()
      .refine((s) => /^SA[A-Z2-7]{56}$/.test(s), 'must be a NATS account nkey seed (SA…, 58 characters)')
      .optional(),
  ),
  GRADPOOL_WORKER_NATS_TTL_MS: int(10_000, 366 * 24 * 3_600_000, 24 * 3_600_000),
  GRADPOOL_NATS_OPERATOR_SEED: z.preprocess(
    blankToUndefined,
    z
      .string()
      .trim()
      .refine((s) => /^SO[A-Z2-7]{56}$/.test(s), 'must be a NATS operator nkey seed (SO…, 58 characters)')
      .optional(),
  ),
  GRADPOOL_NATS_SYSTEM_CREDS: z.preprocess(blankToUndefined, z.string().optional()),
  GRADPOOL_HTTP_HOST: z.preprocess(blankToUndefined, z.string().default('0.0.0.0')),
  GRADPOOL_HTTP_PORT: port(8080),
  GRADPOOL_GRPC_HOST: z.preprocess(blankToUndefined, z.string().default('0.0.0.0')),
  GRADPOOL_GRPC_PORT: port(50051),
  GRADPOOL_ADMIN_KEY: z.preprocess(blankToUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
  GRADPOOL_HEARTBEAT_INTERVAL_MS: int(10, 3_600_000, 5000),
  GRADPOOL_HEARTBEAT_MISSES: int(1, 1000, 3),
  GRADPOOL_LEASE_MS: int(10, 2_147_483_647, 60_000),
  LOG_LEVEL: z.preprocess(blankToUndefined, z.enum(LOG_LEVELS).default('info')),
  GRADPOOL_DATASET_MAX_FILE_BYTES: z.preprocess(blankToUndefined, z.coerce.number().int().min(1024).max(2 ** 45).optional()),
  GRADPOOL_SHARD_BYTES: z.preprocess(blankToUndefined, z.coerce.number().int().min(4096).max(64 * 1024 * 1024).optional()),
  GRADPOOL_DATASET_BUCKETS: z.preprocess(blankToUndefined, z.enum(['per-dataset', 'shared'], { error: 'must be per-dataset or shared' }).optional()),
  GRADPOOL_TMP_DIR: z.preprocess(blankToUndefined, z.string().optional()),
  GRADPOOL_AUDIT_SHARDS_PER_ROUND: z.preprocess(
    blankToUndefined,
    z.union([z.literal('auto'), z.coerce.number().int().min(0).max(1_000_000)], { error: "must be 'auto' or an integer ≥ 0" }).optional(),
  ),
});

/** A server URL without user:password@ (the coordinator's credentials are not handed to workers). */
function withoutCredentials(server: string): string {
  if (!server.includes('@')) return server;
  try {
    const u = new URL(server.includes('://') ? server : `nats://${server}`);
    return `${u.protocol}//${u.host}`;
  } catch {
    return server;
  }
}

function deepFreeze<T>(o: T): T {
  for (const v of Object.values(o as object)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(o);
}

/** Validates `env` and returns the frozen configuration; throws ConfigError naming the variable. */
export function toConfig(env: Env): CoordinatorConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  if (e.GRADPOOL_HTTP_PORT !== 0 && e.GRADPOOL_HTTP_PORT === e.GRADPOOL_GRPC_PORT) {
    throw new ConfigError(
      `invalid configuration: GRADPOOL_HTTP_PORT and GRADPOOL_GRPC_PORT are both ${e.GRADPOOL_HTTP_PORT}`,
    );
  }
  if (!!e.GRADPOOL_WORKER_NATS_USER !== !!e.GRADPOOL_WORKER_NATS_PASSWORD) {
    throw new ConfigError('invalid configuration: GRADPOOL_WORKER_NATS_USER and GRADPOOL_WORKER_NATS_PASSWORD go together');
  }
  if (e.GRADPOOL_WORKER_NATS_TOKEN && e.GRADPOOL_WORKER_NATS_USER) {
    throw new ConfigError('invalid configuration: give GRADPOOL_WORKER_NATS_TOKEN or GRADPOOL_WORKER_NATS_USER/PASSWORD, not both');
  }
  if (e.GRADPOOL_NATS_ACCOUNT_SEED && (e.GRADPOOL_WORKER_NATS_TOKEN || e.GRADPOOL_WORKER_NATS_USER)) {
    throw new ConfigError('invalid configuration: with GRADPOOL_NATS_ACCOUNT_SEED every worker gets its own NATS user; unset GRADPOOL_WORKER_NATS_USER/PASSWORD/TOKEN');
  }
  if (!!e.GRADPOOL_NATS_OPERATOR_SEED !== !!e.GRADPOOL_NATS_SYSTEM_CREDS) {
    throw new ConfigError('invalid configuration: GRADPOOL_NATS_OPERATOR_SEED and GRADPOOL_NATS_SYSTEM_CREDS go together (revoking workers\' NATS users needs both)');
  }
  if (e.GRADPOOL_NATS_OPERATOR_SEED && !e.GRADPOOL_NATS_ACCOUNT_SEED) {
    throw new ConfigError('invalid configuration: GRADPOOL_NATS_OPERATOR_SEED revokes per-worker NATS users, which need GRADPOOL_NATS_ACCOUNT_SEED');
  }
  const missWindow = e.GRADPOOL_HEARTBEAT_INTERVAL_MS * e.GRADPOOL_HEARTBEAT_MISSES;
  if (e.GRADPOOL_LEASE_MS < missWindow) {
    throw new ConfigError(
      `invalid configuration: GRADPOOL_LEASE_MS (${e.GRADPOOL_LEASE_MS}) must be at least ` +
        `GRADPOOL_HEARTBEAT_INTERVAL_MS × GRADPOOL_HEARTBEAT_MISSES (${missWindow})`,
    );
  }
  return deepFreeze({
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.GRADPOOL_DB_POOL_MAX,
    natsServers: e.NATS_URL,
    natsAdvertise: e.GRADPOOL_NATS_ADVERTISE ?? e.NATS_URL.map(withoutCredentials),
    workerNats: {
      user: e.GRADPOOL_WORKER_NATS_USER ?? '',
      password: e.GRADPOOL_WORKER_NATS_PASSWORD ?? '',
      token: e.GRADPOOL_WORKER_NATS_TOKEN ?? '',
    },
    natsCredsFile: e.NATS_CREDS,
    workerNatsUsers: e.GRADPOOL_NATS_ACCOUNT_SEED
      ? {
          accountSeed: e.GRADPOOL_NATS_ACCOUNT_SEED,
          ttlMs: e.GRADPOOL_WORKER_NATS_TTL_MS,
          revocation:
            e.GRADPOOL_NATS_OPERATOR_SEED && e.GRADPOOL_NATS_SYSTEM_CREDS ? { operatorSeed: e.GRADPOOL_NATS_OPERATOR_SEED, systemCredsFile: e.GRADPOOL_NATS_SYSTEM_CREDS } : undefined,
        }
      : undefined,
    http: { host: e.GRADPOOL_HTTP_HOST, port: e.GRADPOOL_HTTP_PORT },
    grpc: { host: e.GRADPOOL_GRPC_HOST, port: e.GRADPOOL_GRPC_PORT },
    adminKey: e.GRADPOOL_ADMIN_KEY,
    heartbeat: { intervalMs: e.GRADPOOL_HEARTBEAT_INTERVAL_MS, misses: e.GRADPOOL_HEARTBEAT_MISSES },
    leaseMs: e.GRADPOOL_LEASE_MS,
    logLevel: e.LOG_LEVEL,
    datasets: Object.fromEntries(
      Object.entries({ maxFileBytes: e.GRADPOOL_DATASET_MAX_FILE_BYTES, shardBytes: e.GRADPOOL_SHARD_BYTES, tmpDir: e.GRADPOOL_TMP_DIR, buckets: e.GRADPOOL_DATASET_BUCKETS }).filter(
        ([, v]) => v !== undefined,
      ),
    ),
    ...(e.GRADPOOL_AUDIT_SHARDS_PER_ROUND !== undefined ? { jobs: { keeper: { auditShardsPerRound: e.GRADPOOL_AUDIT_SHARDS_PER_ROUND } } } : {}),
  });
}
