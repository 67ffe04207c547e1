import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ChunkHeader as _gradpool_v1_ChunkHeader, ChunkHeader__Output as _gradpool_v1_ChunkHeader__Output } from './gradpool/v1/ChunkHeader.js';
import type { ResendRequest as _gradpool_v1_ResendRequest, ResendRequest__Output as _gradpool_v1_ResendRequest__Output } from './gradpool/v1/ResendRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  gradpool: {
    v1: {
      ChunkHeader: MessageTypeDefinition<_gradpool_v1_ChunkHeader, _gradpool_v1_ChunkHeader__Output>
      ChunkKind: EnumTypeDefinition
      CodecId: EnumTypeDefinition
      ResendRequest: MessageTypeDefinition<_gradpool_v1_ResendRequest, _gradpool_v1_ResendRequest__Output>
    }
  }
}

