// Original file: gradpool/v1/worker.proto

import type { ScaledContribution as _gradpool_v1_ScaledContribution, ScaledContribution__Output as _gradpool_v1_ScaledContribution__Output } from '../../gradpool/v1/ScaledContribution.js';
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
   * Membership epoch whose gather the update was assembled from (re-run rounds differ).
   */
  'exchangeEpoch'?: (number);
  /**
   * The member's data state after the round (encodeDataState of libs/datasets); the keeper
   * compares it with its own, as it does the parameter hash.
   */
  'dataState'?: (string);
  /**
   * Contributions this member, as a shard owner, scaled down to the norm bound (robust
   * aggregation, the job spec's `aggregation`).
   */
  'scaled'?: (_gradpool_v1_ScaledContribution)[];
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
   * Membership epoch whose gather the update was assembled from (re-run rounds differ).
   */
  'exchangeEpoch': (number);
  /**
   * The member's data state after the round (encodeDataState of libs/datasets); the keeper
   * compares it with its own, as it does the parameter hash.
   */
  'dataState': (string);
  /**
   * Contributions this member, as a shard owner, scaled down to the norm bound (robust
   * aggregation, the job spec's `aggregation`).
   */
  'scaled': (_gradpool_v1_ScaledContribution__Output)[];
}
