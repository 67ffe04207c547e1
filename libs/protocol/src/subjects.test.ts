import { describe, expect, it } from 'vitest';
import { SubjectTokenError, buckets, subjects } from './subjects.js';

describe('subjects', () => {
  it('builds reduce and gather subjects from validated tokens', () => {
    expect(subjects.reduce('job1', 2, 7n, 3)).toBe('gp.job.job1.r.2.7.3');
    expect(subjects.gather('job1', 2, 7, 3)).toBe('gp.job.job1.g.2.7.3');
    expect(buckets.checkpoints('abc')).toBe('gp_ckpt_abc');
  });
  it('refuses tokens that would inject wildcards or extra tokens', () => {
    expect(() => subjects.job('a.b')).toThrow(SubjectTokenError);
    expect(() => subjects.job('>')).toThrow(SubjectTokenError);
    expect(() => subjects.job('*')).toThrow(SubjectTokenError);
    expect(() => subjects.job('')).toThrow(SubjectTokenError);
  });
});
