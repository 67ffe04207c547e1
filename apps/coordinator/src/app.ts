/**
 * startCoordinator(config): migrations, database, NATS, the Nest app (REST on Fastify, OpenAPI at
 * /docs), the gRPC server, the liveness loop. Used by main.ts, tests (ports 0) and the demo.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { Type } from '@nestjs/common';
import { connect as connectDb, runMigrations, type DbHandle } from '@gradpool/db';
import { connect as connectNats, credsAuthenticator, type NatsConnection } from 'nats';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module.js';
import type { CoordinatorConfig } from './config.js';
import { UnavailableError } from './errors.js';
import { GrpcServer } from './grpc/grpc-server.js';
import { createLogger, NestPinoLogger, type Logger } from './logger.js';
import { pendingShutdownParts, shutdownStep } from './shutdown.js';
import { CoordinatorMetrics } from './metrics.js';
import { ApiKeyService } from './services/api-key.service.js';

export interface StartOptions {
  /** Root logger (default: pino on stdout at config.logLevel). */
  logger?: Logger;
  /** Modules added after FEATURE_MODULES (tests, the demo). */
  extraModules?: Type[];
}

export interface CoordinatorHandle {
  readonly config: CoordinatorConfig;
  readonly app: NestFastifyApplication;
  readonly logger: Logger;
  /** Bound ports (the real ones when the config asked for 0). */
  readonly httpPort: number;
  readonly grpcPort: number;
  /** http://127.0.0.1:<httpPort> */
  readonly httpUrl: string;
  /** 127.0.0.1:<grpcPort> */
  readonly grpcAddress: string;
  /** An admin key generated at this start because none existed; shown once. */
  readonly generatedAdminKey: string | undefined;
  /** Ends sessions, stops gRPC and HTTP, closes NATS and the database. Idempotent. */
  close(): Promise<void>;
}

/** `url` without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}

export async function startCoordinator(config: CoordinatorConfig, opts: StartOptions = {}): Promise<CoordinatorHandle> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const log = logger.child({ component: 'boot' });
  const t0 = performance.now();

  try {
    await runMigrations(config.databaseUrl);
  } catch (err) {
    throw new UnavailableError(`cannot migrate the database at ${redactUrl(config.databaseUrl)} (DATABASE_URL): ${(err as Error).message}`, { cause: err });
  }
  const db: DbHandle = connectDb(config.databaseUrl, { max: config.databasePoolMax, applicationName: 'gradpool-coordinator' });
  let natsCreds: Uint8Array | undefined;
  try {
    if (config.natsCredsFile) natsCreds = await readFile(config.natsCredsFile);
  } catch (err) {
    await db.close();
    throw new UnavailableError(`cannot read the NATS credentials file ${config.natsCredsFile} (NATS_CREDS): ${(err as Error).message}`, { cause: err });
  }
  let nats: NatsConnection;
  try {
    nats = await connectNats({
      servers: [...config.natsServers],
      ...(natsCreds ? { authenticator: credsAuthenticator(natsCreds) } : {}),
      name: 'gradpool-coordinator',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      timeout: 5000,
    });
  } catch (err) {
    await db.close();
    throw new UnavailableError(`cannot reach NATS at ${config.natsServers.join(',')} (NATS_URL): ${(err as Error).message}`, { cause: err });
  }

  let app: NestFastifyApplication | undefined;
  try {
    app = await NestFactory.create<NestFastifyApplication>(
      AppModule.forRoot({ config, db, nats, logger }, opts.extraModules),
      new FastifyAdapter({ bodyLimit: 1024 * 1024 }),
      { logger: new NestPinoLogger(logger), abortOnError: false },
    );
    instrumentHttp(app, app.get(CoordinatorMetrics), logger);
    const doc = SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle('Gradpool coordinator')
        .setDescription('Admin API: API keys, groups and join tokens, workers.')
        .setVersion('0.1.0')
        .addBearerAuth()
        .build(),
    );
    // UI at /docs, the OpenAPI document at /docs-json.
    SwaggerModule.setup('docs', app, doc);
    await app.init();

    const { generatedKey } = await app.get(ApiKeyService).bootstrap(config.adminKey);
    const grpcPort = await app.get(GrpcServer).listen(config.grpc.host, config.grpc.port);
    await app.listen(config.http.port, config.http.host);
    const httpPort = (app.getHttpServer().address() as AddressInfo).port;
    log.info({ http: httpPort, grpc: grpcPort, durationMs: Math.round(performance.now() - t0) }, 'coordinator started');

    let closing: Promise<void> | undefined;
    const started = app;
    return {
      config,
      app: started,
      logger,
      httpPort,
      grpcPort,
      httpUrl: `http://127.0.0.1:${httpPort}`,
      grpcAddress: `127.0.0.1:${grpcPort}`,
      generatedAdminKey: generatedKey,
      close: () =>
        (closing ??= (async () => {
          const t = performance.now();
          try {
            await shutdownStep(log, 'application (sessions, schedulers, keepers, HTTP, gRPC)', started.close(), 60_000, () => ({ pending: pendingShutdownParts() }));
          } finally {
            await shutdownStep(log, 'NATS connection', nats.close(), 15_000);
            const pool = db.pool;
            await shutdownStep(log, 'database pool', db.close(), 15_000, () => ({ clients: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }));
          }
          log.info({ durationMs: Math.round(performance.now() - t) }, 'coordinator stopped');
        })()),
    };
  } catch (err) {
    await app?.close().catch(() => undefined);
    await nats.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
}

/** Request duration metrics by route pattern, and a debug log line per request. */
function instrumentHttp(app: NestFastifyApplication, metrics: CoordinatorMetrics, logger: Logger): void {
  const log = logger.child({ component: 'http' });
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics.httpDuration.observe({ route, method: req.method, status: `${Math.floor(reply.statusCode / 100)}xx` }, seconds);
    log.debug({ method: req.method, route, statusCode: reply.statusCode, durationMs: Math.round(reply.elapsedTime) }, 'request');
    done();
  });
}

