"""What users rely on beyond scikit-learn's checks: pipelines and grid
search on real digits, NumPy dtypes and orders, clear errors, pickling,
the CLI's model files, Ctrl-C."""

import os
import pickle
import signal
import threading

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import aekit


@pytest.fixture(scope="module")
def digits():
    X, y = aekit.builtin_digits()
    return X, y


def test_dae_codes_feed_a_classifier_in_a_grid_search(digits):
    X, y = digits
    pipe = Pipeline([
        ("dae", aekit.DenoisingAutoencoder(max_iter=3, random_state=0)),
        ("clf", LogisticRegression(max_iter=300)),
    ])
    grid = GridSearchCV(pipe, {"dae__n_hidden": [32, 64]}, cv=2)
    grid.fit(X[:1500], y[:1500])
    acc = grid.score(X[8000:9000], y[8000:9000])
    assert grid.best_params_["dae__n_hidden"] in (32, 64)
    assert acc > 0.8, acc


def test_dtypes_and_orders_give_the_same_codes(digits):
    X, _ = digits
    m = aekit.DenoisingAutoencoder(16, max_iter=1, random_state=1).fit(X[:500])
    ref = m.transform(X[:50])
    assert ref.dtype == np.float32 and ref.shape == (50, 16)
    for variant in (X[:50].astype(np.float64), np.asfortranarray(X[:50])):
        np.testing.assert_allclose(m.transform(variant), ref, rtol=1e-6)
    # A strided view (every other row) is read as its rows.
    np.testing.assert_allclose(m.transform(X[:100][::2]), m.transform(np.ascontiguousarray(X[:100][::2])), rtol=1e-6)


def test_bad_input_raises_value_error(digits):
    X, _ = digits
    m = aekit.DenoisingAutoencoder(8, max_iter=1).fit(X[:200])
    with pytest.raises(ValueError, match="features"):
        m.transform(X[:5, :100])
    bad = X[:10].copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.transform(bad)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        aekit.DenoisingAutoencoder(8, max_iter=1).fit(X[:50] * 3)
    with pytest.raises(ValueError, match="noise"):
        aekit.DenoisingAutoencoder(8, noise="blur:3").fit(X[:50])
    with pytest.raises(ValueError, match="n_components"):
        aekit.PCA(1000).fit(X[:50])


def test_pickle_and_the_cli_model_file_round_trip(digits, tmp_path):
    X, _ = digits
    for est in (aekit.DenoisingAutoencoder(16, max_iter=1, random_state=2), aekit.PCA(10)):
        est.fit(X[:600])
        back = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(back.transform(X[:20]), est.transform(X[:20]))
    dae = aekit.DenoisingAutoencoder(16, max_iter=1, random_state=2).fit(X[:600])
    path = tmp_path / "model.safetensors"
    dae.save(path)
    loaded = aekit.load(path)
    np.testing.assert_array_equal(loaded.transform(X[:20]), dae.transform(X[:20]))
    assert loaded.n_features_in_ == 784
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header


def test_imputer_fills_only_the_holes(digits):
    X, _ = digits
    rng = np.random.default_rng(0)
    Xm = X[:800].copy()
    Xm[rng.random(Xm.shape) < 0.2] = np.nan
    imp = aekit.Imputer(layers=(64,), max_iter=5, random_state=0).fit(Xm)
    F = imp.transform(Xm)
    seen = ~np.isnan(Xm)
    assert not np.isnan(F).any()
    np.testing.assert_array_equal(F[seen], Xm[seen])
    # Better than the column means on the hidden cells.
    truth = X[:800][~seen]
    mean_fill = np.broadcast_to(np.nanmean(Xm, axis=0), Xm.shape)[~seen]
    assert np.sqrt(np.mean((F[~seen] - truth) ** 2)) < np.sqrt(np.mean((mean_fill - truth) ** 2))


@pytest.mark.parametrize(
    "make",
    [
        # At most 40 epochs (or 2000 L-BFGS iterations, a minute), so that a
        # missed signal fails the test instead of hanging it.
        lambda: aekit.DenoisingAutoencoder(256, max_iter=40, batch_size=20),
        lambda: aekit.SparseAutoencoder(196, max_iter=2000),
    ],
    ids=["dae-sgd", "sparse-lbfgs"],
)
def test_ctrl_c_stops_fit_and_leaves_the_estimator_usable(digits, make):
    X, _ = digits
    # Ctrl-C is pressed every half second until fit returns.
    m = make()
    done = threading.Event()

    def press():
        while not done.wait(0.5):
            os.kill(os.getpid(), signal.SIGINT)

    raised = threading.Event()

    def on_sigint(signum, frame):
        # One press interrupts; the ones that come after it (on a loaded
        # machine, before the test has stopped pressing) are ignored.
        if not done.is_set() and not raised.is_set():
            raised.set()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    presser = threading.Thread(target=press, daemon=True)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            m.fit(X)
    finally:
        done.set()
        presser.join()
        signal.signal(signal.SIGINT, previous)
    assert not hasattr(m, "model_")
    m.set_params(max_iter=1, n_hidden=8)
    m.fit(X[:200])
    assert m.transform(X[:3]).shape == (3, 8)


def test_sparse_autoencoder_learns_sparse_codes_and_round_trips(digits, tmp_path):
    X, _ = digits
    sae = aekit.SparseAutoencoder(25, max_iter=40, random_state=1).fit(X[:1000])
    assert sae.n_iter_ == 40 and len(sae.history_) == 40
    costs = [h[1] for h in sae.history_]
    assert costs[-1] < 0.5 * costs[0], costs
    parts = sae.cost(X[:1000])
    assert abs(parts["total"] - (parts["reconstruction"] + parts["weight_decay"] + parts["sparsity"])) < 1e-4
    # The KL penalty pulls the mean activation towards rho = 0.1.
    assert abs(parts["mean_activation"] - 0.1) < 0.05, parts
    codes = sae.transform(X[:10])
    assert codes.shape == (10, 25) and sae.components_.shape == (25, 784)
    assert sae.score(X[1000:1200]) == -sae.cost(X[1000:1200])["reconstruction"]
    back = pickle.loads(pickle.dumps(sae))
    np.testing.assert_array_equal(back.transform(X[:20]), sae.transform(X[:20]))
    path = tmp_path / "sparse.safetensors"
    sae.save(path)
    loaded = aekit.load(path)
    assert isinstance(loaded, aekit.SparseAutoencoder) and loaded.n_hidden == 25
    np.testing.assert_array_equal(loaded.transform(X[:20]), sae.transform(X[:20]))
    with pytest.raises(ValueError, match="output_activation"):
        aekit.SparseAutoencoder(4, output_activation="relu").fit(X[:20])


def test_the_type_stubs_name_everything_the_native_core_has():
    import ast
    import inspect
    from pathlib import Path

    from aekit import _aekit

    stub = ast.parse((Path(aekit.__file__).parent / "_aekit.pyi").read_text())
    classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef)}
    functions = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    for name, obj in vars(_aekit).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(obj):
            assert name in classes, f"class {name} has no stub"
            stubbed = {n.name for n in classes[name].body if isinstance(n, ast.FunctionDef)}
            public = {m for m in dir(obj) if not m.startswith("_")}
            assert public <= stubbed, f"{name}: {sorted(public - stubbed)} have no stub"
        elif callable(obj):
            assert name in functions, f"function {name} has no stub"
    assert (Path(aekit.__file__).parent / "py.typed").exists()


def test_conv_autoencoder_takes_images_or_rows_and_round_trips(digits, tmp_path):
    X, _ = digits
    images = X[:5000].reshape(-1, 1, 28, 28)
    cae = aekit.ConvAutoencoder("cae-mnist", max_iter=5, random_state=3, n_jobs=2).fit(images)
    assert cae.image_shape_ == (1, 28, 28) and cae.n_features_in_ == 784 and cae.n_iter_ == 5
    losses = [h[1] for h in cae.history_]
    assert losses[-1] < 0.2 * losses[0], losses
    # Images and flat rows are the same data.
    codes = cae.transform(images[:50])
    assert codes.shape == (50, 32 * 7 * 7)
    np.testing.assert_array_equal(codes, cae.transform(X[:50]))
    assert cae.reconstruct(images[:5]).shape == (5, 1, 28, 28)
    assert cae.reconstruct(X[:5]).shape == (5, 784)
    # On unseen digits, far better than reconstructing each as the mean digit
    # (3.65 against 27.4 when written).
    mean_loss = 0.5 * np.sum((X[5000:6000] - X[:5000].mean(axis=0)) ** 2, axis=1).mean()
    assert -cae.score(X[5000:6000]) < 0.25 * mean_loss
    back = pickle.loads(pickle.dumps(cae))
    np.testing.assert_array_equal(back.transform(X[:20]), cae.transform(X[:20]))
    path = tmp_path / "cae.safetensors"
    cae.save(path)
    loaded = aekit.load(path)
    assert isinstance(loaded, aekit.ConvAutoencoder)
    np.testing.assert_array_equal(loaded.transform(X[:20]), cae.transform(X[:20]))
    with pytest.raises(ValueError, match="architecture"):
        aekit.ConvAutoencoder("cae-imagenet").fit(images[:10])
    with pytest.raises(ValueError, match="features"):
        aekit.ConvAutoencoder("cae-mnist").fit(X[:10, :700])
    with pytest.raises(ValueError, match="shape"):
        cae.transform(X[:4].reshape(-1, 1, 14, 56))


def test_stacked_dae_pretrains_then_classifies(digits, tmp_path):
    from sklearn.exceptions import NotFittedError

    X, y = digits
    labels = np.array(list("abcdefghij"))[y]  # any labels, mapped back in predict
    sda = aekit.StackedDenoisingAutoencoder(
        (256, 128), pretrain_epochs=2, max_iter=10, learning_rate=0.1, random_state=0, n_jobs=2
    )
    sda.fit(X[:4000], labels[:4000])
    assert list(sda.classes_) == list("abcdefghij")
    # Layer 1 trains 2 epochs; under the stacked schedule a later layer gets
    # the budget of 2 n (`aekit pretrain`'s rule).
    assert len(sda.history_) == 2 + 4 and 1 <= len(sda.finetune_history_) <= 10
    assert sda.transform(X[:5]).shape == (5, 128)
    acc = sda.score(X[4000:6000], labels[4000:6000])
    assert acc > 0.85, acc
    proba = sda.predict_proba(X[4000:4100])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(sda.classes_[proba.argmax(axis=1)], sda.predict(X[4000:4100]))
    back = pickle.loads(pickle.dumps(sda))
    np.testing.assert_array_equal(back.predict(X[:50]), sda.predict(X[:50]))
    sda.save(tmp_path / "sda.safetensors")
    # Pretrained only: a transformer, not yet a classifier.
    plain = aekit.StackedDenoisingAutoencoder((32,), pretrain_epochs=1, random_state=0).fit(X[:500])
    assert plain.transform(X[:3]).shape == (3, 32) and plain.score(X[:200]) < 0
    with pytest.raises(NotFittedError):
        plain.predict(X[:3])
    # More classes than the softmax layer takes: refused before any training.
    many = aekit.StackedDenoisingAutoencoder((8,), pretrain_epochs=1)
    with pytest.raises(ValueError, match="257 classes"):
        many.fit(X[:600], np.arange(600) % 257)
    assert not hasattr(many, "model_")


def test_stacked_dae_fine_tunes_with_dropout_and_refuses_a_rate_of_one(digits):
    X, y = digits
    sda = aekit.StackedDenoisingAutoencoder(
        (256,), pretrain_epochs=2, max_iter=10, learning_rate=0.1, dropout=0.3, random_state=0
    )
    sda.fit(X[:4000], y[:4000])
    acc = sda.score(X[4000:6000], y[4000:6000])
    assert acc > 0.85, acc
    # The same seed without dropout fine-tunes to other weights.
    plain = aekit.StackedDenoisingAutoencoder(
        (256,), pretrain_epochs=2, max_iter=10, learning_rate=0.1, random_state=0
    ).fit(X[:4000], y[:4000])
    assert not np.array_equal(plain.predict_proba(X[:50]), sda.predict_proba(X[:50]))
    bad = aekit.StackedDenoisingAutoencoder((8,), pretrain_epochs=1, dropout=1.0)
    with pytest.raises(ValueError, match=r"dropout.*not a rate in \[0, 1\)"):
        bad.fit(X[:300], y[:300])


def test_stacked_dae_keeps_averaged_weights_and_refuses_a_decay_of_one(digits):
    X, y = digits
    kw = dict(pretrain_epochs=2, max_iter=10, learning_rate=0.1, random_state=0)
    avg = aekit.StackedDenoisingAutoencoder((256,), average=0.99, **kw).fit(X[:4000], y[:4000])
    acc = avg.score(X[4000:6000], y[4000:6000])
    assert acc > 0.85, acc
    # The same seed without averaging keeps the last weights of its best epoch.
    plain = aekit.StackedDenoisingAutoencoder((256,), **kw).fit(X[:4000], y[:4000])
    assert not np.array_equal(plain.predict_proba(X[:50]), avg.predict_proba(X[:50]))
    bad = aekit.StackedDenoisingAutoencoder((8,), pretrain_epochs=1, average=1.0)
    with pytest.raises(ValueError, match=r"average.*not a decay in \[0, 1\)"):
        bad.fit(X[:300], y[:300])


def test_stacked_dae_refits_on_every_row_without_a_validation_fraction(digits):
    X, y = digits
    kw = dict(pretrain_epochs=2, max_iter=10, learning_rate=0.1, patience=1, random_state=0)
    refit = aekit.StackedDenoisingAutoencoder((256,), validation_fraction=0.0, **kw).fit(X[:4000], y[:4000])
    # Every epoch runs (patience 1 has nothing to stop on) with no validation error.
    assert len(refit.finetune_history_) == 10
    assert all(e[2] is None for e in refit.finetune_history_), refit.finetune_history_
    acc = refit.score(X[4000:6000], y[4000:6000])
    assert acc > 0.85, acc
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="validation_fraction"):
            aekit.StackedDenoisingAutoencoder((8,), pretrain_epochs=1, validation_fraction=bad).fit(X[:300], y[:300])


def test_stacked_dae_bounds_each_units_weights_by_max_norm(digits):
    X, y = digits
    kw = dict(pretrain_epochs=2, max_iter=4, learning_rate=0.5, random_state=0)
    bounded = aekit.StackedDenoisingAutoencoder((64,), max_norm=1.0, **kw).fit(X[:3000], y[:3000])
    W, _ = bounded.model_.classifier()
    # Every softmax unit's incoming weights end within the bound.
    assert np.linalg.norm(np.asarray(W), axis=0).max() <= 1.0 + 1e-5
    free = aekit.StackedDenoisingAutoencoder((64,), **kw).fit(X[:3000], y[:3000])
    assert np.linalg.norm(np.asarray(free.model_.classifier()[0]), axis=0).max() > 1.0
    with pytest.raises(ValueError, match="max_norm"):
        aekit.StackedDenoisingAutoencoder((8,), pretrain_epochs=1, max_norm=-1.0).fit(X[:300], y[:300])


def test_stacked_dae_pretrains_untied_decoders_and_refuses_them_off_the_stacked_schedule(digits):
    X, y = digits
    kw = dict(pretrain_epochs=2, max_iter=10, learning_rate=0.1, random_state=0)
    untied = aekit.StackedDenoisingAutoencoder((256,), untied=True, **kw).fit(X[:4000], y[:4000])
    acc = untied.score(X[4000:6000], y[4000:6000])
    assert acc > 0.85, acc
    # The same seed tied pretrains other encoder weights.
    tied = aekit.StackedDenoisingAutoencoder((256,), **kw).fit(X[:4000])
    pre = aekit.StackedDenoisingAutoencoder((256,), untied=True, **kw).fit(X[:4000])
    assert not np.array_equal(tied.transform(X[:50]), pre.transform(X[:50]))
    bad = aekit.StackedDenoisingAutoencoder((8,), pretrain_epochs=1, schedule="gradual", untied=True)
    with pytest.raises(ValueError, match="untied.*gradual"):
        bad.fit(X[:300])


def test_every_estimator_saves_a_file_that_aekit_load_reads_back(digits, tmp_path):
    X, y = digits
    Xn = X[:400].copy()
    Xn[np.random.default_rng(1).random(Xn.shape) < 0.1] = np.nan
    fitted = [
        (aekit.DenoisingAutoencoder(16, max_iter=1, random_state=0).fit(X[:400]), X),
        (aekit.SparseAutoencoder(8, max_iter=5, random_state=0).fit(X[:400]), X),
        (aekit.ConvAutoencoder("cae-mnist", max_iter=1, random_state=0).fit(X[:300]), X),
        (aekit.StackedDenoisingAutoencoder((16,), pretrain_epochs=1, max_iter=2, random_state=0).fit(X[:400], y[:400]), X),
        (aekit.PCA(5).fit(X[:400]), X),
        (aekit.Imputer(layers=(16,), max_iter=2, random_state=0).fit(Xn), Xn),
    ]
    for i, (est, data) in enumerate(fitted):
        path = tmp_path / f"model-{i}.safetensors"
        est.save(path)
        back = aekit.load(path)
        assert type(back) is type(est)
        assert back.n_features_in_ == 784
        if isinstance(est, aekit.PCA):
            # The file keeps the f64 components as f32 (pickling keeps f64).
            np.testing.assert_allclose(back.transform(data[:30]), est.transform(data[:30]), rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(back.transform(data[:30]), est.transform(data[:30]))
    sda, loaded = fitted[3][0], aekit.load(tmp_path / "model-3.safetensors")
    np.testing.assert_array_equal(loaded.predict(X[:30]), sda.predict(X[:30]))


def test_a_standardised_dae_reconstructs_real_valued_columns_in_their_units(tmp_path):
    # Columns on scales from 1 to 1000, driven by two factors.
    rng = np.random.default_rng(0)
    f = rng.normal(size=(400, 2))
    X = np.column_stack([f[:, 0], 1000 * f[:, 1] + 5000, 10 * (f[:, 0] + f[:, 1]), f[:, 1] - 3]).astype(np.float32)
    common = dict(noise="gauss:0.1", loss="squared", output_activation="identity", max_iter=30, random_state=0)
    std = aekit.DenoisingAutoencoder(3, standardize=True, **common).fit(X)
    raw = aekit.DenoisingAutoencoder(3, **common).fit(X)

    def r2(m):
        Z = m.reconstruct(X)
        return np.mean(1 - ((X - Z) ** 2).sum(0) / ((X - X.mean(0)) ** 2).sum(0))

    assert r2(std) > 0.8 and r2(std) > r2(raw) + 0.3, (r2(std), r2(raw))
    # The scaling travels with the model file.
    path = tmp_path / "std.safetensors"
    std.save(path)
    back = aekit.load(path)
    np.testing.assert_allclose(back.reconstruct(X[:5]), std.reconstruct(X[:5]), rtol=1e-6)
    with pytest.raises(ValueError, match="standardize"):
        aekit.DenoisingAutoencoder(3, standardize=True).fit(X)
    # The sparse autoencoder standardises too.
    sparse = aekit.SparseAutoencoder(3, standardize=True, output_activation="identity", max_iter=200).fit(X)
    assert r2(sparse) > 0.8, r2(sparse)


def test_fit_leaves_numpys_subnormals_as_they_were(digits):
    # aekit trains with flush-to-zero and puts the caller's mode back.
    X, _ = digits
    tiny = np.array([np.finfo(np.float32).tiny], dtype=np.float32)
    before = tiny * np.float32(0.25)
    assert before[0] > 0, "subnormal results before fit"
    aekit.DenoisingAutoencoder(16, max_iter=1, random_state=0).fit(X[:200])
    after = tiny * np.float32(0.25)
    assert after[0] == before[0] and after[0] > 0
