// Original file: gradpool/v1/worker.proto


export interface SessionAccepted {
  'workerId'?: (string);
  'heartbeatIntervalMs'?: (number);
  'leaseMs'?: (number);
}

export interface SessionAccepted__Output {
  'workerId': (string);
  'heartbeatIntervalMs': (number);
  'leaseMs': (number);
}
