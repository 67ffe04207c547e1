import { Module } from '@nestjs/common';
import { WorkerController } from './controllers/worker.controller.js';
import { GrpcServer } from './grpc/grpc-server.js';
import { WorkerGrpc } from './grpc/worker.grpc.js';
import { WorkerLivenessScheduler } from './schedulers/worker-liveness.scheduler.js';
import { RegistrationService } from './services/registration.service.js';
import { SessionRegistry } from './services/session-registry.js';
import { SessionRelay } from './services/session-relay.js';
import { SessionService } from './services/session.service.js';
import { WorkerService } from './services/worker.service.js';

/** Worker registration, sessions (gRPC; cluster-wide through SessionRelay), liveness and the workers API. */
@Module({
  controllers: [WorkerController],
  providers: [SessionRegistry, SessionRelay, RegistrationService, SessionService, WorkerService, WorkerGrpc, GrpcServer, WorkerLivenessScheduler],
  exports: [SessionRegistry, SessionRelay, SessionService, WorkerService, GrpcServer],
})
export class WorkersModule {}
