/**
 * Datasets: import (validate, split, normalise, shard into the object store), list, show,
 * delete. Parsing and sharding are libs/datasets' work; this service owns the rows and the
 * all-or-nothing rule: a failed import leaves no rows and no objects behind.
 *
 * Objects are shared by every dataset with the same shards. An import claims each object
 * (a committed `shard_claims` row) before storing or reusing it, and its shard rows replace the
 * claims when it commits; a delete or a failed import removes an object only when no shard row
 * and no claim names it, under the object's advisory lock. So no object an import will reference
 * is removed under it, and none is left behind that nothing names.
 *
 * Heavy work runs as chunked async streaming on the event loop (libs/datasets yields after
 * every ~1 MiB batch and every shard), so requests keep being served during an import.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { DbHandle } from '@gradpool/db';
import {
  DatasetFormatError,
  DEFAULT_SHARD_BYTES,
  fileSources,
  importDataset,
  importMnist,
  openSource,
  sha256Hex,
  SPLITS,
  ShardStore,
  type DatasetFormat,
  type ImportOptions,
  type ImportResult,
  type Normalisation,
  type ShardSink,
  type SplitName,
} from '@gradpool/datasets';
import { buckets } from '@gradpool/protocol';
import type { NatsConnection } from 'nats';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import { DatasetRepository, type DatasetRow } from '../repositories/dataset.repository.js';
import { ShardRepository } from '../repositories/shard.repository.js';
import { DATABASE, LOGGER, NATS } from '../tokens.js';

/** Settings of dataset import; DatasetsModule provides defaults (override with DatasetsModule.withSettings). */
export interface DatasetSettings {
  /** Largest accepted upload / input file, bytes (compressed and decompressed). */
  readonly maxFileBytes: number;
  /** Default target shard size, bytes. */
  readonly shardBytes: number;
  /** Where uploads and import temp files go. */
  readonly tmpDir: string;
  /** Unused uploads are removed after this long. */
  readonly uploadTtlMs: number;
  /** The shared object-store bucket of shards: datasets imported with `buckets: 'shared'` or
   * before buckets per dataset existed (tests use their own). */
  readonly shardBucket?: string;
  /**
   * Where a new import keeps its shards. 'per-dataset' (default): a bucket of its own, which only
   * workers of its jobs may read (a worker's NATS user is limited to its job's dataset bucket:
   * docs/nats-auth.md), deleted with the dataset. 'shared': one bucket for every dataset, shards
   * stored once across datasets, readable by any worker that knows their names.
   */
  readonly buckets?: 'per-dataset' | 'shared';
}

export const DATASET_SETTINGS = Symbol('gradpool.datasetSettings');

export const DEFAULT_DATASET_SETTINGS: DatasetSettings = {
  maxFileBytes: 4 * 1024 ** 3,
  shardBytes: DEFAULT_SHARD_BYTES,
  tmpDir: tmpdir(),
  uploadTtlMs: 60 * 60 * 1000,
};

export interface ImportOptionsInput {
  normalise?: Normalisation['kind'];
  validationFraction?: number;
  testFraction?: number;
  seed?: number | string;
  shardBytes?: number;
  classes?: string[];
  labelColumn?: string;
}

/** An import from files on the coordinator's disk (staged uploads). */
export interface FileImportRequest extends ImportOptionsInput {
  name: string;
  format: DatasetFormat;
  /** IDX/NPY: [images|features, labels]; CSV: [table]. With `names` for messages. */
  files: { path: string; name: string }[];
  testFiles?: { path: string; name: string }[];
}

export interface BuiltinImportRequest extends ImportOptionsInput {
  name: string;
  builtin: 'mnist';
}

export interface ShardView {
  index: number;
  sampleCount: number;
  bytes: number;
  sha256: string;
}

export interface DatasetView {
  id: string;
  name: string;
  format: string;
  status: DatasetRow['status'];
  featureShape: number[];
  featureDtype: string;
  numClasses: number;
  classNames: string[];
  normalisation: Record<string, unknown>;
  options: Record<string, unknown>;
  contentHash: string | null;
  totalBytes: number;
  /** Samples per split. */
  counts: Record<SplitName, number>;
  /** Where its train shards are (the bucket its jobs' workers read; keys are the sha256). */
  shardBucket: string;
  /** Where its validation and test shards are (the same bucket when shared). */
  evalShardBucket: string;
  createdAt: string;
  readyAt: string | null;
}

export interface DatasetDetail extends DatasetView {
  splits: Record<SplitName, { samples: number; shards: ShardView[] }>;
}

@Injectable()
export class DatasetService {
  private readonly log: Logger;
  /** Open shard stores by bucket (created on first use). */
  private readonly stores = new Map<string, Promise<ShardStore>>();
  /**
   * Test seam: awaited when an import has stored all its objects and is about to insert its
   * rows, the window in which a concurrent delete or failed import could take shared objects.
   */
  readonly hooks: { afterObjectsStored?: (datasetName: string) => Promise<void> } = {};

  constructor(
    private readonly datasets: DatasetRepository,
    private readonly shards: ShardRepository,
    @Inject(DATABASE) private readonly handle: DbHandle,
    @Inject(NATS) private readonly nats: NatsConnection,
    @Inject(LOGGER) logger: Logger,
    @Inject(DATASET_SETTINGS) private readonly settings: DatasetSettings,
  ) {
    this.log = logger.child({ component: 'datasets' });
  }

  /**
   * The dataset's distinct shard objects that the object store does not have. Postgres and NATS
   * can part ways (NATS storage lost, or a coordinator pointed at another NATS): a job on such a
   * dataset could never fetch its shards.
   */
  async missingObjects(datasetId: string): Promise<{ total: number; missing: string[] }> {
    const row = await this.datasets.findById(datasetId);
    if (!row) throw new NotFoundError(`no dataset ${datasetId}`);
    // Each distinct object once, looked up in its split's bucket. A bucket that does not exist
    // (another NATS, storage lost) is not created by looking: all its objects are missing.
    const objects = new Map<string, string>();
    for (const s of await this.shards.listByDataset(datasetId)) objects.set(s.sha256, this.bucketOf(row, s.split));
    const exists = new Map<string, boolean>();
    for (const bucket of new Set(objects.values())) exists.set(bucket, await this.bucketExists(bucket));
    const entries = [...objects];
    const missing: string[] = [];
    for (let i = 0; i < entries.length; i += 16) {
      const batch = entries.slice(i, i + 16);
      const present = await Promise.all(batch.map(async ([h, bucket]) => exists.get(bucket)! && (await this.storeOf(bucket)).has(h)));
      batch.forEach(([h], j) => !present[j] && missing.push(h));
    }
    return { total: entries.length, missing };
  }

  /**
   * What an admin should read when the object store lacks some of the dataset's shards (a job
   * on it could never fetch them), or null when it has them all.
   */
  async missingObjectsProblem(datasetId: string): Promise<{ message: string; missing: string[] } | null> {
    const { total, missing } = await this.missingObjects(datasetId);
    if (missing.length === 0) return null;
    const row = await this.datasets.findById(datasetId);
    const name = row?.name ?? datasetId;
    const some = missing.slice(0, 3).map((h) => h.slice(0, 12)).join(', ') + (missing.length > 3 ? ', …' : '');
    const remedy = row?.shardBucket
      ? `Its bucket ${row.shardBucket} is its own: delete the dataset and import the data again (as a new dataset)`
      : 'Import the same data again with the same options (shards are content-addressed, so that restores them)';
    const message =
      `dataset ${name}: the object store lacks ${missing.length} of its ${total} shard objects (${some}); ` +
      `NATS storage was lost or the coordinator uses another NATS. ${remedy}; GET /v1/datasets/:id/objects lists what is missing`;
    return { message, missing };
  }

  /** Throws FailedPreconditionError (what `missingObjectsProblem` says) unless every shard object is there. */
  async assertObjectsPresent(datasetId: string): Promise<void> {
    const problem = await this.missingObjectsProblem(datasetId);
    if (problem) throw new FailedPreconditionError(problem.message);
  }

  /** Whether a bucket's stream exists (without creating it). */
  private async bucketExists(bucket: string): Promise<boolean> {
    try {
      await (await this.nats.jetstreamManager()).streams.info(`OBJ_${bucket}`);
      return true;
    } catch (err) {
      if (/stream not found/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  /** The shared shard bucket. */
  get sharedBucket(): string {
    return this.settings.shardBucket ?? buckets.shards;
  }

  /**
   * Where a dataset's shards of a split are: with buckets of its own, train shards in
   * `shardBucket` (which its jobs' workers may read) and validation and test shards in
   * `<shardBucket>_eval` (the keeper's alone); else the shared bucket.
   */
  bucketOf(row: Pick<DatasetRow, 'shardBucket'>, split: SplitName = 'train'): string {
    if (!row.shardBucket) return this.sharedBucket;
    return split === 'train' ? row.shardBucket : `${row.shardBucket}_eval`;
  }

  /** The shared shard bucket's store (created on first use). */
  store(): Promise<ShardStore> {
    return this.storeOf(this.sharedBucket);
  }

  /** A bucket's store (created on first use). */
  storeOf(bucket: string): Promise<ShardStore> {
    let p = this.stores.get(bucket);
    if (!p) {
      p = ShardStore.open(this.nats, { bucket }).catch((err) => {
        this.stores.delete(bucket);
        throw err;
      });
      this.stores.set(bucket, p);
    }
    return p;
  }

  /** The row of dataset `datasetId` (its bucket: `bucketOf`), or undefined. */
  datasetRow(datasetId: string): Promise<DatasetRow | undefined> {
    return this.datasets.findById(datasetId);
  }

  /** The store of dataset `datasetId`'s shards of `split`. */
  async storeOfDataset(datasetId: string, split: SplitName = 'train'): Promise<ShardStore> {
    const row = await this.datasets.findById(datasetId);
    if (!row) throw new NotFoundError(`no dataset ${datasetId}`);
    return this.storeOf(this.bucketOf(row, split));
  }

  /** Deletes a dataset's own buckets (train, and `_eval`); logs, never throws: the dataset is gone either way. */
  private async destroyBucket(own: string, log: Logger): Promise<void> {
    for (const bucket of [own, `${own}_eval`]) {
      try {
        await (await this.storeOf(bucket)).destroy();
        log.info({ bucket }, 'dataset bucket deleted');
      } catch (err) {
        log.error({ err, bucket }, `could not delete the dataset's shard bucket; remove the stream OBJ_${bucket} by hand`);
      } finally {
        this.stores.delete(bucket);
      }
    }
  }

  async importFiles(req: FileImportRequest): Promise<DatasetDetail> {
    const { files, testFiles, ...rest } = req;
    return this.run(
      req.name,
      req.format,
      { ...this.recordedOptions(rest), files: files.map((f) => f.name), testFiles: testFiles?.map((f) => f.name) },
      async (sink, opts) => {
        const srcOpts = { labelColumn: req.labelColumn, maxFileBytes: this.settings.maxFileBytes };
        const open = async (fs: { path: string; name: string }[]) => {
          const named = await fileSources(fs.map((f) => f.path), srcOpts);
          named.forEach((n, i) => (n.name = fs[i].name));
          return openSource(req.format, named, srcOpts);
        };
        const train = await open(files);
        const test = testFiles?.length ? await open(testFiles) : undefined;
        return importDataset({ train, test }, sink, opts);
      },
    );
  }

  async importBuiltin(req: BuiltinImportRequest): Promise<DatasetDetail> {
    return this.run(req.name, 'idx', { ...this.recordedOptions(req), builtin: req.builtin }, (sink, opts) => importMnist(sink, opts));
  }

  private recordedOptions(o: ImportOptionsInput & { name?: string; format?: string; builtin?: string }): Record<string, unknown> {
    return {
      normalise: o.normalise ?? 'scale',
      validationFraction: o.validationFraction ?? 0.1,
      testFraction: o.testFraction,
      seed: o.seed ?? 0,
      shardBytes: o.shardBytes ?? this.settings.shardBytes,
      classes: o.classes,
      labelColumn: o.labelColumn,
    };
  }

  /** Reserves the name, imports, then commits rows, or removes everything it claimed. */
  private async run(
    name: string,
    format: string,
    options: Record<string, unknown>,
    work: (sink: ShardSink, opts: ImportOptions) => Promise<ImportResult>,
  ): Promise<DatasetDetail> {
    // The lease marks the import as running from before its row exists until it has committed
    // or cleaned up; a delete tells a crashed import (lease gone) from a running one by it.
    const id = randomUUID();
    const own = (this.settings.buckets ?? 'per-dataset') === 'per-dataset' ? buckets.datasetShards(id) : null;
    const store = await this.storeOf(own ?? this.sharedBucket);
    const releaseLease = await this.datasets.holdImportLease(id);
    try {
      return await this.runLeased(id, name, format, options, work, store, own);
    } finally {
      await releaseLease();
    }
  }

  private async runLeased(
    id: string,
    name: string,
    format: string,
    options: Record<string, unknown>,
    work: (sink: ShardSink, opts: ImportOptions) => Promise<ImportResult>,
    store: ShardStore,
    ownBucket: string | null,
  ): Promise<DatasetDetail> {
    const row = await this.datasets.insert({ id, name, format, featureShape: [], numClasses: 0, classNames: [], normalisation: {}, options, shardBucket: ownBucket });
    if (!row) {
      if (ownBucket) await this.destroyBucket(ownBucket, this.log);
      throw new ConflictError(`a dataset named ${JSON.stringify(name)} exists`);
    }
    const log = this.log.child({ datasetId: row.id });
    const t0 = performance.now();
    // In the shared bucket, every object this import stores or reuses, claimed before the put
    // (see ShardRepository.claim); a bucket of its own is the import's alone.
    const claimed = new Set<string>();
    const sink: ShardSink = {
      put: async (bytes, split) => {
        if (ownBucket) return (await this.storeOf(this.bucketOf(row, split))).put(bytes);
        const sha256 = sha256Hex(bytes);
        if (!claimed.has(sha256)) {
          await this.shards.claim(row.id, sha256);
          claimed.add(sha256);
        }
        return store.put(bytes);
      },
    };
    try {
      const result = await work(sink, {
        normalise: options.normalise as Normalisation['kind'],
        validationFraction: options.validationFraction as number,
        testFraction: options.testFraction as number | undefined,
        seed: options.seed as number | string,
        shardBytes: options.shardBytes as number,
        classes: options.classes as string[] | undefined,
        tmpDir: this.settings.tmpDir,
      });
      await this.hooks.afterObjectsStored?.(name);
      await this.handle.db.transaction(async (tx) => {
        await this.shards.insertMany(
          result.shards.map((s) => ({ datasetId: row.id, split: s.split, index: s.index, sampleCount: s.sampleCount, bytes: s.bytes, sha256: s.sha256 })),
          tx,
        );
        await this.shards.dropClaims(row.id, tx);
        await this.datasets.update(
          row.id,
          {
            status: 'ready',
            featureShape: result.featureShape,
            featureDtype: result.featureDtype,
            numClasses: result.numClasses,
            classNames: result.classNames,
            normalisation: result.normalisation as unknown as Record<string, unknown>,
            options: { ...options, sourceDtype: result.sourceDtype },
            contentHash: result.contentHash,
            totalBytes: result.totalBytes,
            readyAt: new Date(),
          },
          tx,
        );
      });
      log.info(
        { name, shards: result.shards.length, newShards: result.shardsStored, counts: result.counts, durationMs: Math.round(performance.now() - t0) },
        'dataset imported',
      );
      return this.get(row.id);
    } catch (err) {
      await this.undo(row.id, claimed, store, log);
      if (ownBucket) await this.destroyBucket(ownBucket, log);
      if (err instanceof DatasetFormatError) throw new InvalidArgumentError(err.message, { cause: err });
      throw err;
    }
  }

  /**
   * Removes a failed import's row (its claims go with it), then each object it claimed that no
   * shard row or claim names any more, including one it reused from a dataset deleted meanwhile.
   */
  private async undo(datasetId: string, claimed: ReadonlySet<string>, store: ShardStore, log: Logger): Promise<void> {
    try {
      await this.datasets.delete(datasetId);
      for (const h of claimed) await this.shards.releaseObject(h, (k) => store.delete(k));
    } catch (err) {
      log.error({ err }, 'cleaning up a failed import failed');
    }
  }

  async list(): Promise<DatasetView[]> {
    const [rows, counts] = await Promise.all([this.datasets.list(), this.datasets.splitCounts()]);
    return rows.map((r) => this.view(r, counts.filter((c) => c.datasetId === r.id)));
  }

  async get(id: string): Promise<DatasetDetail> {
    const row = await this.datasets.findById(id);
    if (!row) throw new NotFoundError(`no dataset ${id}`);
    const shardRows = await this.shards.listByDataset(id);
    const splits = Object.fromEntries(SPLITS.map((s) => [s, { samples: 0, shards: [] as ShardView[] }])) as DatasetDetail['splits'];
    for (const s of shardRows) {
      splits[s.split].samples += s.sampleCount;
      splits[s.split].shards.push({ index: s.index, sampleCount: s.sampleCount, bytes: s.bytes, sha256: s.sha256 });
    }
    const counts = SPLITS.map((s) => ({ datasetId: id, split: s, samples: splits[s].samples, shards: splits[s].shards.length }));
    return { ...this.view(row, counts), splits };
  }

  /**
   * A ready dataset's shards of one split in the form `deal()` takes (`index`, `samples`), with
   * each shard's object key and size for the worker's assignment. For the jobs module.
   */
  async shardsForDealing(datasetId: string, split: SplitName = 'train'): Promise<{ index: number; samples: number; sha256: string; bytes: number }[]> {
    const row = await this.datasets.findById(datasetId);
    if (!row) throw new NotFoundError(`no dataset ${datasetId}`);
    if (row.status !== 'ready') throw new FailedPreconditionError(`dataset ${row.name} is ${row.status}, not ready`);
    const rows = await this.shards.listByDataset(datasetId, split);
    return rows.map((r) => ({ index: r.index, samples: r.sampleCount, sha256: r.sha256, bytes: r.bytes }));
  }

  /**
   * Deletes a dataset and the objects no other dataset shares. Refused (409, naming them) while
   * a queued, running or paused job uses it; jobs that have ended keep their history and read
   * `datasetId: null` from then on. Refused (409) while its import runs; the row of an import
   * whose coordinator died (its lease gone) is deleted, releasing the objects it had claimed.
   */
  async delete(id: string): Promise<void> {
    const { name, hashes, own } = await this.handle.db.transaction(async (tx) => {
      const row = await this.datasets.lockById(id, tx);
      if (!row) throw new NotFoundError(`no dataset ${id}`);
      // An import whose lease is gone crashed: deleting its row (and claims) is its cleanup.
      if (row.status === 'importing' && (await this.datasets.importRunning(id, tx))) {
        throw new FailedPreconditionError(`dataset ${row.name} is still importing`);
      }
      const live = await this.datasets.liveJobsUsing(id, tx);
      if (live.length > 0) {
        const names = live.map((j) => `${j.name} (${j.id}, ${j.status})`).join(', ');
        throw new ConflictError(`dataset ${row.name} is used by ${live.length === 1 ? 'a live job' : `${live.length} live jobs`}: ${names}; cancel ${live.length === 1 ? 'it' : 'them'} or wait until ${live.length === 1 ? 'it ends' : 'they end'}`);
      }
      const rows = await this.shards.listByDataset(id, undefined, tx);
      const claimed = await this.datasets.claimedObjects(id, tx);
      await this.datasets.delete(id, tx);
      return { name: row.name, hashes: [...rows.map((s) => s.sha256), ...claimed], own: row.shardBucket };
    });
    if (own) {
      // Its own bucket holds its shards and nothing else's.
      await this.destroyBucket(own, this.log.child({ datasetId: id }));
      this.log.info({ datasetId: id, name, bucket: own }, 'dataset deleted');
      return;
    }
    // After the commit: an object goes only when no shard row and no import's claim names it,
    // decided and removed under the object's lock (an import claims it under the same lock).
    const store = await this.store();
    const unique = [...new Set(hashes)];
    let gone = 0;
    for (const h of unique) if (await this.shards.releaseObject(h, (k) => store.delete(k))) gone++;
    this.log.info({ datasetId: id, name, objectsDeleted: gone, objectsKept: unique.length - gone }, 'dataset deleted');
  }

  private view(r: DatasetRow, counts: { split: SplitName; samples: number }[]): DatasetView {
    const c = Object.fromEntries(SPLITS.map((s) => [s, counts.find((x) => x.split === s)?.samples ?? 0])) as Record<SplitName, number>;
    return {
      id: r.id,
      name: r.name,
      format: r.format,
      status: r.status,
      featureShape: r.featureShape,
      featureDtype: r.featureDtype,
      numClasses: r.numClasses,
      classNames: r.classNames,
      normalisation: r.normalisation,
      options: r.options,
      contentHash: r.contentHash,
      totalBytes: r.totalBytes,
      counts: c,
      shardBucket: this.bucketOf(r),
      evalShardBucket: this.bucketOf(r, 'validation'),
      createdAt: r.createdAt.toISOString(),
      readyAt: r.readyAt?.toISOString() ?? null,
    };
  }
}

