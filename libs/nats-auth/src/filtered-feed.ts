/**
 * Reading a JetStream stream the way a limited NATS user may: a push consumer whose name and
 * filter are in the create subject (`$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`), so a
 * permission on that subject holds the reader to the subjects it names (permissions.ts). nats.js'
 * ordered consumers and payload-form direct gets name no filter in their subject, so no permission
 * can limit them. The worker reads the keeper's updates and dataset shards this way (for shards
 * about as fast as a direct get per chunk: docs/bench/datasets.md).
 */
import { AckPolicy, createInbox, DeliverPolicy, nanos, nuid, type Msg, type NatsConnection, type Subscription } from 'nats';
import { retryNats, type NatsRetryOptions } from './nats-retry.js';

export interface FilteredFeed {
  /** The consumer's deliveries: messages, and heartbeats / flow-control requests (`isStatusMessage`). */
  sub: Subscription;
  /** Messages the consumer had to deliver when it was created. */
  pending: number;
  /** Unsubscribes and deletes the consumer (it would expire by itself after a minute idle). */
  close(): Promise<void>;
}

export interface FilteredFeedOptions extends Omit<NatsRetryOptions, 'cleanup'> {
  /** How long the consumer create may take before it times out (nats.js' default: 5 s). */
  timeoutMs?: number;
}

/**
 * A push consumer on `stream` filtered to `filter` (one subject, wildcards allowed), delivered to
 * an inbox of `nc`. A create that fails transiently (timed out, no responders) is retried
 * (`retryNats`) with a new consumer and inbox: a create whose reply was lost may have made its
 * consumer and begun delivering, so its pending count would no longer be the whole. The failed
 * attempt's consumer is deleted (or expires after a minute idle).
 */
export async function openFilteredFeed(
  nc: NatsConnection,
  stream: string,
  filter: string,
  deliver: DeliverPolicy = DeliverPolicy.All,
  opts: FilteredFeedOptions = {},
): Promise<FilteredFeed> {
  const { timeoutMs, ...retry } = opts;
  const jsm = await nc.jetstreamManager({ checkAPI: false, ...(timeoutMs ? { timeout: timeoutMs } : {}) });
  // A limited user may subscribe to its own inbox prefix only (permissions.ts).
  const inboxPrefix = (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
  let failed: string | null = null;
  return retryNats(
    async () => {
      const inbox = createInbox(inboxPrefix);
      const sub = nc.subscribe(inbox);
      const name = `feed_${nuid.next()}`;
      try {
        const info = await jsm.consumers.add(stream, {
          name,
          filter_subject: filter,
          deliver_subject: inbox,
          deliver_policy: deliver,
          ack_policy: AckPolicy.None,
          flow_control: true,
          idle_heartbeat: nanos(5000),
          inactive_threshold: nanos(60_000),
          mem_storage: true,
          num_replicas: 1,
        });
        return {
          sub,
          pending: info.num_pending,
          close: async () => {
            sub.unsubscribe();
            await jsm.consumers.delete(stream, name).catch(() => undefined);
          },
        };
      } catch (err) {
        sub.unsubscribe();
        failed = name;
        throw err;
      }
    },
    {
      ...retry,
      cleanup: () => {
        if (failed) void jsm.consumers.delete(stream, failed).catch(() => undefined);
        failed = null;
      },
    },
  );
}

/** A heartbeat or flow-control request of a push consumer (answered here), not a stream message. */
export function isStatusMessage(nc: NatsConnection, m: Msg): boolean {
  if (m.data.byteLength > 0 || m.headers?.code !== 100) return false;
  if (m.reply) m.respond();
  const stalled = m.headers.get('Nats-Consumer-Stalled');
  if (stalled) nc.publish(stalled);
  return true;
}
