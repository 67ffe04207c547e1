/**
 * Named errors of the datasets library. The coordinator maps `DatasetFormatError` (bad input)
 * to a 4xx response; `ShardIntegrityError` is reported by workers (a shard's bytes did not
 * match its content address even after one refetch).
 */

/** The input is not a valid dataset; `position` says where (file, byte, line, column, item). */
export class DatasetFormatError extends Error {
  override name = 'DatasetFormatError';
  constructor(
    message: string,
    /** Human-readable position, e.g. `images file, byte 4` or `line 7, column 3`. */
    readonly position?: string,
  ) {
    super(position ? `${message} (at ${position})` : message);
  }
}

/** A shard's bytes are malformed (bad magic, version, sizes). */
export class ShardFormatError extends Error {
  override name = 'ShardFormatError';
}

/** A shard's bytes do not hash to its key, even after one refetch. */
export class ShardIntegrityError extends Error {
  override name = 'ShardIntegrityError';
  constructor(
    message: string,
    readonly sha256: string,
  ) {
    super(message);
  }
}

/** The object store has no shard with this key. */
export class ShardNotFoundError extends Error {
  override name = 'ShardNotFoundError';
  constructor(readonly sha256: string) {
    super(`shard ${sha256} is not in the object store`);
  }
}
