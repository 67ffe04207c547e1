import { Inject, Injectable } from '@nestjs/common';
import type { DbHandle, WorkerCapabilities } from '@gradpool/db';
import { z } from 'zod';
import type { CoordinatorConfig } from '../config.js';
import { InvalidArgumentError, UnauthenticatedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { CoordinatorMetrics } from '../metrics.js';
import { EventRepository } from '../repositories/event.repository.js';
import { JoinTokenRepository } from '../repositories/join-token.repository.js';
import { WorkerRepository } from '../repositories/worker.repository.js';
import { generateSecret, hashSecret, isUuid, KEY_PREFIX, secretMatches } from '../secrets.js';
import { CONFIG, DATABASE, LOGGER } from '../tokens.js';

/** Compute backends a worker may report (shared/DESIGN.md, "Models"). */
export const BACKENDS = ['gpu', 'node', 'wasm', 'cpu'] as const;

const printable = /^[^\p{Cc}\p{Cf}]+$/u;
const text = (max: number) => z.string().max(max, `at most ${max} characters`);

/** What a Register call carries, after the gRPC layer turned it into plain values. */
export const registerInput = z.object({
  joinToken: z.string(),
  workerName: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(64, 'at most 64 characters')
    .regex(printable, 'printable characters only'),
  capabilities: z.object(
    {
      backend: z.enum(BACKENDS, { error: `must be one of ${BACKENDS.join(', ')}` }),
      deviceName: text(256),
      memoryBytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      gflops: z.number({ error: 'must be a finite number' }).nonnegative('must not be negative'),
      agentVersion: text(64),
      os: text(256),
      cpuCount: z.number().int().nonnegative().max(1 << 20),
    },
    { error: 'required' },
  ),
  previousWorkerId: z.string().max(64).default(''),
  previousSessionSecret: z.string().max(256).default(''),
});
export type RegisterInput = z.input<typeof registerInput>;

export interface RegisterResult {
  workerId: string;
  sessionSecret: string;
  groupId: string;
  natsServers: readonly string[];
  natsAuth: { user: string; password: string; token: string };
  heartbeatIntervalMs: number;
  leaseMs: number;
  /** True when a previous identity was honoured. */
  reidentified: boolean;
}

@Injectable()
export class RegistrationService {
  private readonly log: Logger;

  constructor(
    @Inject(CONFIG) private readonly config: CoordinatorConfig,
    @Inject(DATABASE) private readonly handle: DbHandle,
    @Inject(LOGGER) logger: Logger,
    private readonly tokens: JoinTokenRepository,
    private readonly workers: WorkerRepository,
    private readonly events: EventRepository,
    private readonly metrics: CoordinatorMetrics,
  ) {
    this.log = logger.child({ component: 'registration' });
  }

  /**
   * Exchanges a join token for a worker identity and a fresh session secret. Nothing is written
   * unless the token is usable; its use count goes up in the same transaction as the insert.
   */
  async register(raw: RegisterInput): Promise<RegisterResult> {
    try {
      const result = await this.doRegister(raw);
      this.metrics.registrations.inc({ result: result.reidentified ? 'reidentified' : 'registered' });
      return result;
    } catch (err) {
      this.metrics.registrations.inc({ result: err instanceof UnauthenticatedError ? 'unauthenticated' : err instanceof InvalidArgumentError ? 'invalid' : 'error' });
      throw err;
    }
  }

  private async doRegister(raw: RegisterInput): Promise<RegisterResult> {
    const parsed = registerInput.safeParse(raw);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      const field = i.path.join('.');
      if (field === 'joinToken') throw new UnauthenticatedError('missing join token');
      throw new InvalidArgumentError(`${field}: ${i.message}`);
    }
    const input = parsed.data;
    if (!input.joinToken) throw new UnauthenticatedError('missing join token');
    const capabilities: WorkerCapabilities = { ...input.capabilities };
    const sessionSecret = generateSecret(KEY_PREFIX.sessionSecret);
    const secretHash = hashSecret(sessionSecret);
    const base = {
      sessionSecret,
      natsServers: this.config.natsAdvertise,
      natsAuth: { ...this.config.workerNats },
      heartbeatIntervalMs: this.config.heartbeat.intervalMs,
      leaseMs: this.config.leaseMs,
    };

    return this.handle.db.transaction(async (tx) => {
      const token = await this.tokens.findByHash(hashSecret(input.joinToken), tx);
      if (!token) throw new UnauthenticatedError('unknown join token');
      if (token.revokedAt) throw new UnauthenticatedError('this join token has been revoked');

      // A restarting worker keeps its identity while its lease runs, without spending a use.
      if (input.previousWorkerId && input.previousSessionSecret && isUuid(input.previousWorkerId)) {
        const prev = await this.workers.findById(input.previousWorkerId, tx);
        if (prev && prev.groupId === token.groupId && secretMatches(input.previousSessionSecret, prev.secretHash)) {
          const row = await this.workers.reidentify(prev.id, { name: input.workerName, capabilities, secretHash }, this.config.leaseMs, tx);
          if (row) {
            await this.events.insert({ type: 'worker.reidentified', workerId: row.id, groupId: row.groupId, data: { name: row.name } }, tx);
            this.log.info({ workerId: row.id, groupId: row.groupId }, 'worker re-registered with its previous identity');
            return { ...base, workerId: row.id, groupId: row.groupId, reidentified: true };
          }
        }
      }

      if (token.expiresAt && token.expiresAt.getTime() <= Date.now()) throw new UnauthenticatedError('this join token has expired');
      const consumed = await this.tokens.consume(token.id, tx);
      if (!consumed) {
        // Re-read the reason under the lock the update took (expired by the database's clock, or exhausted).
        if (token.maxUses !== null && token.uses >= token.maxUses) throw new UnauthenticatedError('this join token has been used up');
        const now = await this.tokens.findById(token.id, tx);
        if (now && now.maxUses !== null && now.uses >= now.maxUses) throw new UnauthenticatedError('this join token has been used up');
        if (now?.revokedAt) throw new UnauthenticatedError('this join token has been revoked');
        throw new UnauthenticatedError('this join token has expired');
      }
      const row = await this.workers.insert(
        { groupId: token.groupId, joinTokenId: token.id, name: input.workerName, secretHash, capabilities, status: 'offline' },
        this.config.leaseMs,
        tx,
      );
      await this.events.insert(
        { type: 'worker.registered', workerId: row.id, groupId: row.groupId, data: { name: row.name, joinTokenId: token.id, capabilities } },
        tx,
      );
      this.log.info({ workerId: row.id, groupId: row.groupId, backend: capabilities.backend, gflops: capabilities.gflops }, 'worker registered');
      return { ...base, workerId: row.id, groupId: row.groupId, reidentified: false };
    });
  }
}
