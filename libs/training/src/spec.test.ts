import { describe, expect, it } from 'vitest';
import { buildModel } from './build.js';
import { checkSpecAgainstDataset, ModelSpecError, validateModelSpec } from './spec.js';

function issuesOf(f: () => unknown) {
  try {
    f();
  } catch (e) {
    if (e instanceof ModelSpecError) return e.issues;
    throw e;
  }
  throw new Error('expected a ModelSpecError');
}

describe('model specs', () => {
  it('fills defaults', () => {
    const s = validateModelSpec({ kind: 'mlp', inputShape: [784], hidden: [32], numClasses: 10 });
    expect(s).toMatchObject({ activation: 'relu', dropout: 0, loss: 'cross-entropy' });
  });

  it('names the offending field', () => {
    expect(issuesOf(() => validateModelSpec({ kind: 'mlp', inputShape: [784], hidden: [0], numClasses: 10 }))[0].path).toBe('hidden.0');
    expect(issuesOf(() => validateModelSpec({ kind: 'mlp', inputShape: [784], hidden: [], numClasses: 10, extra: 1 }))[0].message).toMatch(/extra/);
    expect(issuesOf(() => validateModelSpec({ kind: 'rnn' }))[0].path).toBe('kind');
    expect(issuesOf(() => validateModelSpec({ kind: 'transformer-lm', vocabSize: 10, contextLength: 8, dModel: 10, heads: 3, layers: 1 }))[0].path).toBe('heads');
    const pool = issuesOf(() => validateModelSpec({ kind: 'cnn', inputShape: [28, 28, 1], convs: [{ filters: 4 }, { filters: 4 }, { filters: 4 }], numClasses: 10 }));
    expect(pool[0].path).toBe('convs.2.pool');
  });

  it('checks a spec against a dataset', () => {
    const mlp = validateModelSpec({ kind: 'mlp', inputShape: [784], hidden: [], numClasses: 10 });
    expect(() => checkSpecAgainstDataset(mlp, { inputShape: [28, 28, 1], numClasses: 10 })).not.toThrow();
    expect(issuesOf(() => checkSpecAgainstDataset(mlp, { inputShape: [32, 32, 3], numClasses: 10 }))[0].path).toBe('inputShape');
    expect(issuesOf(() => checkSpecAgainstDataset(mlp, { inputShape: [784], numClasses: 5 }))[0].path).toBe('numClasses');
  });

  it('rejects a Keras topology that does not load', async () => {
    await expect(buildModel({ kind: 'keras', topology: { class_name: 'Nope', config: {} } })).rejects.toThrow(ModelSpecError);
  });

  it('lays parameters out as documented', async () => {
    const m = await buildModel({ kind: 'cnn', inputShape: [28, 28, 1], convs: [{ filters: 4, kernelSize: 5 }], dense: [8], numClasses: 10 });
    expect(m.layout.map((e) => [e.name, e.offset, e.shape])).toEqual([
      ['conv_0/kernel', 0, [5, 5, 1, 4]],
      ['conv_0/bias', 100, [4]],
      ['dense_0/kernel', 104, [784, 8]],
      ['dense_0/bias', 6376, [8]],
      ['dense_1/kernel', 6384, [8, 10]],
      ['dense_1/bias', 6464, [10]],
    ]);
    expect(m.paramCount).toBe(6474);
    // Same seed, same bytes; another seed, other bytes.
    expect(Buffer.from(m.init(5).buffer).equals(Buffer.from(m.init(5).buffer))).toBe(true);
    expect(Buffer.from(m.init(5).buffer).equals(Buffer.from(m.init(6).buffer))).toBe(false);
  });
});
