// Original file: gradpool/v1/worker.proto


export interface RosterMember {
  'workerId'?: (string);
  'index'?: (number);
  /**
   * This member's share of the global batch, in samples per round.
   */
  'samplesPerRound'?: (number);
  'ownedShards'?: (number)[];
}

export interface RosterMember__Output {
  'workerId': (string);
  'index': (number);
  /**
   * This member's share of the global batch, in samples per round.
   */
  'samplesPerRound': (number);
  'ownedShards': (number)[];
}
