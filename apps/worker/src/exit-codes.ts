/** Process exit codes of `gradpool-worker` (documented in `gradpool-worker --help`). */
export const ExitCode = {
  /** Drained with the coordinator's acknowledgement, or `doctor` finished. */
  OK: 0,
  /** Unexpected failure, or left without the coordinator's drain acknowledgement. */
  FAILURE: 1,
  /** Bad flags, environment or fields the coordinator called malformed. */
  USAGE: 2,
  /** The join token was refused (bad, revoked, expired or exhausted). */
  UNAUTHENTICATED: 3,
  /** A second Ctrl-C: stopped at once, without draining (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
