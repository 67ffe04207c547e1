// Original file: gradpool/v1/worker.proto


/**
 * A contiguous range of samples [start, end) of one shard of the training split, in the
 * shard's within-epoch sample order.
 */
export interface DealtPiece {
  'shardIndex'?: (number);
  'start'?: (number);
  'end'?: (number);
}

/**
 * A contiguous range of samples [start, end) of one shard of the training split, in the
 * shard's within-epoch sample order.
 */
export interface DealtPiece__Output {
  'shardIndex': (number);
  'start': (number);
  'end': (number);
}
