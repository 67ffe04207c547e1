import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Assignment as _gradpool_v1_Assignment, Assignment__Output as _gradpool_v1_Assignment__Output } from './gradpool/v1/Assignment.js';
import type { Capabilities as _gradpool_v1_Capabilities, Capabilities__Output as _gradpool_v1_Capabilities__Output } from './gradpool/v1/Capabilities.js';
import type { CoordinatorMessage as _gradpool_v1_CoordinatorMessage, CoordinatorMessage__Output as _gradpool_v1_CoordinatorMessage__Output } from './gradpool/v1/CoordinatorMessage.js';
import type { DrainAck as _gradpool_v1_DrainAck, DrainAck__Output as _gradpool_v1_DrainAck__Output } from './gradpool/v1/DrainAck.js';
import type { DrainNotice as _gradpool_v1_DrainNotice, DrainNotice__Output as _gradpool_v1_DrainNotice__Output } from './gradpool/v1/DrainNotice.js';
import type { DrainRequest as _gradpool_v1_DrainRequest, DrainRequest__Output as _gradpool_v1_DrainRequest__Output } from './gradpool/v1/DrainRequest.js';
import type { Heartbeat as _gradpool_v1_Heartbeat, Heartbeat__Output as _gradpool_v1_Heartbeat__Output } from './gradpool/v1/Heartbeat.js';
import type { JobFault as _gradpool_v1_JobFault, JobFault__Output as _gradpool_v1_JobFault__Output } from './gradpool/v1/JobFault.js';
import type { NatsAccess as _gradpool_v1_NatsAccess, NatsAccess__Output as _gradpool_v1_NatsAccess__Output } from './gradpool/v1/NatsAccess.js';
import type { NatsAccessRefresh as _gradpool_v1_NatsAccessRefresh, NatsAccessRefresh__Output as _gradpool_v1_NatsAccessRefresh__Output } from './gradpool/v1/NatsAccessRefresh.js';
import type { RegisterRequest as _gradpool_v1_RegisterRequest, RegisterRequest__Output as _gradpool_v1_RegisterRequest__Output } from './gradpool/v1/RegisterRequest.js';
import type { RegisterResponse as _gradpool_v1_RegisterResponse, RegisterResponse__Output as _gradpool_v1_RegisterResponse__Output } from './gradpool/v1/RegisterResponse.js';
import type { RosterMember as _gradpool_v1_RosterMember, RosterMember__Output as _gradpool_v1_RosterMember__Output } from './gradpool/v1/RosterMember.js';
import type { RosterUpdate as _gradpool_v1_RosterUpdate, RosterUpdate__Output as _gradpool_v1_RosterUpdate__Output } from './gradpool/v1/RosterUpdate.js';
import type { RoundReport as _gradpool_v1_RoundReport, RoundReport__Output as _gradpool_v1_RoundReport__Output } from './gradpool/v1/RoundReport.js';
import type { ScaledContribution as _gradpool_v1_ScaledContribution, ScaledContribution__Output as _gradpool_v1_ScaledContribution__Output } from './gradpool/v1/ScaledContribution.js';
import type { SessionAccepted as _gradpool_v1_SessionAccepted, SessionAccepted__Output as _gradpool_v1_SessionAccepted__Output } from './gradpool/v1/SessionAccepted.js';
import type { Unassignment as _gradpool_v1_Unassignment, Unassignment__Output as _gradpool_v1_Unassignment__Output } from './gradpool/v1/Unassignment.js';
import type { WorkerMessage as _gradpool_v1_WorkerMessage, WorkerMessage__Output as _gradpool_v1_WorkerMessage__Output } from './gradpool/v1/WorkerMessage.js';
import type { WorkerServiceClient as _gradpool_v1_WorkerServiceClient, WorkerServiceDefinition as _gradpool_v1_WorkerServiceDefinition } from './gradpool/v1/WorkerService.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  gradpool: {
    v1: {
      Assignment: MessageTypeDefinition<_gradpool_v1_Assignment, _gradpool_v1_Assignment__Output>
      Capabilities: MessageTypeDefinition<_gradpool_v1_Capabilities, _gradpool_v1_Capabilities__Output>
      CoordinatorMessage: MessageTypeDefinition<_gradpool_v1_CoordinatorMessage, _gradpool_v1_CoordinatorMessage__Output>
      DrainAck: MessageTypeDefinition<_gradpool_v1_DrainAck, _gradpool_v1_DrainAck__Output>
      DrainNotice: MessageTypeDefinition<_gradpool_v1_DrainNotice, _gradpool_v1_DrainNotice__Output>
      DrainRequest: MessageTypeDefinition<_gradpool_v1_DrainRequest, _gradpool_v1_DrainRequest__Output>
      Heartbeat: MessageTypeDefinition<_gradpool_v1_Heartbeat, _gradpool_v1_Heartbeat__Output>
      JobFault: MessageTypeDefinition<_gradpool_v1_JobFault, _gradpool_v1_JobFault__Output>
      NatsAccess: MessageTypeDefinition<_gradpool_v1_NatsAccess, _gradpool_v1_NatsAccess__Output>
      NatsAccessRefresh: MessageTypeDefinition<_gradpool_v1_NatsAccessRefresh, _gradpool_v1_NatsAccessRefresh__Output>
      RegisterRequest: MessageTypeDefinition<_gradpool_v1_RegisterRequest, _gradpool_v1_RegisterRequest__Output>
      RegisterResponse: MessageTypeDefinition<_gradpool_v1_RegisterResponse, _gradpool_v1_RegisterResponse__Output>
      RosterMember: MessageTypeDefinition<_gradpool_v1_RosterMember, _gradpool_v1_RosterMember__Output>
      RosterUpdate: MessageTypeDefinition<_gradpool_v1_RosterUpdate, _gradpool_v1_RosterUpdate__Output>
      RoundReport: MessageTypeDefinition<_gradpool_v1_RoundReport, _gradpool_v1_RoundReport__Output>
      ScaledContribution: MessageTypeDefinition<_gradpool_v1_ScaledContribution, _gradpool_v1_ScaledContribution__Output>
      SessionAccepted: MessageTypeDefinition<_gradpool_v1_SessionAccepted, _gradpool_v1_SessionAccepted__Output>
      Unassignment: MessageTypeDefinition<_gradpool_v1_Unassignment, _gradpool_v1_Unassignment__Output>
      WorkerMessage: MessageTypeDefinition<_gradpool_v1_WorkerMessage, _gradpool_v1_WorkerMessage__Output>
      /**
       * WorkerService is served by the coordinator; workers dial out to it and never listen.
       */
      WorkerService: SubtypeConstructor<typeof grpc.Client, _gradpool_v1_WorkerServiceClient> & { service: _gradpool_v1_WorkerServiceDefinition }
      WorkerState: EnumTypeDefinition
    }
  }
}

