/** Errors of the data plane. Each has `name` set so callers can switch on it across realms. */

export class ExchangeError extends Error {
  override name = 'ExchangeError';
}

/**
 * The owners of these shards published nothing usable before the gather deadline (dead,
 * disconnected, far behind, or sending garbage). The control plane publishes a new roster without
 * them, and the members re-run the round in the new epoch from the gradients they still hold.
 */
export class OwnerMissingError extends ExchangeError {
  override name = 'OwnerMissingError';
  constructor(
    readonly owners: string[],
    readonly shards: number[],
    readonly epoch: number,
    readonly round: number,
  ) {
    super(`round ${round} (epoch ${epoch}): no averaged shard${shards.length > 1 ? 's' : ''} ${shards.join(', ')} from owner${owners.length > 1 ? 's' : ''} ${owners.join(', ')} by the deadline`);
  }
}

/** An owner reached its deadline with fewer contributors than the job's quorum. */
export class QuorumNotMetError extends ExchangeError {
  override name = 'QuorumNotMetError';
  constructor(
    readonly shards: number[],
    readonly epoch: number,
    readonly round: number,
    readonly quorum: number,
  ) {
    super(`round ${round} (epoch ${epoch}): shard${shards.length > 1 ? 's' : ''} ${shards.join(', ')} had fewer than ${quorum} contributors at the deadline`);
  }
}

/** The mean an owner computed was not finite (overflow); nothing was published. */
export class InvalidMeanError extends ExchangeError {
  override name = 'InvalidMeanError';
}

/** The connection to NATS closed (not a reconnect: the client gave up), or was closed under us. */
export class ConnectionLostError extends ExchangeError {
  override name = 'ConnectionLostError';
}

/** The caller's AbortSignal fired. */
export class RoundAbortedError extends ExchangeError {
  override name = 'RoundAbortedError';
}

/** Misuse of the API (bad roster, wrong gradient size, concurrent rounds). */
export class ExchangeUsageError extends ExchangeError {
  override name = 'ExchangeUsageError';
}
