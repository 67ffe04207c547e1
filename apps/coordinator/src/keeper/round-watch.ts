/**
 * What the keeper watches of a job's data plane: every round's gathered mean (GatherObserver)
 * and, for clipped-mean jobs, the owner audit (OwnerAuditor). It keeps each finished round's
 * mean until the keeper steps with it, and hands the keeper only the round's description: the
 * P floats never leave the thread the watch runs on (keeper-state.ts runs it beside the
 * authoritative state, off the coordinator's event loop: shared/DESIGN.md, rule 1).
 *
 * An audit's verdict is reported before its round: the audit runs as the shard's gather arrives,
 * the round is reported once every shard's has. So a keeper that takes events in order vetoes a
 * round before it could commit it.
 */
import { type AuditResult, GatherObserver, type ObservedRound, OwnerAuditor, parseCodecSpec, publishUpdate } from '@gradpool/exchange';
import type { NatsConnection } from 'nats';

/** A finished round as the keeper sees it: everything but the mean, which the watch keeps. */
export type ObservedRoundInfo = Omit<ObservedRound, 'mean'>;

/** The owner audit's settings (OwnerAuditOptions), for clipped-mean jobs. */
export interface AuditSettings {
  /** The job's codec spec (`fp32`, `int8:64`, …). */
  codec: string;
  clipNormRatio: number;
  shardsPerRound: number | 'auto';
  cpuShare?: number;
}

/** An epoch's roster as the audit needs it. */
export interface WatchedEpoch {
  epoch: number;
  members: readonly string[];
  startRound: number;
}

export interface RoundWatchSettings {
  jobId: string;
  /** null: no audit. */
  audit: AuditSettings | null;
  /** Rounds assembled at once (GatherObserverOptions.maxPending). */
  maxPending?: number;
  /** Finished rounds whose means are kept for the keeper; the oldest is dropped beyond this. */
  maxKept?: number;
}

export interface RoundWatchEvents {
  onRound: (round: ObservedRoundInfo) => void;
  onAudit: (result: AuditResult) => void;
}

export class RoundWatch {
  private readonly observer: GatherObserver;
  private readonly auditor: OwnerAuditor | null;
  private readonly epochs = new Map<number, WatchedEpoch>();
  /** Finished rounds' means by `epoch.round`, oldest first. */
  private readonly means = new Map<string, Float32Array>();
  /** The mean last stepped with, until it is published (`publish`). */
  private stepped: { round: number; mean: Float32Array } | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly settings: RoundWatchSettings,
    private readonly events: RoundWatchEvents,
  ) {
    const a = settings.audit;
    this.auditor = a
      ? new OwnerAuditor({
          nc,
          jobId: settings.jobId,
          codec: parseCodecSpec(a.codec),
          clipNormRatio: a.clipNormRatio,
          rosterOf: (epoch) => {
            const e = this.epochs.get(epoch);
            return e && e.members.length > 0 ? e : undefined;
          },
          shardsPerRound: a.shardsPerRound,
          cpuShare: a.cpuShare,
          onResult: (r) => events.onAudit(r),
        })
      : null;
    const auditor = this.auditor;
    // (Its queue is drained into `means` at once, but one socket read can finish many rounds.)
    this.observer = new GatherObserver({
      nc,
      jobId: settings.jobId,
      maxPending: settings.maxPending ?? 8,
      maxQueued: settings.maxKept ?? MAX_KEPT,
      onGather: auditor ? (h, p) => auditor.observe(h, p) : undefined,
    });
    void this.pump();
  }

  private async pump(): Promise<void> {
    const maxKept = this.settings.maxKept ?? MAX_KEPT;
    for (;;) {
      const o = await this.observer.next();
      if (!o) return;
      const { mean, ...info } = o;
      this.means.set(key(o.epoch, o.round), mean);
      while (this.means.size > maxKept) this.means.delete(this.means.keys().next().value as string);
      this.events.onRound(info);
    }
  }

  /** A new (or updated) epoch of the job: the audit judges its rounds against this roster. */
  setEpoch(e: WatchedEpoch): void {
    if (e.members.length === 0) this.epochs.delete(e.epoch);
    else this.epochs.set(e.epoch, { epoch: e.epoch, members: [...e.members], startRound: e.startRound });
  }

  /**
   * The mean of round `round` of epoch `epoch`, for a step; the means of that round and of every
   * earlier one are no longer kept. Throws when it was never observed or was dropped.
   */
  take(epoch: number, round: number): Float32Array {
    const mean = this.means.get(key(epoch, round));
    if (!mean) throw new Error(`the gathered mean of round ${round} (epoch ${epoch}) is not kept (dropped, or never observed)`);
    for (const [k] of this.means) if (Number(k.slice(k.indexOf('.') + 1)) <= round) this.means.delete(k);
    this.stepped = { round, mean };
    return mean;
  }

  /** Publishes the mean last taken (round `round`) as that round's committed update (replay.ts). */
  async publish(round: number, paramHash: string, dataState: string): Promise<void> {
    if (this.stepped?.round !== round) throw new Error(`round ${round} was not the last stepped (${this.stepped?.round ?? 'none'})`);
    await publishUpdate(this.nc.jetstream(), this.settings.jobId, round, this.stepped.mean, paramHash, dataState);
    this.stepped = null;
  }

  close(): void {
    this.observer.close();
    this.auditor?.close();
    this.means.clear();
    this.stepped = null;
  }
}

const key = (epoch: number, round: number) => `${epoch}.${round}`;

/** Finished rounds kept by default (RoundWatchSettings.maxKept). */
const MAX_KEPT = 64;
