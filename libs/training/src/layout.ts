/**
 * Flat parameter layout. A model's parameters are one Float32Array of `size` elements; tensor
 * `i` occupies [offset, offset + prod(shape)) in row-major (C) order, in the order listed.
 * Dense kernels are [in, out], conv kernels [kh, kw, inChannels, outChannels] — the
 * TensorFlow.js / Keras layouts, so export copies the bytes as they are.
 */
import { Rng, fillUniform } from './prng.js';

export type ParamInit =
  /** Glorot/Xavier uniform: limit sqrt(6 / (fanIn + fanOut)). */
  | { kind: 'glorot'; fanIn: number; fanOut: number }
  /** Uniform in [-limit, limit). */
  | { kind: 'uniform'; limit: number }
  | { kind: 'zeros' }
  | { kind: 'ones' };

export interface ParamEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  init: ParamInit;
  /** False for state that is stored but not trained (e.g. Keras batch-norm moving stats). */
  trainable: boolean;
}

export class LayoutBuilder {
  readonly entries: ParamEntry[] = [];
  size = 0;

  add(name: string, shape: number[], init: ParamInit, trainable = true): ParamEntry {
    const size = shape.reduce((p, d) => p * d, 1);
    const e: ParamEntry = { name, shape, offset: this.size, size, init, trainable };
    this.entries.push(e);
    this.size += size;
    return e;
  }
}

/**
 * Deterministic initialisation: tensor i draws from its own stream (seed, i), so the bytes
 * of a tensor depend only on the seed and its position.
 */
export function initParams(entries: readonly ParamEntry[], size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  entries.forEach((e, i) => {
    const view = out.subarray(e.offset, e.offset + e.size);
    const init = e.init;
    switch (init.kind) {
      case 'glorot':
        fillUniform(view, Math.sqrt(6 / (init.fanIn + init.fanOut)), new Rng(seed, i));
        break;
      case 'uniform':
        fillUniform(view, init.limit, new Rng(seed, i));
        break;
      case 'ones':
        view.fill(1);
        break;
      case 'zeros':
        break;
    }
  });
  return out;
}
