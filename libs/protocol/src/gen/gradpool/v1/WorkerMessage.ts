// Original file: gradpool/v1/worker.proto

import type { Heartbeat as _gradpool_v1_Heartbeat, Heartbeat__Output as _gradpool_v1_Heartbeat__Output } from '../../gradpool/v1/Heartbeat.js';
import type { DrainNotice as _gradpool_v1_DrainNotice, DrainNotice__Output as _gradpool_v1_DrainNotice__Output } from '../../gradpool/v1/DrainNotice.js';
import type { RoundReport as _gradpool_v1_RoundReport, RoundReport__Output as _gradpool_v1_RoundReport__Output } from '../../gradpool/v1/RoundReport.js';
import type { JobFault as _gradpool_v1_JobFault, JobFault__Output as _gradpool_v1_JobFault__Output } from '../../gradpool/v1/JobFault.js';

export interface WorkerMessage {
  'heartbeat'?: (_gradpool_v1_Heartbeat | null);
  'drain'?: (_gradpool_v1_DrainNotice | null);
  'roundReport'?: (_gradpool_v1_RoundReport | null);
  'fault'?: (_gradpool_v1_JobFault | null);
  'body'?: "heartbeat"|"drain"|"roundReport"|"fault";
}

export interface WorkerMessage__Output {
  'heartbeat'?: (_gradpool_v1_Heartbeat__Output | null);
  'drain'?: (_gradpool_v1_DrainNotice__Output | null);
  'roundReport'?: (_gradpool_v1_RoundReport__Output | null);
  'fault'?: (_gradpool_v1_JobFault__Output | null);
  'body'?: "heartbeat"|"drain"|"roundReport"|"fault";
}
