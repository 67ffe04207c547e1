import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTER_OPTIMIZER, JobSpecError, parseAssignedJob, parseJobSpec, quorumFor, roundOptimizer, wireSpec } from './job-spec.js';

const base = {
  name: 'mnist',
  model: { kind: 'mlp', inputShape: [784], hidden: [64], numClasses: 10 },
  datasetId: '00000000-0000-4000-8000-000000000001',
  optimizer: { kind: 'adam', lr: 0.001 },
  globalBatch: 256,
};

describe('parseJobSpec', () => {
  it('fills defaults', () => {
    const s = parseJobSpec(base);
    expect(s).toMatchObject({ groupId: null, codec: 'fp32', epochs: 1, minWorkers: 1, maxWorkers: 8, quorum: 0.5, seed: 0, requires: {} });
  });
  it('keeps epochs absent when rounds is given', () => {
    expect(parseJobSpec({ ...base, rounds: 10 }).epochs).toBeUndefined();
  });
  it('names the field', () => {
    expect(() => parseJobSpec({ ...base, globalBatch: 0 })).toThrow(/globalBatch/);
    expect(() => parseJobSpec({ ...base, minWorkers: 3, maxWorkers: 2 })).toThrow(/minWorkers.*maxWorkers/);
    expect(() => parseJobSpec({ ...base, bogus: 1 })).toThrow(JobSpecError);
  });
  it('normalises a single backend requirement', () => {
    expect(parseJobSpec({ ...base, requires: { backend: 'wasm' } }).requires.backend).toEqual(['wasm']);
  });
  it('local steps: the outer optimizer is what each round applies, only with localSteps > 1', () => {
    const plain = parseJobSpec(base);
    expect(plain.localSteps).toBe(1);
    expect(roundOptimizer(plain)).toEqual(base.optimizer);
    const local = parseJobSpec({ ...base, localSteps: 8 });
    expect(roundOptimizer(local)).toEqual(DEFAULT_OUTER_OPTIMIZER);
    const outer = { kind: 'nesterov', lr: 0.7, momentum: 0.9 };
    expect(roundOptimizer(parseJobSpec({ ...base, localSteps: 8, outerOptimizer: outer }))).toEqual(outer);
    expect(() => parseJobSpec({ ...base, outerOptimizer: outer })).toThrow(/outerOptimizer: applies only with localSteps > 1/);
    expect(() => parseJobSpec({ ...base, localSteps: 0 })).toThrow(/localSteps/);
  });
  it('leaves out of the wire spec the newer fields that hold their defaults, and parses them back', () => {
    const plain = parseJobSpec(base);
    expect(wireSpec(plain)).not.toHaveProperty('localSteps');
    expect(wireSpec(plain)).not.toHaveProperty('aggregation');
    expect(parseJobSpec(wireSpec(plain))).toEqual(plain);
    const local = parseJobSpec({ ...base, localSteps: 4, aggregation: { kind: 'mean' } });
    expect(wireSpec(local)).toMatchObject({ localSteps: 4, aggregation: { kind: 'mean' } });
    expect(parseJobSpec(wireSpec(local))).toEqual(local);
  });
  it('computes quorum', () => {
    expect(quorumFor({ quorum: 0.5 }, 3)).toBe(2);
    expect(quorumFor({ quorum: 1 }, 3)).toBe(3);
    expect(quorumFor({ quorum: 0.01 }, 3)).toBe(1);
  });
});

describe('parseAssignedJob', () => {
  it('round-trips', () => {
    const a = {
      jobId: '00000000-0000-4000-8000-000000000002',
      spec: parseJobSpec(base),
      paramCount: 50890,
      dataset: { id: base.datasetId, name: 'mnist', featureShape: [28, 28, 1], numClasses: 10, train: [{ index: 0, sha256: 'a'.repeat(64), samples: 100, bytes: 1000 }] },
      updatesStream: 'GP_UPDATES',
    };
    expect(parseAssignedJob(JSON.stringify(a))).toEqual(a);
    expect(() => parseAssignedJob('{')).toThrow(JobSpecError);
    expect(() => parseAssignedJob(JSON.stringify({ ...a, spec: { ...a.spec, globalBatch: -1 } }))).toThrow(/spec\.globalBatch/);
  });
});
