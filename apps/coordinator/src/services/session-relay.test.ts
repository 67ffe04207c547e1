import { describe, expect, it } from 'vitest';
import { FakeChannel } from '../testing/fake-session-channel.js';
import { clusterName, decodeCoordinatorMessage, encodeCoordinatorMessage } from './session-relay.js';
import { SessionRegistry, type SessionCluster, type SessionOp, type WorkerEvent } from './session-registry.js';


/** The other replicas, as a list of what the registry handed them. */
class FakeCluster implements SessionCluster {
  forwarded: [string, SessionOp][] = [];
  published: WorkerEvent[] = [];
  remote = new Set<string>();
  peers = false;
  forward(workerId: string, op: SessionOp): boolean {
    this.forwarded.push([workerId, op]);
    return this.remote.has(workerId);
  }
  publish(event: WorkerEvent): void {
    this.published.push(event);
  }
  holds(workerId: string): boolean {
    return this.remote.has(workerId);
  }
  hasPeers(): boolean {
    return this.peers;
  }
}

describe('clusterName', () => {
  it('is the database name as a subject token', () => {
    expect(clusterName('postgres://u:p@db-1:5432/gradpool')).toBe('gradpool');
    expect(clusterName('postgres://u:p@other-host/gradpool?sslmode=require')).toBe('gradpool');
    expect(clusterName('postgres://u@h/my.db%20x')).toBe('my_db_x');
    expect(clusterName('postgres://alice@h')).toBe('alice');
    expect(clusterName('not a url')).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('relay codec', () => {
  it('round-trips CoordinatorMessages with uint64 beyond 2^53 as gRPC does', () => {
    const assignment = { assignment: { jobId: 'j1', checkpointKey: 'round-4', checkpointRound: '18446744073709551615', specJson: '{"a":1}' } };
    const bytes = encodeCoordinatorMessage(assignment);
    const back = decodeCoordinatorMessage(bytes);
    expect(back.body).toBe('assignment');
    expect(back.assignment).toMatchObject(assignment.assignment);
    // What the holder writes to the stream (the decoded message, encoded again) reads the same.
    expect(decodeCoordinatorMessage(encodeCoordinatorMessage(back))).toEqual(back);
    const roster = decodeCoordinatorMessage(encodeCoordinatorMessage({ roster: { jobId: 'j1', epoch: 3, startRound: '9007199254740993' } }));
    expect(roster.roster).toMatchObject({ jobId: 'j1', epoch: 3, startRound: '9007199254740993' });
    expect(decodeCoordinatorMessage(encodeCoordinatorMessage({ drain: { reason: 'x\ny' } })).drain?.reason).toBe('x\ny');
  });
});

/** A registry holding session 'here', linked to a cluster where another replica holds 'there'. */
function linkedRegistry(): { r: SessionRegistry; cl: FakeCluster; c: FakeChannel } {
  const r = new SessionRegistry();
  const cl = new FakeCluster();
  r.link(cl);
  const c = new FakeChannel();
  r.attach('here', c);
  cl.remote.add('there');
  return { r, cl, c };
}

describe('SessionRegistry with other replicas', () => {
  it('forwards what it cannot deliver here and answers has() cluster-wide', () => {
    const { r, cl, c } = linkedRegistry();
    expect(r.send('here', { drainAck: {} })).toBe(true);
    expect(r.send('there', { drainAck: {} })).toBe(true);
    expect(r.send('nowhere', { drainAck: {} })).toBe(false);
    expect(r.requestDrain('there', 'bye')).toBe(true);
    expect(r.close('there', 'silent', 'quiet')).toBe(true);
    expect(cl.forwarded).toEqual([
      ['there', { op: 'send', msg: { drainAck: {} } }],
      ['nowhere', { op: 'send', msg: { drainAck: {} } }],
      ['there', { op: 'drain', reason: 'bye' }],
      ['there', { op: 'close', reason: 'silent', message: 'quiet' }],
    ]);
    expect(c.sent).toEqual([{ drainAck: {} }]);
    expect([r.has('here'), r.has('there'), r.has('nowhere')]).toEqual([true, true, false]);
    expect([r.hasLocal('here'), r.hasLocal('there')]).toEqual([true, false]);
    expect(r.workerIds()).toEqual(['here']);
  });

  it('applies forwarded operations only to its own sessions, without forwarding again', () => {
    const { r, cl, c } = linkedRegistry();
    expect(r.applyForwarded('there', { op: 'send', msg: { drainAck: {} } })).toBe(false);
    expect(r.applyForwarded('here', { op: 'drain', reason: 'r' })).toBe(true);
    expect(r.applyForwarded('here', { op: 'drain', reason: 'r' })).toBe(false);
    expect(r.applyForwarded('here', { op: 'close', reason: 'silent', message: 'm' })).toBe(true);
    expect(c.sent).toEqual([{ drain: { reason: 'r' } }]);
    expect(c.closedWith).toEqual(['silent', 'm']);
    expect(cl.forwarded).toEqual([]);
  });

  it('publishes its sessions events, and runs handlers on the scheduling replica only when it has peers', () => {
    const r = new SessionRegistry();
    const cl = new FakeCluster();
    r.link(cl);
    let leader = false;
    r.setSchedulingProbe(() => leader);
    const heard: string[] = [];
    r.on('attached', (id) => heard.push(`attached ${id}`));
    r.on('detached', (id, why) => heard.push(`detached ${id} ${why}`));
    r.on('roundReport', (id, rep) => heard.push(`report ${id} ${rep.round}`));
    const c = new FakeChannel();
    // Alone: handlers run whatever the probe says (a single coordinator, before its first pass).
    r.attach('w', c);
    // With peers, on a follower: published, not handled here.
    cl.peers = true;
    r.emit('roundReport', 'w', { round: '1' } as never);
    r.receive({ kind: 'attached', workerId: 'x' });
    // On the leader: its own and remote events.
    leader = true;
    r.emit('roundReport', 'w', { round: '2' } as never);
    r.receive({ kind: 'detached', workerId: 'x', reason: 'closed-by-worker' });
    r.detach('w', c);
    expect(heard).toEqual(['attached w', 'report w 2', 'detached x closed-by-worker', 'detached w closed-by-worker']);
    expect(cl.published.map((e) => `${e.kind} ${e.workerId}`)).toEqual(['attached w', 'roundReport w', 'roundReport w', 'detached w']);
  });
});
