/**
 * What the agent does with an assignment. The agent owns the session; a runner owns one job's
 * work (sync the model state, loop over rounds, report) and talks back through its context.
 * The jobs issue supplies the training runner; until then `UnavailableRunner` says so.
 */
import type {
  Assignment__Output,
  JobFault,
  NatsAccess__Output,
  RosterUpdate__Output,
  RoundReport,
  WorkerState,
} from '@gradpool/protocol';

export interface RunnerProgress {
  state: Extract<WorkerState, string>;
  round?: string;
  /** One line for the dashboard. */
  status?: string;
}

export interface RunnerContext {
  readonly workerId: string;
  readonly groupId: string;
  /** Data-plane address and credentials from Register. */
  readonly nats: NatsAccess__Output | null;
  /**
   * The job's own data-plane access, newest first: the assignment's, replaced by each
   * NatsAccessRefresh (per-worker NATS users lapse); null when workers use the registration's.
   */
  jobNats(): NatsAccess__Output | null;
  /** The job's newest roster, if one has arrived. */
  latestRoster(): RosterUpdate__Output | undefined;
  /** Called with each roster update of this job; returns an unsubscribe function. */
  onRoster(listener: (roster: RosterUpdate__Output) => void): () => void;
  /** Updates what heartbeats say (state, round, status line). */
  progress(progress: RunnerProgress): void;
  /** Sends a round report (queued while the session reconnects). */
  report(report: RoundReport): void;
  /** Sends a job fault (queued while the session reconnects). */
  fault(fault: JobFault): void;
}

export interface AssignmentRunner {
  /**
   * Works on `assignment` until it is done or `signal` aborts (unassignment, drain, new
   * identity). Resolves when the work has stopped; rejections are reported as a JobFault.
   */
  run(assignment: Assignment__Output, signal: AbortSignal, context: RunnerContext): Promise<void>;
}

/** JobFault kind sent by an agent that cannot train yet. */
export const FAULT_TRAINING_UNAVAILABLE = 'training-unavailable';

/** The runner of this agent version: it cannot train, and tells the coordinator so. */
export class UnavailableRunner implements AssignmentRunner {
  async run(assignment: Assignment__Output, _signal: AbortSignal, context: RunnerContext): Promise<void> {
    context.fault({
      jobId: assignment.jobId,
      epoch: context.latestRoster()?.epoch ?? 0,
      round: assignment.checkpointRound,
      kind: FAULT_TRAINING_UNAVAILABLE,
      message: 'this worker agent cannot run training jobs yet',
    });
  }
}
