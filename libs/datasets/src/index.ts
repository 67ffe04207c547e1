/** Dataset formats, normalisation, sharding, shard encoding and storage, and sample order. */
export * from './errors.js';
export * from './rng.js';
export * from './formats/types.js';
export { ByteReader, limitBytes, maybeGunzip, type ByteSource } from './formats/byte-reader.js';
export { parseIdx, type IdxOptions } from './formats/idx.js';
export { parseCsv, type CsvOptions } from './formats/csv.js';
export { parseNpy, npyHeader, type NpyOptions } from './formats/npy.js';
export * from './normalise.js';
export * from './shard.codec.js';
export * from './import.js';
export * from './sources.js';
export * from './mnist.js';
export * from './sample-plan.js';
export * from './shard-store.js';
export * from './shard-cache.js';
export * from './shard-reader.js';
