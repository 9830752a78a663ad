//! `aekit experiment denoise` and `aekit experiment inpaint` in their quick
//! form, on the built-in digits and a generated CIFAR-10 folder: every
//! method's row, the tables and the pictures.

mod common;

use common::{aekit, generated_cifar10, json, stderr, tmp};

fn csv_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|c| c.trim_matches('"').to_string()).collect())
        .collect()
}

#[test]
fn the_denoising_experiment_measures_three_models_and_the_filters_on_grey_and_rgb_images() {
    let dir = tmp("exp-denoise");
    generated_cifar10(dir.path());
    let out = dir.path().join("run");
    let data = format!("builtin,{}", dir.path().display());
    let o = aekit(&[
        "experiment",
        "denoise",
        "--quick",
        "--data",
        &data,
        "--train-size",
        "300",
        "--test-size",
        "60",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = csv_rows(&out.join("results.csv"));
    // Per dataset: 3 noises × (noisy, median, blur, dense DAE, deep DAE, CAE).
    assert_eq!(rows.len(), 2 * 3 * 6, "{rows:?}");
    for noise in ["gauss:0.3", "gauss:0.5", "saltpepper:0.2"] {
        let of = |m: &str| {
            rows.iter()
                .find(|r| r[0] == "builtin" && r[1] == noise && r[2].starts_with(m))
                .unwrap_or_else(|| panic!("no {m} row for {noise}"))
        };
        let psnr = |m: &str| of(m)[3].parse::<f64>().unwrap();
        // The filters beat the noise on digits; every figure is finite.
        assert!(psnr("median") > psnr("noisy"), "{noise}");
        for m in ["dense DAE", "deep DAE", "CAE"] {
            assert!(
                psnr(m).is_finite() && of(m)[5].parse::<f64>().unwrap() > 0.0,
                "{m} trained"
            );
        }
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("## builtin") && md.contains("| Gaussian blur |"),
        "{md}"
    );
    for f in ["builtin-gauss0.5.png", "builtin-saltpepper0.2.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The CIFAR rows come from RGB images and the cae-cifar preset.
    // A folder is named by its own name (the temporary folder's here).
    let folder = dir.path().file_name().unwrap().to_string_lossy().into_owned();
    assert!(rows.iter().filter(|r| r[0] == folder).count() == 18, "{rows:?}");
    let cifar = out.join(format!("{folder}-gauss0.3.png"));
    assert!(image::open(&cifar).unwrap().color().has_color());
    let s = json(&out.join("summary.json"));
    assert!(
        s["best"]["builtin"]["gauss:0.5"]["best_classical"]
            .as_str()
            .is_some(),
        "{s}"
    );
}

#[test]
fn the_inpainting_experiment_fills_blocks_and_random_pixels_in_one_and_three_passes() {
    let dir = tmp("exp-inpaint");
    let out = dir.path().join("run");
    let o = aekit(&[
        "experiment",
        "inpaint",
        "--quick",
        "--train-size",
        "300",
        "--test-size",
        "60",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = csv_rows(&out.join("results.csv"));
    // 3 masks × (image mean, nearest pixel, 3 models × 1 and 3 passes).
    assert_eq!(rows.len(), 3 * 8, "{rows:?}");
    for mask in ["block:8", "block:12", "random:0.5"] {
        let mse = |m: &str| {
            rows.iter()
                .find(|r| r[1] == mask && r[2] == m)
                .unwrap_or_else(|| panic!("no {m} row for {mask}"))[3]
                .parse::<f64>()
                .unwrap()
        };
        assert!(mse("image mean") > 0.0 && mse("nearest known pixel") > 0.0);
        assert!(mse("dense DAE (3 passes)").is_finite() && mse("CAE (1 pass)").is_finite());
    }
    assert!(out.join("builtin-block12.png").is_file());
}
