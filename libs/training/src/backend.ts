/**
 * Compute-backend selection (shared/DESIGN.md "Models"): best first
 * `gpu` (@tensorflow/tfjs-node-gpu, CUDA), `node` (@tensorflow/tfjs-node), `wasm`
 * (@tensorflow/tfjs-backend-wasm), `cpu` (pure JS). The native ones are optional dependencies
 * whose install downloads libtensorflow; where they are missing or fail to load we say why and
 * fall back.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';

export type BackendName = 'gpu' | 'node' | 'wasm' | 'cpu';
export type BackendPreference = BackendName | 'auto';
export const BACKEND_ORDER: readonly BackendName[] = ['gpu', 'node', 'wasm', 'cpu'];

export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
  constructor(
    readonly backend: BackendName,
    readonly reason: string,
  ) {
    super(`backend ${backend} is not available: ${reason}`);
  }
}

export interface BackendProbe {
  backend: BackendName;
  ok: boolean;
  /** Why it could not be loaded (when !ok). */
  reason?: string;
  /** TensorFlow.js backend name registered for it ('tensorflow', 'wasm', 'cpu'). */
  tfName?: string;
}

const require = createRequire(import.meta.url);

/** Requires a native binding package; the native ones register the 'tensorflow' backend. */
function loadNative(pkg: string): string {
  require(pkg);
  return 'tensorflow';
}

async function register(backend: BackendName): Promise<string> {
  switch (backend) {
    case 'gpu':
      return loadNative('@tensorflow/tfjs-node-gpu');
    case 'node':
      return loadNative('@tensorflow/tfjs-node');
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      return 'wasm';
    case 'cpu':
      return 'cpu';
  }
}

function describe(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/Cannot find module|ERR_MODULE_NOT_FOUND/.test(msg)) return 'package not installed (optional dependency; its install needs to download libtensorflow)';
  return msg.split('\n')[0];
}

/** Tries to load and initialise `backend` and makes it the active TensorFlow.js backend. */
export async function activateBackend(backend: BackendName): Promise<BackendProbe> {
  try {
    const tfName = await register(backend);
    if (!(await tf.setBackend(tfName))) throw new Error(`tf.setBackend('${tfName}') failed`);
    await tf.ready();
    if (backend === 'gpu') {
      // tfjs-node-gpu falls back to CPU silently when CUDA is absent; insist on a GPU device.
      const gpus = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice;
      if (gpus === false) throw new Error('tfjs-node-gpu loaded but found no CUDA device');
    }
    return { backend, ok: true, tfName };
  } catch (err) {
    return { backend, ok: false, reason: describe(err) };
  }
}

export interface SelectedBackend extends BackendProbe {
  ok: true;
  /** Backends tried before this one, with the reason each failed. */
  skipped: BackendProbe[];
}

/**
 * Activates the preferred backend, or with `auto` the best one that loads.
 * A named backend that fails throws BackendUnavailableError (the user asked for it).
 */
export async function selectBackend(pref: BackendPreference = 'auto'): Promise<SelectedBackend> {
  if (pref !== 'auto') {
    const probe = await activateBackend(pref);
    if (!probe.ok) throw new BackendUnavailableError(pref, probe.reason ?? 'unknown');
    return { ...probe, ok: true, skipped: [] };
  }
  const skipped: BackendProbe[] = [];
  for (const b of BACKEND_ORDER) {
    const probe = await activateBackend(b);
    if (probe.ok) return { ...probe, ok: true, skipped };
    skipped.push(probe);
  }
  throw new BackendUnavailableError('cpu', 'no TensorFlow.js backend could be loaded');
}

/**
 * Measures the active backend's matmul rate: GFLOP/s of an n×n×n float32 matmul
 * (2n³ flops), best of `reps` after one warm-up.
 */
export async function measureMatmulGflops(n = 512, reps = 3): Promise<number> {
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 1);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 2);
  try {
    let best = Infinity;
    for (let i = 0; i <= reps; i++) {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
      const dt = performance.now() - t0;
      if (i > 0) best = Math.min(best, dt);
    }
    return (2 * n ** 3) / (best / 1000) / 1e9;
  } finally {
    a.dispose();
    b.dispose();
  }
}
