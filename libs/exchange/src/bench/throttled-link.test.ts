import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ThrottledLink } from './throttled-link.js';

describe('ThrottledLink (the exchange bench’s --link-mbps)', () => {
  it('carries both directions whole and in order, and closes cleanly', async () => {
    // An echo server behind the link: what goes up must come back byte for byte.
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const link = await ThrottledLink.start(`nats://127.0.0.1:${(echo.address() as AddressInfo).port}`, 800);
    try {
      const sent = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < sent.length; i++) sent[i] = (i * 131 + (i >> 11)) & 0xff;
      const { port } = new URL(link.url);
      const sock = connect(Number(port), '127.0.0.1');
      const got: Buffer[] = [];
      let n = 0;
      const done = new Promise<void>((resolve, reject) => {
        sock.on('data', (b: Buffer) => {
          got.push(b);
          n += b.length;
          if (n >= sent.length) resolve();
        });
        sock.on('error', reject);
      });
      // Written in uneven pieces, as a NATS client would.
      for (let at = 0; at < sent.length; at += 70_001) sock.write(sent.subarray(at, Math.min(sent.length, at + 70_001)));
      await done;
      const back = Buffer.concat(got);
      expect(back.length).toBe(sent.length);
      expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(sent).digest('hex'));
      sock.destroy();
    } finally {
      await link.stop();
      await new Promise<void>((r) => echo.close(() => r()));
    }
  });

  it('refuses a rate that is not positive', async () => {
    await expect(ThrottledLink.start('nats://127.0.0.1:4222', 0)).rejects.toThrow(/positive/);
  });
});
