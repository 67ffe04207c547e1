import { Inject, Injectable } from '@nestjs/common';
import type { DbHandle } from '@gradpool/db';
import type { NatsConnection } from 'nats';
import { DATABASE, NATS } from '../tokens.js';

export type CheckResult = 'ok' | string;

/** Readiness: can this coordinator reach Postgres and NATS right now? */
@Injectable()
export class HealthService {
  constructor(
    @Inject(DATABASE) private readonly handle: DbHandle,
    @Inject(NATS) private readonly nats: NatsConnection,
  ) {}

  async readiness(timeoutMs = 2000): Promise<{ ready: boolean; checks: Record<'database' | 'nats', CheckResult> }> {
    const [database, nats] = await Promise.all([
      withTimeout(this.handle.pool.query('select 1').then(() => 'ok'), timeoutMs),
      this.nats.isClosed() ? Promise.resolve('closed') : withTimeout(this.nats.flush().then(() => 'ok'), timeoutMs),
    ]);
    return { ready: database === 'ok' && nats === 'ok', checks: { database, nats } };
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
