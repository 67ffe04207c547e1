// Original file: gradpool/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A job handed to the worker. The spec is JSON validated by the coordinator at submission;
 * the worker re-validates it before use.
 */
export interface Assignment {
  'jobId'?: (string);
  'jobName'?: (string);
  /**
   * JSON: model, optimizer, schedule, loss, codec, batch, deadlines (jobs issue).
   */
  'specJson'?: (string);
  /**
   * Object-store bucket of the job's checkpoints and the latest checkpoint's key.
   */
  'checkpointBucket'?: (string);
  'checkpointKey'?: (string);
  'checkpointRound'?: (number | string | Long);
}

/**
 * A job handed to the worker. The spec is JSON validated by the coordinator at submission;
 * the worker re-validates it before use.
 */
export interface Assignment__Output {
  'jobId': (string);
  'jobName': (string);
  /**
   * JSON: model, optimizer, schedule, loss, codec, batch, deadlines (jobs issue).
   */
  'specJson': (string);
  /**
   * Object-store bucket of the job's checkpoints and the latest checkpoint's key.
   */
  'checkpointBucket': (string);
  'checkpointKey': (string);
  'checkpointRound': (string);
}
