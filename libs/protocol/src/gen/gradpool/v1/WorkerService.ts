// Original file: gradpool/v1/worker.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CoordinatorMessage as _gradpool_v1_CoordinatorMessage, CoordinatorMessage__Output as _gradpool_v1_CoordinatorMessage__Output } from '../../gradpool/v1/CoordinatorMessage.js';
import type { RegisterRequest as _gradpool_v1_RegisterRequest, RegisterRequest__Output as _gradpool_v1_RegisterRequest__Output } from '../../gradpool/v1/RegisterRequest.js';
import type { RegisterResponse as _gradpool_v1_RegisterResponse, RegisterResponse__Output as _gradpool_v1_RegisterResponse__Output } from '../../gradpool/v1/RegisterResponse.js';
import type { WorkerMessage as _gradpool_v1_WorkerMessage, WorkerMessage__Output as _gradpool_v1_WorkerMessage__Output } from '../../gradpool/v1/WorkerMessage.js';

/**
 * WorkerService is served by the coordinator; workers dial out to it and never listen.
 */
export interface WorkerServiceClient extends grpc.Client {
  /**
   * Exchanges a group's join token for a worker identity and a session secret.
   * UNAUTHENTICATED for a bad, revoked, expired or exhausted token; INVALID_ARGUMENT for
   * malformed fields.
   */
  Register(argument: _gradpool_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gradpool_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _gradpool_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gradpool_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _gradpool_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gradpool_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _gradpool_v1_RegisterRequest, callback: grpc.requestCallback<_gradpool_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Exchanges a group's join token for a worker identity and a session secret.
   * UNAUTHENTICATED for a bad, revoked, expired or exhausted token; INVALID_ARGUMENT for
   * malformed fields.
   */
  register(argument: _gradpool_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gradpool_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _gradpool_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gradpool_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _gradpool_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gradpool_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _gradpool_v1_RegisterRequest, callback: grpc.requestCallback<_gradpool_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The long-lived session. Authenticated by call metadata `x-gradpool-worker-id` and
   * `x-gradpool-session-secret`. The worker sends heartbeats, reports and drain requests; the
   * coordinator sends assignments, roster changes and drain requests.
   */
  Session(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_gradpool_v1_WorkerMessage, _gradpool_v1_CoordinatorMessage__Output>;
  Session(options?: grpc.CallOptions): grpc.ClientDuplexStream<_gradpool_v1_WorkerMessage, _gradpool_v1_CoordinatorMessage__Output>;
  /**
   * The long-lived session. Authenticated by call metadata `x-gradpool-worker-id` and
   * `x-gradpool-session-secret`. The worker sends heartbeats, reports and drain requests; the
   * coordinator sends assignments, roster changes and drain requests.
   */
  session(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_gradpool_v1_WorkerMessage, _gradpool_v1_CoordinatorMessage__Output>;
  session(options?: grpc.CallOptions): grpc.ClientDuplexStream<_gradpool_v1_WorkerMessage, _gradpool_v1_CoordinatorMessage__Output>;
  
}

/**
 * WorkerService is served by the coordinator; workers dial out to it and never listen.
 */
export interface WorkerServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Exchanges a group's join token for a worker identity and a session secret.
   * UNAUTHENTICATED for a bad, revoked, expired or exhausted token; INVALID_ARGUMENT for
   * malformed fields.
   */
  Register: grpc.handleUnaryCall<_gradpool_v1_RegisterRequest__Output, _gradpool_v1_RegisterResponse>;
  
  /**
   * The long-lived session. Authenticated by call metadata `x-gradpool-worker-id` and
   * `x-gradpool-session-secret`. The worker sends heartbeats, reports and drain requests; the
   * coordinator sends assignments, roster changes and drain requests.
   */
  Session: grpc.handleBidiStreamingCall<_gradpool_v1_WorkerMessage__Output, _gradpool_v1_CoordinatorMessage>;
  
}

export interface WorkerServiceDefinition extends grpc.ServiceDefinition {
  Register: MethodDefinition<_gradpool_v1_RegisterRequest, _gradpool_v1_RegisterResponse, _gradpool_v1_RegisterRequest__Output, _gradpool_v1_RegisterResponse__Output>
  Session: MethodDefinition<_gradpool_v1_WorkerMessage, _gradpool_v1_CoordinatorMessage, _gradpool_v1_WorkerMessage__Output, _gradpool_v1_CoordinatorMessage__Output>
}
