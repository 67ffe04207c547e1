// Original file: gradpool/v1/exchange.proto

export const ChunkKind = {
  CHUNK_KIND_UNSPECIFIED: 'CHUNK_KIND_UNSPECIFIED',
  /**
   * A member's encoded gradient chunk, to the shard owner.
   */
  CHUNK_KIND_REDUCE: 'CHUNK_KIND_REDUCE',
  /**
   * The owner's averaged chunk, to every member and the keeper.
   */
  CHUNK_KIND_GATHER: 'CHUNK_KIND_GATHER',
  /**
   * The owner gave up on the shard (no quorum at the deadline); no payload.
   */
  CHUNK_KIND_ABORT: 'CHUNK_KIND_ABORT',
} as const;

export type ChunkKind =
  | 'CHUNK_KIND_UNSPECIFIED'
  | 0
  /**
   * A member's encoded gradient chunk, to the shard owner.
   */
  | 'CHUNK_KIND_REDUCE'
  | 1
  /**
   * The owner's averaged chunk, to every member and the keeper.
   */
  | 'CHUNK_KIND_GATHER'
  | 2
  /**
   * The owner gave up on the shard (no quorum at the deadline); no payload.
   */
  | 'CHUNK_KIND_ABORT'
  | 3

export type ChunkKind__Output = typeof ChunkKind[keyof typeof ChunkKind]
