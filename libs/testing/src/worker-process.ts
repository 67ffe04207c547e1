/**
 * A real worker agent process for end-to-end tests: `node apps/worker/dist/bin.js join …`
 * (build it first: `npx tsc -b apps/worker`). Captures its output line by line, and waits for
 * lines and for its exit with deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The built CLI of apps/worker. */
export const WORKER_BIN = fileURLToPath(new URL('../../../apps/worker/dist/bin.js', import.meta.url));

export interface WorkerProcessOptions {
  /** Coordinator gRPC address, `host:port`. */
  coordinator: string;
  token: string;
  name?: string;
  /** Default `wasm` (loads fast and is always there). */
  backend?: 'auto' | 'gpu' | 'node' | 'wasm' | 'cpu';
  /** Where the identity file goes; default a fresh temporary folder. Reuse it to restart "the same" worker. */
  stateDir?: string;
  /** Plaintext gRPC; default true. */
  insecure?: boolean;
  logLevel?: string;
  /** Extra environment (merged over the test's). */
  env?: Record<string, string>;
  /** Arguments after `join …` (e.g. to test bad flags). */
  extraArgs?: string[];
}

/** One line of output; `json` is set when the line is a pino record. */
export interface WorkerLine {
  stream: 'stdout' | 'stderr';
  text: string;
  json?: Record<string, unknown>;
}

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class WorkerProcess implements AsyncDisposable {
  readonly lines: WorkerLine[] = [];
  readonly stateDir: string;
  private readonly events = new EventEmitter();
  private exit?: WorkerExit;

  private constructor(
    readonly child: ChildProcess,
    stateDir: string,
  ) {
    this.stateDir = stateDir;
    this.events.setMaxListeners(100);
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream]! }).on('line', (text) => {
        let json: Record<string, unknown> | undefined;
        if (text.startsWith('{')) {
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
        }
        const line = { stream, text, json };
        this.lines.push(line);
        this.events.emit('line', line);
      });
    }
    child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.events.emit('exit', this.exit);
    });
  }

  /** Spawns `gradpool-worker join` with `options`; use `runCli` for other commands. */
  static start(options: WorkerProcessOptions): WorkerProcess {
    const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'gp-worker-'));
    const args = ['join', '--coordinator', options.coordinator, '--token', options.token, '--state-dir', stateDir];
    args.push('--backend', options.backend ?? 'wasm');
    if (options.name) args.push('--name', options.name);
    if (options.insecure ?? true) args.push('--insecure');
    if (options.logLevel) args.push('--log-level', options.logLevel);
    args.push(...(options.extraArgs ?? []));
    return WorkerProcess.spawn(args, stateDir, options.env);
  }

  /** Spawns the CLI with raw `args` (e.g. `['doctor']` or a bad `join`). */
  static spawn(args: string[], stateDir = mkdtempSync(join(tmpdir(), 'gp-worker-')), env: Record<string, string> = {}): WorkerProcess {
    if (!existsSync(WORKER_BIN)) throw new Error(`${WORKER_BIN} is missing: build the worker first (npx tsc -b apps/worker)`);
    const child = spawn(process.execPath, [WORKER_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    return new WorkerProcess(child, stateDir);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exitStatus(): WorkerExit | undefined {
    return this.exit;
  }

  /** All output so far, one string (for assertion messages). */
  output(): string {
    return this.lines.map((l) => l.text).join('\n');
  }

  /** Pino records logged so far. */
  logs(): Record<string, unknown>[] {
    return this.lines.flatMap((l) => (l.json ? [l.json] : []));
  }

  /**
   * Resolves with the first line (already seen or to come) that `match` accepts. Rejects after
   * `timeoutMs`, or when the process exits first, with the output so far in the message.
   */
  waitForLine(match: (line: WorkerLine) => boolean, what: string, timeoutMs = 30_000): Promise<WorkerLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off('line', onLine);
        this.events.off('exit', onExit);
      };
      const onLine = (line: WorkerLine) => {
        if (!match(line)) return;
        cleanup();
        resolve(line);
      };
      const onExit = (exit: WorkerExit) => {
        cleanup();
        reject(new Error(`worker exited (${exit.code ?? exit.signal}) before ${what}; output:\n${this.output()}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output:\n${this.output()}`));
      }, timeoutMs);
      this.events.on('line', onLine);
      if (this.exit) onExit(this.exit);
      else this.events.on('exit', onExit);
    });
  }

  /** Waits for a pino record whose `msg` is `msg` (and whose fields match `fields`, if given). */
  async waitForLog(msg: string, fields: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const line = await this.waitForLine(
      (l) => l.json?.msg === msg && Object.entries(fields).every(([k, v]) => l.json?.[k] === v),
      `log "${msg}"`,
      timeoutMs,
    );
    return line.json!;
  }

  /** Sends SIGINT (Ctrl-C) by default. */
  interrupt(signal: NodeJS.Signals = 'SIGINT'): void {
    if (!this.exit) this.child.kill(signal);
  }

  /** Resolves with how the process ended; rejects after `timeoutMs`. */
  exited(timeoutMs = 30_000): Promise<WorkerExit> {
    if (this.exit) return Promise.resolve(this.exit);
    return new Promise((resolve, reject) => {
      const onExit = (exit: WorkerExit) => {
        clearTimeout(timer);
        resolve(exit);
      };
      const timer = setTimeout(() => {
        this.events.off('exit', onExit);
        reject(new Error(`worker ${this.pid} still running after ${timeoutMs} ms; output:\n${this.output()}`));
      }, timeoutMs);
      this.events.once('exit', onExit);
    });
  }

  /** SIGKILL and wait (a crashed worker). */
  async kill(): Promise<WorkerExit> {
    if (!this.exit) this.child.kill('SIGKILL');
    return this.exited(10_000);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.exit) await this.kill();
  }
}
