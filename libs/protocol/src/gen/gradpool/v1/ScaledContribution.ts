// Original file: gradpool/v1/worker.proto


/**
 * One contribution an owner scaled down: whose, in which shard, its L2 norm and the bound.
 */
export interface ScaledContribution {
  'workerId'?: (string);
  'shard'?: (number);
  'norm'?: (number | string);
  'bound'?: (number | string);
}

/**
 * One contribution an owner scaled down: whose, in which shard, its L2 norm and the bound.
 */
export interface ScaledContribution__Output {
  'workerId': (string);
  'shard': (number);
  'norm': (number);
  'bound': (number);
}
