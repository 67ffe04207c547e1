import { describe, expect, it, vi } from 'vitest';
import { createLogger } from './logger.js';
import { pendingShutdownParts, shutdownPart, shutdownStep } from './shutdown.js';

describe('shutdownStep', () => {
  it('gives up on a step that never ends, saying which and what is still open', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const t0 = Date.now();
      await shutdownStep(createLogger('silent'), 'database pool', new Promise(() => undefined), 50, () => ({ clients: 3 }));
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/^shutdown: gave up waiting for database pool after \d+ ms \(\{"clients":3\}; open: .*\)$/);
    } finally {
      warn.mockRestore();
    }
  });

  it('returns as the step ends, and a failed step does not stop the shutdown', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      await shutdownStep(createLogger('silent'), 'ok', Promise.resolve(), 60_000);
      await shutdownStep(createLogger('silent'), 'failing', Promise.reject(new Error('boom')), 60_000);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('names the parts of a shutdown that have not ended', async () => {
    let end!: () => void;
    const stuck = shutdownPart('keeper x: round loop', () => new Promise<void>((r) => (end = r)));
    await shutdownPart('gRPC server', async () => undefined);
    expect(pendingShutdownParts()).toEqual(['keeper x: round loop']);
    end();
    await stuck;
    expect(pendingShutdownParts()).toEqual([]);
    await expect(shutdownPart('failing', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(pendingShutdownParts()).toEqual([]);
  });
});
