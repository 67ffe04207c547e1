// Original file: gradpool/v1/worker.proto

import type { Capabilities as _gradpool_v1_Capabilities, Capabilities__Output as _gradpool_v1_Capabilities__Output } from '../../gradpool/v1/Capabilities.js';

export interface RegisterRequest {
  'joinToken'?: (string);
  /**
   * Display name chosen by the donor; 1..64 printable characters.
   */
  'workerName'?: (string);
  'capabilities'?: (_gradpool_v1_Capabilities | null);
  /**
   * A worker that restarts may ask to keep its identity by presenting its previous id and
   * secret; the coordinator honours it while the lease has not expired.
   */
  'previousWorkerId'?: (string);
  'previousSessionSecret'?: (string);
}

export interface RegisterRequest__Output {
  'joinToken': (string);
  /**
   * Display name chosen by the donor; 1..64 printable characters.
   */
  'workerName': (string);
  'capabilities': (_gradpool_v1_Capabilities__Output | null);
  /**
   * A worker that restarts may ask to keep its identity by presenting its previous id and
   * secret; the coordinator honours it while the lease has not expired.
   */
  'previousWorkerId': (string);
  'previousSessionSecret': (string);
}
