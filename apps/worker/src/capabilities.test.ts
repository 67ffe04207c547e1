import { activateBackend } from '@gradpool/training';
import { describe, expect, it } from 'vitest';
import { AGENT_VERSION, describeOs, detectCapabilities } from './capabilities.js';

describe('detectCapabilities', () => {
  it('reports the backend it loaded and measured', async () => {
    const { capabilities, backend } = await detectCapabilities('wasm');
    expect(backend).toMatchObject({ backend: 'wasm', ok: true });
    expect(capabilities).toMatchObject({ backend: 'wasm', agentVersion: AGENT_VERSION, os: describeOs() });
    expect(capabilities.gflops).toBeGreaterThan(0);
    expect(Number(capabilities.memoryBytes)).toBeGreaterThan(0);
    expect(capabilities.cpuCount).toBeGreaterThan(0);
    expect(capabilities.deviceName.length).toBeGreaterThan(0);
  });

  it('fails with the reason when a named backend cannot load', async (ctx) => {
    const probe = await activateBackend('gpu');
    // tfjs-node-gpu is an optional dependency that does not install on our CI machines.
    if (probe.ok) ctx.skip();
    await expect(detectCapabilities('gpu')).rejects.toMatchObject({ name: 'BackendUnavailableError', backend: 'gpu', reason: probe.reason });
  });
});
