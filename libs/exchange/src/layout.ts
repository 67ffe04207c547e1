import { isToken } from '@gradpool/protocol';
import { ExchangeUsageError } from './errors.js';

/**
 * A job's membership epoch: the ordered members (roster index = position) and who we are.
 * Shard s is owned by members[s mod |members|] (shared/DESIGN.md).
 */
export interface Roster {
  epoch: number;
  members: readonly string[];
  selfId: string;
  /**
   * The first round this member runs in the epoch, when known: before it, messages of rounds
   * more than `maxRoundsAhead` past it are dropped (otherwise any round is buffered then). The
   * owner audit relies on it: an owner cannot hold messages of a round long before it is due.
   */
  startRound?: number;
}

/** Shard and chunk geometry for P elements, S shards, and chunks of at most `chunkElems`. */
export class ShardLayout {
  readonly starts: number[];
  constructor(
    readonly size: number,
    readonly shards: number,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new ExchangeUsageError(`parameter count must be a positive integer, got ${size}`);
    if (!Number.isInteger(shards) || shards < 1 || shards > size) throw new ExchangeUsageError(`shard count must be in [1, ${size}], got ${shards}`);
    this.starts = [];
    for (let s = 0; s <= shards; s++) this.starts.push(Math.floor((s * size) / shards));
  }
  start(s: number): number {
    return this.starts[s];
  }
  length(s: number): number {
    return this.starts[s + 1] - this.starts[s];
  }
  static owner(shard: number, members: number): number {
    return shard % members;
  }
}

/** Default shard count: 4 per member (so owners finish shards one after another and gathers
 * overlap the reduce), at least one element each. */
export function defaultShards(size: number, members: number): number {
  return Math.max(1, Math.min(size, members * 4));
}

export function validateRoster(r: Roster): number {
  if (!Number.isInteger(r.epoch) || r.epoch < 0 || r.epoch > 0xffffffff) throw new ExchangeUsageError(`bad epoch ${r.epoch}`);
  if (r.members.length < 1 || r.members.length > 0xffff) throw new ExchangeUsageError(`roster must have 1..65535 members`);
  if (new Set(r.members).size !== r.members.length) throw new ExchangeUsageError('roster has duplicate members');
  // Members' ids are the sender tokens of the subjects they publish on.
  for (const m of r.members) if (!isToken(m)) throw new ExchangeUsageError(`member id ${JSON.stringify(m)} is not a valid subject token`);
  if (r.startRound !== undefined && !(Number.isSafeInteger(r.startRound) && r.startRound >= 0)) throw new ExchangeUsageError(`bad start round ${r.startRound}`);
  const self = r.members.indexOf(r.selfId);
  if (self < 0) throw new ExchangeUsageError(`${r.selfId} is not in the roster of epoch ${r.epoch}`);
  return self;
}
