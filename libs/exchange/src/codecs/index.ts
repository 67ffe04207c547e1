import { Bf16Codec } from './bf16.codec.js';
import { type Codec, CodecError, CodecIds, type CodecSpec } from './codec.js';
import { Fp16Codec } from './fp16.codec.js';
import { Fp32Codec } from './fp32.codec.js';
import { Int8Codec } from './int8.codec.js';
import { TopkCodec } from './topk.codec.js';

export * from './codec.js';
export * from './fp32.codec.js';
export * from './fp16.codec.js';
export * from './bf16.codec.js';
export * from './int8.codec.js';
export * from './topk.codec.js';

/** The codec of a job's spec. */
export function createCodec(spec: CodecSpec): Codec {
  switch (spec.name) {
    case 'fp32':
      return new Fp32Codec();
    case 'fp16':
      return new Fp16Codec();
    case 'bf16':
      return new Bf16Codec();
    case 'int8':
      return new Int8Codec(spec.blockSize ?? 64);
    case 'topk':
      return new TopkCodec(spec.fraction ?? 0.01);
    default:
      throw new CodecError(`unknown codec ${JSON.stringify((spec as { name: unknown }).name)}`);
  }
}

/** The dense codec for a wire (id, param), as an observer meets it in a header; null if unknown. */
export function codecFromWire(id: number, param: number): Codec | null {
  try {
    switch (id) {
      case CodecIds.fp32:
        return new Fp32Codec();
      case CodecIds.fp16:
        return new Fp16Codec();
      case CodecIds.bf16:
        return new Bf16Codec();
      case CodecIds.int8:
        return new Int8Codec(param);
      case CodecIds.topk:
        return new TopkCodec(param / 1e6);
      default:
        return null;
    }
  } catch {
    return null;
  }
}

/** Parses "fp32", "int8:128", "topk:0.01" (CLI and bench options). */
export function parseCodecSpec(text: string): CodecSpec {
  const [name, arg] = text.split(':');
  switch (name) {
    case 'fp32':
    case 'fp16':
    case 'bf16':
      return { name };
    case 'int8':
      return { name, blockSize: arg ? Number(arg) : 64 };
    case 'topk':
      return { name, fraction: arg ? Number(arg) : 0.01 };
    default:
      throw new CodecError(`unknown codec ${JSON.stringify(text)}`);
  }
}
