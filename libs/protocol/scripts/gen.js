// Regenerates src/gen/ from ../../protos/gradpool/v1/*.proto. Never edit src/gen by hand:
// CI runs `npm run gen:check`, which fails when this script changes anything.
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const protoRoot = join(root, 'protos');
const outDir = resolve(here, '../src/gen');
const require = createRequire(import.meta.url);
const bin = join(dirname(require.resolve('@grpc/proto-loader/package.json')), 'build/bin/proto-loader-gen-types.js');

const files = readdirSync(join(protoRoot, 'gradpool/v1'))
  .filter((f) => f.endsWith('.proto'))
  .sort()
  .map((f) => `gradpool/v1/${f}`);

rmSync(outDir, { recursive: true, force: true });
execFileSync(process.execPath, [
  bin,
  '--grpcLib=@grpc/grpc-js',
  '--keepCase=false',
  '--longs=String',
  '--enums=String',
  '--defaults',
  '--oneofs',
  '--includeComments',
  '--importFileExtension=.js',
  '-I=.',
  `-O=${outDir}`,
  ...files,
], { stdio: 'inherit', cwd: protoRoot });
