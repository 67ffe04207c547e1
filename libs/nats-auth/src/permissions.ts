/**
 * What a worker may do on the data plane for one job (shared/DESIGN.md rule 1: credentials
 * limited to the subjects and buckets of its group's jobs). Deny by default: a worker's NATS user
 * gets these allow lists and nothing else.
 *
 * - Exchange: it publishes only on subjects that end with its own id (the receiver checks that
 *   token against the chunk's sender, so no member can speak for another), and subscribes to its
 *   job's subjects and its own inbox.
 * - Dataset shards: read-only, in the bucket of its job's dataset (`shardReaderPermissions`): its
 *   own bucket, or the shared `gp_shards`. No listing, no write, purge or delete.
 * - The keeper's updates (`GP_UPDATES`, one stream for all jobs): a consumer may be created only
 *   with a filter on its own job's subjects (the create subject names the filter, so the server
 *   checks it), which is how `replay.ts` of the worker reads them.
 * - Its job's checkpoint bucket: read-only through consumers and gets.
 */
import { buckets, subjects, token, UPDATES_STREAM, updateSubjects } from '@gradpool/protocol';

export interface SubjectPermissions {
  /** Subjects (with wildcards) the user may publish to. */
  pub: string[];
  /** Subjects (with wildcards) the user may subscribe to. */
  sub: string[];
}

/**
 * What reading shards of `bucket` takes: an object's metadata by its name (a direct get with the
 * subject in the request subject) and its chunks by the nuid the metadata names (a filtered
 * consumer, filtered-feed.ts). No listing, no read by sequence number, no write.
 *
 * The chunk permission cannot be narrower than the bucket: a consumer whose filter is the literal
 * wildcard `$O.<bucket>.C.*` matches it too, and receives every object's chunks (NATS permissions
 * cannot tell a `*` token from a nuid). So the bucket is the unit of access: a worker gets the
 * bucket of its job's dataset (each dataset has its own, `buckets.datasetShards`), and with the
 * shared bucket (`GRADPOOL_DATASET_BUCKETS=shared`, or datasets imported before) it can read every
 * dataset in it.
 */
export function shardReaderPermissions(bucket: string = buckets.shards): { publish: string[] } {
  const stream = `OBJ_${bucket}`;
  return {
    publish: [
      // No STREAM.INFO: with a subjects filter it lists every object's name and chunk subject.
      `$JS.API.DIRECT.GET.${stream}.$O.${bucket}.M.*`,
      `$JS.API.CONSUMER.CREATE.${stream}.*.$O.${bucket}.C.*`,
      `$JS.API.CONSUMER.DELETE.${stream}.*`,
      `$JS.FC.${stream}.>`,
    ],
  };
}

/** The inbox prefix of a worker's connections: replies and consumer deliveries go there, not to `_INBOX.>`. */
export function workerInboxPrefix(workerId: string): string {
  return `_INBOX_${token(workerId, 'worker id')}`;
}

/** The NATS permissions of worker `workerId` for job `jobId`. */
export function workerJobPermissions(workerId: string, jobId: string, opts: { shardsBucket?: string; updatesStream?: string } = {}): SubjectPermissions {
  const ckpt = `OBJ_${buckets.checkpoints(jobId)}`;
  const updates = opts.updatesStream ?? UPDATES_STREAM;
  const api = '$JS.API';
  return {
    pub: [
      ...subjects.memberPublish(jobId, workerId),
      // Account info, and stream lookup by subject (nats.js object stores ask it).
      `${api}.INFO`,
      `${api}.STREAM.NAMES`,
      // Dataset shards: read-only.
      ...shardReaderPermissions(opts.shardsBucket ?? buckets.shards).publish,
      // The keeper's updates of this job only: the filter is part of the create subject.
      `${api}.CONSUMER.CREATE.${updates}.*.${updateSubjects.job(jobId)}`,
      `${api}.CONSUMER.DELETE.${updates}.*`,
      `$JS.FC.${updates}.>`,
      // The job's checkpoints: read-only.
      `${api}.STREAM.INFO.${ckpt}`,
      `${api}.STREAM.MSG.GET.${ckpt}`,
      `${api}.DIRECT.GET.${ckpt}.>`,
      `${api}.CONSUMER.CREATE.${ckpt}`,
      `${api}.CONSUMER.CREATE.${ckpt}.>`,
      `${api}.CONSUMER.DELETE.${ckpt}.*`,
      `$JS.FC.${ckpt}.>`,
    ],
    sub: [...subjects.memberSubscribe(jobId), `${workerInboxPrefix(workerId)}.>`],
  };
}
