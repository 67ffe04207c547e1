// Original file: gradpool/v1/worker.proto


/**
 * Where and how a worker reaches the data plane. Credentials are limited to the subjects and
 * buckets of its group's jobs where the NATS deployment supports it.
 */
export interface NatsAccess {
  'servers'?: (string)[];
  'user'?: (string);
  'password'?: (string);
  'token'?: (string);
  /**
   * A NATS credentials file's content (user JWT + nkey seed), when decentralised auth is used.
   */
  'creds'?: (string);
  /**
   * The inbox prefix the connection must use (per-worker users may subscribe to no other inbox).
   */
  'inboxPrefix'?: (string);
}

/**
 * Where and how a worker reaches the data plane. Credentials are limited to the subjects and
 * buckets of its group's jobs where the NATS deployment supports it.
 */
export interface NatsAccess__Output {
  'servers': (string)[];
  'user': (string);
  'password': (string);
  'token': (string);
  /**
   * A NATS credentials file's content (user JWT + nkey seed), when decentralised auth is used.
   */
  'creds': (string);
  /**
   * The inbox prefix the connection must use (per-worker users may subscribe to no other inbox).
   */
  'inboxPrefix': (string);
}
