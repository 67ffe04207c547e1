/** `gradpool datasets …`: import, import-mnist, list, show, delete through the REST API. */
import { Command, CommanderError, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import { stat } from 'node:fs/promises';
import { ApiClient } from './api-client.js';
import type { CliIo } from './run.js';
import { num, table } from './table.js';

interface DatasetSummary {
  id: string;
  name: string;
  format: string;
  status: string;
  featureShape: number[];
  numClasses: number;
  counts: { train: number; validation: number; test: number };
  totalBytes: number;
}

interface DatasetDetail extends DatasetSummary {
  classNames: string[];
  normalisation: { kind: string; min?: number; max?: number };
  shardBucket: string;
  evalShardBucket?: string;
  splits: Record<string, { samples: number; shards: { index: number; sampleCount: number; bytes: number; sha256: string }[] }>;
}

const fraction = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0 || x >= 1) throw new CommanderArgError(`${flag} must be a number in [0, 1)`);
  return x;
};
const seedArg = (v: string) => (/^-?\d+$/.test(v) ? Number(v) : v);
const intArg = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x <= 0) throw new CommanderArgError(`${flag} must be a positive integer`);
  return x;
};

/** Exit 2 with `file not found: X` (not a raw ENOENT) before anything is uploaded. */
async function checkFiles(paths: string[]): Promise<void> {
  for (const p of paths) {
    let isFile: boolean;
    try {
      isFile = (await stat(p)).isFile();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new CommanderError(2, 'gradpool.fileNotFound', `file not found: ${p}`);
      throw new CommanderError(2, 'gradpool.fileUnreadable', `cannot read ${p}: ${(err as Error).message}`);
    }
    if (!isFile) throw new CommanderError(2, 'gradpool.notAFile', `not a file: ${p}`);
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function describe(d: DatasetDetail, io: CliIo): void {
  io.out(`${d.name}  (${d.id})`);
  io.out(`  status         ${d.status}`);
  io.out(`  format         ${d.format}`);
  io.out(`  samples        train ${d.counts.train}, validation ${d.counts.validation}, test ${d.counts.test}`);
  io.out(`  feature shape  [${d.featureShape.join(', ')}] float32`);
  io.out(`  classes        ${d.numClasses}: ${d.classNames.slice(0, 20).join(', ')}${d.classNames.length > 20 ? ', …' : ''}`);
  const n = d.normalisation;
  io.out(`  normalisation  ${n.kind}${n.kind === 'scale' ? ` (min ${n.min}, max ${n.max})` : ''}`);
  const where = d.evalShardBucket && d.evalShardBucket !== d.shardBucket ? `buckets ${d.shardBucket} (train) and ${d.evalShardBucket}` : `bucket ${d.shardBucket}`;
  io.out(`  shards         ${Object.values(d.splits).reduce((a, s) => a + s.shards.length, 0)} in ${where}, ${mib(d.totalBytes)}`);
  for (const [split, s] of Object.entries(d.splits)) {
    if (s.shards.length === 0) continue;
    io.out(`    ${split}: ${s.shards.length} shards, first ${s.shards[0].sha256.slice(0, 16)}… (${s.shards[0].sampleCount} samples)`);
  }
}

export function datasetsCommand(io: CliIo, client: () => ApiClient): Command {
  const cmd = new Command('datasets').description('import, list, show and delete datasets');

  /** Accepts an id or a name. */
  const resolve = (ref: string): Promise<string> => client().resolve('/v1/datasets', 'dataset', ref);

  cmd
    .command('import')
    .description('upload files and import them: idx <images> <labels> | npy <features> <labels> | csv <table>')
    .argument('<files...>', 'the train files')
    .addOption(new Option('--format <format>', 'file format').choices(['idx', 'csv', 'npy']).makeOptionMandatory())
    .requiredOption('--name <name>', 'dataset name')
    .option('--label-column <column>', 'CSV: the label column (default "label")')
    .addOption(new Option('--normalise <kind>', 'feature normalisation (train statistics)').choices(['none', 'scale', 'standardise']))
    .option('--validation <fraction>', 'validation fraction of the train files (default 0.1)', fraction('--validation'))
    .option('--test-file <files...>', 'a separate test split, same layout as the train files')
    .option('--test-fraction <fraction>', 'test fraction of the train files (without --test-file)', fraction('--test-fraction'))
    .option('--seed <seed>', 'seed of the split and shuffle', seedArg)
    .option('--shard-bytes <bytes>', 'target shard size', intArg('--shard-bytes'))
    .option('--classes <names>', 'declared class names, comma-separated')
    .option('--json', 'print the dataset as JSON')
    .action(async (files: string[], o) => {
      if (o.testFile && o.testFraction !== undefined) throw new CommanderArgError('give --test-file or --test-fraction, not both');
      await checkFiles([...files, ...(o.testFile ?? [])]);
      const api = client();
      const up = async (paths: string[]) => {
        const ids: string[] = [];
        for (const p of paths) {
          const u = await api.upload(p);
          io.err(`uploaded ${p} (${mib(u.bytes)})`);
          ids.push(u.uploadId);
        }
        return ids;
      };
      const body = {
        name: o.name,
        format: o.format,
        files: await up(files),
        testFiles: o.testFile ? await up(o.testFile) : undefined,
        labelColumn: o.labelColumn,
        normalise: o.normalise,
        validationFraction: o.validation,
        testFraction: o.testFraction,
        seed: o.seed,
        shardBytes: o.shardBytes,
        classes: o.classes ? String(o.classes).split(',').map((s) => s.trim()) : undefined,
      };
      const d = await api.request<DatasetDetail>('POST', '/v1/datasets', body);
      if (o.json) io.out(JSON.stringify(d, null, 2));
      else describe(d, io);
    });

  cmd
    .command('import-mnist')
    .description('import the built-in MNIST (60 000 train, 10 000 test)')
    .option('--name <name>', 'dataset name', 'mnist')
    .addOption(new Option('--normalise <kind>', 'feature normalisation').choices(['none', 'scale', 'standardise']))
    .option('--validation <fraction>', 'validation fraction of the train split (default 0.1)', fraction('--validation'))
    .option('--seed <seed>', 'seed of the split and shuffle', seedArg)
    .option('--json', 'print the dataset as JSON')
    .action(async (o) => {
      const d = await client().request<DatasetDetail>('POST', '/v1/datasets', {
        builtin: 'mnist',
        name: o.name,
        normalise: o.normalise,
        validationFraction: o.validation,
        seed: o.seed,
      });
      if (o.json) io.out(JSON.stringify(d, null, 2));
      else describe(d, io);
    });

  cmd
    .command('list')
    .description('list datasets')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const all = await client().request<DatasetSummary[]>('GET', '/v1/datasets');
      if (o.json) return io.out(JSON.stringify(all, null, 2));
      if (all.length === 0) return io.out('no datasets');
      for (const l of table(
        ['id', 'name', 'status', 'shape', 'classes', 'train', 'val', 'test', 'size'],
        all.map((d) => [d.id, d.name, d.status, `[${d.featureShape.join(',')}]`, d.numClasses, num(d.counts.train), num(d.counts.validation), num(d.counts.test), mib(d.totalBytes)]),
      ))
        io.out(l);
    });

  cmd
    .command('show')
    .description('show a dataset (id or name)')
    .argument('<dataset>', 'id or name')
    .option('--json', 'print JSON (with the full shard list)')
    .action(async (ref: string, o) => {
      const d = await client().request<DatasetDetail>('GET', `/v1/datasets/${await resolve(ref)}`);
      if (o.json) io.out(JSON.stringify(d, null, 2));
      else describe(d, io);
    });

  cmd
    .command('delete')
    .description('delete a dataset and its shards (refused while a job uses it)')
    .argument('<dataset>', 'id or name')
    .action(async (ref: string) => {
      const id = await resolve(ref);
      await client().request('DELETE', `/v1/datasets/${id}`);
      io.out(`deleted ${ref}`);
    });

  return cmd;
}
