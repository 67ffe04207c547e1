import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { DbHandle } from '@gradpool/db';
import type { NatsConnection } from 'nats';
import { DATABASE, NATS } from '../tokens.js';
import { SchedulingService } from './scheduling.service.js';

export type CheckResult = 'ok' | string;

/**
 * Readiness: can this coordinator reach Postgres and NATS right now, and can the scheduling
 * leader hear its workers? (A replica on another NATS than the leader's never gets its workers
 * scheduled: `SchedulingService.leaderUnheard`.)
 */
@Injectable()
export class HealthService {
  constructor(
    @Inject(DATABASE) private readonly handle: DbHandle,
    @Inject(NATS) private readonly nats: NatsConnection,
    private readonly moduleRef: ModuleRef,
  ) {}

  async readiness(timeoutMs = 2000): Promise<{ ready: boolean; checks: Record<'database' | 'nats' | 'scheduling', CheckResult> }> {
    const [database, nats] = await Promise.all([
      withTimeout(this.handle.pool.query('select 1').then(() => 'ok'), timeoutMs),
      this.nats.isClosed() ? Promise.resolve('closed') : withTimeout(this.nats.flush().then(() => 'ok'), timeoutMs),
    ]);
    const scheduling = this.scheduling()?.leaderUnheard
      ? 'another coordinator holds the scheduling lock on this database but none answers on this NATS: workers connected here will not be scheduled'
      : 'ok';
    return { ready: database === 'ok' && nats === 'ok' && scheduling === 'ok', checks: { database, nats, scheduling } };
  }

  /** The jobs module's scheduler, where the app has one. */
  private scheduling(): SchedulingService | null {
    try {
      return this.moduleRef.get(SchedulingService, { strict: false });
    } catch {
      return null;
    }
  }
}

async function withTimeout(p: Promise<string>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.catch((err: unknown) => `error: ${(err as Error).message}`),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`no answer within ${ms} ms`), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
