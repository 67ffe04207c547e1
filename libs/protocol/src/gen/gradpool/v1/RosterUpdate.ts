// Original file: gradpool/v1/worker.proto

import type { RosterMember as _gradpool_v1_RosterMember, RosterMember__Output as _gradpool_v1_RosterMember__Output } from '../../gradpool/v1/RosterMember.js';
import type { Long } from '@grpc/proto-loader';

/**
 * A new membership epoch for a job (shared/DESIGN.md: shard s is owned by member s mod |R|).
 */
export interface RosterUpdate {
  'jobId'?: (string);
  'epoch'?: (number);
  /**
   * The first round run in this epoch.
   */
  'startRound'?: (number | string | Long);
  'members'?: (_gradpool_v1_RosterMember)[];
}

/**
 * A new membership epoch for a job (shared/DESIGN.md: shard s is owned by member s mod |R|).
 */
export interface RosterUpdate__Output {
  'jobId': (string);
  'epoch': (number);
  /**
   * The first round run in this epoch.
   */
  'startRound': (string);
  'members': (_gradpool_v1_RosterMember__Output)[];
}
