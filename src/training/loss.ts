import * as tf from "@tensorflow/tfjs";

/** Mean softmax cross-entropy. logits [B,K], labels [B] int32 -> scalar. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits); // [B,K]
    const onehot = tf.oneHot(labels, logits.shape[1]); // [B,K]
    return tf.neg(tf.mean(tf.sum(tf.mul(logp, onehot), -1))) as tf.Scalar;
  });
}
