/** What every format parser produces: a per-sample shape and a stream of record batches. */

/** `count` samples: features row-major (`count × prod(featureShape)`), one label each. */
export interface RecordBatch {
  count: number;
  features: Float32Array;
  /** Integer class labels (IDX, NPY, CSV with integer labels) or names (CSV). */
  labels: Int32Array | string[];
  /** Position of the batch's first sample, for error messages ("labels file, item 12"). */
  firstItem: number;
}

export interface ParsedSource {
  featureShape: number[];
  /** Element type of the source, e.g. `uint8`, `float32`, `float64`. */
  sourceDtype: string;
  /** Declared sample count when the format has one (IDX, NPY); null for CSV. */
  declaredCount: number | null;
  batches: AsyncIterable<RecordBatch>;
  /** Column names (CSV): the features' names in order. */
  featureNames?: string[];
}

/** Target size of one parsed batch (bytes of float32 features). */
export const BATCH_BYTES = 1 << 20;
