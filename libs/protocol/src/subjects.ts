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

/** Whether `value` can be used as one NATS subject token. */
export function isToken(value: string): boolean {
  return TOKEN.test(value);
}

export class SubjectTokenError extends Error {
  override name = 'SubjectTokenError';
}

export const SUBJECT_PREFIX = 'gp';

/**
 * Reduce, gather and control subjects end with their sender's worker id, so that per-worker NATS
 * publish permissions (`memberPublish`) authenticate the sender: a receiver checks the subject's
 * last token against the sender named in the message header (`senderOf`).
 */
export const subjects = {
  /** Root of everything a job publishes; used for permissions (`gp.job.<id>.>`). */
  job: (jobId: string) => `${SUBJECT_PREFIX}.job.${token(jobId, 'job id')}`,
  /** All subjects of a job, for permissions and subscriptions. */
  jobAll: (jobId: string) => `${subjects.job(jobId)}.>`,
  /** Gradient chunks from `sender` for one shard, consumed by the shard's owner. */
  reduce: (jobId: string, epoch: number, round: number | bigint, shard: number, sender: string) =>
    `${subjects.reduceHead(jobId, epoch, round, shard)}.${token(sender, 'sender id')}`,
  /** The averaged shard, published by its owner, consumed by every member and the keeper. */
  gather: (jobId: string, epoch: number, round: number | bigint, shard: number, owner: string) =>
    `${subjects.gatherHead(jobId, epoch, round, shard)}.${token(owner, 'owner id')}`,
  /**
   * `reduce(...)` less its sender token. Not a subject anyone publishes on: a receiver matches a
   * delivered subject against it with `senderOf`.
   */
  reduceHead: (jobId: string, epoch: number, round: number | bigint, shard: number) =>
    `${subjects.job(jobId)}.r.${token(epoch, 'epoch')}.${token(round, 'round')}.${token(shard, 'shard')}`,
  /** `gather(...)` less its owner token (see `reduceHead`). */
  gatherHead: (jobId: string, epoch: number, round: number | bigint, shard: number) =>
    `${subjects.job(jobId)}.g.${token(epoch, 'epoch')}.${token(round, 'round')}.${token(shard, 'shard')}`,
  /** Wildcard for all gather messages of a job (the keeper's subscription). */
  gatherAll: (jobId: string) => `${subjects.job(jobId)}.g.>`,
  /** Wildcard for one shard's reduce subjects over every round and sender of an epoch (the owner's subscription). */
  reduceShardRounds: (jobId: string, epoch: number, shard: number) =>
    `${subjects.job(jobId)}.r.${token(epoch, 'epoch')}.*.${token(shard, 'shard')}.*`,
  /** Wildcard for one shard's reduce subjects of one round, in any epoch and from any sender (the owner audit's subscription). */
  reduceAttempts: (jobId: string, round: number | bigint, shard: number) =>
    `${subjects.job(jobId)}.r.*.${token(round, 'round')}.${token(shard, 'shard')}.*`,
  /** Wildcard for every gather subject of one epoch (a member's subscription). */
  gatherEpoch: (jobId: string, epoch: number) => `${subjects.job(jobId)}.g.${token(epoch, 'epoch')}.>`,
  /** Data-plane control messages from `sender` (resend requests after a (re)subscription). */
  exchangeControl: (jobId: string, sender: string) => `${subjects.job(jobId)}.x.${token(sender, 'sender id')}`,
  /** Wildcard for every member's control messages of a job (a member's subscription). */
  exchangeControlAll: (jobId: string) => `${subjects.job(jobId)}.x.*`,
  /**
   * Publish permissions of member `workerId` in a job: reduce, gather and control subjects whose
   * sender token is its own id, and nothing else (so the subject authenticates the sender).
   */
  memberPublish: (jobId: string, workerId: string): string[] => {
    const job = subjects.job(jobId);
    const worker = token(workerId, 'worker id');
    return [`${job}.r.*.*.*.${worker}`, `${job}.g.*.*.*.${worker}`, `${job}.x.${worker}`];
  },
  /** Subscribe permissions of a member in a job: everything of the job. */
  memberSubscribe: (jobId: string): string[] => [subjects.jobAll(jobId)],
  /**
   * Coordinator replicas' control traffic in one cluster (the replicas sharing a database): the
   * session relay. Workers are never given these subjects.
   */
  control: (cluster: string) => `${SUBJECT_PREFIX}.ctl.${token(cluster, 'cluster')}`,
  /** Everything of a cluster's control traffic (each replica's one subscription). */
  controlAll: (cluster: string) => `${subjects.control(cluster)}.>`,
  /** A message for a worker's session, delivered by whichever replica holds it. */
  sessionPush: (cluster: string, workerId: string) => `${subjects.control(cluster)}.push.${token(workerId, 'worker id')}`,
  /** An event of a worker's session (`kind`: attached, detached, roundReport, fault), from the replica holding it. */
  sessionEvent: (cluster: string, kind: string, workerId: string) =>
    `${subjects.control(cluster)}.evt.${token(kind, 'event kind')}.${token(workerId, 'worker id')}`,
  /** A replica's periodic list of the sessions it holds. */
  replicaPresence: (cluster: string, replicaId: string) => `${subjects.control(cluster)}.presence.${token(replicaId, 'replica id')}`,
} as const;

/**
 * The sender token of `subject` (its last token) when the tokens before it are `head`
 * (`subjects.reduceHead` / `gatherHead`), else null. One lastIndexOf and one slice, no regex:
 * receivers call it per message. The token is not validated; compare it with the expected id.
 */
export function senderOf(subject: string, head: string): string | null {
  const dot = subject.lastIndexOf('.');
  return dot === head.length && subject.startsWith(head) ? subject.slice(dot + 1) : null;
}

/** The last token of `subject`: the sender of a reduce, gather or control subject (not validated). */
export function lastToken(subject: string): string {
  return subject.slice(subject.lastIndexOf('.') + 1);
}

/** JetStream object-store buckets. Bucket names allow [A-Za-z0-9_-]. */
export const buckets = {
  /** Content-addressed dataset shards (keys are sha256 hex), shared by datasets imported into it
   * (`GRADPOOL_DATASET_BUCKETS=shared`, or before buckets per dataset). */
  shards: 'gp_shards',
  /** One dataset's own train shards (keys are sha256 hex): only workers of its jobs may read them. */
  datasetShards: (datasetId: string) => `gp_ds_${token(datasetId, 'dataset id')}`,
  /** One dataset's own validation and test shards: the keeper's alone (workers never read them). */
  datasetEvalShards: (datasetId: string) => `gp_ds_${token(datasetId, 'dataset id')}_eval`,
  /** A job's checkpoints. */
  checkpoints: (jobId: string) => `gp_ckpt_${token(jobId, 'job id')}`,
  /** Exported models. */
  models: 'gp_models',
} as const;
