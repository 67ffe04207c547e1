#!/usr/bin/env node
/**
 * gradpool-worker: the volunteer's CLI. Flags > environment > defaults into a config,
 * SIGINT/SIGTERM into an AbortController, results into process.exitCode. No logic here.
 */
import { Command, CommanderError, Option } from 'commander';
import os from 'node:os';
import { ConfigError, ENV, parseJoinConfig, type JoinFlags } from './config.js';
import { ExitCode } from './exit-codes.js';
import { AGENT_VERSION } from './version.js';

const program = new Command()
  .name('gradpool-worker')
  .description('Contribute this machine to Gradpool training jobs.')
  .version(AGENT_VERSION)
  .exitOverride()
  .showHelpAfterError('(run gradpool-worker --help for usage)');

program
  .command('join')
  .description('register with a coordinator using a join token and work until stopped (Ctrl-C drains)')
  .option('--coordinator <host:port>', `coordinator gRPC address (env ${ENV.coordinator})`)
  .option('--token <token>', `join token from your group admin (env ${ENV.token})`)
  .option('--name <name>', `worker name shown to admins (env ${ENV.name}; default: host name)`)
  .addOption(new Option('--backend <backend>', `compute backend: auto|gpu|node|wasm|cpu (env ${ENV.backend}; default auto)`))
  .option('--state-dir <dir>', `where the worker identity is kept (env ${ENV.stateDir}; default ~/.gradpool)`)
  .option('--insecure', `plaintext gRPC, no TLS (env ${ENV.insecure}=1)`)
  .option(
    '--cache-max-bytes <size>',
    `size cap of the dataset shard cache in the state dir, e.g. 500MiB, 10GiB; 0: no cache (env ${ENV.cacheMaxBytes}; default 2GiB)`,
  )
  .option('--log-level <level>', `trace|debug|info|warn|error|fatal|silent (env ${ENV.logLevel}; default info)`)
  .addHelpText(
    'after',
    '\nExit codes: 0 drained, 1 failure or left without acknowledgement, 2 bad input, 3 join token refused, 130 second Ctrl-C.',
  )
  .action(async (flags: JoinFlags) => {
    let config;
    try {
      config = parseJoinConfig(flags, process.env, { hostname: os.hostname(), homedir: os.homedir() });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(`gradpool-worker join: ${err.message}`);
      process.exitCode = ExitCode.USAGE;
      return;
    }
    const controller = new AbortController();
    let interrupts = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      interrupts++;
      if (interrupts > 1) {
        console.error(`\n${signal} again: stopping now, without draining`);
        process.exit(ExitCode.INTERRUPTED);
      }
      console.error(`\n${signal}: draining (telling the coordinator; press Ctrl-C again to quit at once)`);
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // Loaded only now: TensorFlow.js takes a second, and bad flags should not wait for it.
    const { runJoin } = await import('./join.js');
    const result = await runJoin(config, { stdout: process.stdout, signal: controller.signal });
    if (result.message) console.error(`gradpool-worker: ${result.message}`);
    process.exitCode = result.exitCode;
  });

program
  .command('doctor')
  .description('show which compute backends load here, why the others do not, and their measured GFLOP/s')
  .action(async () => {
    const { formatDoctorReport, runDoctor } = await import('./doctor.js');
    process.stdout.write(formatDoctorReport(await runDoctor()));
    process.exitCode = ExitCode.OK;
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with 0; a bad flag or command is a usage error.
    process.exitCode = err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  } else {
    console.error(`gradpool-worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = ExitCode.FAILURE;
  }
}
// Whatever handle a library leaves open must not keep a finished agent alive.
setTimeout(() => process.exit(), 5_000).unref();
