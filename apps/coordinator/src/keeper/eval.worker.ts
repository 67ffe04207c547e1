/**
 * The keeper's evaluation thread: builds the job's model once (the best TensorFlow.js backend
 * that loads here), evaluates parameter vectors on batches and exports them as TF.js models, so
 * the coordinator's event loop never runs a forward pass or decodes a tensor.
 */
import { buildModel, decodeCheckpoint, selectBackend, type Model } from '@gradpool/training';
import { parentPort } from 'node:worker_threads';
import type { EvalRequest, EvalResponse, ExportRequest } from './eval-thread.js';
import { exportModelJson } from './model-export.js';

let ready: Promise<unknown> | null = null;
const models = new Map<string, Promise<Model>>();

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
  const params = new Float32Array(req.params);
  const x = new Float32Array(req.features);
  const y = new Int32Array(req.labels);
  const dim = x.length / Math.max(1, y.length);
  let lossSum = 0;
  let correct = 0;
  let hasAcc = true;
  for (let i = 0; i < req.count; i += req.batch) {
    const n = Math.min(req.batch, req.count - i);
    const r = model.evaluate(params, { x: x.subarray(i * dim, (i + n) * dim), y: y.subarray(i, i + n), n });
    lossSum += r.loss * n;
    if (r.correct !== undefined) correct += r.correct;
    else if (r.accuracy !== undefined) correct += r.accuracy * n;
    else hasAcc = false;
  }
  return { id: req.id, lossSum, correct: hasAcc ? correct : null, samples: req.count };
}
