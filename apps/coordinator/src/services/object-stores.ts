/** A connection's JetStream object stores, opened once per bucket (a failed open is tried again next time). */
import type { NatsConnection, ObjectStore } from 'nats';

export class ObjectStores {
  private readonly stores = new Map<string, Promise<ObjectStore>>();
  constructor(private readonly nc: NatsConnection) {}

  of(bucket: string): Promise<ObjectStore> {
    let s = this.stores.get(bucket);
    if (!s) {
      s = this.nc.jetstream().views.os(bucket);
      s.catch(() => this.stores.delete(bucket));
      this.stores.set(bucket, s);
    }
    return s;
  }

  /** Forgets a bucket (after it was destroyed). */
  forget(bucket: string): void {
    this.stores.delete(bucket);
  }
}
