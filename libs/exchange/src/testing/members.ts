/**
 * Spawns job members as separate processes (dist/testing/member-process.js) and talks to them
 * over IPC. Used by the exchange tests and the benchmark.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { MemberInit, RoundCommand, RoundReply } from './member-process.js';

/** The built member script (tests build libs/exchange first). */
export const MEMBER_SCRIPT = fileURLToPath(new URL('../../dist/testing/member-process.js', import.meta.url));

export class MemberProcess {
  readonly child: ChildProcess;
  private readonly results: RoundReply[] = [];
  private readonly phases: number[] = [];
  private waiters: (() => void)[] = [];
  exited = false;
  geometry: RoundReply['geometry'];

  constructor(readonly id: string) {
    // GRADPOOL_MEMBER_NODE_ARGS: extra node flags for member processes, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
    const execArgv = (process.env.GRADPOOL_MEMBER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    this.child = fork(MEMBER_SCRIPT, [], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...process.env, GRADPOOL_LOG_LEVEL: process.env.GRADPOOL_LOG_LEVEL ?? 'silent' } });
    this.child.on('message', (m: { type: string; round?: number; geometry?: RoundReply['geometry'] } & RoundReply) => {
      if (m.type === 'result') this.results.push(m);
      else if (m.type === 'phase') this.phases.push(m.round!);
      else if (m.type === 'ready') this.geometry = m.geometry;
      this.notify();
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until<T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined) return v;
      if (this.exited) throw new Error(`member ${this.id} exited while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`member ${this.id}: no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async init(init: Omit<MemberInit, 'type' | 'selfId'>, timeoutMs = 60_000): Promise<void> {
    this.child.send({ ...init, type: 'init', selfId: this.id });
    await this.until('ready', () => this.geometry, timeoutMs);
  }

  round(cmd: Omit<RoundCommand, 'type'>): void {
    this.child.send({ ...cmd, type: 'round' });
  }

  go(): void {
    this.child.send({ type: 'go' });
  }

  /** The next result (in order). */
  result(timeoutMs = 30_000): Promise<RoundReply> {
    return this.until('result', () => this.results.shift(), timeoutMs);
  }

  published(round: number, timeoutMs = 30_000): Promise<true> {
    return this.until(`published(${round})`, () => (this.phases.includes(round) ? true : undefined), timeoutMs);
  }

  /** Resolves when the process has exited (it was killed or died). */
  exit(timeoutMs = 30_000): Promise<true> {
    return this.until('exit', () => (this.exited ? true : undefined), timeoutMs).catch((e) => {
      if (this.exited) return true as const;
      throw e;
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    this.child.send({ type: 'exit' });
    await this.exit(5000).catch(() => this.child.kill('SIGKILL'));
  }
}

/** Member processes for `ids`, initialised on the roster `members` (default: `ids` themselves). */
export async function spawnMembers(ids: string[], init: Omit<MemberInit, 'type' | 'selfId' | 'members'>, members = ids): Promise<MemberProcess[]> {
  const ms = ids.map((id) => new MemberProcess(id));
  await Promise.all(ms.map((m) => m.init({ ...init, members })));
  return ms;
}
