/**
 * Feature normalisation. Statistics always come from the train split only, so validation and
 * test data are transformed with numbers they did not influence.
 */
export type Normalisation =
  | { kind: 'none' }
  /** x' = (x − min) / (max − min), min and max over all train features. */
  | { kind: 'scale'; min: number; max: number }
  /** x' = (x − mean_j) / std_j per feature j; std_j = 1 where the train split has no spread. */
  | { kind: 'standardise'; mean: number[]; std: number[] };

/** Streaming train statistics: global min/max and per-feature Welford mean/variance. */
export class FeatureStats {
  count = 0;
  min = Infinity;
  max = -Infinity;
  private readonly mean: Float64Array;
  private readonly m2: Float64Array;

  constructor(readonly dim: number) {
    this.mean = new Float64Array(dim);
    this.m2 = new Float64Array(dim);
  }

  /** Adds one sample: `dim` values from `src` starting at `offset`. */
  add(src: Float32Array, offset: number): void {
    this.count++;
    const n = this.count;
    const mean = this.mean;
    const m2 = this.m2;
    for (let j = 0; j < this.dim; j++) {
      const x = src[offset + j];
      if (x < this.min) this.min = x;
      if (x > this.max) this.max = x;
      const d = x - mean[j];
      mean[j] += d / n;
      m2[j] += d * (x - mean[j]);
    }
  }

  /** The normalisation of `kind` fitted to the samples added so far. */
  fit(kind: Normalisation['kind']): Normalisation {
    if (kind === 'none') return { kind };
    if (kind === 'scale') {
      return this.count === 0 ? { kind, min: 0, max: 1 } : { kind, min: this.min, max: this.max };
    }
    const mean = Array.from(this.mean);
    const std = Array.from(this.m2, (m) => {
      const s = this.count > 1 ? Math.sqrt(m / this.count) : 0;
      return s > 1e-8 ? s : 1;
    });
    return { kind, mean, std };
  }
}

/** Applies `norm` to `dim` values of `src` at `srcOff`, writing them to `dst` at `dstOff`. */
export function normaliseInto(norm: Normalisation, dim: number, src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number): void {
  if (norm.kind === 'none') {
    dst.set(src.subarray(srcOff, srcOff + dim), dstOff);
  } else if (norm.kind === 'scale') {
    const range = norm.max - norm.min;
    const inv = range > 0 ? 1 / range : 1;
    for (let j = 0; j < dim; j++) dst[dstOff + j] = (src[srcOff + j] - norm.min) * inv;
  } else {
    const { mean, std } = norm;
    for (let j = 0; j < dim; j++) dst[dstOff + j] = (src[srcOff + j] - mean[j]) / std[j];
  }
}
