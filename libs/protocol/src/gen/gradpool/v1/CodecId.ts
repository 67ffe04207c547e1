// Original file: gradpool/v1/exchange.proto

/**
 * Payload encodings. Per element of a chunk of `length` elements:
 */
export const CodecId = {
  CODEC_ID_UNSPECIFIED: 'CODEC_ID_UNSPECIFIED',
  /**
   * float32, 4 bytes.
   */
  CODEC_ID_FP32: 'CODEC_ID_FP32',
  /**
   * IEEE half, 2 bytes, round to nearest even, saturating at ±65504.
   */
  CODEC_ID_FP16: 'CODEC_ID_FP16',
  /**
   * bfloat16 (the top 16 bits of float32), round to nearest even.
   */
  CODEC_ID_BF16: 'CODEC_ID_BF16',
  /**
   * Blocks of codec_param elements: float32 scales (one per block) first, then one int8 per
   * element, q = round(x / (absmax / 127)).
   */
  CODEC_ID_INT8: 'CODEC_ID_INT8',
  /**
   * m = max(1, ceil(length * codec_param / 1e6)) entries: m u32 indices (ascending, < length)
   * then m float32 values.
   */
  CODEC_ID_TOPK: 'CODEC_ID_TOPK',
  /**
   * Gather of a topk job: any number m of (u32 index ascending, then float32 value) entries,
   * m from payload_bytes / 8; used while it is smaller than dense fp32.
   */
  CODEC_ID_SPARSE32: 'CODEC_ID_SPARSE32',
} as const;

/**
 * Payload encodings. Per element of a chunk of `length` elements:
 */
export type CodecId =
  | 'CODEC_ID_UNSPECIFIED'
  | 0
  /**
   * float32, 4 bytes.
   */
  | 'CODEC_ID_FP32'
  | 1
  /**
   * IEEE half, 2 bytes, round to nearest even, saturating at ±65504.
   */
  | 'CODEC_ID_FP16'
  | 2
  /**
   * bfloat16 (the top 16 bits of float32), round to nearest even.
   */
  | 'CODEC_ID_BF16'
  | 3
  /**
   * Blocks of codec_param elements: float32 scales (one per block) first, then one int8 per
   * element, q = round(x / (absmax / 127)).
   */
  | 'CODEC_ID_INT8'
  | 4
  /**
   * m = max(1, ceil(length * codec_param / 1e6)) entries: m u32 indices (ascending, < length)
   * then m float32 values.
   */
  | 'CODEC_ID_TOPK'
  | 5
  /**
   * Gather of a topk job: any number m of (u32 index ascending, then float32 value) entries,
   * m from payload_bytes / 8; used while it is smaller than dense fp32.
   */
  | 'CODEC_ID_SPARSE32'
  | 6

/**
 * Payload encodings. Per element of a chunk of `length` elements:
 */
export type CodecId__Output = typeof CodecId[keyof typeof CodecId]
