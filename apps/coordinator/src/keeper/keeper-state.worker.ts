/**
 * The thread that holds one job's authoritative parameters and optimizer state (keeper-state.ts):
 * optimizer steps, parameter hashes and checkpoint encoding run here, off the coordinator's
 * event loop.
 */
import { parentPort } from 'node:worker_threads';
import { InlineKeeperState, type KeeperStateRequest, type KeeperStateResponse } from './keeper-state.js';

let state: InlineKeeperState | null = null;

parentPort?.on('message', (req: KeeperStateRequest) => {
  try {
    const [res, transfer] = handle(req);
    parentPort?.postMessage(res, transfer);
  } catch (err) {
    parentPort?.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies KeeperStateResponse);
  }
});

function handle(req: KeeperStateRequest): [KeeperStateResponse, ArrayBuffer[]] {
  if (req.op === 'open') {
    state = InlineKeeperState.create(req.optimizer, req.checkpoint ? { checkpoint: new Uint8Array(req.checkpoint) } : { params: new Float32Array(req.params!) });
    return [{ id: req.id, paramCount: state.paramCount }, []];
  }
  if (!state) throw new Error('the keeper state is not open');
  switch (req.op) {
    case 'step':
      return [{ id: req.id, info: state.stepNow(new Float32Array(req.mean), req.round) }, []];
    case 'hash':
      return [{ id: req.id, hash: state.hashNow() }, []];
    case 'checkpoint': {
      const { bytes, hash } = state.checkpointNow(req.round, req.meta);
      const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : bytes.slice().buffer;
      return [{ id: req.id, bytes: buffer, hash }, [buffer]];
    }
    case 'params': {
      const copy = state.paramsNow().slice().buffer;
      return [{ id: req.id, params: copy }, [copy]];
    }
  }
}
