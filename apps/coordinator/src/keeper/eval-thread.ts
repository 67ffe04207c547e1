/**
 * A worker thread that evaluates and exports models for the keeper and the jobs API
 * (eval.worker.ts), so the coordinator's event loop never runs TensorFlow.js. Only where the built
 * worker file exists (the built coordinator); running from sources (tests), `EvalThread.start`
 * returns null and the callers do it inline.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { startThread } from './thread.js';

export interface EvalRequest {
  id: number;
  kind: 'evaluate';
  /** JSON of the validated model spec (the model is built once per spec). */
  specJson: string;
  params: ArrayBuffer;
  /**
   * The evaluation set, decoded and kept by the thread under `key` (a dataset's split never
   * changes): its shards' bytes (`encodeShard` format) the first time; without them the thread
   * uses what it keeps, or answers `missingData` (never sent, or evicted) and the caller resends
   * them.
   */
  data: { key: string; shards?: ArrayBuffer[] };
  batch: number;
}

/** Export of a parameter vector, or of a checkpoint's (decoded in the thread), as a TF.js model (`exportModelJson`). */
export interface ExportRequest {
  id: number;
  kind: 'export';
  specJson: string;
  source: { params: ArrayBuffer; round: number } | { checkpoint: ArrayBuffer };
}

export interface EvalResponse {
  id: number;
  /** For an export: the JSON of `exportModelJson`. */
  json?: string;
  lossSum?: number;
  correct?: number | null;
  samples?: number;
  /** The thread does not hold the evaluation set of `data.key`: send it with its shards. */
  missingData?: boolean;
  error?: string;
}

export class EvalThread {
  private next = 1;
  /** Why the thread is gone (it exited or failed to load); every later request fails at once. */
  failed: Error | null = null;
  private readonly pending = new Map<number, { resolve: (r: EvalResponse) => void; reject: (e: Error) => void }>();

  private constructor(private readonly worker: Worker) {
    worker.on('message', (res: EvalResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (res.error) p.reject(new Error(res.error));
      else p.resolve(res);
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => this.failAll(new Error('evaluation thread exited')));
    worker.unref();
  }

  /** Starts the thread, or returns null where the built worker file (or `workerUrl`) is absent. */
  static start(workerUrl?: URL): EvalThread | null {
    const url = workerUrl ?? new URL('./eval.worker.js', import.meta.url);
    if (url.protocol !== 'file:' || !existsSync(fileURLToPath(url))) return null;
    return new EvalThread(startThread(url));
  }

  evaluate(req: Omit<EvalRequest, 'id' | 'kind'>): Promise<EvalResponse> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, kind: 'evaluate', id } satisfies EvalRequest, [req.params, ...(req.data.shards ?? [])]);
    });
  }

  /** The TF.js model JSON of a parameter vector or a checkpoint (its buffer is transferred: detached here). */
  async exportModel(req: Omit<ExportRequest, 'id' | 'kind'>): Promise<Record<string, unknown>> {
    if (this.failed) throw this.failed;
    const id = this.next++;
    const buffer = 'params' in req.source ? req.source.params : req.source.checkpoint;
    const res = await new Promise<EvalResponse>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, kind: 'export', id } satisfies ExportRequest, [buffer]);
    });
    return JSON.parse(res.json!) as Record<string, unknown>;
  }

  private failAll(err: Error): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
