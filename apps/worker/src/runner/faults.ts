/**
 * Job faults the training runner reports (`JobFault.kind`). A `RunnerFault` thrown inside the
 * runner ends the job's work on this worker after it has been reported once.
 */

export const FaultKinds = {
  /** The assignment's spec does not parse or validate; nothing was trained. */
  badSpec: 'bad-spec',
  /** A dealt shard failed hash verification twice, or does not decode / fit the job. */
  badShard: 'bad-shard',
  /** The checkpoint is missing, corrupt, or does not fit the model. */
  badCheckpoint: 'bad-checkpoint',
  /** The replay of committed updates since the checkpoint is missing a round. */
  replayGap: 'replay-gap',
  /** A shard owner published nothing by the gather deadline (`subjectWorkerId` names it). */
  ownerMissing: 'owner-missing',
  /** No NATS address/credentials came with the registration, or NATS refused us. */
  noDataPlane: 'no-data-plane',
  /** Anything else that stopped the runner (its message says what). */
  runnerError: 'runner-error',
} as const;
export type FaultKind = (typeof FaultKinds)[keyof typeof FaultKinds];

/** A failure the runner cannot recover from by itself; reported as a JobFault of `kind`. */
export class RunnerFault extends Error {
  override name = 'RunnerFault';
  constructor(
    readonly kind: FaultKind,
    message: string,
    readonly subjectWorkerId = '',
  ) {
    super(message);
  }
}
