"""TensorFlow / Keras: a ``keras.Sequential`` model, ``keras.optimizers.SGD``,
``SparseCategoricalCrossentropy(from_logits=True)`` and a custom training loop compiled with
``tf.function`` (``GradientTape`` + ``apply_gradients``); batches are gathered on the device
with ``tf.gather`` from the harness's permutation.  NHWC: the shared NCHW conv weights are
transposed, and the rows of the first dense weight permuted to Keras's (H, W, C) flatten order."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..networks import cnn_dense_rows_to_nhwc  # noqa: E402

keras = tf.keras
NAME = "tensorflow"


def version():
    return tf.__version__


def configure(device, threads):
    """Thread pools and visible devices; must run before TensorFlow's runtime starts."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    if device == "cpu":
        try:
            tf.config.set_visible_devices([], "GPU")
        except (RuntimeError, ValueError):  # pragma: no cover - runtime already started
            pass


def gpu_status():
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return False, "TensorFlow %s sees no GPU (tf.config.list_physical_devices('GPU') is empty; built with CUDA: %s)" % (
            tf.__version__, tf.test.is_built_with_cuda())
    return True, "TensorFlow %s, %d GPU(s)" % (tf.__version__, len(gpus))


def build_model(spec, weights):
    layers = keras.layers
    if spec.kind == "mlp":
        model = keras.Sequential(
            [keras.Input(shape=(weights["dense"][0][0].shape[0],))]
            + [layers.Dense(W.shape[1], activation="relu") for W, _ in weights["dense"][:-1]]
            + [layers.Dense(weights["dense"][-1][0].shape[1])])
        model.set_weights([a for Wb in weights["dense"] for a in Wb])
        return model
    Wc = weights["conv"]  # (OC, C, KH, KW)
    (W1, b1), (W2, b2) = weights["dense"]
    model = keras.Sequential([
        keras.Input(shape=(28, 28, Wc.shape[1])),
        layers.Conv2D(Wc.shape[0], spec.kernel, strides=1, padding="valid", use_bias=False,
                      activation="relu"),
        layers.MaxPooling2D(spec.pool),
        layers.Dropout(spec.dropout),
        layers.Flatten(),
        layers.Dense(W1.shape[1], activation="relu"),
        layers.Dense(W2.shape[1]),
    ])
    model.set_weights([Wc.transpose(2, 3, 1, 0), cnn_dense_rows_to_nhwc(W1, spec), b1, W2, b2])
    return model


class Adapter:
    def __init__(self, spec, weights, *, device, lr, seed, threads=None):
        keras.utils.set_random_seed(seed)  # dropout masks
        self.spec = spec
        self.device = "/GPU:0" if device == "gpu" else "/CPU:0"
        with tf.device(self.device):
            self.model = build_model(spec, weights)
            self.optimizer = keras.optimizers.SGD(learning_rate=lr)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss_fn

        def accuracy(logits, t):
            pred = tf.argmax(logits, axis=1, output_type=t.dtype)
            return tf.reduce_mean(tf.cast(tf.equal(pred, t), tf.float32))

        spec_idx = [tf.TensorSpec([None], tf.int64)]

        @tf.function(input_signature=spec_idx)
        def train_step(idx):
            x = tf.gather(self.x_train, idx)
            t = tf.gather(self.t_train, idx)
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = loss_fn(t, logits)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss, accuracy(logits, t)

        @tf.function(input_signature=spec_idx)
        def test_step(idx):
            x = tf.gather(self.x_test, idx)
            t = tf.gather(self.t_test, idx)
            logits = model(x, training=False)
            return loss_fn(t, logits), accuracy(logits, t)

        self.train_step, self.test_step = train_step, test_step

    def set_data(self, x_train, t_train, x_test, t_test):
        if self.spec.kind == "cnn":
            x_train = x_train.reshape(-1, 28, 28, 1)
            x_test = x_test.reshape(-1, 28, 28, 1)
        with tf.device(self.device):
            self.x_train, self.t_train = tf.constant(x_train), tf.constant(t_train)
            self.x_test, self.t_test = tf.constant(x_test), tf.constant(t_test)

    def train_epoch(self, perm, batch_size):
        perm = np.asarray(perm, dtype=np.int64)
        for i in range(0, len(perm), batch_size):
            idx = tf.constant(perm[i:i + batch_size])
            loss, acc = self.train_step(idx)
            yield float(loss.numpy()), float(acc.numpy()), int(idx.shape[0])

    def test_epoch(self, batch_size):
        n = int(self.x_test.shape[0])
        for i in range(0, n, batch_size):
            idx = tf.range(i, min(i + batch_size, n), dtype=tf.int64)
            loss, acc = self.test_step(idx)
            yield float(loss.numpy()), float(acc.numpy()), int(idx.shape[0])

    def sync(self):
        pass  # every step's loss is read back (.numpy()), which waits for the device
