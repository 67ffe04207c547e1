import { Inject, Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { GRPC_CHANNEL_OPTIONS, loadWorkerProto } from '@gradpool/protocol';
import type { Logger } from '../logger.js';
import { SessionRegistry } from '../services/session-registry.js';
import { LOGGER } from '../tokens.js';
import { WorkerGrpc } from './worker.grpc.js';
import { shutdownPart } from '../shutdown.js';

/** How long a clean shutdown waits for calls to finish before cancelling them. */
const SHUTDOWN_GRACE_MS = 3000;

/** The coordinator's gRPC server (WorkerService). Bound by startCoordinator; closed with the app. */
@Injectable()
export class GrpcServer implements BeforeApplicationShutdown {
  private server: Server | undefined;
  private readonly log: Logger;

  constructor(
    @Inject(LOGGER) logger: Logger,
    private readonly worker: WorkerGrpc,
    private readonly registry: SessionRegistry,
  ) {
    this.log = logger.child({ component: 'grpc' });
  }

  /** Binds host:port (0: any free port) and returns the bound port. */
  async listen(host: string, port: number): Promise<number> {
    // Max message sizes and keepalive (a worker that vanishes without closing its connection is
    // noticed by pings) are shared with the worker's client.
    const server = new Server({ ...GRPC_CHANNEL_OPTIONS });
    server.addService(loadWorkerProto().gradpool.v1.WorkerService.service, this.worker.handlers());
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.server = server;
    this.log.info({ host, port: bound }, 'gRPC listening');
    return bound;
  }

  /** Ends every session, lets calls finish for a grace period, then cancels what is left. */
  async close(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.registry.closeAll('shutdown', 'the coordinator is shutting down');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    await shutdownPart('gRPC server', () => this.close());
  }
}
