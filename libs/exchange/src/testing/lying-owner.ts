import type { NatsConnection } from 'nats';
import { CodecIds } from '../codecs/codec.js';
import { ChunkKinds, decodeChunk } from '../header.js';

/**
 * A test double of a dishonest shard owner: the connection publishes as `nc` does, except that
 * the fp32 gathers published through it (of the rounds `inRound` picks) are multiplied by
 * `factor` on the way out (in place, so the owner's own copy of the mean is the same lie).
 */
export function lyingOwner(nc: NatsConnection, factor: number, inRound: (round: number) => boolean = () => true): NatsConnection {
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === 'publish') {
        return (subject: string, data?: Uint8Array, opts?: object) => {
          if (data && subject.includes('.g.')) {
            const { header, payload } = decodeChunk(data);
            if (header.kind === ChunkKinds.gather && header.codec === CodecIds.fp32 && inRound(header.round)) {
              const v = new Float32Array(payload.buffer, payload.byteOffset, header.length);
              for (let i = 0; i < v.length; i++) v[i] *= factor;
            }
          }
          return target.publish(subject, data, opts);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
