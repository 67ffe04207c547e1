/**
 * A TCP proxy that paces each direction of each connection to `mbps` Mbit/s: the benchmark's
 * stand-in for a volunteer's link (`--link-mbps`), so that round times can be measured where the
 * network, not the 2 shared cores of a dev machine, is the bottleneck. Each connection gets its own
 * budget per direction (a member's uplink and downlink); chunks are forwarded in order, each no
 * sooner than the link could have carried everything before it.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class ThrottledLink {
  /** Connections accepted so far (a client that reconnects adds one). */
  accepted = 0;
  /** While true (`cut`), new connections are closed at once, as by a link that is down. */
  private down = false;
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly url: string,
  ) {}

  /** Drops every connection through the link and refuses new ones until `restore` (a link that went down). */
  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.down = false;
  }

  /** Listens on 127.0.0.1 (a free port) and forwards to `target` (nats://host:port). */
  static async start(target: string, mbps: number): Promise<ThrottledLink> {
    if (!(mbps > 0)) throw new RangeError(`link rate must be positive, got ${mbps}`);
    const { hostname, port } = new URL(target);
    const bytesPerMs = (mbps * 1e6) / 8 / 1000;
    const sockets = new Set<Socket>();
    const server = createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('the link proxy has no port');
    const link = new ThrottledLink(server, sockets, `nats://127.0.0.1:${addr.port}`);
    server.on('connection', (client) => {
      if (link.down) return void client.destroy();
      link.accepted++;
      const upstream = connect(Number(port), hostname);
      sockets.add(client).add(upstream);
      pace(client, upstream, bytesPerMs);
      pace(upstream, client, bytesPerMs);
      const end = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    return link;
  }

  /** Closes the listener and every connection through it. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** Forwards src → dst in order, each chunk released when a link of `bytesPerMs` would have carried it. */
function pace(src: Socket, dst: Socket, bytesPerMs: number): void {
  const queue: { at: number; chunk: Buffer }[] = [];
  let free = performance.now();
  let timer: NodeJS.Timeout | null = null;
  let ended = false;
  const release = () => {
    timer = null;
    const now = performance.now();
    while (queue.length > 0 && queue[0].at <= now) {
      const { chunk } = queue.shift()!;
      if (!dst.destroyed) dst.write(chunk);
    }
    // Hold the reader while more than a few chunks wait, so memory stays bounded.
    if (queue.length <= 8) src.resume();
    if (queue.length > 0) timer = setTimeout(release, Math.max(0, queue[0].at - now));
    else if (ended) dst.end();
  };
  src.on('data', (chunk: Buffer) => {
    free = Math.max(free, performance.now()) + chunk.byteLength / bytesPerMs;
    queue.push({ at: free, chunk });
    if (queue.length > 8) src.pause();
    timer ??= setTimeout(release, Math.max(0, queue[0].at - performance.now()));
  });
  src.on('end', () => {
    ended = true;
    if (queue.length === 0) dst.end();
  });
}
