// Original file: gradpool/v1/exchange.proto

import type { ChunkKind as _gradpool_v1_ChunkKind, ChunkKind__Output as _gradpool_v1_ChunkKind__Output } from '../../gradpool/v1/ChunkKind.js';
import type { CodecId as _gradpool_v1_CodecId, CodecId__Output as _gradpool_v1_CodecId__Output } from '../../gradpool/v1/CodecId.js';
import type { Long } from '@grpc/proto-loader';

/**
 * The NATS payload header of the data plane (libs/exchange): gradient chunks sent to a shard's
 * owner (reduce) and averaged shards published by the owner (gather), see shared/DESIGN.md.
 * 
 * On the wire this header is NOT protobuf-encoded. Every chunk message is a fixed binary
 * layout, little-endian, so that a receiver validates it without allocating and the tensor
 * payload starts at an 8-byte-aligned offset (a Float32Array/Uint16Array view over it needs
 * no copy and no per-element decoding step). protobuf's varints would make the payload's
 * offset data-dependent and cost a parse per chunk for a header that is ~100 bytes next to a
 * payload of up to 512 KiB. This message is the schema of record for that layout: field
 * numbers are not used on the wire, the byte offsets in the comments are.
 * 
 * off  size  field
 * 0     4  magic            u32 0x31585047 ("GPX1"); anything else is rejected
 * 4     1  kind             u8  ChunkKind
 * 5     1  codec            u8  CodecId of the payload
 * 6     2  header_bytes     u16 offset of the payload, a multiple of 8
 * 8     4  epoch            u32
 * 12     4  shard            u32
 * 16     8  round            f64 holding an integer < 2^53
 * 24     4  chunk            u32 index of this chunk within the shard
 * 28     4  chunk_count      u32
 * 32     4  offset           u32 first element of the shard this chunk covers
 * 36     4  length           u32 elements this chunk covers
 * 40     8  samples          f64 reduce: the sender's n_i; gather: Σ n over contributors
 * 48     4  shard_length     u32 elements in the shard
 * 52     4  codec_param      u32 int8: block size; topk: k in parts per million
 * 56     4  payload_bytes    u32
 * 60     2  sender_index     u16 the sender's index in the roster of `epoch`
 * 62     2  job_id_bytes     u16
 * 64     2  sender_id_bytes  u16
 * 66     2  contributor_count u16 gather only, else 0
 * 68     4  shard_start      u32 first element of the shard in the flat vector
 * 72     4  shard_count      u32 shards in the epoch's layout
 * 76     4  total_size       u32 P, elements in the flat vector
 * 80     …  job_id (UTF-8), sender_id (UTF-8), then per contributor 12 bytes: u32 roster
 * index (ascending), f64 its samples; zero padding to header_bytes, then the payload.
 */
export interface ChunkHeader {
  'kind'?: (_gradpool_v1_ChunkKind);
  'codec'?: (_gradpool_v1_CodecId);
  'epoch'?: (number);
  'round'?: (number | string | Long);
  'shard'?: (number);
  'chunk'?: (number);
  'chunkCount'?: (number);
  'offset'?: (number);
  'length'?: (number);
  'samples'?: (number | string);
  'shardLength'?: (number);
  'codecParam'?: (number);
  'payloadBytes'?: (number);
  'senderIndex'?: (number);
  'jobId'?: (string);
  'senderId'?: (string);
  /**
   * Gather only: roster indices of the members whose gradient is in this mean, ascending.
   */
  'contributors'?: (number)[];
  'shardStart'?: (number);
  'shardCount'?: (number);
  'totalSize'?: (number);
  /**
   * Gather only: each contributor's samples, same order as `contributors`.
   */
  'contributorSamples'?: (number | string)[];
}

/**
 * The NATS payload header of the data plane (libs/exchange): gradient chunks sent to a shard's
 * owner (reduce) and averaged shards published by the owner (gather), see shared/DESIGN.md.
 * 
 * On the wire this header is NOT protobuf-encoded. Every chunk message is a fixed binary
 * layout, little-endian, so that a receiver validates it without allocating and the tensor
 * payload starts at an 8-byte-aligned offset (a Float32Array/Uint16Array view over it needs
 * no copy and no per-element decoding step). protobuf's varints would make the payload's
 * offset data-dependent and cost a parse per chunk for a header that is ~100 bytes next to a
 * payload of up to 512 KiB. This message is the schema of record for that layout: field
 * numbers are not used on the wire, the byte offsets in the comments are.
 * 
 * off  size  field
 * 0     4  magic            u32 0x31585047 ("GPX1"); anything else is rejected
 * 4     1  kind             u8  ChunkKind
 * 5     1  codec            u8  CodecId of the payload
 * 6     2  header_bytes     u16 offset of the payload, a multiple of 8
 * 8     4  epoch            u32
 * 12     4  shard            u32
 * 16     8  round            f64 holding an integer < 2^53
 * 24     4  chunk            u32 index of this chunk within the shard
 * 28     4  chunk_count      u32
 * 32     4  offset           u32 first element of the shard this chunk covers
 * 36     4  length           u32 elements this chunk covers
 * 40     8  samples          f64 reduce: the sender's n_i; gather: Σ n over contributors
 * 48     4  shard_length     u32 elements in the shard
 * 52     4  codec_param      u32 int8: block size; topk: k in parts per million
 * 56     4  payload_bytes    u32
 * 60     2  sender_index     u16 the sender's index in the roster of `epoch`
 * 62     2  job_id_bytes     u16
 * 64     2  sender_id_bytes  u16
 * 66     2  contributor_count u16 gather only, else 0
 * 68     4  shard_start      u32 first element of the shard in the flat vector
 * 72     4  shard_count      u32 shards in the epoch's layout
 * 76     4  total_size       u32 P, elements in the flat vector
 * 80     …  job_id (UTF-8), sender_id (UTF-8), then per contributor 12 bytes: u32 roster
 * index (ascending), f64 its samples; zero padding to header_bytes, then the payload.
 */
export interface ChunkHeader__Output {
  'kind': (_gradpool_v1_ChunkKind__Output);
  'codec': (_gradpool_v1_CodecId__Output);
  'epoch': (number);
  'round': (string);
  'shard': (number);
  'chunk': (number);
  'chunkCount': (number);
  'offset': (number);
  'length': (number);
  'samples': (number);
  'shardLength': (number);
  'codecParam': (number);
  'payloadBytes': (number);
  'senderIndex': (number);
  'jobId': (string);
  'senderId': (string);
  /**
   * Gather only: roster indices of the members whose gradient is in this mean, ascending.
   */
  'contributors': (number)[];
  'shardStart': (number);
  'shardCount': (number);
  'totalSize': (number);
  /**
   * Gather only: each contributor's samples, same order as `contributors`.
   */
  'contributorSamples': (number)[];
}
