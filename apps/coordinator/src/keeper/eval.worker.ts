/**
 * The keeper's evaluation thread: builds the job's model once (the best TensorFlow.js backend
 * that loads here) and evaluates parameter vectors on batches, so the coordinator's event loop
 * never runs a forward pass.
 */
import { buildModel, selectBackend, type Model } from '@gradpool/training';
import { parentPort } from 'node:worker_threads';
import type { EvalRequest, EvalResponse } from './eval-thread.js';

let ready: Promise<unknown> | null = null;
const models = new Map<string, Promise<Model>>();

parentPort?.on('message', (req: EvalRequest) => {
  void handle(req).then(
    (res) => parentPort?.postMessage(res),
    (err: unknown) => parentPort?.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies EvalResponse),
  );
});

async function handle(req: EvalRequest): Promise<EvalResponse> {
  ready ??= selectBackend('auto');
  await ready;
  let m = models.get(req.specJson);
  if (!m) {
    m = buildModel(JSON.parse(req.specJson));
    models.set(req.specJson, m);
  }
  const model = await m;
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
