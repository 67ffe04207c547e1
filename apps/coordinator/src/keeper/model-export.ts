/** A trained model as the jobs API serves it and the finished job stores it. */
import type { Model } from '@gradpool/training';

/** TF.js artifacts as JSON: modelTopology, weightSpecs, weightData (base64), format, round. */
export async function exportModelJson(model: Model, params: Float32Array, round: number): Promise<Record<string, unknown>> {
  const a = await model.export(params);
  const data = a.weightData as ArrayBuffer | ArrayBuffer[] | undefined;
  const buf = Array.isArray(data) ? Buffer.concat(data.map((d) => Buffer.from(d))) : data ? Buffer.from(data) : Buffer.alloc(0);
  return {
    format: a.format ?? 'layers-model',
    generatedBy: a.generatedBy,
    convertedBy: a.convertedBy ?? null,
    modelTopology: a.modelTopology,
    weightSpecs: a.weightSpecs,
    weightData: buf.toString('base64'),
    round,
  };
}
