import { describe, expect, it } from 'vitest';
import { formatDoctorReport } from './doctor.js';
import { ExitCode } from './exit-codes.js';
import { createRunner, outcomeToResult } from './join.js';
import { silentLogger } from './logger.js';

const config = { coordinator: 'coord:50051' };

describe('outcomeToResult', () => {
  it('maps how the agent ended to an exit code and a message for the donor', () => {
    expect(outcomeToResult({ kind: 'drained', initiatedBy: 'worker', reason: 'Ctrl-C' }, config)).toEqual({
      exitCode: ExitCode.OK,
      message: 'drained (Ctrl-C); bye',
    });
    expect(outcomeToResult({ kind: 'unacknowledged', reason: 'no DrainAck within 10000 ms' }, config)).toMatchObject({ exitCode: 1 });
    expect(outcomeToResult({ kind: 'rejected', code: 'unauthenticated', message: 'this join token has expired' }, config)).toEqual({
      exitCode: 3,
      message: 'the coordinator at coord:50051 refused the join token (this join token has expired); ask your group admin for a valid token',
    });
    expect(outcomeToResult({ kind: 'rejected', code: 'invalid-argument', message: 'workerName: at most 64 characters' }, config)).toMatchObject({
      exitCode: 2,
    });
  });
});

describe('formatDoctorReport', () => {
  it('prints one row per backend and what auto picks', () => {
    expect(
      formatDoctorReport([
        { backend: 'gpu', ok: false, reason: 'package not installed' },
        { backend: 'node', ok: false, reason: 'package not installed' },
        { backend: 'wasm', ok: true, gflops: 28.734 },
        { backend: 'cpu', ok: true, gflops: 0.91 },
      ]),
    ).toBe(
      [
        'backend  loads  GFLOP/s  notes',
        'gpu      no           -  package not installed',
        'node     no           -  package not installed',
        'wasm     yes       28.7',
        'cpu      yes        0.9',
        '--backend auto picks: wasm',
        '',
      ].join('\n'),
    );
    expect(formatDoctorReport([{ backend: 'cpu', ok: false, reason: 'x' }])).toMatch(/no backend loads/);
  });
});

describe('createRunner', () => {
  const logger = silentLogger();
  // The runner's options are private; what it was given is what this test checks.
  const optsOf = (runner: unknown) => (runner as { opts: { cacheDir: string | null; cacheMaxBytes?: number } }).opts;

  it('puts the shard cache in the state dir, capped at --cache-max-bytes', () => {
    expect(optsOf(createRunner({ stateDir: '/home/donor/.gradpool', cacheMaxBytes: 500 * 1024 ** 2 }, logger))).toMatchObject({
      cacheDir: '/home/donor/.gradpool/cache',
      cacheMaxBytes: 500 * 1024 ** 2,
    });
  });

  it('has no shard cache when the cap is 0', () => {
    expect(optsOf(createRunner({ stateDir: '/home/donor/.gradpool', cacheMaxBytes: 0 }, logger)).cacheDir).toBeNull();
  });
});
