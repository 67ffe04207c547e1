/**
 * NATS subjects and object-store bucket names. Every subject in the system is built here;
 * call sites never use string templates (STYLE.md). Tokens are validated so that a job id
 * can never inject wildcards or extra tokens into a subject.
 */

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** Throws when `value` cannot be used as one NATS subject token. */
export function token(value: string | number | bigint, what = 'token'): string {
  const s = String(value);
  if (!TOKEN.test(s)) throw new SubjectTokenError(`${what} ${JSON.stringify(s)} is not a valid subject token`);
  return s;
}

export class SubjectTokenError extends Error {
  override name = 'SubjectTokenError';
}

export const SUBJECT_PREFIX = 'gp';

export const subjects = {
  /** Root of everything a job publishes; used for permissions (`gp.job.<id>.>`). */
  job: (jobId: string) => `${SUBJECT_PREFIX}.job.${token(jobId, 'job id')}`,
  /** All subjects of a job, for permissions and subscriptions. */
  jobAll: (jobId: string) => `${subjects.job(jobId)}.>`,
  /** Gradient chunks from every member for one shard, consumed by the shard's owner. */
  reduce: (jobId: string, epoch: number, round: number | bigint, shard: number) =>
    `${subjects.job(jobId)}.r.${token(epoch, 'epoch')}.${token(round, 'round')}.${token(shard, 'shard')}`,
  /** The averaged shard, published by its owner, consumed by every member and the keeper. */
  gather: (jobId: string, epoch: number, round: number | bigint, shard: number) =>
    `${subjects.job(jobId)}.g.${token(epoch, 'epoch')}.${token(round, 'round')}.${token(shard, 'shard')}`,
  /** Wildcard for all gather messages of a job (the keeper's subscription). */
  gatherAll: (jobId: string) => `${subjects.job(jobId)}.g.>`,
  /** Wildcard for one shard's reduce subjects over every round of an epoch (the owner's subscription). */
  reduceShardRounds: (jobId: string, epoch: number, shard: number) =>
    `${subjects.job(jobId)}.r.${token(epoch, 'epoch')}.*.${token(shard, 'shard')}`,
  /** Wildcard for every gather subject of one epoch (a member's subscription). */
  gatherEpoch: (jobId: string, epoch: number) => `${subjects.job(jobId)}.g.${token(epoch, 'epoch')}.>`,
  /** Data-plane control messages of a job (resend requests after a (re)subscription). */
  exchangeControl: (jobId: string) => `${subjects.job(jobId)}.x`,
} as const;

/** JetStream object-store buckets. Bucket names allow [A-Za-z0-9_-]. */
export const buckets = {
  /** Content-addressed dataset shards (keys are sha256 hex). Shared by all datasets. */
  shards: 'gp_shards',
  /** A job's checkpoints. */
  checkpoints: (jobId: string) => `gp_ckpt_${token(jobId, 'job id')}`,
  /** Exported models. */
  models: 'gp_models',
} as const;
