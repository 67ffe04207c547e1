/** Losses (means over the batch) and the accuracy metric. */
import * as tf from '@tensorflow/tfjs';
import { heapKernelsActive, softmaxCrossEntropyHeap } from './heap-kernels.js';

export type LossKind = 'cross-entropy' | 'mse';

/** Mean softmax cross-entropy of `logits` [m, C] against integer labels [m]. */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  // On the CPU backends: one kernel for the loss and one for its gradient instead of ~30 small ones.
  if (heapKernelsActive() && labels.dtype === 'int32') return softmaxCrossEntropyHeap(logits, labels);
  const c = logits.shape[1];
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, tf.oneHot(labels, c)), 1))) as tf.Scalar;
}

/** Mean cross-entropy when the model already outputs probabilities (Keras softmax heads). */
export function probabilityCrossEntropy(probs: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const c = probs.shape[1];
  const logp = tf.log(tf.clipByValue(probs, 1e-7, 1));
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, tf.oneHot(labels, c)), 1))) as tf.Scalar;
}

/** Mean over samples of the squared error summed over outputs ([m, k] vs [m, k]). */
export function meanSquaredError(pred: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  return tf.mean(tf.sum(tf.squaredDifference(pred, target), 1));
}

/** Number of rows whose argmax equals the label. */
export function correctCount(scores: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.sum(tf.cast(tf.equal(tf.argMax(scores, 1), labels), 'int32'));
}
