import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { formatAge, formatStatusLine, LogStatusSink, TtyStatusDisplay, type AgentSnapshot } from './status.js';

const base: AgentSnapshot = { phase: 'online', coordinator: 'coord:50051', backend: 'wasm', workerId: 'w1', heartbeatsSent: 12 };

describe('formatStatusLine', () => {
  it('shows state, coordinator, backend, heartbeats, last contact and job', () => {
    expect(formatStatusLine({ ...base, lastContactAtMs: 10_000 }, 12_500)).toBe(
      '● online  coordinator=coord:50051  backend=wasm  heartbeats=12  last contact 2s ago  job=-',
    );
    expect(formatStatusLine({ ...base, jobId: 'j1', round: '40', lastContactAtMs: 0 }, 125_000)).toBe(
      '● online  coordinator=coord:50051  backend=wasm  heartbeats=12  last contact 2m05s ago  job=j1 round=40',
    );
    expect(formatStatusLine({ ...base, phase: 'reconnecting', detail: 'retry in 1.2s: UNAVAILABLE' }, 0)).toBe(
      '○ reconnecting  coordinator=coord:50051  backend=wasm  heartbeats=12  no contact yet  job=-  retry in 1.2s: UNAVAILABLE',
    );
  });

  it('fits the terminal width', () => {
    const line = formatStatusLine({ ...base, detail: 'x'.repeat(200) }, 0, 60);
    expect(line).toHaveLength(60);
    expect(line.endsWith('…')).toBe(true);
  });

  it('formats ages', () => {
    expect([0, 999, 59_999, 60_000, 3_599_000, 3_600_000, 7_380_000, -5].map(formatAge)).toEqual([
      '0s', '0s', '59s', '1m00s', '59m59s', '1h00m', '2h03m', '0s',
    ]);
  });
});

describe('TtyStatusDisplay', () => {
  it('redraws in place and prints log lines above the status', () => {
    const out: string[] = [];
    const display = new TtyStatusDisplay({ write: (t: string) => out.push(t), columns: 200 }, () => 0);
    display.update(base);
    display.printAbove('a log line');
    display.close();
    expect(out).toEqual([
      '\r\x1b[2K● online  coordinator=coord:50051  backend=wasm  heartbeats=12  no contact yet  job=-',
      '\r\x1b[2Ka log line\n',
      '\r\x1b[2K● online  coordinator=coord:50051  backend=wasm  heartbeats=12  no contact yet  job=-',
      '\n',
    ]);
  });
});

describe('LogStatusSink', () => {
  it('logs a line per change of phase, not per heartbeat', () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        cb();
      },
    });
    const sink = new LogStatusSink(pino(stream));
    sink.update({ ...base, phase: 'connecting', heartbeatsSent: 0 });
    sink.update(base);
    sink.update({ ...base, heartbeatsSent: 13 });
    sink.update({ ...base, heartbeatsSent: 14, jobId: 'j1' });
    expect(lines.map((l) => l.msg)).toEqual(['status: connecting', 'status: online', 'status: online']);
    expect(lines[1]).toMatchObject({ phase: 'online', coordinator: 'coord:50051', backend: 'wasm', workerId: 'w1' });
  });
});
