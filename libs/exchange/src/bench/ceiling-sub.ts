/** Subscriber half of the benchmark's ceiling stream: counts bytes of N messages, then reports. */
import { connect } from 'nats';

const [url, subject, countText] = process.argv.slice(2);
const count = Number(countText);
const nc = await connect({ servers: url });
let n = 0;
let bytes = 0;
let first = 0;
const sub = nc.subscribe(subject, {
  callback: (_e, m) => {
    if (n === 0) first = performance.now();
    bytes += m.data.byteLength;
    if (++n === count) {
      const ms = performance.now() - first;
      process.send!({ bytes, ms });
      sub.unsubscribe();
      void nc.close().then(() => process.exit(0));
    }
  },
});
await nc.flush();
process.send!({ ready: true });
