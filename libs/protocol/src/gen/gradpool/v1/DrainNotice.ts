// Original file: gradpool/v1/worker.proto


/**
 * The worker asks to leave: it finishes or abandons its round and waits for DrainAck.
 */
export interface DrainNotice {
  'reason'?: (string);
}

/**
 * The worker asks to leave: it finishes or abandons its round and waits for DrainAck.
 */
export interface DrainNotice__Output {
  'reason': (string);
}
