"""The backend-specific code of recipe_keras: every ``if backend == ...`` lives here.

Everything else uses ``keras`` and ``keras.ops`` only. Keras is imported lazily,
inside the functions: the environment set-up below must run before Keras starts.

- Environment, read once when the libraries start (``prepare_environment``):
  deterministic GPU kernels for JAX and cuBLAS, JAX's compilation cache, JAX's
  classic threefry (its initializer programs compile in a third of the time).
- Kernels chosen at seeding (``deterministic_kernels``): TensorFlow's op
  determinism, torch's deterministic algorithms.
- Which backend a process runs (``active_backend``), asked of Keras once it is
  imported.
- Input gradients (R2.12): one small function per backend. Each yields, for
  every cotangent ``c`` in turn, the gradient of sum(model(x, training=False) * c)
  with respect to ``x`` as a NumPy array, one forward pass and a backward pass per
  cotangent, lazily, so memory stays at a few copies of ``x``. Inference mode,
  because BatchNorm in training mode mixes the batch (and on JAX leaks tracers).
  TF's tape returns None when there is no path (zero, not an error); torch needs a
  leaf tensor with ``requires_grad`` on Keras's device and grad mode on; JAX
  compiles the whole computation once (the weights as arguments, so the compile
  cache keeps it) and runs the backward passes ``JAX_CHUNK`` at a time under vmap.
- The loss at inference (``compiled_loss``): on JAX one jitted program instead of
  an eager program for each op of the loss.
- Data-parallel training (``data_parallel``, ``devices_in_use``): Keras's
  ``keras.distribution.DataParallel`` on JAX (its distribution API covers JAX
  only), ``tf.distribute.MirroredStrategy`` on TensorFlow (Keras's TF trainer runs
  under a tf.distribute strategy), and on torch, which Keras gives no such path,
  one line saying training stays on one device. Several processes (one per host)
  on JAX alone: ``keras.distribution.initialize`` from Keras's variables
  (``process_index``); TensorFlow's MultiWorkerMirroredStrategy fails in Keras 3's
  ``fit`` (keras-team/keras#20585), so a cluster spec there is refused.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

__all__ = [
    "active_backend",
    "compiled_loss",
    "data_parallel",
    "deterministic_kernels",
    "devices_in_use",
    "even_batches",
    "input_gradients",
    "predict_batch",
    "prepare_environment",
    "process_index",
    "undistributed",
]

# What GPU libraries read once, when they start: JAX's XLA flags and cuBLAS's
# workspace (torch's deterministic mode refuses cuBLAS ops without it).
XLA_DETERMINISTIC = "--xla_gpu_deterministic_ops=true"
CUBLAS_WORKSPACE = ":4096:8"
# JAX's classic threefry instead of the "partitionable" one (JAX's default since 0.5):
# an initializer's program compiles several times faster on a CPU (benchmarks page).
# The partitionable one pays off only for random draws sharded over several
# devices; the environment's value wins.
JAX_THREEFRY = "JAX_THREEFRY_PARTITIONABLE"


def prepare_environment(deterministic: bool, compile_cache: str) -> None:
    """Set what JAX, XLA, cuBLAS and TensorFlow read when they start; before Keras.

    A value the user set in the environment is kept. A JAX already started (a
    notebook that imported it first) takes the settings through its live config.
    """
    # tf.data runs on TensorFlow whatever the backend, and its C++ INFO lines (CPU
    # features, TFRecord buffer sizes) opened every run; warnings and errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    if deterministic:
        deterministic_environment()
    if compile_cache:
        _compile_cache_environment(compile_cache)
    jax_random_environment()


def deterministic_environment() -> None:
    """Ask JAX and cuBLAS for deterministic GPU kernels (R2.1); before they start."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_DETERMINISTIC}".strip()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def _compile_cache_environment(folder: str) -> None:
    """Keep every program JAX compiles in ``folder``, read when JAX starts.

    JAX caches only compilations over 1 s by default; a small model's take 0.1-0.5 s
    each, a hundred of them in `make check`, so the thresholds go to zero.
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return  # the user's own cache, with their own thresholds
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(Path(folder).expanduser().resolve())
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
    jax = sys.modules.get("jax")
    if jax is not None:  # started already: its config still takes the cache
        jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
        jax.config.update(
            "jax_persistent_cache_min_compile_time_secs",
            float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
        )
        jax.config.update(
            "jax_persistent_cache_min_entry_size_bytes",
            int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]),
        )


def jax_random_environment() -> None:
    """Ask JAX for the classic threefry (every project process draws the same weights)."""
    if JAX_THREEFRY in os.environ:
        return  # the user's own choice
    os.environ[JAX_THREEFRY] = "0"
    jax = sys.modules.get("jax")
    if jax is not None:  # JAX started first (a notebook): its config takes it live
        # A JAX without the option ("Unrecognized config option"): nothing to choose.
        with contextlib.suppress(AttributeError):
            jax.config.update("jax_threefry_partitionable", False)


def deterministic_kernels(deterministic: bool) -> None:
    """Deterministic kernels on the active backend (R2.1), or the fast ones.

    TensorFlow's switch cannot be turned off again within a process (and tf.data
    runs on TensorFlow whatever the backend); JAX's was read from the environment
    when it started (``prepare_environment``).
    """
    import keras

    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        deterministic_environment()
    if keras.backend.backend() == "torch":
        import torch

        # warn_only: an op without a deterministic kernel warns instead of stopping a
        # run; `make check`'s R2.1 then reports whether reruns really match.
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        torch.backends.cudnn.benchmark = not deterministic


def active_backend() -> str:
    """The backend this process runs: Keras's once imported, else the one it will pick."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


TORCH_SINGLE_DEVICE = (
    'train.distribution = "data_parallel": Keras has no data-parallel path on the torch '
    "backend (keras.distribution covers JAX; TensorFlow uses tf.distribute), so this run "
    "trains on one device"
)

# Keras's own variables for a run over several processes (keras.distribution.initialize
# reads them, with KERAS_DISTRIBUTION_JOB_ADDRESSES: the first process's host:port).
PROCESS_ENV = ("KERAS_DISTRIBUTION_PROCESS_ID", "KERAS_DISTRIBUTION_NUM_PROCESSES")


def process_index() -> tuple[int, int]:
    """(this process's index, the number of processes) of a multi-process run, from
    Keras's variables; (0, 1) for a single process."""
    from recipe_keras.errors import ConfigError

    index, count = (os.environ.get(name, "").strip() or "0" for name in PROCESS_ENV)
    if not (index.isdigit() and count.isdigit() and int(index) < max(int(count), 1)):
        raise ConfigError(
            f"{PROCESS_ENV[0]} = {index!r}, {PROCESS_ENV[1]} = {count!r}: give the number of "
            "processes and this one's index, from 0 to that number less one"
        )
    return (int(index), int(count)) if int(count) > 1 else (0, 1)


def _several_processes_unsupported(backend: str) -> str:
    """Why this backend cannot train over several processes here ('' where it can)."""
    if backend == "jax":
        return ""
    processes = process_index()[1]
    if processes > 1:
        return (
            f"{PROCESS_ENV[1]} = {processes}: Keras trains over several processes "
            f"on the JAX backend only (this run: {backend}); run it with KERAS_BACKEND=jax"
        )
    if backend != "tensorflow":
        return ""
    tasks = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    if sum(len(hosts) for hosts in tasks.values()) > 1:
        return (
            "TF_CONFIG names several tasks: Keras 3's fit fails under TensorFlow's "
            "MultiWorkerMirroredStrategy (keras-team/keras#20585); train over several "
            "processes with KERAS_BACKEND=jax and Keras's KERAS_DISTRIBUTION_* variables"
        )
    return ""


@contextlib.contextmanager
def data_parallel(batch_size: int):
    """Models built, fitted and evaluated inside train on every device of the run.

    GPUs where there are any, else the CPU devices the backend sees (one unless
    told otherwise: XLA_FLAGS=--xla_force_host_platform_device_count=N for JAX,
    tf.config.set_logical_device_configuration for TensorFlow). Each batch from the
    pipeline is the global batch, split between the devices. JAX splits a batch
    only evenly: ``batch_size`` must be a multiple of the devices, and fit's last
    batch of a pass is cut to one (``even_batches``). With one device there is
    nothing to split, and a distribution over one costs time (docs/benchmarks.md):
    one line says so and the run trains plainly. On JAX the devices may span several
    processes (``process_index``): each process feeds its own part of every batch.
    """
    import keras

    from recipe_keras.errors import ConfigError

    backend = keras.backend.backend()
    unsupported = _several_processes_unsupported(backend)
    if unsupported:
        raise ConfigError(unsupported)
    if backend == "jax":
        _join_processes()
        devices = keras.distribution.list_devices()
    elif backend == "tensorflow":
        import tensorflow as tf

        devices = _tf_devices()
    else:
        print(f"warning: {TORCH_SINGLE_DEVICE}", file=sys.stderr, flush=True)
        yield
        return
    if len(devices) == 1:
        print(
            f'train.distribution = "data_parallel": one device ({devices[0]}); '
            "training without a distribution",
            flush=True,
        )
        yield
    elif backend == "jax":
        if batch_size % len(devices):
            raise ConfigError(
                f"data.batch_size = {batch_size}: JAX's data parallelism splits each batch "
                f"evenly between the {len(devices)} devices; give a multiple of {len(devices)}"
            )
        index, processes = process_index()
        if processes > 1:
            writer = "this process" if index == 0 else "process 0"
            print(
                f"process {index} of {processes}: {len(devices)} devices in all; "
                f"{writer} writes the outputs",
                flush=True,
            )
        # Several processes: each feeds its part of every global batch (even_batches),
        # as Keras's own sharding cannot read the batch size of the recipe's pipeline.
        with keras.distribution.DataParallel(
            devices=devices, auto_shard_dataset=processes == 1
        ).scope():
            yield
    else:
        with tf.distribute.MirroredStrategy(devices).scope():
            yield


def _join_processes() -> None:
    """JAX: join the run's other processes, once, before any JAX computation."""
    import jax
    import keras

    if process_index()[1] == 1 or jax.distributed.is_initialized():
        return
    # CPU devices of different processes exchange gradients through gloo (GPUs: NCCL).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize()  # the address, count and index from Keras's variables


def _tf_devices() -> list[str]:
    """TensorFlow's logical GPUs, else its logical CPUs (what MirroredStrategy gets)."""
    import tensorflow as tf

    logical = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [d.name for d in logical]


def _jax_devices_sharing_batches() -> int:
    """How many devices a JAX data-parallel distribution now active splits batches over."""
    import keras

    if keras.backend.backend() != "jax":
        return 1
    dist = keras.distribution.distribution()
    if not isinstance(dist, keras.distribution.DataParallel):
        return 1
    return int(dist.device_mesh.devices.size)


def even_batches(ds):
    """``ds`` with each batch cut to a multiple of the devices a JAX data-parallel run
    splits it over (only a pass's last batch is cut), and over several processes to
    this process's part of it; as it is elsewhere."""
    n = _jax_devices_sharing_batches()
    if n == 1:
        return ds
    import tensorflow as tf

    index, processes = process_index()

    def cut(*batch):
        own = (tf.shape(batch[0])[0] // n) * n // processes  # this process's part
        return tuple(part[index * own : (index + 1) * own] for part in batch)

    return ds.map(cut, num_parallel_calls=1)


@contextlib.contextmanager
def undistributed():
    """Whole-split evaluation on JAX outside the data-parallel distribution: its
    replicated weights evaluate any batch, so no example is cut (``even_batches``)."""
    import keras

    if _jax_devices_sharing_batches() == 1:
        yield
        return
    active = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(active)


def predict_batch(model: keras.Model, x):
    """``model.predict_on_batch(x)``, correct under a tf.distribute strategy too.

    Keras's TF ``*_on_batch`` hand the whole batch to every replica and concatenate
    their outputs (two replicas: twice the rows); there a plain inference call.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            return model(x, training=False)
    return model.predict_on_batch(x)


def devices_in_use() -> list[str]:
    """The devices a model built now trains on (several inside ``data_parallel``)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        dist = keras.distribution.distribution()
        if dist is not None:
            return [str(d) for d in dist.device_mesh.devices.flatten()]
        return [str(jax.devices()[0])]
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy():
            return list(tf.distribute.get_strategy().extended.worker_devices)
        return _tf_devices()[:1]
    import torch

    return ["cuda:0" if torch.cuda.is_available() else "cpu"]


JAX_CHUNK = 16  # cotangents per vmapped backward pass on JAX


def input_gradients(
    model: keras.Layer, x: np.ndarray, cotangents: Iterable[np.ndarray]
) -> Iterator[np.ndarray]:
    """d sum(model(x) * c) / dx for each ``c`` in turn, each shaped like ``x``."""
    import keras

    backend = keras.backend.backend()
    grad = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}.get(backend)
    if grad is None:
        raise RuntimeError(f"no input gradient for backend {backend!r}")
    x = np.asarray(x, dtype="float32")
    return grad(model, x, (np.asarray(c, dtype="float32") for c in cotangents))


def _tensorflow(model: keras.Layer, x: np.ndarray, cotangents: Iterator) -> Iterator[np.ndarray]:
    import tensorflow as tf

    x_tensor = tf.convert_to_tensor(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x_tensor)
        out = model(x_tensor, training=False)
    for c in cotangents:
        g = tape.gradient(out, x_tensor, output_gradients=tf.constant(c))
        yield np.zeros_like(x) if g is None else g.numpy()


def _jax(model: keras.Layer, x: np.ndarray, cotangents: Iterator) -> Iterator[np.ndarray]:
    import jax

    def projected(trainable, non_trainable, x, c):
        out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return jax.numpy.sum(out * c)

    per_cotangent = jax.jit(jax.vmap(jax.grad(projected, argnums=2), in_axes=(None, None, None, 0)))
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    while chunk := list(itertools.islice(cotangents, JAX_CHUNK)):
        yield from np.asarray(per_cotangent(trainable, non_trainable, x, np.stack(chunk)))


def _torch(model: keras.Layer, x: np.ndarray, cotangents: Iterator) -> Iterator[np.ndarray]:
    import keras
    import torch

    # convert_to_tensor puts it on Keras's device; a detached clone is a leaf.
    leaf = keras.ops.convert_to_tensor(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(leaf, training=False)
    for c in cotangents:
        (g,) = torch.autograd.grad(
            out,
            leaf,
            grad_outputs=keras.ops.convert_to_tensor(c),
            retain_graph=True,
            allow_unused=True,
        )
        yield np.zeros_like(x) if g is None else g.cpu().numpy()


def compiled_loss(model: keras.Model, x, y, y_pred, sample_weight=None) -> float:
    """``model.compute_loss`` in inference mode (regularizers included), as a float.

    On JAX each op of an eager ``compute_loss`` is a program of its own, traced,
    lowered and fetched from the compile cache at its first call: 16 of them for a
    sparse cross-entropy with sample weights, 0.22-0.24 s for R2.4's first loss on
    digits against 0.02 s once they exist. One jitted ``stateless_compute_loss``
    (the weights as arguments, kept per model while it lives) is one program. TF and torch
    call ``compute_loss`` eagerly, as before.
    """
    import keras

    if keras.backend.backend() != "jax":
        loss = model.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
        )
        return float(keras.ops.convert_to_numpy(loss))
    loss = _JAX_LOSSES.get(model)
    if loss is None:
        import jax

        owner = weakref.ref(model)  # the program must not keep its model alive

        def stateless(trainable, non_trainable, metrics, x, y, y_pred, sample_weight):
            value, _ = owner().stateless_compute_loss(
                trainable, non_trainable, metrics, x, y, y_pred, sample_weight, training=False
            )
            return value

        loss = _JAX_LOSSES[model] = jax.jit(stateless)
    state = [
        [v.value for v in variables]
        for variables in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.metrics_variables,
        )
    ]
    return float(loss(*state, x, y, y_pred, sample_weight))


# One jitted loss per live model (compiled_loss); an entry goes with its model.
_JAX_LOSSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
