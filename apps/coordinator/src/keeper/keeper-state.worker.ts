/**
 * The thread that holds one job's authoritative parameters and optimizer state and watches its
 * data plane (keeper-state.ts): restoring and replaying, decoding the gathers, the owner audit,
 * optimizer steps, parameter hashes, encoding and storing checkpoints and publishing the
 * committed updates run here, on a NATS connection of this thread's own, off the coordinator's
 * event loop.
 */
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import { InlineKeeperState, type KeeperStateEvent, type KeeperStateRequest, type KeeperStateResponse } from './keeper-state.js';

let state: InlineKeeperState | null = null;
let nc: NatsConnection | null = null;
let closing = false;

const post = (m: KeeperStateResponse | KeeperStateEvent, transfer: ArrayBuffer[] = []) => parentPort?.postMessage(m, transfer);

const answer = async (req: KeeperStateRequest, work: () => Promise<[KeeperStateResponse, ArrayBuffer[]]>) => {
  try {
    const [res, transfer] = await work();
    post(res, transfer);
  } catch (err) {
    post({ id: req.id, error: err instanceof Error ? err.message : String(err) });
  }
};

// Requests that touch the state run one at a time, in order (a step after the watch is up, a
// snapshot after the step before it). Two do not wait in that line: a roster for the audit,
// and storing a snapshot already taken (an upload must not hold the next steps).
let queue: Promise<void> = Promise.resolve();
parentPort?.on('message', (req: KeeperStateRequest) => {
  if (req.op === 'epoch') {
    state?.setEpoch(req.epoch);
    return post({ id: req.id });
  }
  if (req.op === 'storeSnapshot') {
    void answer(req, async () => {
      if (!state) throw new Error('the keeper state is not open');
      const { bytes, sha256 } = await state.storeSnapshot(req.round, req.at);
      return [{ id: req.id, size: bytes, sha256 }, []];
    });
    return;
  }
  queue = queue.then(() => answer(req, () => handle(req)));
});

async function handle(req: KeeperStateRequest): Promise<[KeeperStateResponse, ArrayBuffer[]]> {
  if (req.op === 'open') {
    if (req.servers) {
      const conn = await connect({
        servers: req.servers,
        ...(req.credsFile ? { authenticator: credsAuthenticator(readFileSync(req.credsFile)) } : {}),
        name: 'gradpool-keeper',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        timeout: 5000,
      });
      nc = conn;
      void conn.closed().then((err) => {
        if (!closing) post({ event: 'failed', error: `the keeper's NATS connection closed${err ? `: ${err.message}` : ''}` });
      });
    }
    const source = req.stored ? { stored: req.stored } : req.checkpoint ? { checkpoint: new Uint8Array(req.checkpoint) } : { params: new Float32Array(req.params!) };
    state = await InlineKeeperState.open(req.optimizer, source, nc);
    return [{ id: req.id, paramCount: state.paramCount }, []];
  }
  if (req.op === 'close') {
    closing = true;
    await state?.close();
    await nc?.close().catch(() => undefined);
    process.exit(0);
  }
  if (!state) throw new Error('the keeper state is not open');
  switch (req.op) {
    case 'step':
      return [{ id: req.id, info: state.stepNow(new Float32Array(req.mean), req.round) }, []];
    case 'replay':
      return [{ id: req.id, count: await state.replay(req.jobId, req.from, req.to) }, []];
    case 'hash':
      return [{ id: req.id, hash: state.hashNow() }, []];
    case 'checkpoint': {
      const { bytes, hash } = state.checkpointNow(req.round, req.meta);
      const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : bytes.slice().buffer;
      return [{ id: req.id, bytes: buffer, hash }, [buffer]];
    }
    case 'snapshot': {
      const { bytes, hash } = state.snapshotNow(req.round, req.meta);
      return [{ id: req.id, size: bytes, hash }, []];
    }
    case 'params': {
      const copy = state.paramsNow().slice().buffer;
      return [{ id: req.id, params: copy }, [copy]];
    }
    case 'watch':
      state.watchNow(req.settings, {
        onRound: (round) => post({ event: 'round', round }),
        onAudit: (result) => post({ event: 'audit', result }),
      });
      // The subscriptions are on the server before the keeper lets any member start.
      await nc?.flush();
      return [{ id: req.id }, []];
    case 'stepObserved':
      return [{ id: req.id, info: state.stepObservedNow(req.epoch, req.round) }, []];
    case 'publishObserved':
      await state.publishObserved(req.round, req.hash, req.dataState);
      return [{ id: req.id }, []];
    default:
      throw new Error(`unknown request ${(req as { op: string }).op}`);
  }
}
