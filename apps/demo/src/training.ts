/** The training half of the demo: import MNIST, submit a job, follow it, summarise. */
import type { Api } from './api.js';

export interface TrainingOptions {
  model: 'mlp' | 'cnn';
  codec: string;
  epochs: number;
  batch: number;
}

export async function runTraining(_api: Api, _groupId: string, _opts: TrainingOptions, _signal: AbortSignal): Promise<void> {
  throw new Error('training jobs are not available in this build yet (issue 6); rerun with --only-online');
}
