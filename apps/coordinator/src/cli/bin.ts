#!/usr/bin/env node
/** `gradpool`: the admin CLI. Flags > env (GRADPOOL_API, GRADPOOL_ADMIN_KEY) > defaults. */
import { runCli } from './run.js';

const code = await runCli(process.argv.slice(2), { GRADPOOL_API: process.env.GRADPOOL_API, GRADPOOL_ADMIN_KEY: process.env.GRADPOOL_ADMIN_KEY }, {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
});
process.exitCode = code;
