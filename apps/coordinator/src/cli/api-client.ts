/** A small client of the coordinator's REST API for the admin CLI. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { EventSourceParserStream } from 'eventsource-parser/stream';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A failed API call: the status and the server's message. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly key: string | undefined,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.key ? { authorization: `Bearer ${this.key}` } : {}), ...extra };
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method, headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    return this.send<T>(path, init);
  }

  /**
   * The id of the `kind` named `ref` in the list at `listPath` (a dataset, a job, a group, a
   * worker), or `ref` itself when it is an id. A name that several share is refused.
   */
  async resolve(listPath: string, kind: string, ref: string): Promise<string> {
    if (UUID.test(ref)) return ref;
    const hits = (await this.request<{ id: string; name: string }[]>('GET', listPath)).filter((x) => x.name === ref);
    if (hits.length === 0) throw new ApiError(`no ${kind} named ${JSON.stringify(ref)}`, 404);
    if (hits.length > 1) throw new ApiError(`${hits.length} ${kind}s are named ${JSON.stringify(ref)}: give the id (${hits.map((h) => h.id).join(', ')})`, 409);
    return hits[0].id;
  }

  /**
   * Server-sent events of `path` (`GET /v1/jobs/:id/events`), parsed, until the stream ends or
   * `signal` aborts.
   */
  async *events(path: string, signal?: AbortSignal): AsyncGenerator<{ event?: string; data: string }> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), { headers: this.headers({ accept: 'text/event-stream' }), signal });
    } catch (err) {
      if (signal?.aborted) return;
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new ApiError(`cannot reach the coordinator at ${this.baseUrl} (--api / GRADPOOL_API): ${cause}`, 0);
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      let msg = text || res.statusText;
      try {
        msg = (JSON.parse(text) as { message?: string }).message ?? msg;
      } catch {
        // not JSON: the text itself
      }
      throw new ApiError(`${msg} (HTTP ${res.status})`, res.status);
    }
    const stream = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
    try {
      for await (const m of stream) yield { event: m.event, data: m.data };
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
  }

  /** Streams a file to `POST /v1/datasets/uploads`; returns its upload id. */
  async upload(path: string): Promise<{ uploadId: string; bytes: number }> {
    const s = await stat(path);
    if (!s.isFile()) throw new ApiError(`${path} is not a file`, 0);
    const init: RequestInit & { duplex: 'half' } = {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/octet-stream', 'content-length': String(s.size) }),
      body: Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>,
      duplex: 'half',
    };
    return this.send(`/v1/datasets/uploads?name=${encodeURIComponent(basename(path))}`, init);
  }

  private async send<T>(path: string, init: RequestInit): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), init);
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new ApiError(`cannot reach the coordinator at ${this.baseUrl} (--api / GRADPOOL_API): ${cause}`, 0);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const msg = (json as { message?: string } | undefined)?.message ?? (text || res.statusText);
      throw new ApiError(`${msg} (HTTP ${res.status})`, res.status);
    }
    return json as T;
  }
}
