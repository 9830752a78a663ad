"""aekit: autoencoders as scikit-learn estimators over a Rust core.

Every estimator takes NumPy arrays (float32 or float64, any order; rows are
examples), trains with the interpreter released, stops at the next step on
Ctrl-C (``KeyboardInterrupt``), pickles as its parameters plus the model's
safetensors bytes, and saves the same ``.safetensors`` files as the
``aekit`` command.
"""

from __future__ import annotations

import json

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _aekit

__all__ = ["DenoisingAutoencoder", "SparseAutoencoder", "ConvAutoencoder", "StackedDenoisingAutoencoder", "PCA", "Imputer", "load", "builtin_digits"]
__version__ = _aekit.__version__


def builtin_digits():
    """The 10,000 MNIST test images shipped in aekit: ``(X, y)``, X of shape
    (10000, 784) in [0, 1] as float32, y the labels 0-9."""
    x, y = _aekit.builtin_digits()
    return x, np.frombuffer(bytes(y), dtype=np.uint8).astype(np.int64)


def _seed(random_state):
    if isinstance(random_state, (int, np.integer)):
        return int(random_state) % (2**63)
    return int(check_random_state(random_state).randint(2**31 - 1))


def _threads(n_jobs):
    return 0 if n_jobs is None or n_jobs < 0 else int(n_jobs)


class _Pickled:
    """Pickling: the parameters and fitted attributes, with the native
    model as its safetensors bytes."""

    _core_class = None

    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = state["model_"].to_bytes()
        return state

    def __setstate__(self, state):
        if "model_" in state and isinstance(state["model_"], (bytes, bytearray)):
            state["model_"] = self._core_class.from_bytes(bytes(state["model_"]))
        self.__dict__.update(state)


class _Model(_Pickled):
    """What the estimators share: rows checked against the fit, the codes
    and reconstructions of the native model, its file, and float32 out."""

    def _rows(self, X, **kw):
        """X checked as at fit time, as C-ordered float32 rows."""
        check_is_fitted(self, "model_")
        return validate_data(self, X, dtype=np.float32, order="C", reset=False, **kw)

    def transform(self, X):
        """The codes of the rows of X."""
        return self.model_.transform(self._rows(X))

    def save(self, path):
        """Writes the model file, the command's format (safetensors)."""
        check_is_fitted(self, "model_")
        self.model_.save(str(path))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class DenoisingAutoencoder(_Model, TransformerMixin, BaseEstimator):
    """A denoising autoencoder: h = f(x̃·W + b), z = g(h·W′ + b′) with
    W′ = Wᵀ when ``tied``, x̃ the input corrupted by ``noise``, trained to
    minimise the loss between z and the clean x (``"xent"``, the Bernoulli
    cross-entropy, for data in [0, 1]; ``"squared"``, ½‖z − x‖², for any
    data, usually with ``output_activation="identity"``). ``standardize``
    scales each feature by the training data's mean and standard deviation
    inside the model (real-valued data; needs ``output_activation="identity"``
    and ``loss="squared"``): inputs and reconstructions stay in the data's
    units.

    ``transform`` gives h of clean inputs, ``inverse_transform`` decodes h,
    ``score`` is minus the mean loss per example (higher is better, as
    scikit-learn expects). The parameters are ``aekit train``'s.
    """

    _core_class = _aekit.Dae

    def __init__(
        self,
        n_hidden=500,
        *,
        noise="mask:0.25",
        loss="xent",
        tied=True,
        hidden_activation="sigmoid",
        output_activation="sigmoid",
        optimizer="sgd",
        max_iter=15,
        batch_size=20,
        learning_rate=0.1,
        momentum=0.0,
        weight_decay=0.0,
        standardize=False,
        random_state=None,
        n_jobs=1,
        verbose=0,
    ):
        self.n_hidden = n_hidden
        self.noise = noise
        self.loss = loss
        self.tied = tied
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.standardize = standardize
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _settings(self, n_features):
        act = {"identity": "identity", "linear": "identity", "sigmoid": "sigmoid", "relu": "relu", "tanh": "tanh"}
        for name in ("hidden_activation", "output_activation"):
            if getattr(self, name) not in act:
                raise ValueError(f"{name} must be one of {sorted(act)}, got {getattr(self, name)!r}")
        return {
            "model": {
                "n_vis": int(n_features),
                "n_hid": int(self.n_hidden),
                "tied": bool(self.tied),
                "hidden_activation": act[self.hidden_activation],
                "output_activation": act[self.output_activation],
                "loss": self.loss,
                "noise": self.noise,
                "standardize": bool(self.standardize),
            },
            "train": {
                "epochs": int(self.max_iter),
                "batch": int(self.batch_size),
                "optimizer": self.optimizer,
                "lr": float(self.learning_rate),
                "momentum": float(self.momentum),
                "weight_decay": float(self.weight_decay),
                "patience": 0,
                "seed": _seed(self.random_state),
                "threads": _threads(self.n_jobs),
            },
        }

    def fit(self, X, y=None):
        """Trains on the rows of X; returns self."""
        X = validate_data(self, X, dtype=np.float32, order="C")
        core = _aekit.Dae(json.dumps(self._settings(X.shape[1])))
        core.set_threads(_threads(self.n_jobs))
        self.history_ = core.fit(X, None, bool(self.verbose))
        self.model_ = core
        self.n_iter_ = len(self.history_)
        return self

    @property
    def components_(self):
        """The encoder's weights, shape (n_hidden, n_features)."""
        check_is_fitted(self, "model_")
        return self.model_.weights().T

    def inverse_transform(self, X):
        """Decodes codes back to inputs."""
        check_is_fitted(self, "model_")
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X.ndim != 2 or X.shape[1] != self.model_.n_hid:
            raise ValueError(f"codes must have shape (n, {self.model_.n_hid}), got {X.shape}")
        return self.model_.inverse_transform(X)

    def reconstruct(self, X):
        """Reconstructions of the clean rows of X."""
        return self.model_.reconstruct(self._rows(X))

    def score(self, X, y=None):
        """Minus the mean loss per example on clean X (higher is better)."""
        return -self.model_.loss(self._rows(X))


class SparseAutoencoder(_Model, TransformerMixin, BaseEstimator):
    """The sparse autoencoder of the UFLDL exercise, trained full-batch by
    L-BFGS. For the m rows of X:

        A = σ(X·W₁ + b₁),   Z = g(A·W₂ + b₂),   ρ̂ⱼ = mean over rows of Aᵢⱼ,
        J = (1/2m)·Σ‖x − z‖² + (λ/2)·(‖W₁‖² + ‖W₂‖²) + β·Σⱼ KL(ρ‖ρ̂ⱼ),

    with g the sigmoid (``output_activation="sigmoid"``, data in [0, 1]) or
    the identity (``"identity"``, e.g. whitened data); ρ is
    ``sparsity_target``, β ``sparsity_weight``, λ ``weight_decay`` (the
    weights only). ``standardize`` scales each feature by the training
    data's mean and standard deviation inside the model (with the identity
    output). ``transform`` gives A, ``score`` is minus the reconstruction
    term (1/2m)·Σ‖x − z‖² (higher is better). The parameters are ``aekit
    train --kind sparse``'s.
    """

    _core_class = _aekit.SparseCore

    def __init__(
        self,
        n_hidden=196,
        *,
        sparsity_target=0.1,
        sparsity_weight=3.0,
        weight_decay=3e-3,
        output_activation="sigmoid",
        max_iter=400,
        standardize=False,
        random_state=None,
        n_jobs=1,
        verbose=0,
    ):
        self.n_hidden = n_hidden
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight
        self.weight_decay = weight_decay
        self.output_activation = output_activation
        self.max_iter = max_iter
        self.standardize = standardize
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y=None):
        """Minimises J on the rows of X with L-BFGS; returns self."""
        X = validate_data(self, X, dtype=np.float32, order="C")
        out = {"sigmoid": "sigmoid", "identity": "identity", "linear": "identity"}
        if self.output_activation not in out:
            raise ValueError(f"output_activation must be one of {sorted(out)}, got {self.output_activation!r}")
        settings = {
            "model": {
                "n_vis": int(X.shape[1]),
                "n_hid": int(self.n_hidden),
                "sparsity_target": float(self.sparsity_target),
                "sparsity_weight": float(self.sparsity_weight),
                "weight_decay": float(self.weight_decay),
                "output_activation": out[self.output_activation],
                "standardize": bool(self.standardize),
                "seed": _seed(self.random_state),
            },
            "max_iter": int(self.max_iter),
            "threads": _threads(self.n_jobs),
        }
        core = _aekit.SparseCore(json.dumps(settings))
        self.history_ = core.fit(X, bool(self.verbose))
        self.model_ = core
        self.n_iter_ = len(self.history_)
        return self

    @property
    def components_(self):
        """The encoder's weights W₁ᵀ, shape (n_hidden, n_features): row j is
        hidden unit j's filter."""
        check_is_fitted(self, "model_")
        return self.model_.weights().T

    def reconstruct(self, X):
        """Z, the reconstructions of the rows of X."""
        return self.model_.reconstruct(self._rows(X))

    def cost(self, X):
        """J on X and its parts: a dict with ``total``, ``reconstruction``,
        ``weight_decay``, ``sparsity`` and ``mean_activation`` (the mean of
        ρ̂ over the hidden units)."""
        keys = ("total", "reconstruction", "weight_decay", "sparsity", "mean_activation")
        return dict(zip(keys, self.model_.cost(self._rows(X))))

    def score(self, X, y=None):
        """Minus (1/2m)·Σ‖x − z‖² on X (higher is better)."""
        return -self.cost(X)["reconstruction"]


class ConvAutoencoder(_Model, TransformerMixin, BaseEstimator):
    """A convolutional autoencoder: an encoder of convolutions, activations
    and pooling, a decoder of transposed convolutions (or unpooling,
    upsampling and convolutions), trained by Adam to minimise ½‖z − x‖² per
    image (``loss="squared"``) or the cross-entropy (``"xent"``, for a
    sigmoid output and data in [0, 1]) between z and the clean x, the
    input corrupted by ``noise`` first.

    ``architecture`` is a preset of ``aekit cae`` (``"cae-mnist"``,
    ``"cae-mnist-unpool"``, ``"cae-mnist-upsample"``, ``"cae-cifar"``) or a
    dict ``{"input": [C, H, W], "encoder": [...], "decoder": [...]}`` of
    layers as in a ``[model]`` TOML (e.g. ``{"type": "conv", "out": 16,
    "kernel": 3, "pad": 1}``; ``input`` may be left out). X is either
    (n, C, H, W) or flat (n, C·H·W) images, read as ``image_shape`` (or the
    architecture's input; a dict with no input and flat X is read as
    1×1×n_features). ``transform`` gives the flattened codes,
    ``reconstruct`` images in X's form, ``score`` minus the mean loss per
    image.
    """

    _core_class = _aekit.ConvCore

    def __init__(
        self,
        architecture="cae-mnist",
        *,
        image_shape=None,
        noise="none",
        loss="squared",
        max_iter=10,
        batch_size=100,
        learning_rate=1e-3,
        random_state=None,
        n_jobs=1,
        verbose=0,
    ):
        self.architecture = architecture
        self.image_shape = image_shape
        self.noise = noise
        self.loss = loss
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _flat(self, X, reset):
        """X as C-ordered float32 rows, and whether it came as images."""
        images = getattr(X, "ndim", None) == 4
        if images:
            X = np.asarray(X)
            if reset:
                self._image_shape = tuple(int(d) for d in X.shape[1:])
            elif tuple(X.shape[1:]) != self.image_shape_:
                raise ValueError(f"images of shape {tuple(X.shape[1:])}; this model takes {self.image_shape_}")
            X = X.reshape(X.shape[0], -1)
        elif reset:
            self._image_shape = None
        X = validate_data(self, X, dtype=np.float32, order="C", reset=reset)
        return X, images

    def fit(self, X, y=None):
        """Trains on the images of X; returns self."""
        X, _ = self._flat(X, reset=True)
        shape = self._image_shape or (tuple(self.image_shape) if self.image_shape is not None else None)
        arch = self.architecture
        if isinstance(arch, dict):
            arch = dict(arch)
            arch.setdefault("input", list(shape) if shape else [1, 1, X.shape[1]])
        settings = {
            "architecture": arch,
            "seed": _seed(self.random_state),
            "train": {
                "loss": self.loss,
                "noise": self.noise,
                "train": {
                    "epochs": int(self.max_iter),
                    "batch": int(self.batch_size),
                    "optimizer": "adam",
                    "lr": float(self.learning_rate),
                    "patience": 0,
                    "threads": _threads(self.n_jobs),
                },
            },
        }
        core = _aekit.ConvCore(json.dumps(settings))
        want = tuple(core.input_shape)
        if shape is not None and tuple(shape) != want:
            raise ValueError(f"images of shape {tuple(shape)}; the architecture takes {want}")
        if int(np.prod(want)) != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features; the architecture takes {want} = {int(np.prod(want))}")
        core.set_threads(_threads(self.n_jobs))
        self.history_ = core.fit(X, None, bool(self.verbose))
        self.model_ = core
        self.image_shape_ = want
        self.n_iter_ = len(self.history_)
        return self

    def transform(self, X):
        """The codes of the images of X, flattened: (n_samples, code length)."""
        check_is_fitted(self, "model_")
        X, _ = self._flat(X, reset=False)
        return self.model_.transform(X)

    def reconstruct(self, X):
        """Reconstructions of the clean images of X, in X's form."""
        check_is_fitted(self, "model_")
        X, images = self._flat(X, reset=False)
        Z = self.model_.reconstruct(X)
        return Z.reshape((-1,) + self.image_shape_) if images else Z

    def score(self, X, y=None):
        """Minus the mean loss per image on clean X (higher is better)."""
        check_is_fitted(self, "model_")
        X, _ = self._flat(X, reset=False)
        return -self.model_.loss(X)


class StackedDenoisingAutoencoder(_Model, ClassifierMixin, TransformerMixin, BaseEstimator):
    """A stacked denoising autoencoder (SdA): sigmoid layers
    hⱼ = σ(hⱼ₋₁·Wⱼ + bⱼ) of widths ``hidden_layer_sizes``, each pretrained
    as a tied DAE on the codes of the layers below it (``schedule``
    ``"stacked"``, ``"gradual"`` or ``"rbm"``: ``aekit pretrain``'s), its
    input corrupted by ``noise`` (one entry per layer, or one for all; by
    default masking 0.1, 0.2 and 0.3 as in SdA-3); with ``untied=True``
    (stacked schedule only) each layer's DAE decodes with weights of its own
    instead of Wⱼᵀ.

    ``pretrain_epochs`` is the first layer's epochs and each later layer's
    budget n (under ``"stacked"`` a later layer trains 2n epochs, as in
    ``aekit pretrain``); ``max_iter`` bounds the fine-tuning epochs.

    ``fit(X)`` pretrains and the estimator is a transformer: ``transform``
    gives the top layer's codes. ``fit(X, y)`` then fine-tunes the whole
    stack with a softmax layer p(y | x) = softmax(h_L·V + c) by SGD on the
    cross-entropy, keeping the weights of the epoch with the lowest error
    on ``validation_fraction`` of the rows (stratified), each hidden unit
    dropped with probability ``dropout`` in training (0: none); with
    ``average`` > 0 the weights validated and kept are a moving average of
    the weights along training, forgetting at that factor per update (0.999:
    about the last 1,000 updates); with ``max_norm`` > 0 each unit's incoming
    weights are scaled back to that length after every update when longer
    (Srivastava et al. 2014). With ``validation_fraction=0`` nothing is held
    out: every row trains, all ``max_iter`` epochs run and the last weights
    are kept (a refit once the epochs are chosen on a validation set). It is
    also a classifier: ``predict``, ``predict_proba``, and ``score`` as accuracy.
    Without y, ``score`` is minus the mean reconstruction cross-entropy.
    """

    _core_class = _aekit.StackedCore

    def __init__(
        self,
        hidden_layer_sizes=(1000, 1000, 1000),
        *,
        schedule="stacked",
        noise=None,
        loss="xent",
        untied=False,
        pretrain_epochs=15,
        pretrain_learning_rate=0.01,
        max_iter=30,
        learning_rate=0.1,
        batch_size=20,
        dropout=0.0,
        average=0.0,
        max_norm=0.0,
        validation_fraction=0.1,
        patience=10,
        random_state=None,
        n_jobs=1,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.schedule = schedule
        self.noise = noise
        self.loss = loss
        self.untied = untied
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_learning_rate = pretrain_learning_rate
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.dropout = dropout
        self.average = average
        self.max_norm = max_norm
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _settings(self, n_features, seed):
        layers = [int(w) for w in np.atleast_1d(self.hidden_layer_sizes)]
        if self.noise is None:
            # SdA-3's masking levels, one per layer (the last serves the rest).
            noise = ["mask:0.1", "mask:0.2", "mask:0.3"][: len(layers)]
        elif isinstance(self.noise, str):
            noise = [self.noise]
        else:
            noise = list(self.noise)
        loop = {"batch": int(self.batch_size), "seed": seed, "threads": _threads(self.n_jobs)}
        return {
            "n_vis": int(n_features),
            "seed": seed,
            "pretrain": {
                "layers": layers,
                "schedule": self.schedule,
                "noise": noise,
                "loss": self.loss,
                "untied": bool(self.untied),
                "layer_epochs": int(self.pretrain_epochs),
                "train": dict(loop, epochs=int(self.pretrain_epochs), lr=float(self.pretrain_learning_rate)),
            },
            "finetune": {
                "dropout": float(self.dropout),
                "average": float(self.average),
                "max_norm": float(self.max_norm),
                "train": dict(
                    loop, epochs=int(self.max_iter), lr=float(self.learning_rate), patience=int(self.patience)
                ),
            },
        }

    def fit(self, X, y=None):
        """Pretrains on X; with y, fine-tunes on the labels too. Returns self."""
        if y is None:
            X = validate_data(self, X, dtype=np.float32, order="C")
        else:
            X, y = validate_data(self, X, y, dtype=np.float32, order="C")
            check_classification_targets(y)
        if y is not None:
            classes, codes = np.unique(y, return_inverse=True)
            if len(classes) > 256:
                raise ValueError(f"y has {len(classes)} classes; at most 256 are supported")
        seed = _seed(self.random_state)
        core = _aekit.StackedCore(json.dumps(self._settings(X.shape[1], seed)))
        self.history_ = core.pretrain(X, bool(self.verbose))
        self.finetune_history_ = []
        if y is not None:
            self.classes_ = classes
            if len(self.classes_) == 1:
                # Nothing to learn: every prediction is the one class.
                self.finetune_history_ = []
            else:
                fraction = float(self.validation_fraction)
                if not 0.0 <= fraction < 1.0:
                    raise ValueError(f"validation_fraction: {fraction} is not in [0, 1)")
                if fraction == 0.0:
                    # Nothing held out: every epoch runs, the last weights kept.
                    tr, va = np.arange(len(codes)), np.arange(0)
                else:
                    counts = np.bincount(codes)
                    strat = codes if counts.min() >= 2 and fraction * len(codes) >= len(counts) else None
                    tr, va = train_test_split(
                        np.arange(len(codes)), test_size=fraction, random_state=seed % (2**32), stratify=strat
                    )
                c8 = codes.astype(np.uint8)
                self.finetune_history_ = core.finetune(
                    X[tr], c8[tr].tolist(), X[va], c8[va].tolist(), bool(self.verbose)
                )
        self.model_ = core
        self.n_iter_ = len(self.history_) + len(self.finetune_history_)
        return self

    def _classifier(self):
        check_is_fitted(self, "classes_")

    def predict_proba(self, X):
        """p(class | x) by the fine-tuned softmax layer, columns in the order
        of ``classes_``."""
        self._classifier()
        X = self._rows(X)
        if len(self.classes_) == 1:
            return np.ones((X.shape[0], 1))
        W, b = self.model_.classifier()
        z = self.model_.transform(X).astype(np.float64) @ W + np.asarray(b)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each row of X."""
        self._classifier()
        X = self._rows(X)
        if len(self.classes_) == 1:
            return np.repeat(self.classes_, X.shape[0])
        return self.classes_[np.frombuffer(bytes(self.model_.predict(X)), dtype=np.uint8)]

    def score(self, X, y=None):
        """Accuracy on (X, y); without y, minus the mean cross-entropy of
        reconstructing X from the top layer."""
        if y is not None:
            return ClassifierMixin.score(self, X, y)
        return -self.model_.loss(self._rows(X))


class PCA(_Model, TransformerMixin, BaseEstimator):
    """Principal component analysis: the covariance's top eigenvectors
    (``svd_solver="exact"``, through faer) or a randomized SVD; with
    ``whiten`` the codes have unit variance. ``score`` is minus Hinton's
    reconstruction error (the squared error per row, summed over columns)."""

    _core_class = _aekit.PcaCore

    def __init__(self, n_components=None, *, whiten=False, svd_solver="exact", n_jobs=1):
        self.n_components = n_components
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.n_jobs = n_jobs

    # Pickled in full precision (the model file keeps f32).
    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = ("pca-state", state["model_"].state())
        return state

    def __setstate__(self, state):
        m = state.get("model_")
        if isinstance(m, tuple) and m and m[0] == "pca-state":
            state["model_"] = _aekit.PcaCore.from_state(*m[1])
        self.__dict__.update(state)

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float32, order="C")
        n, d = X.shape
        if n < 2:
            raise ValueError(f"PCA needs at least 2 samples, got n_samples = {n}")
        k = min(n, d) if self.n_components is None else int(self.n_components)
        if not 1 <= k <= d:
            raise ValueError(f"n_components={k} must be between 1 and n_features={d}")
        core = _aekit.PcaCore(k, bool(self.whiten), self.svd_solver, max(1, _threads(self.n_jobs) or 1))
        core.fit(X)
        return self._fitted(core, k)

    def _fitted(self, core, k):
        self.model_ = core
        self.n_components_ = k
        var = np.asarray(core.explained_variance())
        self.explained_variance_ = var
        self.explained_variance_ratio_ = var / core.total_variance() if core.total_variance() > 0 else np.zeros_like(var)
        self.mean_ = np.asarray(core.mean())
        return self

    @property
    def components_(self):
        check_is_fitted(self, "model_")
        return self.model_.components()

    def inverse_transform(self, X):
        check_is_fitted(self, "model_")
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X.ndim != 2 or X.shape[1] != self.n_components_:
            raise ValueError(f"codes must have shape (n, {self.n_components_}), got {X.shape}")
        return self.model_.inverse_transform(X)

    def score(self, X, y=None):
        return -self.model_.error(self._rows(X))


class Imputer(_Model, TransformerMixin, BaseEstimator):
    """The MIDAS imputer: a denoising autoencoder over the observed cells
    (NaN marks a missing one), beside a linear path (a Gaussian fitted by
    EM, for up to 256 columns) whose fill it corrects; ``transform`` returns
    X with its NaN cells filled and every observed cell unchanged.
    Parameters are ``aekit impute``'s ``[model]`` and ``[train]``;
    ``layers=None`` is 64,64 with the linear path and 256,256,256 without;
    ``linear`` is ``"auto"``, ``"gaussian"`` or ``"none"``."""

    _core_class = _aekit.ImputerCore

    def __init__(
        self,
        *,
        layers=None,
        linear="auto",
        corruption=0.2,
        dropout=0.5,
        max_iter=200,
        batch_size=32,
        learning_rate=1e-3,
        patience=3,
        random_state=None,
        n_jobs=1,
        verbose=0,
    ):
        self.layers = layers
        self.linear = linear
        self.corruption = corruption
        self.dropout = dropout
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float32, order="C", ensure_all_finite="allow-nan")
        if np.isinf(X).any():
            raise ValueError("Input X contains infinity: only NaN may mark a missing cell")
        settings = {
            "layers": [] if self.layers is None else [int(w) for w in self.layers],
            "linear": str(self.linear),
            "corruption": float(self.corruption),
            "dropout": float(self.dropout),
            "train": {
                "epochs": int(self.max_iter),
                "batch": int(self.batch_size),
                "optimizer": "adam",
                "lr": float(self.learning_rate),
                "patience": int(self.patience),
                "seed": _seed(self.random_state),
                "threads": _threads(self.n_jobs),
            },
        }
        core = _aekit.ImputerCore(json.dumps(settings))
        self.history_ = core.fit(X, bool(self.verbose))
        self.model_ = core
        self.n_iter_ = len(self.history_)
        return self

    def transform(self, X):
        X = self._rows(X, ensure_all_finite="allow-nan")
        if np.isinf(X).any():
            raise ValueError("Input X contains infinity: only NaN may mark a missing cell")
        return self.model_.transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def load(path):
    """A model file written by the command or by ``save``, as a fitted
    estimator: a :class:`DenoisingAutoencoder` (``aekit train``'s dense
    DAE), :class:`SparseAutoencoder` (``aekit train --kind sparse``),
    :class:`ConvAutoencoder` (``aekit cae``),
    :class:`StackedDenoisingAutoencoder` (``aekit pretrain``/``finetune``;
    a fine-tuned one predicts class indices 0, 1, …), :class:`PCA` or
    :class:`Imputer` (``aekit impute fit``)."""
    kind = _aekit.model_format(str(path))
    if kind == "aekit.sparse":
        core = _aekit.SparseCore.load(str(path))
        m = json.loads(core.settings())["model"]
        est = SparseAutoencoder(
            n_hidden=core.n_hid,
            sparsity_target=m["sparsity_target"],
            sparsity_weight=m["sparsity_weight"],
            weight_decay=m["weight_decay"],
            output_activation=m["output_activation"],
        )
    elif kind == "aekit.cae":
        core = _aekit.ConvCore.load(str(path))
        est = ConvAutoencoder()
        est.image_shape_ = tuple(core.input_shape)
    elif kind == "aekit.dae":
        core = _aekit.Dae.load(str(path))
        est = DenoisingAutoencoder(n_hidden=core.n_hid)
    elif kind == "aekit.stacked":
        core = _aekit.StackedCore.load(str(path))
        est = StackedDenoisingAutoencoder(hidden_layer_sizes=tuple(core.layers))
        clf = core.classifier()
        if clf is not None:
            # The file keeps class indices, not the labels they stood for.
            est.classes_ = np.arange(len(clf[1]))
    elif kind == "aekit.pca":
        core = _aekit.PcaCore.load(str(path))
        state = core.state()
        est = PCA(n_components=state[0], whiten=state[1])._fitted(core, state[0])
        est.n_features_in_ = len(state[2])
        return est
    elif kind == "aekit.imputer":
        core = _aekit.ImputerCore.load(str(path))
        est = Imputer()
    else:
        raise ValueError(f"{path}: a `{kind}` model, which aekit.load does not read")
    est.model_ = core
    est.n_features_in_ = core.n_vis
    est.history_ = []
    est.n_iter_ = 0
    return est
