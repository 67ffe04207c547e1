// Original file: gradpool/v1/worker.proto

/**
 * Worker state as the agent sees it.
 */
export const WorkerState = {
  WORKER_STATE_UNSPECIFIED: 'WORKER_STATE_UNSPECIFIED',
  WORKER_STATE_IDLE: 'WORKER_STATE_IDLE',
  WORKER_STATE_SYNCING: 'WORKER_STATE_SYNCING',
  WORKER_STATE_TRAINING: 'WORKER_STATE_TRAINING',
  WORKER_STATE_DRAINING: 'WORKER_STATE_DRAINING',
} as const;

/**
 * Worker state as the agent sees it.
 */
export type WorkerState =
  | 'WORKER_STATE_UNSPECIFIED'
  | 0
  | 'WORKER_STATE_IDLE'
  | 1
  | 'WORKER_STATE_SYNCING'
  | 2
  | 'WORKER_STATE_TRAINING'
  | 3
  | 'WORKER_STATE_DRAINING'
  | 4

/**
 * Worker state as the agent sees it.
 */
export type WorkerState__Output = typeof WorkerState[keyof typeof WorkerState]
