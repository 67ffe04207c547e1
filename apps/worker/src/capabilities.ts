/**
 * What this machine can do, measured at start and sent with Register (worker.proto
 * `Capabilities`): the backend actually loaded, the device, memory, a matmul GFLOP/s, the
 * agent's version and the OS.
 */
import type { Capabilities__Output } from '@gradpool/protocol';
import { measureMatmulGflops, selectBackend, type BackendPreference, type SelectedBackend } from '@gradpool/training';
import { execFile } from 'node:child_process';
import os from 'node:os';
import { AGENT_VERSION } from './version.js';

export { AGENT_VERSION };

export interface DetectedCapabilities {
  capabilities: Capabilities__Output;
  backend: SelectedBackend;
}

/** `linux x64 6.1.0`-style description of the OS. */
export function describeOs(): string {
  return `${os.platform()} ${os.arch()} ${os.release()}`;
}

export function cpuModel(): string {
  const model = os.cpus()[0]?.model?.trim();
  return model && model.length > 0 ? model : `${os.arch()} CPU`;
}

/** Name of the first CUDA GPU, from nvidia-smi (bounded by a deadline); undefined when unknown. */
export function gpuName(timeoutMs = 3_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { timeout: timeoutMs }, (err, stdout) => {
      const first = err ? undefined : stdout.split('\n')[0]?.trim();
      resolve(first ? first : undefined);
    });
  });
}

/**
 * Loads the preferred backend (`auto`: the best that loads) and measures it.
 * Throws BackendUnavailableError when a named backend cannot be loaded.
 */
export async function detectCapabilities(preference: BackendPreference): Promise<DetectedCapabilities> {
  const backend = await selectBackend(preference);
  const gflops = await measureMatmulGflops();
  const deviceName = backend.backend === 'gpu' ? ((await gpuName()) ?? 'CUDA GPU') : cpuModel();
  return {
    backend,
    capabilities: {
      backend: backend.backend,
      deviceName,
      // Training runs in host memory on every backend but `gpu`; report what the host has.
      memoryBytes: String(os.totalmem()),
      gflops: Math.round(gflops * 100) / 100,
      agentVersion: AGENT_VERSION,
      os: describeOs(),
      cpuCount: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    },
  };
}
