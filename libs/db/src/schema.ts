/**
 * The coordinator's durable state (shared/DESIGN.md rule 1: truth lives in Postgres).
 * Changes come as new migrations (`npm run db:generate`), never as edits of old ones.
 * Postgres never stores a tensor: parameters, shards and checkpoints live in the object store.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const apiKeyRole = pgEnum('api_key_role', ['admin', 'group-admin', 'viewer']);
export const workerStatus = pgEnum('worker_status', ['online', 'offline', 'draining', 'drained']);
export const datasetStatus = pgEnum('dataset_status', ['importing', 'ready', 'failed']);
export const datasetSplit = pgEnum('dataset_split', ['train', 'validation', 'test']);
export const jobStatus = pgEnum('job_status', [
  'queued', // accepted, waiting for min workers
  'running',
  'paused',
  'completed',
  'failed',
  'cancelled',
]);
export const shardProgressStatus = pgEnum('shard_progress_status', ['dealt', 'processed']);

/** A community group: pools its members' hardware behind join tokens. */
export const groups = pgTable('groups', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  description: text('description').notNull().default(''),
  /** Whether the group's workers also serve public jobs once its own jobs are served. */
  allowPublicJobs: boolean('allow_public_jobs').notNull().default(true),
  createdAt: createdAt(),
});

/** Admin API keys; only a sha256 of the key is stored. */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    role: apiKeyRole('role').notNull(),
    /** Set for `group-admin` keys: the group they administer. */
    groupId: uuid('group_id').references(() => groups.id, { onDelete: 'cascade' }),
    keyHash: text('key_hash').notNull(),
    /** First characters of the key, for display and lookup. */
    prefix: text('prefix').notNull(),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('api_keys_key_hash_idx').on(t.keyHash)],
);

/** Join tokens that let volunteers register workers into a group. */
export const joinTokens = pgTable(
  'join_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    groupId: uuid('group_id')
      .notNull()
      .references(() => groups.id, { onDelete: 'cascade' }),
    name: text('name').notNull().default(''),
    tokenHash: text('token_hash').notNull(),
    prefix: text('prefix').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    /** null: unlimited. */
    maxUses: integer('max_uses'),
    uses: integer('uses').notNull().default(0),
    createdAt: createdAt(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('join_tokens_token_hash_idx').on(t.tokenHash), index('join_tokens_group_idx').on(t.groupId)],
);

/** Volunteer worker agents. */
export const workers = pgTable(
  'workers',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    groupId: uuid('group_id')
      .notNull()
      .references(() => groups.id, { onDelete: 'cascade' }),
    joinTokenId: uuid('join_token_id').references(() => joinTokens.id, { onDelete: 'set null' }),
    name: text('name').notNull(),
    secretHash: text('secret_hash').notNull(),
    status: workerStatus('status').notNull().default('offline'),
    /** Agent-reported state (idle, syncing, training, draining) and one-line status. */
    state: text('state').notNull().default('idle'),
    statusText: text('status_text').notNull().default(''),
    /** backend, deviceName, memoryBytes, gflops, agentVersion, os, cpuCount. */
    capabilities: jsonb('capabilities').notNull().$type<WorkerCapabilities>(),
    currentJobId: uuid('current_job_id'),
    /** Reputation from validated contributions; bad chunks and diverging hashes lower it. */
    reputation: doublePrecision('reputation').notNull().default(0),
    registeredAt: createdAt(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    /** The worker keeps its identity if it reconnects before this instant. */
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
  },
  (t) => [index('workers_group_status_idx').on(t.groupId, t.status)],
);

export interface WorkerCapabilities {
  backend: string;
  deviceName: string;
  memoryBytes: number;
  gflops: number;
  agentVersion: string;
  os: string;
  cpuCount: number;
}

/** Imported datasets. Shards' bytes live in the object store (content-addressed). */
export const datasets = pgTable('datasets', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  format: text('format').notNull(),
  status: datasetStatus('status').notNull().default('importing'),
  /** Per-sample feature shape, e.g. [28, 28, 1]. */
  featureShape: jsonb('feature_shape').notNull().$type<number[]>(),
  featureDtype: text('feature_dtype').notNull().default('float32'),
  numClasses: integer('num_classes').notNull(),
  classNames: jsonb('class_names').notNull().$type<string[]>(),
  /** How features were normalised (kind, statistics computed on the train split). */
  normalisation: jsonb('normalisation').notNull().$type<Record<string, unknown>>(),
  /** Import options (seed, validation fraction, source files) for reproducibility. */
  options: jsonb('options').notNull().$type<Record<string, unknown>>(),
  /** sha256 over the imported samples, to recognise a re-import of the same data. */
  contentHash: text('content_hash'),
  totalBytes: bigint('total_bytes', { mode: 'number' }).notNull().default(0),
  /** The object-store bucket of its own shards (`buckets.datasetShards`); null: the shared bucket. */
  shardBucket: text('shard_bucket'),
  error: text('error'),
  createdAt: createdAt(),
  readyAt: timestamp('ready_at', { withTimezone: true }),
});

/** One shard of one split of a dataset. The object key is its sha256. */
export const shards = pgTable(
  'shards',
  {
    datasetId: uuid('dataset_id')
      .notNull()
      .references(() => datasets.id, { onDelete: 'cascade' }),
    split: datasetSplit('split').notNull(),
    index: integer('index').notNull(),
    sampleCount: integer('sample_count').notNull(),
    bytes: integer('bytes').notNull(),
    sha256: text('sha256').notNull(),
  },
  (t) => [primaryKey({ columns: [t.datasetId, t.split, t.index] }), index('shards_sha256_idx').on(t.sha256)],
);

/**
 * An import's claim on a shard object, committed (under the object's advisory lock) before the
 * import stores or reuses the object and dropped when its shard rows commit. An object is
 * removed only when neither a shard row nor a claim names it, so a delete or a failed import
 * never takes an object that an import in flight will reference. Claims go with their dataset
 * row (a failed, deleted or crashed-then-deleted import releases them).
 */
export const shardClaims = pgTable(
  'shard_claims',
  {
    datasetId: uuid('dataset_id')
      .notNull()
      .references(() => datasets.id, { onDelete: 'cascade' }),
    sha256: text('sha256').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.datasetId, t.sha256] }), index('shard_claims_sha256_idx').on(t.sha256)],
);

/** Training jobs. `spec` is the validated submission (model, optimizer, batch, codec, …). */
export const jobs = pgTable(
  'jobs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    /** null: a public job any group that allows public jobs may serve. */
    groupId: uuid('group_id').references(() => groups.id, { onDelete: 'cascade' }),
    /**
     * Null once the dataset was deleted: only a job that has ended can lose its dataset (the
     * delete is refused while a queued, running or paused job uses it); its history stays.
     */
    datasetId: uuid('dataset_id').references(() => datasets.id, { onDelete: 'set null' }),
    status: jobStatus('status').notNull().default('queued'),
    statusReason: text('status_reason').notNull().default(''),
    spec: jsonb('spec').notNull().$type<Record<string, unknown>>(),
    priority: integer('priority').notNull().default(0),
    /** Membership epoch of the current roster. */
    epoch: integer('epoch').notNull().default(0),
    /** Pass over the training data. */
    dataEpoch: integer('data_epoch').notNull().default(0),
    /** Last committed round (-1 before the first). */
    round: bigint('round', { mode: 'number' }).notNull().default(-1),
    samplesProcessed: bigint('samples_processed', { mode: 'number' }).notNull().default(0),
    /**
     * The data state after the last committed round: the data epoch and its positions not yet
     * processed (encodeDataState of libs/datasets). Null before the first round.
     */
    dataState: text('data_state'),
    createdByKeyId: uuid('created_by_key_id').references(() => apiKeys.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [index('jobs_status_priority_idx').on(t.status, t.priority)],
);

/** A membership epoch of a job. */
export const rosters = pgTable(
  'rosters',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    epoch: integer('epoch').notNull(),
    startRound: bigint('start_round', { mode: 'number' }).notNull(),
    reason: text('reason').notNull().default(''),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.epoch] })],
);

export const rosterMembers = pgTable(
  'roster_members',
  {
    jobId: uuid('job_id').notNull(),
    epoch: integer('epoch').notNull(),
    workerId: uuid('worker_id')
      .notNull()
      .references(() => workers.id, { onDelete: 'cascade' }),
    index: integer('index').notNull(),
    samplesPerRound: integer('samples_per_round').notNull(),
    /** Measured samples/s used for the share; refreshed from observed round times. */
    speed: doublePrecision('speed').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.epoch, t.workerId] })],
);

/** Committed rounds: each (job, round) exactly once, in order. */
export const rounds = pgTable(
  'rounds',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    round: bigint('round', { mode: 'number' }).notNull(),
    epoch: integer('epoch').notNull(),
    dataEpoch: integer('data_epoch').notNull(),
    loss: doublePrecision('loss'),
    samples: integer('samples').notNull(),
    contributors: jsonb('contributors').notNull().$type<string[]>(),
    paramHash: text('param_hash').notNull(),
    durationMs: integer('duration_ms'),
    bytesExchanged: bigint('bytes_exchanged', { mode: 'number' }).notNull().default(0),
    committedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.round] })],
);

/** Which shards of a data epoch were dealt to whom and processed in which round. */
export const shardProgress = pgTable(
  'shard_progress',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    dataEpoch: integer('data_epoch').notNull(),
    shardIndex: integer('shard_index').notNull(),
    status: shardProgressStatus('status').notNull(),
    workerId: uuid('worker_id'),
    round: bigint('round', { mode: 'number' }),
    /** Samples of the shard processed in committed rounds of the data epoch. */
    processedSamples: integer('processed_samples').notNull().default(0),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.dataEpoch, t.shardIndex] })],
);

/** Checkpoints' metadata; the bytes are in the job's object-store bucket. */
export const checkpoints = pgTable(
  'checkpoints',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    round: bigint('round', { mode: 'number' }).notNull(),
    bucket: text('bucket').notNull(),
    objectKey: text('object_key').notNull(),
    bytes: bigint('bytes', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    paramHash: text('param_hash').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('checkpoints_job_round_idx').on(t.jobId, t.round)],
);

/** Per-round metrics by name (loss, accuracy, val_loss, samples_per_s, bytes_per_round, …). */
export const metrics = pgTable(
  'metrics',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    round: bigint('round', { mode: 'number' }).notNull(),
    name: text('name').notNull(),
    value: doublePrecision('value').notNull(),
    recordedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.name, t.round] })],
);

/** Append-only log of what happened (state and roster changes, faults, checkpoints). */
export const events = pgTable(
  'events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: uuid('job_id'),
    workerId: uuid('worker_id'),
    groupId: uuid('group_id'),
    type: text('type').notNull(),
    data: jsonb('data').notNull().$type<Record<string, unknown>>().default(sql`'{}'::jsonb`),
    createdAt: createdAt(),
  },
  (t) => [index('events_job_idx').on(t.jobId, t.id), index('events_worker_idx').on(t.workerId, t.id)],
);

/**
 * Workers kept out of a job (not offered it by the scheduler): for a while after a fault in it
 * (`until`), or for good after a failed owner audit (`until` null: the proof is its `job.fault`
 * event). An admin may lift one (`DELETE /v1/jobs/:id/exclusions/:workerId`). Here, not in one
 * coordinator's memory, so every replica sees the same and a restart forgets none.
 */
export const jobExclusions = pgTable(
  'job_exclusions',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    workerId: uuid('worker_id')
      .notNull()
      .references(() => workers.id, { onDelete: 'cascade' }),
    /** The fault's kind ('owner-audit', 'runner-error', 'bad-chunk', …). */
    kind: text('kind').notNull(),
    reason: text('reason').notNull().default(''),
    since: timestamp('since', { withTimezone: true }).notNull().defaultNow(),
    until: timestamp('until', { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.workerId] }), index('job_exclusions_until_idx').on(t.until)],
);

/** Volunteer credit: samples accepted into committed rounds and compute time, per job. */
export const credits = pgTable(
  'credits',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    workerId: uuid('worker_id')
      .notNull()
      .references(() => workers.id, { onDelete: 'cascade' }),
    groupId: uuid('group_id').notNull(),
    samples: bigint('samples', { mode: 'number' }).notNull().default(0),
    computeMs: bigint('compute_ms', { mode: 'number' }).notNull().default(0),
    rounds: integer('rounds').notNull().default(0),
    rejectedChunks: integer('rejected_chunks').notNull().default(0),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.workerId] })],
);

/**
 * The NATS users the coordinator issued to workers, one per Assignment and refresh (libs/nats-auth).
 * A user whose worker is no longer assigned its job is revoked (`revokedAt`) and pushed to the
 * servers in the account's revocation list until it lapses (`expiresAt`). No foreign keys: a
 * deleted worker's or job's users must still be revoked.
 */
export const workerNatsUsers = pgTable(
  'worker_nats_users',
  {
    userKey: text('user_key').primaryKey(),
    workerId: uuid('worker_id').notNull(),
    jobId: uuid('job_id').notNull(),
    issuedAt: timestamp('issued_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('worker_nats_users_worker_idx').on(t.workerId), index('worker_nats_users_expires_idx').on(t.expiresAt)],
);
