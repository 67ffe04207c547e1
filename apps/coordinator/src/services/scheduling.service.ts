/**
 * Matches online idle workers to runnable jobs (leader only): group restriction (a group's
 * workers serve its own jobs first, public jobs only where the group allows it), capabilities,
 * priority, then fair share (fewest members first) between jobs of equal priority. A job starts
 * with minWorkers and grows up to maxWorkers; one below minWorkers waits with a reason.
 */
import { Inject, Injectable } from '@nestjs/common';
import { parseJobSpec, type JobSpec } from '@gradpool/protocol';
import type { CoordinatorConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { GroupRepository } from '../repositories/group.repository.js';
import { JobRepository, type JobRow } from '../repositories/job.repository.js';
import { RosterRepository } from '../repositories/roster.repository.js';
import { CONFIG, LOGGER } from '../tokens.js';
import { JobRosterService } from './job-roster.service.js';
import { KeeperService } from './keeper.service.js';
import { LeaderLock } from './scheduling-leader.js';
import { SessionRegistry } from './session-registry.js';
import { SessionRelay } from './session-relay.js';
import { JOB_SCHEDULER_SETTINGS, type JobSchedulerSettings } from '../schedulers/job-scheduler.settings.js';
import { shutdownPart } from '../shutdown.js';

interface IdleWorker {
  id: string;
  groupId: string;
  backend: string;
  memoryBytes: number;
}

interface Candidate {
  job: JobRow;
  spec: JobSpec;
  current: number;
  planned: string[];
  blocked: boolean;
}

/** Whether a worker meets a job's group rule and required capabilities. */
export function eligible(job: { groupId: string | null }, spec: JobSpec, w: IdleWorker, allowsPublic: (groupId: string) => boolean): boolean {
  if (job.groupId ? job.groupId !== w.groupId : !allowsPublic(w.groupId)) return false;
  const req = spec.requires;
  if (req.backend && !req.backend.includes(w.backend as never)) return false;
  if (req.memoryBytes !== undefined && w.memoryBytes < req.memoryBytes) return false;
  return true;
}

@Injectable()
export class SchedulingService {
  private readonly log: Logger;
  readonly lock: LeaderLock;
  private ticking: Promise<void> | null = null;
  private again = false;
  /** Since when this replica has been a follower hearing no other replica (null: it hears one, or leads). */
  private unheardSince: number | null = null;
  private lastUnheardLog = 0;
  /** A follower that hears no other replica over NATS: the leader uses another NATS (see `notHearingLeader`). */
  leaderUnheard = false;

  constructor(
    @Inject(CONFIG) config: CoordinatorConfig,
    @Inject(LOGGER) logger: Logger,
    private readonly jobs: JobRepository,
    private readonly rosters: RosterRepository,
    private readonly groups: GroupRepository,
    private readonly roster: JobRosterService,
    private readonly keepers: KeeperService,
    private readonly registry: SessionRegistry,
    private readonly relay: SessionRelay,
    @Inject(JOB_SCHEDULER_SETTINGS) private readonly settings: JobSchedulerSettings,
  ) {
    this.log = logger.child({ component: 'scheduler' });
    this.lock = new LeaderLock(config.databaseUrl);
    this.lock.onLost(() => {
      this.log.error('lost the scheduler lock; stopping scheduling and keepers');
      void this.keepers.stopAll(false);
    });
  }

  get isLeader(): boolean {
    return this.lock.isHeld;
  }

  /**
   * Another replica holds the scheduling lock on this database. If none is heard over NATS for
   * `leaderSilenceMs`, the leader uses another NATS server or cluster: it cannot hear this
   * replica's workers, so they will never be scheduled. Nothing here can fix that; say it loudly.
   */
  private notHearingLeader(): void {
    const now = Date.now();
    if (this.relay.hasPeers()) {
      this.unheardSince = null;
      this.leaderUnheard = false;
      return;
    }
    this.unheardSince ??= now;
    if (now - this.unheardSince < this.settings.leaderSilenceMs) return;
    this.leaderUnheard = true;
    if (now - this.lastUnheardLog < 60_000) return;
    this.lastUnheardLog = now;
    this.log.error(
      { silentMs: now - this.unheardSince, workersHere: this.registry.workerIds().length },
      'another coordinator holds the scheduling lock on this database, but no coordinator answers on this NATS: ' +
        'the replicas use different NATS servers, and workers connected here will not be scheduled; point every coordinator of the database at the same NATS',
    );
  }

  /** One scheduling pass; concurrent calls coalesce into one more pass. */
  tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return this.ticking;
    }
    this.ticking = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    })().finally(() => (this.ticking = null));
    return this.ticking;
  }

  private async pass(): Promise<void> {
    if (!(await this.lock.tryAcquire())) {
      this.notHearingLeader();
      return;
    }
    this.unheardSince = null;
    this.leaderUnheard = false;
    const runnable = await this.jobs.list({ status: ['queued', 'running'] });
    // Keepers: one per running job here; none for jobs that stopped running.
    const running = new Set(runnable.filter((j) => j.status === 'running').map((j) => j.id));
    for (const id of this.keepers.running()) if (!running.has(id)) await this.keepers.stop(id);
    for (const j of runnable) if (j.status === 'running') await this.keepers.ensure(j);

    const idleRows = (await this.rosters.idle()).filter((w) => this.registry.has(w.id) && w.state !== 'draining');
    if (runnable.length === 0) return;
    const groupRows = await this.groups.list();
    const allowPublic = new Map(groupRows.map((g) => [g.id, g.allowPublicJobs]));
    const allowsPublic = (g: string) => allowPublic.get(g) ?? false;
    const idle: IdleWorker[] = idleRows.map((w) => ({ id: w.id, groupId: w.groupId, backend: w.capabilities.backend, memoryBytes: w.capabilities.memoryBytes }));

    // After the idle workers (see KeeperService.keptOut).
    const keptOut = await this.keepers.keptOut();
    const mayServe = (jobId: string, workerId: string) => !keptOut.has(`${jobId}/${workerId}`);
    const cands: Candidate[] = [];
    for (const job of runnable) {
      const spec = parseJobSpec(job.spec);
      const current = job.status === 'running' ? (await this.rosters.assigned(job.id)).length : 0;
      cands.push({ job, spec, current, planned: [], blocked: false });
    }
    const cap = (c: Candidate) => Math.min(c.spec.maxWorkers, c.spec.globalBatch);
    // Plan; a job that cannot reach minWorkers is blocked and its workers go elsewhere.
    for (let pass = 0; pass <= cands.length; pass++) {
      for (const c of cands) c.planned = [];
      for (const w of idle) {
        const options = cands.filter((c) => !c.blocked && c.current + c.planned.length < cap(c) && mayServe(c.job.id, w.id) && eligible(c.job, c.spec, w, allowsPublic));
        if (!options.length) continue;
        options.sort(
          (a, b) =>
            Number(b.job.groupId === w.groupId) - Number(a.job.groupId === w.groupId) ||
            b.job.priority - a.job.priority ||
            a.current + a.planned.length - (b.current + b.planned.length) ||
            a.job.createdAt.getTime() - b.job.createdAt.getTime(),
        );
        options[0].planned.push(w.id);
      }
      const short = cands.filter((c) => !c.blocked && c.job.status !== 'running' && c.current + c.planned.length < c.spec.minWorkers);
      if (!short.length) break;
      // Block the lowest-priority short job and plan again.
      short.sort((a, b) => a.job.priority - b.job.priority || b.job.createdAt.getTime() - a.job.createdAt.getTime());
      short[0].blocked = true;
    }
    for (const c of cands) {
      if (c.blocked || (c.job.status !== 'running' && c.planned.length < c.spec.minWorkers)) {
        const fits = idle.filter((w) => eligible(c.job, c.spec, w, allowsPublic));
        const kept = fits.filter((w) => !mayServe(c.job.id, w.id)).length;
        // Workers kept out after a fault in this job are not counted as available, but named.
        const reason =
          `waiting for workers: ${fits.length - kept} eligible idle of minWorkers ${c.spec.minWorkers}` +
          (kept ? `; ${kept} more kept out after a fault in this job` : '');
        if (c.job.status === 'queued' && c.job.statusReason !== reason) await this.jobs.update(c.job.id, { statusReason: reason });
        continue;
      }
      if (!c.planned.length) continue;
      this.log.info({ jobId: c.job.id, add: c.planned.length, current: c.current }, c.job.status === 'running' ? 'adding workers' : 'starting job');
      try {
        await this.roster.change(c.job.id, { add: c.planned, reason: c.job.status === 'running' ? 'workers joined' : 'start' });
        const fresh = await this.jobs.findById(c.job.id);
        if (fresh?.status === 'running') await this.keepers.ensure(fresh);
      } catch (err) {
        this.log.error({ err, jobId: c.job.id }, 'roster change failed');
      }
    }
  }

  async shutdown(): Promise<void> {
    await shutdownPart('scheduling pass in progress', async () => this.ticking?.catch(() => undefined));
    await shutdownPart('keepers stopping', () => this.keepers.stopAll(true));
    await shutdownPart('scheduler lock release', () => this.lock.release());
  }
}
