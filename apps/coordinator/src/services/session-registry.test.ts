import { describe, expect, it } from 'vitest';
import { FakeChannel } from '../testing/fake-session-channel.js';
import { SessionRegistry } from './session-registry.js';

describe('SessionRegistry', () => {
  it('sends to the live session and reports when there is none', () => {
    const r = new SessionRegistry();
    const c = new FakeChannel();
    r.attach('w1', c);
    expect(r.send('w1', { drainAck: {} })).toBe(true);
    expect(r.send('w2', { drainAck: {} })).toBe(false);
    expect(c.sent).toEqual([{ drainAck: {} }]);
  });

  it('closes a superseded session, and ignores detach of a stale one', () => {
    const r = new SessionRegistry();
    const a = new FakeChannel();
    const b = new FakeChannel();
    const detached: string[] = [];
    r.on('detached', (id, reason) => detached.push(`${id}:${reason}`));
    r.attach('w', a);
    r.attach('w', b);
    expect(a.closedWith?.[0]).toBe('superseded');
    expect(r.detach('w', a)).toBe(false);
    expect(r.isCurrent('w', b)).toBe(true);
    expect(r.detach('w', b)).toBe(true);
    expect(r.has('w')).toBe(false);
    expect(detached).toEqual(['w:closed-by-worker']);
  });

  it('sends a drain request at most once per stream', () => {
    const r = new SessionRegistry();
    const c = new FakeChannel();
    r.attach('w', c);
    expect(r.requestDrain('w', 'x')).toBe(true);
    expect(r.requestDrain('w', 'x')).toBe(false);
    expect(c.sent).toEqual([{ drain: { reason: 'x' } }]);
  });

  it('closes everything on shutdown', () => {
    const r = new SessionRegistry();
    const cs = [new FakeChannel(), new FakeChannel()];
    cs.forEach((c, i) => r.attach(`w${i}`, c));
    r.closeAll('shutdown', 'bye');
    expect(cs.map((c) => c.closedWith?.[0])).toEqual(['shutdown', 'shutdown']);
    expect(r.size).toBe(0);
  });
});
