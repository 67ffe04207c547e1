/**
 * The generated WorkerService, implemented by calling services. No logic here: converting
 * wire shapes, mapping errors, and wrapping the stream in a SessionChannel.
 */
import { Inject, Injectable } from '@nestjs/common';
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import {
  SESSION_METADATA,
  type CoordinatorMessage,
  type WorkerMessage__Output,
  type WorkerServiceHandlers,
} from '@gradpool/protocol';
import { DomainError } from '../errors.js';
import type { Logger } from '../logger.js';
import { RegistrationService } from '../services/registration.service.js';
import type { SessionChannel, SessionCloseReason } from '../services/session-registry.js';
import { SessionService } from '../services/session.service.js';
import { LOGGER } from '../tokens.js';
import { toGrpcError } from './grpc-status.js';

const CLOSE_CODES: Record<Exclude<SessionCloseReason, 'drained'>, status> = {
  superseded: status.ABORTED,
  silent: status.DEADLINE_EXCEEDED,
  shutdown: status.UNAVAILABLE,
};

type SessionCall = ServerDuplexStream<WorkerMessage__Output, CoordinatorMessage>;

/** A gRPC session stream as the domain sees it. */
class GrpcSessionChannel implements SessionChannel {
  private ended = false;
  constructor(private readonly call: SessionCall) {
    call.on('close', () => (this.ended = true));
  }
  get closed(): boolean {
    return this.ended || this.call.cancelled || this.call.writableEnded || this.call.destroyed;
  }
  send(msg: CoordinatorMessage): boolean {
    if (this.closed) return false;
    this.call.write(msg);
    return true;
  }
  close(reason: SessionCloseReason, message: string): void {
    if (this.closed) return;
    this.ended = true;
    if (reason === 'drained') this.call.end();
    // grpc-js turns an 'error' on a server stream into the call's final status.
    else this.call.emit('error', { code: CLOSE_CODES[reason], details: message });
  }
}

function metadataString(call: SessionCall, key: string): string {
  const [v] = call.metadata.get(key);
  return typeof v === 'string' ? v : '';
}

@Injectable()
export class WorkerGrpc {
  private readonly log: Logger;

  constructor(
    @Inject(LOGGER) logger: Logger,
    private readonly registration: RegistrationService,
    private readonly sessions: SessionService,
  ) {
    this.log = logger.child({ component: 'grpc' });
  }

  handlers(): WorkerServiceHandlers {
    return {
      Register: (call, callback) => {
        const r = call.request;
        const caps = r.capabilities;
        this.registration
          .register({
            joinToken: r.joinToken,
            workerName: r.workerName,
            capabilities: caps
              ? {
                  backend: caps.backend as never,
                  deviceName: caps.deviceName,
                  memoryBytes: Number(caps.memoryBytes),
                  gflops: caps.gflops,
                  agentVersion: caps.agentVersion,
                  os: caps.os,
                  cpuCount: caps.cpuCount,
                }
              : (undefined as never),
            previousWorkerId: r.previousWorkerId,
            previousSessionSecret: r.previousSessionSecret,
          })
          .then(
            (res) =>
              callback(null, {
                workerId: res.workerId,
                sessionSecret: res.sessionSecret,
                groupId: res.groupId,
                nats: { servers: [...res.natsServers], ...res.natsAuth },
                heartbeatIntervalMs: res.heartbeatIntervalMs,
                leaseMs: res.leaseMs,
              }),
            (err: unknown) => {
              this.logFailure('Register', err);
              callback(toGrpcError(err));
            },
          );
      },

      Session: (call) => {
        const workerId = metadataString(call, SESSION_METADATA.workerId);
        const secret = metadataString(call, SESSION_METADATA.secret);
        const channel = new GrpcSessionChannel(call);
        // Messages are handled one at a time, in order.
        let queue: Promise<void> = Promise.resolve();
        let opened = false;
        const onData = (msg: WorkerMessage__Output) => {
          queue = queue
            .then(() => this.sessions.handleMessage(workerId, channel, msg))
            .catch((err: unknown) => this.logFailure('Session message', err, workerId));
        };
        const onGone = () => {
          if (opened) this.sessions.closed(workerId, channel);
        };
        call.on('end', () => {
          onGone();
          if (!channel.closed) call.end();
        });
        call.on('cancelled', onGone);
        call.on('error', onGone);
        call.on('close', onGone);
        call.pause();
        this.sessions.open(workerId, secret, channel).then(
          () => {
            opened = true;
            if (channel.closed) return onGone();
            call.on('data', onData);
            call.resume();
          },
          (err: unknown) => {
            this.logFailure('Session', err, workerId);
            if (!channel.closed) call.emit('error', toGrpcError(err));
          },
        );
      },
    };
  }

  private logFailure(what: string, err: unknown, workerId?: string): void {
    if (err instanceof DomainError) this.log.info({ workerId, err: err.message }, `${what} refused`);
    else this.log.error({ workerId, err }, `${what} failed`);
  }
}
