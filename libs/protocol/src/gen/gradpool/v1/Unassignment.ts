// Original file: gradpool/v1/worker.proto


/**
 * The job left this worker (finished, cancelled, paused, or the worker was removed).
 */
export interface Unassignment {
  'jobId'?: (string);
  'reason'?: (string);
}

/**
 * The job left this worker (finished, cancelled, paused, or the worker was removed).
 */
export interface Unassignment__Output {
  'jobId': (string);
  'reason': (string);
}
