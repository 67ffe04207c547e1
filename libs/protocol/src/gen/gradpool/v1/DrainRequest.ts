// Original file: gradpool/v1/worker.proto


export interface DrainRequest {
  'reason'?: (string);
}

export interface DrainRequest__Output {
  'reason': (string);
}
