/** The gRPC client of the coordinator's WorkerService. */
import * as grpc from '@grpc/grpc-js';
import { GRPC_CHANNEL_OPTIONS, loadWorkerProto, type WorkerServiceClient } from '@gradpool/protocol';

/**
 * Channel options of the worker: the shared ones, plus a bounded reconnect backoff. grpc-js
 * otherwise grows its own backoff up to 2 minutes, during which our calls fail fast and the
 * agent's reconnect loop (capped near 10 s) could not get through to a coordinator that is back.
 */
export const WORKER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...GRPC_CHANNEL_OPTIONS,
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 5_000,
};

export interface WorkerClientOptions {
  /** Plaintext (no TLS): local coordinators and tests. */
  insecure: boolean;
}

export type WorkerClientFactory = () => WorkerServiceClient;

/** A factory of clients for the coordinator at `address` (`host:port`). */
export function workerClientFactory(address: string, options: WorkerClientOptions): WorkerClientFactory {
  return () => {
    const { WorkerService } = loadWorkerProto().gradpool.v1;
    const credentials = options.insecure ? grpc.credentials.createInsecure() : grpc.credentials.createSsl();
    return new WorkerService(address, credentials, WORKER_CHANNEL_OPTIONS);
  };
}
