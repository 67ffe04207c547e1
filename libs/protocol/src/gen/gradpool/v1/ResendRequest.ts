// Original file: gradpool/v1/exchange.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Control messages on subjects.exchangeControl(job) — JSON-free, a fixed 24-byte layout:
 * 0 u32 magic 0x4e585047 ("GPXN"), 4 u32 epoch, 8 f64 round, 16 u16 sender_index,
 * 18 u16 reserved, 20 u32 reserved.
 * A member publishes it after it (re)subscribes for an epoch or reconnects; every member that
 * receives it republishes what the sender may have missed (its chunks for the sender's shards
 * and its own finished gathers). Receivers drop duplicates, so republishing is always safe.
 */
export interface ResendRequest {
  'epoch'?: (number);
  'round'?: (number | string | Long);
  'senderIndex'?: (number);
}

/**
 * Control messages on subjects.exchangeControl(job) — JSON-free, a fixed 24-byte layout:
 * 0 u32 magic 0x4e585047 ("GPXN"), 4 u32 epoch, 8 f64 round, 16 u16 sender_index,
 * 18 u16 reserved, 20 u32 reserved.
 * A member publishes it after it (re)subscribes for an epoch or reconnects; every member that
 * receives it republishes what the sender may have missed (its chunks for the sender's shards
 * and its own finished gathers). Receivers drop duplicates, so republishing is always safe.
 */
export interface ResendRequest__Output {
  'epoch': (number);
  'round': (string);
  'senderIndex': (number);
}
