#!/usr/bin/env node
// The npm bin target of `gradpool-coordinator`: committed so that `npm ci` links node_modules/.bin/gradpool-coordinator on a
// fresh checkout, before apps/coordinator/dist exists. It runs the built program, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const target = new URL('../dist/main.js', import.meta.url);
if (existsSync(fileURLToPath(target))) {
  await import(target.href);
} else {
  process.stderr.write(
    `gradpool-coordinator: ${fileURLToPath(target)} is missing; run \`npm run build\` first (or \`npx tsc -b apps/coordinator\`)\n`,
  );
  process.exitCode = 1;
}
