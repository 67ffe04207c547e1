/** The admin CLI as a function (bin.ts wires it to the process; tests call it in-process). */
import { Command, CommanderError } from 'commander';
import { ApiClient, ApiError } from './api-client.js';
import { datasetsCommand } from './datasets.command.js';
import { groupsCommand, tokensCommand } from './groups.command.js';
import { jobsCommand } from './jobs.command.js';
import { natsCommand } from './nats.command.js';
import { workersCommand } from './workers.command.js';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export interface CliEnv {
  GRADPOOL_API?: string;
  GRADPOOL_ADMIN_KEY?: string;
}

export const DEFAULT_API = 'http://127.0.0.1:8080';

/** Runs `gradpool <argv>`; resolves to the exit code (0 ok, 1 failed call, 2 usage). */
export async function runCli(argv: string[], env: CliEnv, io: CliIo): Promise<number> {
  const program = new Command('gradpool')
    .description('Gradpool admin CLI (talks to the coordinator REST API)')
    .option('--api <url>', 'coordinator URL (env GRADPOOL_API)')
    .option('--key <key>', 'admin API key (env GRADPOOL_ADMIN_KEY)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError(false);
  const client = () => {
    const o = program.opts<{ api?: string; key?: string }>();
    const url = o.api ?? env.GRADPOOL_API ?? DEFAULT_API;
    try {
      new URL(url);
    } catch {
      throw new CommanderError(2, 'gradpool.badApi', `--api ${JSON.stringify(url)} is not a URL`);
    }
    const key = o.key ?? env.GRADPOOL_ADMIN_KEY;
    if (!key) throw new CommanderError(2, 'gradpool.noKey', 'no API key: pass --key or set GRADPOOL_ADMIN_KEY');
    return new ApiClient(url, key);
  };
  for (const group of [jobsCommand(io, client), datasetsCommand(io, client), groupsCommand(io, client), tokensCommand(io, client), workersCommand(io, client), natsCommand(io)]) {
    for (const c of [group, ...group.commands]) c.exitOverride().configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
    program.addCommand(group);
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return 0;
      // Commander already printed its own parse errors; ours are printed here.
      if (err.code.startsWith('gradpool.') || err.code === 'commander.invalidArgument') io.err(`gradpool: ${err.message.replace(/^error: /, '')}`);
      return 2;
    }
    if (err instanceof ApiError) {
      io.err(`gradpool: ${err.message}`);
      return 1;
    }
    io.err(`gradpool: ${(err as Error).message}`);
    return 1;
  }
}
