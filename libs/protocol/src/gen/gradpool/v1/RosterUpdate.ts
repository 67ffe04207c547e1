// Original file: gradpool/v1/worker.proto

import type { RosterMember as _gradpool_v1_RosterMember, RosterMember__Output as _gradpool_v1_RosterMember__Output } from '../../gradpool/v1/RosterMember.js';
import type { DealtPiece as _gradpool_v1_DealtPiece, DealtPiece__Output as _gradpool_v1_DealtPiece__Output } from '../../gradpool/v1/DealtPiece.js';
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
  /**
   * Dataset shards (content hashes) dealt to this worker for the current data epoch.
   */
  'dealtShards'?: (string)[];
  'dataEpoch'?: (number);
  /**
   * The sample ranges dealt to this worker for `data_epoch`, in the order to process them
   * (what is left of the epoch when the roster changed mid-epoch).
   */
  'pieces'?: (_gradpool_v1_DealtPiece)[];
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
  /**
   * Dataset shards (content hashes) dealt to this worker for the current data epoch.
   */
  'dealtShards': (string)[];
  'dataEpoch': (number);
  /**
   * The sample ranges dealt to this worker for `data_epoch`, in the order to process them
   * (what is left of the epoch when the roster changed mid-epoch).
   */
  'pieces': (_gradpool_v1_DealtPiece__Output)[];
}
