#!/usr/bin/env node
// The npm bin target of `gradpool-worker`: committed so that `npm ci` links node_modules/.bin/gradpool-worker on a
// fresh checkout, before apps/worker/dist exists. It runs the built program, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const target = new URL('../dist/bin.js', import.meta.url);
if (existsSync(fileURLToPath(target))) {
  await import(target.href);
} else {
  process.stderr.write(
    `gradpool-worker: ${fileURLToPath(target)} is missing; run \`npm run build\` first (or \`npx tsc -b apps/worker\`)\n`,
  );
  process.exitCode = 1;
}
