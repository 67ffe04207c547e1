import { describe, expect, it } from 'vitest';
import { formatLogLine } from './logger.js';

describe('formatLogLine', () => {
  it('turns pino JSON into a short terminal line', () => {
    const json = JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 2, 14, 3, 7), pid: 1, name: 'agent', msg: 'registered', workerId: 'w1', n: 3 });
    expect(formatLogLine(json)).toBe('14:03:07 INFO  registered workerId=w1 n=3');
  });

  it('passes other text through', () => {
    expect(formatLogLine('not json\n')).toBe('not json');
  });
});
