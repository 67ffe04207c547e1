/**
 * Staged uploads: a file's bytes are streamed to a temp file on the coordinator's disk (never
 * held in memory), then named by id in an import request. IDX and NPY need two files read in
 * lockstep, which one request body cannot give; staging also lets the import re-read a file.
 * Uploads live on the replica that received them (the CLI sends the import right after).
 */
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { limitBytes } from '@gradpool/datasets';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DatasetFormatError } from '@gradpool/datasets';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import { LOGGER } from '../tokens.js';
import { DATASET_SETTINGS, type DatasetSettings } from './dataset.service.js';
import { shutdownPart } from '../shutdown.js';

interface Upload {
  path: string;
  name: string;
  bytes: number;
  createdAt: number;
}

export interface UploadView {
  uploadId: string;
  name: string;
  bytes: number;
}

@Injectable()
export class DatasetUploadService implements OnModuleDestroy {
  private readonly uploads = new Map<string, Upload>();
  private dir: Promise<string> | undefined;
  private readonly log: Logger;

  constructor(
    @Inject(DATASET_SETTINGS) private readonly settings: DatasetSettings,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.log = logger.child({ component: 'dataset-uploads' });
  }

  private uploadDir(): Promise<string> {
    this.dir ??= mkdir(this.settings.tmpDir, { recursive: true }).then(() => mkdtemp(join(this.settings.tmpDir, 'gp-uploads-')));
    return this.dir;
  }

  /** Streams `body` to a temp file; fails (and removes it) past the size limit or when empty. */
  async receive(body: AsyncIterable<Uint8Array>, name: string): Promise<UploadView> {
    await this.sweep();
    const uploadId = randomUUID();
    const path = join(await this.uploadDir(), uploadId);
    let bytes = 0;
    async function* count(src: AsyncIterable<Uint8Array>) {
      for await (const chunk of src) {
        bytes += chunk.byteLength;
        yield chunk;
      }
    }
    try {
      await pipeline(Readable.from(count(limitBytes(body, this.settings.maxFileBytes, name))), createWriteStream(path));
    } catch (err) {
      await rm(path, { force: true });
      if (err instanceof DatasetFormatError) throw new InvalidArgumentError(err.message, { cause: err });
      throw err;
    }
    if (bytes === 0) {
      await rm(path, { force: true });
      throw new InvalidArgumentError(`${name} is empty`);
    }
    this.uploads.set(uploadId, { path, name, bytes, createdAt: Date.now() });
    this.log.debug({ uploadId, bytes }, 'upload received');
    return { uploadId, name, bytes };
  }

  /** Claims uploads for an import: they are removed when `release` is called. */
  claim(ids: readonly string[], field: string): { path: string; name: string }[] {
    const out = ids.map((id, i) => {
      const u = this.uploads.get(id);
      if (!u) throw new NotFoundError(`${field}.${i}: no upload ${id} (uploads expire, and live on the coordinator that received them)`);
      return u;
    });
    for (const id of ids) this.uploads.delete(id);
    return out.map((u) => ({ path: u.path, name: u.name }));
  }

  async release(files: readonly { path: string }[]): Promise<void> {
    for (const f of files) await rm(f.path, { force: true });
  }

  private async sweep(): Promise<void> {
    const cutoff = Date.now() - this.settings.uploadTtlMs;
    for (const [id, u] of this.uploads) {
      if (u.createdAt < cutoff) {
        this.uploads.delete(id);
        await rm(u.path, { force: true });
      }
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.dir) await shutdownPart('upload directory removal', async () => rm(await this.dir!, { recursive: true, force: true }));
  }
}
