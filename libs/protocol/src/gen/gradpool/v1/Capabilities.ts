// Original file: gradpool/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

/**
 * What a worker can do, measured by the agent at start.
 */
export interface Capabilities {
  /**
   * Compute backend actually loaded: "gpu" (tfjs-node-gpu), "node" (tfjs-node), "wasm", "cpu".
   */
  'backend'?: (string);
  'deviceName'?: (string);
  /**
   * Memory available to training, bytes.
   */
  'memoryBytes'?: (number | string | Long);
  /**
   * Measured by a short matmul benchmark on `backend`.
   */
  'gflops'?: (number | string);
  'agentVersion'?: (string);
  /**
   * e.g. "linux x64 6.1.0".
   */
  'os'?: (string);
  'cpuCount'?: (number);
}

/**
 * What a worker can do, measured by the agent at start.
 */
export interface Capabilities__Output {
  /**
   * Compute backend actually loaded: "gpu" (tfjs-node-gpu), "node" (tfjs-node), "wasm", "cpu".
   */
  'backend': (string);
  'deviceName': (string);
  /**
   * Memory available to training, bytes.
   */
  'memoryBytes': (string);
  /**
   * Measured by a short matmul benchmark on `backend`.
   */
  'gflops': (number);
  'agentVersion': (string);
  /**
   * e.g. "linux x64 6.1.0".
   */
  'os': (string);
  'cpuCount': (number);
}
