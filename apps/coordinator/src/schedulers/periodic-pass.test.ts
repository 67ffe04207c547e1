import { describe, expect, it } from 'vitest';
import { createLogger } from '../logger.js';
import { pendingShutdownParts } from '../shutdown.js';
import { PeriodicPass } from './periodic-pass.js';

describe('PeriodicPass', () => {
  it('runs one pass at a time, goes on after a failed one, and stop waits for the pass in progress', async () => {
    let started = 0;
    let active = 0;
    let overlapped = false;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const loop = new PeriodicPass(
      'test pass',
      5,
      async () => {
        started++;
        if (active++ > 0) overlapped = true;
        try {
          if (started === 1) throw new Error('first pass fails');
          if (started === 3) await held;
        } finally {
          active--;
        }
      },
      createLogger('silent'),
    );
    loop.start();
    const deadline = Date.now() + 5000;
    while (started < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(started).toBe(3);
    // The third pass is held: stop must wait for it, and names it meanwhile.
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(stopped).toBe(false);
    expect(pendingShutdownParts()).toContain('test pass in progress');
    release();
    await stopping;
    await new Promise((r) => setTimeout(r, 30));
    expect(started).toBe(3);
    expect(overlapped).toBe(false);
  });
});
