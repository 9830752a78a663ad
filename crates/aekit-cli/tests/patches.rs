//! `aekit patches`, then a sparse autoencoder trained on them.

mod common;

use common::{aekit, fails_with, json, stderr, tmp};
use std::path::Path;

/// Writes a few generated images (PNG and JPEG) with strokes and gradients.
fn write_images(dir: &Path) {
    for k in 0..3u32 {
        let img = image::RgbImage::from_fn(40 + 7 * k, 32, |x, y| {
            let v = ((x * 5 + y * 3 + k * 40) % 256) as u8;
            let stroke = if (x + k * 3) % 11 < 2 { 255 } else { v };
            image::Rgb([stroke, v / 2, 255 - v])
        });
        let ext = if k == 1 { "jpg" } else { "png" };
        img.save(dir.join(format!("img{k}.{ext}"))).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
}

#[test]
fn patches_then_a_sparse_autoencoder_on_them() {
    let dir = tmp("patches");
    let d = dir.path();
    let imgs = d.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    write_images(&imgs);
    let npy = d.join("patches.npy");
    let pic = d.join("patches.png");
    let o = aekit(&[
        "patches",
        "--images",
        imgs.to_str().unwrap(),
        "--size",
        "8",
        "--count",
        "600",
        "--normalize",
        "--out",
        npy.to_str().unwrap(),
        "--picture",
        pic.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (shape, x) = aekit::data::npy::read_npy(&npy).unwrap();
    assert_eq!(shape, vec![600, 64]);
    assert!(x.iter().all(|&v| (0.1..=0.9).contains(&v)));
    assert!(pic.is_file());

    let run = d.join("run");
    let o = aekit(&[
        "train",
        "--kind",
        "sparse",
        "--data",
        npy.to_str().unwrap(),
        "--hidden",
        "25",
        "--max-iter",
        "60",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&run.join("summary.json"));
    let parts = s["reconstruction"].as_f64().unwrap()
        + s["weight_decay_term"].as_f64().unwrap()
        + s["sparsity_term"].as_f64().unwrap();
    assert!((parts - s["final_cost"].as_f64().unwrap()).abs() < 1e-6, "{s}");
    assert!(s["iterations"].as_u64().unwrap() > 5);
    assert_eq!(s["n_test"], 60, "the last tenth of the rows is the test part");
    // 25 tiles of 8×8 at zoom 4, in 5 columns.
    assert_eq!(image::open(run.join("filters.png")).unwrap().width(), 5 * 33 + 1);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let costs: Vec<f64> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        costs.last().unwrap() < &costs[0],
        "L-BFGS lowers the cost: {costs:?}"
    );

    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(
        &aekit(&[
            "patches",
            "--images",
            empty.to_str().unwrap(),
            "--out",
            d.join("none.npy").to_str().unwrap(),
        ]),
        &["no .png"],
    );
    std::fs::write(empty.join("bad.png"), b"not a png").unwrap();
    fails_with(
        &aekit(&[
            "patches",
            "--images",
            empty.to_str().unwrap(),
            "--out",
            d.join("none.npy").to_str().unwrap(),
        ]),
        &["bad.png", "cannot decode"],
    );
    // The patches written above are neither replaced without --force nor
    // ever by the picture.
    let before = std::fs::read(&npy).unwrap();
    for (args, want) in [
        (vec!["--out", npy.to_str().unwrap()], "--force"),
        (
            vec![
                "--out",
                d.join("other.npy").to_str().unwrap(),
                "--picture",
                npy.to_str().unwrap(),
            ],
            "--force",
        ),
    ] {
        let mut all = vec!["patches", "--images", imgs.to_str().unwrap()];
        all.extend(args);
        fails_with(&aekit(&all), &[want, "already exists"]);
    }
    assert_eq!(std::fs::read(&npy).unwrap(), before, "the patches are kept");
}
