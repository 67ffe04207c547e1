// Original file: gradpool/v1/worker.proto

import type { DealtPiece as _gradpool_v1_DealtPiece, DealtPiece__Output as _gradpool_v1_DealtPiece__Output } from '../../gradpool/v1/DealtPiece.js';
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
  /**
   * The sample ranges this member's gradient of this round was computed on. They count as
   * processed only once the round is committed with this member among its contributors.
   */
  'processed'?: (_gradpool_v1_DealtPiece)[];
  /**
   * Membership epoch whose gather the update was assembled from (re-run rounds differ).
   */
  'exchangeEpoch'?: (number);
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
  /**
   * The sample ranges this member's gradient of this round was computed on. They count as
   * processed only once the round is committed with this member among its contributors.
   */
  'processed': (_gradpool_v1_DealtPiece__Output)[];
  /**
   * Membership epoch whose gather the update was assembled from (re-run rounds differ).
   */
  'exchangeEpoch': (number);
}
