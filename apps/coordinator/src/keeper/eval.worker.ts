/**
 * The keeper's evaluation thread: builds the job's model once (the best TensorFlow.js backend
 * that loads here), evaluates parameter vectors on batches and exports them as TF.js models, so
 * the coordinator's event loop never runs a forward pass or decodes a tensor.
 */
import { buildModel, decodeCheckpoint, selectBackend, type Model } from '@gradpool/training';
import { parentPort } from 'node:worker_threads';
import type { EvalRequest, EvalResponse, ExportRequest } from './eval-thread.js';
import { decodeEvalSet, evaluateSet, type EvalSet } from './eval-set.js';
import { exportModelJson } from './model-export.js';

let ready: Promise<unknown> | null = null;
const models = new Map<string, Promise<Model>>();

/** Decoded evaluation sets by key, least recently used first; at most EVAL_SETS are kept. */
const evalSets = new Map<string, EvalSet>();
const EVAL_SETS = 4;

function evalSetOf(data: EvalRequest['data']): EvalSet | null {
  let set = evalSets.get(data.key);
  if (data.shards) set = decodeEvalSet(data.shards.map((b) => new Uint8Array(b)));
  if (!set) return null;
  evalSets.delete(data.key);
  evalSets.set(data.key, set);
  while (evalSets.size > EVAL_SETS) evalSets.delete(evalSets.keys().next().value!);
  return set;
}

parentPort?.on('message', (req: EvalRequest | ExportRequest) => {
  void handle(req).then(
    (res) => parentPort?.postMessage(res),
    (err: unknown) => parentPort?.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies EvalResponse),
  );
});

async function handle(req: EvalRequest | ExportRequest): Promise<EvalResponse> {
  ready ??= selectBackend('auto');
  await ready;
  let m = models.get(req.specJson);
  if (!m) {
    m = buildModel(JSON.parse(req.specJson));
    models.set(req.specJson, m);
  }
  const model = await m;
  if (req.kind === 'export') {
    const { params, round } = 'params' in req.source ? { params: new Float32Array(req.source.params), round: req.source.round } : decodeCheckpoint(new Uint8Array(req.source.checkpoint));
    return { id: req.id, json: JSON.stringify(await exportModelJson(model, params, round)) };
  }
  const set = evalSetOf(req.data);
  if (!set) return { id: req.id, missingData: true };
  const { lossSum, correct } = await evaluateSet(model, new Float32Array(req.params), set, req.batch);
  return { id: req.id, lossSum, correct, samples: set.count };
}
