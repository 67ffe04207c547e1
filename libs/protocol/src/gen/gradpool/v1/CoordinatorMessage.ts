// Original file: gradpool/v1/worker.proto

import type { SessionAccepted as _gradpool_v1_SessionAccepted, SessionAccepted__Output as _gradpool_v1_SessionAccepted__Output } from '../../gradpool/v1/SessionAccepted.js';
import type { Assignment as _gradpool_v1_Assignment, Assignment__Output as _gradpool_v1_Assignment__Output } from '../../gradpool/v1/Assignment.js';
import type { RosterUpdate as _gradpool_v1_RosterUpdate, RosterUpdate__Output as _gradpool_v1_RosterUpdate__Output } from '../../gradpool/v1/RosterUpdate.js';
import type { Unassignment as _gradpool_v1_Unassignment, Unassignment__Output as _gradpool_v1_Unassignment__Output } from '../../gradpool/v1/Unassignment.js';
import type { DrainRequest as _gradpool_v1_DrainRequest, DrainRequest__Output as _gradpool_v1_DrainRequest__Output } from '../../gradpool/v1/DrainRequest.js';
import type { DrainAck as _gradpool_v1_DrainAck, DrainAck__Output as _gradpool_v1_DrainAck__Output } from '../../gradpool/v1/DrainAck.js';
import type { NatsAccessRefresh as _gradpool_v1_NatsAccessRefresh, NatsAccessRefresh__Output as _gradpool_v1_NatsAccessRefresh__Output } from '../../gradpool/v1/NatsAccessRefresh.js';

export interface CoordinatorMessage {
  'accepted'?: (_gradpool_v1_SessionAccepted | null);
  'assignment'?: (_gradpool_v1_Assignment | null);
  'roster'?: (_gradpool_v1_RosterUpdate | null);
  'unassignment'?: (_gradpool_v1_Unassignment | null);
  'drain'?: (_gradpool_v1_DrainRequest | null);
  'drainAck'?: (_gradpool_v1_DrainAck | null);
  'natsRefresh'?: (_gradpool_v1_NatsAccessRefresh | null);
  'body'?: "accepted"|"assignment"|"roster"|"unassignment"|"drain"|"drainAck"|"natsRefresh";
}

export interface CoordinatorMessage__Output {
  'accepted'?: (_gradpool_v1_SessionAccepted__Output | null);
  'assignment'?: (_gradpool_v1_Assignment__Output | null);
  'roster'?: (_gradpool_v1_RosterUpdate__Output | null);
  'unassignment'?: (_gradpool_v1_Unassignment__Output | null);
  'drain'?: (_gradpool_v1_DrainRequest__Output | null);
  'drainAck'?: (_gradpool_v1_DrainAck__Output | null);
  'natsRefresh'?: (_gradpool_v1_NatsAccessRefresh__Output | null);
  'body'?: "accepted"|"assignment"|"roster"|"unassignment"|"drain"|"drainAck"|"natsRefresh";
}
