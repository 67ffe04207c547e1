// The worker CLI as a donor meets it, before any coordinator is involved: bad input is a
// clear message and exit 2; `doctor` lists the backends; Ctrl-C with no coordinator leaves.
import { WorkerProcess } from '@gradpool/testing';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';

/** A TCP port that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP server that accepts connections and never answers (a hung coordinator). */
async function blackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('gradpool-worker CLI', () => {
  it.each([
    [['join', '--coordinator', 'localhost:50051'], /--token is required \(or set GRADPOOL_TOKEN\)/],
    [['join', '--token', 't'], /--coordinator is required/],
    [['join', '--coordinator', 'localhost', '--token', 't'], /--coordinator: "localhost" is not a coordinator address \(missing port\)/],
    [['join', '--coordinator', 'localhost:1', '--token', 't', '--backend', 'tpu'], /--backend: unknown backend "tpu"/],
    [['join', '--frobnicate'], /unknown option '--frobnicate'/],
  ])('%j → exit 2 with a message', async (args, message) => {
    const worker = WorkerProcess.spawn(args, undefined, { GRADPOOL_COORDINATOR: '', GRADPOOL_TOKEN: '' });
    const exit = await worker.exited(30_000);
    expect(exit.code, worker.output()).toBe(2);
    expect(worker.output()).toMatch(message);
  });

  it('doctor lists every backend, why it does or does not load, and exits 0', async () => {
    const worker = WorkerProcess.spawn(['doctor']);
    const exit = await worker.exited(60_000);
    expect(exit.code, worker.output()).toBe(0);
    const out = worker.lines.filter((l) => l.stream === 'stdout').map((l) => l.text);
    for (const backend of ['gpu', 'node', 'wasm', 'cpu']) expect(out.some((l) => l.startsWith(`${backend} `))).toBe(true);
    expect(out.find((l) => l.startsWith('wasm '))).toMatch(/^wasm\s+yes\s+\d+\.\d/);
    expect(out.some((l) => l.startsWith('--backend auto picks: '))).toBe(true);
  });

  it('keeps retrying an unreachable coordinator and leaves with exit 1 on Ctrl-C', async () => {
    const port = await closedPort();
    const worker = WorkerProcess.start({ coordinator: `127.0.0.1:${port}`, token: 't', name: 'lonely' });
    try {
      await worker.waitForLog('registration failed; retrying', {}, 30_000);
      worker.interrupt();
      const exit = await worker.exited(30_000);
      expect(exit.code, worker.output()).toBe(1);
      expect(worker.output()).toMatch(/stopped without the coordinator's acknowledgement/);
    } finally {
      await worker[Symbol.asyncDispose]();
    }
  });

  it('Ctrl-C cancels a registration that hangs instead of waiting for its deadline', async () => {
    const hole = await blackHole();
    const worker = WorkerProcess.start({ coordinator: `127.0.0.1:${hole.port}`, token: 't', name: 'stuck' });
    try {
      await worker.waitForLog('status: registering', {}, 30_000);
      worker.interrupt();
      const exit = await worker.exited(30_000);
      expect(exit.code, worker.output()).toBe(1);
      expect(worker.output()).not.toMatch(/DEADLINE_EXCEEDED/);
      expect(worker.output()).toMatch(/interrupted before the coordinator accepted this worker/);
    } finally {
      await worker[Symbol.asyncDispose]();
      await hole.close();
    }
  });
});
