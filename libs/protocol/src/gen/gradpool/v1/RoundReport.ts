// Original file: gradpool/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

/**
 * One round's outcome as seen by one member (shared/DESIGN.md round protocol step 5).
 */
export interface RoundReport {
  'jobId'?: (string);
  'epoch'?: (number);
  'round'?: (number | string | Long);
  'loss'?: (number | string);
  'samples'?: (number | string | Long);
  'contributors'?: (string)[];
  /**
   * Hex sha256 of the parameter vector after the round's update.
   */
  'paramHash'?: (string);
  'computeMs'?: (number);
  'exchangeMs'?: (number);
  'waitMs'?: (number);
  'bytesSent'?: (number | string | Long);
  'bytesReceived'?: (number | string | Long);
  /**
   * Shards of the dataset fully processed in this round (for sample accounting).
   */
  'processedShards'?: (string)[];
}

/**
 * One round's outcome as seen by one member (shared/DESIGN.md round protocol step 5).
 */
export interface RoundReport__Output {
  'jobId': (string);
  'epoch': (number);
  'round': (string);
  'loss': (number);
  'samples': (string);
  'contributors': (string)[];
  /**
   * Hex sha256 of the parameter vector after the round's update.
   */
  'paramHash': (string);
  'computeMs': (number);
  'exchangeMs': (number);
  'waitMs': (number);
  'bytesSent': (string);
  'bytesReceived': (string);
  /**
   * Shards of the dataset fully processed in this round (for sample accounting).
   */
  'processedShards': (string)[];
}
