/**
 * Where the keeper keeps a job's committed updates for late joiners (docs/jobs-protocol.md,
 * "Catching up"). Outside `gp.job.<id>.>` on purpose: workers may publish there, and only the
 * keeper may write what others replay.
 */
import { token } from './subjects.js';

/** The one JetStream stream holding every job's committed updates. */
export const UPDATES_STREAM = 'GP_UPDATES';

export const updateSubjects = {
  /** Chunks of the averaged update applied in round `round` of `jobId`. */
  round: (jobId: string, round: number) => `gp.keeper.${token(jobId, 'job id')}.u.${token(round, 'round')}`,
  /** Every round of one job (a consumer's filter). */
  job: (jobId: string) => `gp.keeper.${token(jobId, 'job id')}.u.*`,
  /** The stream's subjects. */
  all: 'gp.keeper.*.u.*',
} as const;

/** NATS message headers of an update chunk. */
export const UPDATE_HEADERS = {
  /** Round of the update (decimal). */
  round: 'Gp-Round',
  /** Index of this chunk, and chunk count (decimal). */
  chunk: 'Gp-Chunk',
  chunks: 'Gp-Chunks',
  /** Element offset of this chunk and total elements P (decimal). */
  offset: 'Gp-Offset',
  size: 'Gp-Size',
  /** Hex sha256 of the keeper's parameters after applying this round (paramHash). */
  paramHash: 'Gp-Param-Hash',
  /** The job's data state after this round (encodeDataState of libs/datasets; first chunk at least). */
  dataState: 'Gp-Data-State',
} as const;
