//! `aekit denoise`: a trained DAE or CAE on noisy images, its measures
//! against the clean ones, and the inputs it refuses.

mod common;

use common::{aekit, fails_with, json, stderr, tmp};

/// Trains a small dense DAE with Gaussian noise into `dir/model`.
fn train_dae(dir: &std::path::Path) -> std::path::PathBuf {
    let run = dir.join("model");
    let o = aekit(&[
        "train",
        "--noise",
        "gauss:0.5",
        "--loss",
        "squared",
        "--hidden",
        "64",
        "--epochs",
        "2",
        "--train-size",
        "2000",
        "--val-size",
        "0",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    run
}

#[test]
fn denoising_corrupted_digits_beats_the_noise_and_the_median_filter() {
    let dir = tmp("denoise");
    let model = train_dae(dir.path());
    let out = dir.path().join("den");
    let o = aekit(&[
        "denoise",
        "--model",
        model.to_str().unwrap(),
        "--noise",
        "gauss:0.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["n"], 2000);
    let (p, q) = (&s["psnr"], &s["ssim"]);
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    // σ = 0.5 noise on [0, 1] pixels is about 6 dB.
    assert!((5.0..7.5).contains(&f(&p["noisy"])), "{p}");
    assert!(
        f(&p["denoised"]) > f(&p["median3"]) && f(&p["median3"]) > f(&p["noisy"]),
        "{p}"
    );
    // The median filter's structure is better than the noise's; this small,
    // briefly trained model's blur may not be (SSIM in (0, 1] is all that is
    // asked of it).
    assert!(f(&q["median3"]) > f(&q["noisy"]), "{q}");
    assert!(f(&q["denoised"]) > 0.0 && f(&q["denoised"]) <= 1.0, "{q}");
    assert!(out.join("denoised.png").exists());
    let npy = std::fs::read(out.join("denoised.npy")).unwrap();
    assert_eq!(npy.len() % 4, 0);
    assert!(npy.len() > 2000 * 784 * 4);
    // The corrupted inputs are kept, for baselines run on the same images.
    let (shape, noisy) = aekit::data::npy::read_npy(&out.join("noisy.npy")).unwrap();
    assert_eq!(shape, vec![2000, 784]);
    assert!(
        noisy.iter().any(|&v| !(0.0..=1.0).contains(&v)),
        "Gaussian noise leaves [0, 1]"
    );
}

#[test]
fn already_noisy_images_are_denoised_without_measures() {
    let dir = tmp("denoise-user");
    let model = train_dae(dir.path());
    // A user's 3 "noisy" images as an .npy file.
    let x: Vec<f32> = (0..3 * 784).map(|i| ((i * 31) % 17) as f32 / 16.0).collect();
    let data = dir.path().join("noisy.npy");
    aekit::data::npy::write_npy(&data, &[3, 784], &x).unwrap();
    let out = dir.path().join("den");
    let o = aekit(&[
        "denoise",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--split",
        "all",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["n"], 3);
    assert!(s.get("psnr").is_none());
    assert!(!out.join("noisy.npy").exists(), "nothing was corrupted");
    let (shape, vals) = aekit::data::npy::read_npy(&out.join("denoised.npy")).unwrap();
    assert_eq!(shape, vec![3, 784]);
    assert!(vals.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_inputs_are_refused_with_what_is_wrong() {
    let dir = tmp("denoise-bad");
    let model = train_dae(dir.path());
    let m = model.to_str().unwrap();
    // Images of the wrong size for the model.
    let data = dir.path().join("small.npy");
    aekit::data::npy::write_npy(&data, &[2, 10], &[0.5; 20]).unwrap();
    let o = aekit(&["denoise", "--model", m, "--data", data.to_str().unwrap()]);
    fails_with(&o, &["expects 784 inputs", "10 features"]);
    // A noise it does not know.
    let o = aekit(&["denoise", "--model", m, "--noise", "blur:3"]);
    fails_with(&o, &["--noise"]);
    // A model that does not denoise.
    let pca = dir.path().join("pca");
    let o = aekit(&["pca", "--components", "5", "--out", pca.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aekit(&["denoise", "--model", pca.to_str().unwrap()]);
    fails_with(&o, &["aekit.pca", "does not denoise"]);
}

#[test]
fn inpainting_keeps_known_pixels_and_beats_the_mean_fill() {
    let dir = tmp("inpaint");
    let model = dir.path().join("model");
    let o = aekit(&[
        "train",
        "--noise",
        "mask:0.5",
        "--hidden",
        "128",
        "--epochs",
        "3",
        "--train-size",
        "3000",
        "--val-size",
        "0",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("ip");
    let o = aekit(&[
        "inpaint",
        "--model",
        model.to_str().unwrap(),
        "--mask",
        "random:0.5",
        "--iterations",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&out.join("summary.json"));
    let mse = &s["masked_mse"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!(f(&mse["inpainted"]) < f(&mse["mean_fill"]), "{mse}");
    assert!((0.45..0.55).contains(&f(&s["missing_fraction"])), "{s}");
    assert_eq!(s["masked_mse_per_pass"].as_array().unwrap().len(), 2);
    // Every known pixel is the test image's own.
    let (_, filled) = aekit::data::npy::read_npy(&out.join("inpainted.npy")).unwrap();
    let d = aekit::data::builtin::builtin_mnist().unwrap();
    let test = &d.x[8000 * 784..];
    let same = filled.iter().zip(test).filter(|(a, b)| a == b).count();
    let known = ((1.0 - f(&s["missing_fraction"])) * filled.len() as f64).round() as usize;
    assert!(same >= known, "{same} pixels as they were, {known} known");
    let o = aekit(&[
        "inpaint",
        "--model",
        model.to_str().unwrap(),
        "--mask",
        "square:3",
    ]);
    fails_with(&o, &["--mask", "unknown mask"]);
    // No pass, or more passes than the bound: refused before any folder is made.
    for (n, folder) in [("0", "none"), ("1001", "many")] {
        let o = aekit(&[
            "inpaint",
            "--model",
            model.to_str().unwrap(),
            "--iterations",
            n,
            "--out",
            dir.path().join(folder).to_str().unwrap(),
        ]);
        fails_with(&o, &["iterations", &format!("{n} passes"), "give 1 to 1000"]);
        assert!(!dir.path().join(folder).exists());
    }
}

#[test]
fn a_users_mask_file_sets_the_holes_and_bad_ones_are_refused() {
    let dir = tmp("inpaint-user-mask");
    let model = train_dae(dir.path());
    let m = model.to_str().unwrap();
    // One 28×28 mask for every image: a 10×10 square at rows and columns 5–14.
    let mut mask = vec![0.0f32; 784];
    for y in 5..15 {
        for x in 5..15 {
            mask[y * 28 + x] = 1.0;
        }
    }
    let npy = dir.path().join("hole.npy");
    aekit::data::npy::write_npy(&npy, &[28, 28], &mask).unwrap();
    // The same hole as a picture: white is missing.
    let png = dir.path().join("hole.png");
    let pixels: Vec<u8> = mask.iter().map(|&v| (v * 255.0) as u8).collect();
    image::GrayImage::from_raw(28, 28, pixels)
        .unwrap()
        .save(&png)
        .unwrap();
    for (name, file) in [("npy", &npy), ("png", &png)] {
        let out = dir.path().join(name);
        let o = aekit(&[
            "inpaint",
            "--model",
            m,
            "--mask",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let (shape, used) = aekit::data::npy::read_npy(&out.join("mask.npy")).unwrap();
        assert_eq!(shape[1], 784);
        assert!(
            used.chunks_exact(784).all(|row| row == &mask[..]),
            "{name}: every image gets the hole"
        );
        let s = json(&out.join("summary.json"));
        assert!(
            (s["missing_fraction"].as_f64().unwrap() - 100.0 / 784.0).abs() < 1e-9,
            "{s}"
        );
    }
    // A mask of the wrong size, values that are not 0 or 1, a missing file.
    let small = dir.path().join("small.npy");
    aekit::data::npy::write_npy(&small, &[10, 10], &[0.0; 100]).unwrap();
    let o = aekit(&["inpaint", "--model", m, "--mask", small.to_str().unwrap()]);
    fails_with(&o, &["small.npy", "784 values"]);
    let half = dir.path().join("half.npy");
    aekit::data::npy::write_npy(&half, &[784], &[0.5; 784]).unwrap();
    let o = aekit(&["inpaint", "--model", m, "--mask", half.to_str().unwrap()]);
    fails_with(&o, &["half.npy", "index 0", "1 (missing) or 0 (known)"]);
    let o = aekit(&["inpaint", "--model", m, "--mask", "nowhere.npy"]);
    fails_with(&o, &["no mask file", "nowhere.npy"]);
}
