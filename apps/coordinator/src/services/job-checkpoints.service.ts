/** The object store side of checkpoints and exported models (bytes; metadata rows elsewhere). */
import { Inject, Injectable } from '@nestjs/common';
import { buckets } from '@gradpool/protocol';
import type { NatsConnection, ObjectStore } from 'nats';
import { NATS } from '../tokens.js';
import { ObjectStores } from './object-stores.js';

/** Object key of the checkpoint whose next round is `round` (docs/jobs-protocol.md). */
export function checkpointKey(round: number): string {
  return `round-${round}`;
}

@Injectable()
export class JobCheckpointsService {
  private readonly stores: ObjectStores;

  constructor(@Inject(NATS) private readonly nc: NatsConnection) {
    this.stores = new ObjectStores(nc);
  }

  private store(bucket: string): Promise<ObjectStore> {
    return this.stores.of(bucket);
  }

  async put(jobId: string, round: number, bytes: Uint8Array): Promise<{ bucket: string; key: string }> {
    const bucket = buckets.checkpoints(jobId);
    const key = checkpointKey(round);
    await (await this.store(bucket)).putBlob({ name: key }, bytes);
    return { bucket, key };
  }

  async get(bucket: string, key: string): Promise<Uint8Array | null> {
    return (await this.store(bucket)).getBlob(key);
  }

  /** Removes a job's checkpoint bucket (nothing written survives a refused submission). */
  async destroy(jobId: string): Promise<void> {
    const bucket = buckets.checkpoints(jobId);
    this.stores.forget(bucket);
    await this.nc
      .jetstream()
      .views.os(bucket)
      .then((os) => os.destroy())
      .catch(() => undefined);
  }

  /** Stores the exported model (JSON) under the job id in `buckets.models`. */
  async putModel(jobId: string, json: string): Promise<{ bucket: string; key: string }> {
    await (await this.store(buckets.models)).putBlob({ name: jobId }, new TextEncoder().encode(json));
    return { bucket: buckets.models, key: jobId };
  }

  /** A finished job's stored export (JSON bytes), or null. */
  async getModel(jobId: string): Promise<Uint8Array | null> {
    return (await this.store(buckets.models)).getBlob(jobId).catch(() => null);
  }
}
