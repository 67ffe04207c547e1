import { describe, expect, it } from 'vitest';
import { formatDoctorReport } from './doctor.js';
import { ExitCode } from './exit-codes.js';
import { outcomeToResult } from './join.js';

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
