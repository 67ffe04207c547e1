import { describe, expect, it } from 'vitest';
import { SubjectTokenError, buckets, lastToken, senderOf, subjects } from './subjects.js';

describe('subjects', () => {
  it('builds reduce, gather and control subjects from validated tokens, the sender last', () => {
    expect(subjects.reduce('job1', 2, 7n, 3, 'm1')).toBe('gp.job.job1.r.2.7.3.m1');
    expect(subjects.gather('job1', 2, 7, 3, 'b0')).toBe('gp.job.job1.g.2.7.3.b0');
    expect(subjects.exchangeControl('job1', '0b9e2c4a-6f0d-4a5e-9c1b-2d3e4f5a6b7c')).toBe('gp.job.job1.x.0b9e2c4a-6f0d-4a5e-9c1b-2d3e4f5a6b7c');
    expect(subjects.reduceShardRounds('job1', 2, 3)).toBe('gp.job.job1.r.2.*.3.*');
    expect(subjects.gatherEpoch('job1', 2)).toBe('gp.job.job1.g.2.>');
    expect(subjects.gatherAll('job1')).toBe('gp.job.job1.g.>');
    expect(subjects.exchangeControlAll('job1')).toBe('gp.job.job1.x.*');
    expect(buckets.checkpoints('abc')).toBe('gp_ckpt_abc');
  });
  it('refuses tokens that would inject wildcards or extra tokens', () => {
    expect(() => subjects.job('a.b')).toThrow(SubjectTokenError);
    expect(() => subjects.job('>')).toThrow(SubjectTokenError);
    expect(() => subjects.job('*')).toThrow(SubjectTokenError);
    expect(() => subjects.job('')).toThrow(SubjectTokenError);
    expect(() => subjects.reduce('j', 1, 1, 1, 'm1.*')).toThrow(SubjectTokenError);
    expect(() => subjects.gather('j', 1, 1, 1, '>')).toThrow(SubjectTokenError);
    expect(() => subjects.exchangeControl('j', '')).toThrow(SubjectTokenError);
    expect(() => subjects.memberPublish('j', '*')).toThrow(SubjectTokenError);
  });
  it("gives a member publish rights only on subjects ending with its own id", () => {
    expect(subjects.memberPublish('job1', 'm1')).toEqual(['gp.job.job1.r.*.*.*.m1', 'gp.job.job1.g.*.*.*.m1', 'gp.job.job1.x.m1']);
    expect(subjects.memberSubscribe('job1')).toEqual(['gp.job.job1.>']);
  });
  it('reads the sender token of a delivered subject against its expected head', () => {
    const head = subjects.reduceHead('job1', 2, 7, 3);
    expect(senderOf(subjects.reduce('job1', 2, 7, 3, 'm1'), head)).toBe('m1');
    expect(senderOf(subjects.reduce('job1', 2, 7, 4, 'm1'), head)).toBeNull();
    expect(senderOf(subjects.reduce('job1', 2, 7, 33, 'm1'), head)).toBeNull();
    expect(senderOf(head, head)).toBeNull();
    expect(senderOf(subjects.gather('job1', 2, 7, 3, 'm1'), head)).toBeNull();
    expect(senderOf(subjects.gather('job1', 2, 7, 3, 'm1'), subjects.gatherHead('job1', 2, 7, 3))).toBe('m1');
    expect(lastToken(subjects.exchangeControl('job1', 'b0'))).toBe('b0');
  });
});
