/**
 * The keeper's evaluation thread: builds the job's model once (the best TensorFlow.js backend
 * that loads here), evaluates parameter vectors on batches and exports them as TF.js models, so
 * the coordinator's event loop never runs a forward pass or decodes a tensor.
 */
import { decodeShard } from '@gradpool/datasets';
import { buildModel, decodeCheckpoint, selectBackend, type Model } from '@gradpool/training';
import { parentPort } from 'node:worker_threads';
import type { EvalRequest, EvalResponse, ExportRequest } from './eval-thread.js';
import { exportModelJson } from './model-export.js';

let ready: Promise<unknown> | null = null;
const models = new Map<string, Promise<Model>>();

interface EvalSet {
  x: Float32Array;
  y: Int32Array;
  count: number;
  dim: number;
}
/** Decoded evaluation sets by key, least recently used first; at most EVAL_SETS are kept. */
const evalSets = new Map<string, EvalSet>();
const EVAL_SETS = 4;

/** Decodes and concatenates a split's shards (their order is the split's). */
function decodeEvalSet(shards: ArrayBuffer[]): EvalSet {
  const decoded = shards.map((b) => decodeShard(new Uint8Array(b)));
  const count = decoded.reduce((a, sh) => a + sh.count, 0);
  const dim = decoded[0]?.dim ?? 0;
  if (decoded.some((sh) => sh.dim !== dim)) throw new Error('evaluation shards of different sample sizes');
  const x = new Float32Array(count * dim);
  const y = new Int32Array(count);
  let at = 0;
  for (const sh of decoded) {
    x.set(sh.features.subarray(0, sh.count * dim), at * dim);
    y.set(sh.labels.subarray(0, sh.count), at);
    at += sh.count;
  }
  return { x, y, count, dim };
}

function evalSetOf(data: EvalRequest['data']): EvalSet | null {
  let set = evalSets.get(data.key);
  if (data.shards) set = decodeEvalSet(data.shards);
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
  const params = new Float32Array(req.params);
  const { x, y, dim } = set;
  let lossSum = 0;
  let correct = 0;
  let hasAcc = true;
  for (let i = 0; i < set.count; i += req.batch) {
    const n = Math.min(req.batch, set.count - i);
    const r = model.evaluate(params, { x: x.subarray(i * dim, (i + n) * dim), y: y.subarray(i, i + n), n });
    lossSum += r.loss * n;
    if (r.correct !== undefined) correct += r.correct;
    else if (r.accuracy !== undefined) correct += r.accuracy * n;
    else hasAcc = false;
  }
  return { id: req.id, lossSum, correct: hasAcc ? correct : null, samples: set.count };
}
