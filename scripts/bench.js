#!/usr/bin/env node
// `npm run bench <name> [-- args]`: runs one benchmark script from the built tree. Each prints
// tables and ratios; results are written up in docs/bench/<name>.md.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BENCHES = {
  training: 'libs/training/dist/bench/training.bench.js',
  exchange: 'libs/exchange/dist/bench/exchange.bench.js',
  'codec-work': 'libs/exchange/dist/bench/codec-work.bench.js',
  'owner-audit': 'libs/exchange/dist/bench/owner-audit.bench.js',
  datasets: 'libs/datasets/dist/bench/datasets.bench.js',
  'training-e2e': 'apps/demo/dist/bench/training-e2e.bench.js',
  keeper: 'apps/coordinator/dist/bench/keeper.bench.js',
};

const [name, ...args] = process.argv.slice(2);
if (!name || !(name in BENCHES)) {
  console.error(`usage: npm run bench <${Object.keys(BENCHES).join('|')}> [-- options]`);
  process.exit(2);
}
const script = fileURLToPath(new URL(`../${BENCHES[name]}`, import.meta.url));
if (!existsSync(script)) {
  console.error(`benchmark '${name}' is not built (${BENCHES[name]} missing): run npm run build`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--expose-gc', script, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
