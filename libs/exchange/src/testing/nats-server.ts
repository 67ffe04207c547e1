/** A private nats-server on a free port, for tests that restart it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class PrivateNatsServer {
  private proc: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly config: string | null,
  ) {}

  /** `config`: nats-server configuration text (e.g. `max_pending: 1GB`), written to a temp file. */
  static async start(config?: string): Promise<PrivateNatsServer> {
    let file: string | null = null;
    if (config) {
      const { mkdtempSync, writeFileSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      file = join(mkdtempSync(join(tmpdir(), 'gp-nats-')), 'nats.conf');
      writeFileSync(file, config);
    }
    const s = new PrivateNatsServer(await freePort(), file);
    await s.startProcess();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  private async startProcess(): Promise<void> {
    const args = ['-a', '127.0.0.1', '-p', String(this.port)];
    if (this.config) args.push('-c', this.config);
    this.proc = spawn(NATS_SERVER_BIN, args, { stdio: 'ignore' });
    await waitListening(this.port, 10_000);
  }

  /** Kills the server (SIGKILL) and waits for it to be gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
    this.proc = null;
  }

  /** The server's process id (for measuring its CPU). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.startProcess();
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}
