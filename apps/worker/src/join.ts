/**
 * `gradpool-worker join`: wires the config to the agent's collaborators (logger, status
 * display, capabilities, identity file, gRPC client) and maps how the agent ended to an exit
 * code and a message for the donor.
 */
import { BackendUnavailableError } from '@gradpool/training';
import { join } from 'node:path';
import { WorkerAgent, type AgentOutcome } from './agent.js';
import { detectCapabilities } from './capabilities.js';
import type { JoinConfig } from './config.js';
import { ExitCode } from './exit-codes.js';
import { workerClientFactory } from './grpc-client.js';
import { FileIdentityStore } from './identity-store.js';
import { createLogger, formatLogLine, type Logger } from './logger.js';
import type { AssignmentRunner } from './runner.js';
import { TrainingRunner } from './runner/training-runner.js';
import { LogStatusSink, TtyStatusDisplay, type StatusSink, type TerminalLike } from './status.js';

export interface JoinIo {
  /** stdout; when `isTTY`, the live status line is drawn on it. */
  stdout: TerminalLike & { isTTY?: boolean };
  signal: AbortSignal;
}

export interface JoinResult {
  exitCode: ExitCode;
  /** What to tell the donor on stderr, if anything. */
  message?: string;
}

/** The runner the agent hands assignments to: training, with the shard cache in the state dir (none when its cap is 0). */
export function createRunner(config: Pick<JoinConfig, 'stateDir' | 'cacheMaxBytes'>, logger: Logger): AssignmentRunner {
  return new TrainingRunner({
    logger,
    cacheDir: config.cacheMaxBytes > 0 ? join(config.stateDir, 'cache') : null,
    cacheMaxBytes: config.cacheMaxBytes,
  });
}

/** Exit code and message for how the agent ended. */
export function outcomeToResult(outcome: AgentOutcome, config: Pick<JoinConfig, 'coordinator'>): JoinResult {
  switch (outcome.kind) {
    case 'drained':
      return { exitCode: ExitCode.OK, message: `drained (${outcome.reason}); bye` };
    case 'unacknowledged':
      return { exitCode: ExitCode.FAILURE, message: `stopped without the coordinator's acknowledgement: ${outcome.reason}` };
    case 'rejected':
      return outcome.code === 'unauthenticated'
        ? {
            exitCode: ExitCode.UNAUTHENTICATED,
            message: `the coordinator at ${config.coordinator} refused the join token (${outcome.message}); ask your group admin for a valid token`,
          }
        : { exitCode: ExitCode.USAGE, message: `the coordinator rejected this worker's registration: ${outcome.message}` };
  }
}

export async function runJoin(config: JoinConfig, io: JoinIo): Promise<JoinResult> {
  const tty = io.stdout.isTTY === true ? new TtyStatusDisplay(io.stdout) : undefined;
  const logger: Logger = createLogger({
    level: config.logLevel,
    destination: tty ? { write: (line: string) => tty.printAbove(formatLogLine(line)) } : undefined,
  });
  const status: StatusSink = tty ?? new LogStatusSink(logger.child({ component: 'status' }));
  try {
    logger.info({ backend: config.backend }, 'loading the compute backend and measuring it');
    let detected;
    try {
      detected = await detectCapabilities(config.backend);
    } catch (err) {
      if (err instanceof BackendUnavailableError)
        return { exitCode: ExitCode.USAGE, message: `--backend ${err.backend}: ${err.reason}; try --backend auto (gradpool-worker doctor lists what loads here)` };
      throw err;
    }
    for (const skipped of detected.backend.skipped) logger.info({ backend: skipped.backend, reason: skipped.reason }, 'backend not available');
    logger.info({ capabilities: detected.capabilities }, `using backend ${detected.capabilities.backend}`);

    const agent = new WorkerAgent(
      { coordinator: config.coordinator, token: config.token, name: config.name, capabilities: detected.capabilities },
      {
        createClient: workerClientFactory(config.coordinator, { insecure: config.insecure }),
        logger,
        identityStore: new FileIdentityStore(config.identityFile),
        runner: createRunner(config, logger),
        status,
      },
    );
    try {
      return outcomeToResult(await agent.run(io.signal), config);
    } finally {
      await agent[Symbol.asyncDispose]();
    }
  } finally {
    tty?.close();
    logger.flush();
  }
}
