//! A user's own data: a folder of PNG images (grey or RGB, one size or
//! resized with --size) and a CSV file of numbers, through `train`,
//! `denoise`, `inpaint`, `encode` and `eval`; and the folders refused.

mod common;

use common::{aekit, fails_with, json, stderr, tmp};
use std::path::{Path, PathBuf};

/// The first `n` built-in digits as `dir/digit-KK.png`.
fn digit_folder(dir: &Path, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let d = aekit::data::builtin::builtin_mnist().unwrap();
    for i in 0..n {
        let px = d.row(i).iter().map(|&v| (v * 255.0).round() as u8).collect();
        image::GrayImage::from_raw(28, 28, px)
            .unwrap()
            .save(dir.join(format!("digit-{i:02}.png")))
            .unwrap();
    }
    dir.to_path_buf()
}

/// `aekit VERB --model MODEL --data DATA [--out OUT] EXTRA…`.
fn apply(verb: &str, model: &Path, data: &Path, out: Option<&Path>, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        verb,
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    if let Some(o) = out {
        args.extend(["--out", o.to_str().unwrap()]);
    }
    args.extend(extra);
    aekit(&args)
}

/// A small dense model's settings.
const SMALL: [&str; 6] = ["--hidden", "16", "--epochs", "2", "--loss", "squared"];

fn train(data: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = aekit(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_folder_of_digits_trains_and_is_denoised_and_inpainted_file_by_file() {
    let dir = tmp("inputs-folder");
    let digits = digit_folder(&dir.path().join("digits"), 30);
    let model = dir.path().join("model");
    train(&digits, &model, &[&SMALL[..], &["--noise", "gauss:0.3"]].concat());
    // All 30 images by default, each written back under its own name.
    let den = dir.path().join("den");
    let o = apply("denoise", &model, &digits, Some(&den), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&den.join("summary.json"))["n"], 30);
    let (_, restored) = aekit::data::npy::read_npy(&den.join("denoised.npy")).unwrap();
    for i in [0, 29] {
        let png = image::open(den.join(format!("denoised/digit-{i:02}.png"))).unwrap();
        assert_eq!(
            (png.width(), png.height(), png.color().has_color()),
            (28, 28, false)
        );
        // The PNG holds the row of denoised.npy, to 8 bits.
        let row = &restored[i * 784..(i + 1) * 784];
        for (p, &v) in png.to_luma8().pixels().zip(row) {
            assert_eq!(p.0[0], (v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    assert!(den.join("denoised.png").is_file());
    // One image alone is enough to apply a model to (no split is needed).
    let single = digit_folder(&dir.path().join("single"), 1);
    let one = dir.path().join("one");
    let o = apply("denoise", &model, &single, Some(&one), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&one.join("summary.json"))["n"], 1);
    assert!(one.join("denoised/digit-00.png").is_file());
    let row = dir.path().join("row.csv");
    let names: Vec<String> = (0..784).map(|i| format!("p{i}")).collect();
    std::fs::write(&row, format!("{}\n{}\n", names.join(","), ["0.5"; 784].join(","))).unwrap();
    let o = apply("eval", &model, &row, None, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(metrics["test_loss"].as_f64().unwrap() > 0.0, "{metrics}");
    // Split as training splits it, one row has no test part.
    let o = apply("eval", &model, &row, None, &["--split", "test"]);
    fails_with(&o, &["row.csv", "needs at least 2 rows"]);
    let inp = dir.path().join("inp");
    // More threads than cores: capped, with a note (they were all started).
    let o = apply(
        "inpaint",
        &model,
        &digits,
        Some(&inp),
        &["--mask", "block:8", "--threads", "100000"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("100000 threads capped"), "{}", stderr(&o));
    assert!(inp.join("inpainted/digit-07.png").is_file());
    assert_eq!(json(&inp.join("summary.json"))["n"], 30);
    // reconstruct pictures the folder's images; cae trains on it.
    let pic = dir.path().join("rec.png");
    let o = apply("reconstruct", &model, &digits, Some(&pic), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(image::open(&pic).is_ok());
    let cae = dir.path().join("cae");
    let o = aekit(&[
        "cae",
        "--arch",
        "cae-mnist",
        "--data",
        digits.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch",
        "10",
        "--out",
        cae.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&cae.join("summary.json"))["n_train"].as_u64(), Some(27));
    // A 30×30 image among them: refused naming it, unless --size resizes.
    image::GrayImage::new(30, 30)
        .save(digits.join("odd.png"))
        .unwrap();
    let args = |out: &Path| {
        vec![
            "denoise".to_string(),
            "--model".into(),
            model.to_str().unwrap().into(),
            "--data".into(),
            digits.to_str().unwrap().into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let bad = dir.path().join("bad");
    let a = args(&bad);
    let o = aekit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    fails_with(&o, &["odd.png", "30×30", "--size"]);
    assert!(!bad.exists(), "nothing written");
    let mut a = args(&dir.path().join("resized"));
    a.extend(["--size".into(), "28,28".into()]);
    let o = aekit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&dir.path().join("resized/summary.json"))["n"], 31);
    // An empty folder and --size on a file that is not a folder of images.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = apply("denoise", &model, &empty, None, &[]);
    fails_with(&o, &["empty", "holds no images"]);
    let o = aekit(&["eval", "--model", model.to_str().unwrap(), "--size", "28,28"]);
    fails_with(&o, &["--size", "not one"]);
    // Malformed flags: one number for --size, a relative noise without a
    // number, an output kind the CAE does not know.
    let o = apply("eval", &model, &digits, None, &["--size", "28"]);
    fails_with(&o, &["--size", "H,W"]);
    let o = apply(
        "denoise",
        &model,
        &digits,
        None,
        &["--size", "28,28", "--noise", "gauss:xsd"],
    );
    fails_with(&o, &["--noise", "gauss:Ksd"]);
    let o = aekit(&["cae", "--data", digits.to_str().unwrap(), "--output", "softmax"]);
    fails_with(&o, &["--output", "softmax"]);
}

#[test]
fn an_rgb_folder_trains_a_three_channel_model() {
    let dir = tmp("inputs-rgb");
    let rgb = dir.path().join("rgb");
    std::fs::create_dir(&rgb).unwrap();
    for k in 0..20u32 {
        image::RgbImage::from_fn(8, 6, |x, y| {
            image::Rgb([(x * 30) as u8, (y * 40) as u8, (k * 12) as u8])
        })
        .save(rgb.join(format!("{k:02}.png")))
        .unwrap();
    }
    let model = dir.path().join("model");
    train(&rgb, &model, &SMALL);
    let den = dir.path().join("den");
    let o = apply("denoise", &model, &rgb, Some(&den), &["--noise", "gauss:0.2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&den.join("summary.json"));
    assert_eq!(s["image"], serde_json::json!([3, 6, 8]));
    let png = image::open(den.join("denoised/05.png")).unwrap();
    assert_eq!((png.width(), png.height(), png.color().has_color()), (8, 6, true));
    // The picture: three rows (clean, noisy, denoised) of RGB tiles.
    assert!(image::open(den.join("denoised.png")).unwrap().color().has_color());
}

#[test]
fn a_csv_of_numbers_trains_encodes_and_evaluates() {
    let dir = tmp("inputs-csv");
    let csv = dir.path().join("table.csv");
    let mut text = String::from("a,b,c,d\n");
    for i in 0..40 {
        let t = i as f32 / 40.0;
        text += &format!("{t},{},{},{}\n", 1.0 - t, t * t, 0.5);
    }
    std::fs::write(&csv, text).unwrap();
    let model = dir.path().join("model");
    train(&csv, &model, &SMALL);
    let codes = dir.path().join("codes.npy");
    let o = apply("encode", &model, &csv, Some(&codes), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (shape, _) = aekit::data::npy::read_npy(&codes).unwrap();
    assert_eq!(shape, vec![40, 16], "every row of the file by default");
    let o = apply("eval", &model, &csv, None, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (e["split"].as_str(), e["n_test"].as_u64()),
        (Some("all"), Some(40))
    );
    // A text cell is refused with its row and column.
    std::fs::write(&csv, "a,b,c,d\n1,2,3,4\n1,2,x,4\n").unwrap();
    let o = apply("eval", &model, &csv, None, &[]);
    fails_with(&o, &["table.csv", "data row 2, column `c`"]);
}

/// Mean over features of R² = 1 − SSE/SST of the dense model's
/// reconstruction of the rows of `x` (in the data's units).
fn mean_r2(model: &Path, x: &aekit::data::Dataset) -> f64 {
    let m = aekit::models::DenoisingAutoencoder::load(&aekit::run::dir::model_file(model).unwrap()).unwrap();
    r2_of(&m.reconstruct(x.view()).unwrap(), x)
}

fn r2_of(rec: &aekit::ndarray::Array2<f32>, x: &aekit::data::Dataset) -> f64 {
    let (n, d) = (x.n, x.dim);
    let mut total = 0.0;
    for j in 0..d {
        let mean = (0..n).map(|i| x.x[i * d + j] as f64).sum::<f64>() / n as f64;
        let sst: f64 = (0..n).map(|i| (x.x[i * d + j] as f64 - mean).powi(2)).sum();
        let sse: f64 = (0..n)
            .map(|i| (x.x[i * d + j] as f64 - rec[[i, j]] as f64).powi(2))
            .sum();
        total += 1.0 - sse / sst;
    }
    total / d as f64
}

#[test]
fn standardised_real_valued_columns_are_reconstructed_in_their_own_units() {
    // The diabetes table: 11 columns whose scales run from 1 (sex) to 10²
    // (cholesterol, progression).
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tables/diabetes.csv");
    let x = aekit::data::table::read_numeric_csv(&table).unwrap();
    let dir = tmp("inputs-standardize");
    let (std_run, raw_run) = (dir.path().join("std"), dir.path().join("raw"));
    let common = ["--hidden", "6", "--noise", "gauss:0.2", "--epochs", "30"];
    train(&table, &std_run, &[&common[..], &["--standardize"]].concat());
    train(
        &table,
        &raw_run,
        &[&common[..], &["--output", "identity", "--loss", "squared"]].concat(),
    );
    let m = aekit::models::DenoisingAutoencoder::load(&std_run.join("model.safetensors")).unwrap();
    let s = m.scaler.as_ref().expect("the scaler is in the model file");
    // Its means are the table's (train part: all but the last tenth).
    let n_train = x.n - x.n / 10;
    let age_mean = (0..n_train).map(|i| x.x[i * 11] as f64).sum::<f64>() / n_train as f64;
    assert!(
        (s.mean[0] as f64 - age_mean).abs() < 1e-3,
        "{} against {age_mean}",
        s.mean[0]
    );
    // Standardised, the 6 hidden units keep most of each column's variance;
    // on raw units the large columns swamp the rest.
    let (r2_std, r2_raw) = (mean_r2(&std_run, &x), mean_r2(&raw_run, &x));
    eprintln!("mean R² over the 11 columns: standardised {r2_std:.3}, raw units {r2_raw:.3}");
    assert!(
        r2_std > 0.5 && r2_std > r2_raw + 0.2,
        "R² standardised {r2_std}, raw {r2_raw}"
    );
    // The sparse autoencoder standardises too (on raw units its sparsity
    // penalty overflows on this table).
    let sparse = dir.path().join("sparse");
    let o = aekit(&[
        "train",
        "--kind",
        "sparse",
        "--standardize",
        "--data",
        table.to_str().unwrap(),
        "--hidden",
        "8",
        "--max-iter",
        "200",
        "--out",
        sparse.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sp = aekit::models::sparse_ae::SparseAutoencoder::load(&sparse.join("model.safetensors")).unwrap();
    assert!(sp.scaler.is_some());
    let r2_sparse = r2_of(&sp.reconstruct(x.view()).unwrap(), &x);
    eprintln!("sparse autoencoder, standardised: mean R² {r2_sparse:.3}");
    assert!(r2_sparse > 0.5, "{r2_sparse}");
    // So does the deep autoencoder (linear output; DAE pretraining, since
    // RBMs take binary units).
    let deep = dir.path().join("deep");
    let args = |pretrain: &'static str, out: &Path| {
        aekit(&[
            "deep-ae",
            "--data",
            table.to_str().unwrap(),
            "--standardize",
            "--pretrain",
            pretrain,
            "--layers",
            "8,6",
            "--pretrain-epochs",
            "5",
            "--epochs",
            "100",
            "--batch",
            "20",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = args("dae", &deep);
    assert!(o.status.success(), "{}", stderr(&o));
    let dm = aekit::models::deep_ae::DeepAutoencoder::load(&deep.join("model.safetensors")).unwrap();
    assert!(dm.scaler.is_some() && dm.output == aekit::models::deep_ae::Code::Linear);
    let rec = dm.reconstruct(&x.x, aekit::tensor::gemm::Par::Seq);
    let r2_deep = r2_of(
        &aekit::ndarray::Array2::from_shape_vec((x.n, x.dim), rec).unwrap(),
        &x,
    );
    eprintln!("deep autoencoder 11-8-6-8-11, standardised: mean R² {r2_deep:.3}");
    assert!(r2_deep > 0.5, "{r2_deep}");
    let o = args("rbm", &dir.path().join("deep-rbm"));
    fails_with(&o, &["model.pretrain", "dae or none"]);
    // Denoising rows that are not images: noise relative to the data's
    // standard deviation, and the squared error per value (no PSNR).
    let den = dir.path().join("den");
    let o = apply(
        "denoise",
        &std_run,
        &table,
        Some(&den),
        &["--noise", "gauss:0.1sd"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("σ = 0.1 ×"), "{}", stderr(&o));
    let s = json(&den.join("summary.json"));
    assert!(
        s["mse"]["noisy"].as_f64().unwrap() > 0.0 && s.get("psnr").is_none(),
        "{s}"
    );
    // A standardised model whose file has lost its scaling is refused.
    let mut f = aekit::io::safetensors::load(&std_run.join("model.safetensors")).unwrap();
    let mut kept = Vec::new();
    for name in ["encoder.weight", "encoder.bias", "decoder.bias"] {
        let shape = f.shape_of(name).unwrap();
        kept.push((name, shape.clone(), f.take(name, &shape).unwrap()));
    }
    let tensors: Vec<aekit::io::safetensors::NamedTensor> = kept
        .iter()
        .map(|(name, shape, data)| aekit::io::safetensors::NamedTensor {
            name,
            shape: shape.clone(),
            data,
        })
        .collect();
    let stripped = dir.path().join("stripped.safetensors");
    aekit::io::safetensors::save(&stripped, &tensors, f.metadata.clone()).unwrap();
    let o = apply("eval", &stripped, &table, None, &[]);
    fails_with(&o, &["stripped.safetensors", "standardised", "input.mean"]);
    // Standardising needs a linear output and squared loss.
    let o = aekit(&[
        "train",
        "--data",
        table.to_str().unwrap(),
        "--standardize",
        "--output",
        "sigmoid",
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    fails_with(&o, &["model.standardize", "identity"]);
}

/// Counts and sizes from flags past what the machine or the method can
/// take are refused by name before anything is allocated or trained; a
/// thread count past the cores is capped with a note.
#[test]
fn counts_past_their_bounds_are_refused_before_any_work() {
    let dir = tmp("bounds");
    let d = dir.path();
    let huge = "18446744073709551615";
    let digits = digit_folder(&d.join("digits"), 4);
    let table = d.join("t.csv");
    std::fs::write(&table, "a,b\n1,\n2,3\n4,5\n").unwrap();
    let out = |name: &str| d.join(name).to_str().unwrap().to_string();
    // 40 unlabelled images of 28×28 as a table.
    let images = d.join("images.csv");
    let mut text: String = (0..784).map(|i| format!("p{i},")).collect::<String>();
    text.pop();
    for r in 0..40 {
        text.push('\n');
        let row: Vec<String> = (0..784).map(|i| format!("{}", (r * 7 + i) % 10)).collect();
        text.push_str(&row.join(","));
    }
    std::fs::write(&images, text + "\n").unwrap();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            [
                "cae",
                "--data",
                images.to_str().unwrap(),
                "--classifier",
                "softmax",
                "--out",
                &out("unlabelled"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["classifier", "no labels", "--classifier none"],
        ),
        (
            ["train", "--noise", "gauss:1e30", "--out", &out("loud")]
                .map(String::from)
                .to_vec(),
            vec!["sigma 1e30", "not in [0, 100]"],
        ),
        (
            [
                "impute",
                "--data",
                table.to_str().unwrap(),
                "--binary",
                "b",
                "--categorical",
                "b",
                "--out",
                &out("f.csv"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["column `b` is given both --categorical and --binary"],
        ),
        (
            vec![
                "train",
                "--optimizer",
                "ga",
                "--population",
                huge,
                "--hidden",
                "4",
                "--out",
                &out("ga"),
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            vec!["ga.population", "give 2 to 100000"],
        ),
        (
            [
                "ensemble",
                "--members",
                "100000",
                "--train-size",
                "30",
                "--val-size",
                "10",
                "--out",
                &out("ens"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["members", "give 1 to 1000"],
        ),
        (
            [
                "cae",
                "--classifier",
                &format!("mlp:{huge}"),
                "--train-size",
                "30",
                "--val-size",
                "10",
                "--out",
                &out("cae"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["classifier.kind", "from 1 to 65536"],
        ),
        (
            ["gradcheck", "--samples", huge].map(String::from).to_vec(),
            vec!["--samples", "outside 1..=10000"],
        ),
        (
            [
                "impute",
                "--data",
                table.to_str().unwrap(),
                "--out",
                &out("f.csv"),
                "--m",
                huge,
            ]
            .map(String::from)
            .to_vec(),
            vec!["`m`", "give 1 to 1000"],
        ),
        (
            [
                "impute",
                "--data",
                table.to_str().unwrap(),
                "--out",
                &out("f.csv"),
                "--m",
                "0",
            ]
            .map(String::from)
            .to_vec(),
            vec!["`m`", "give 1 to 1000"],
        ),
        (
            [
                "train",
                "--data",
                digits.to_str().unwrap(),
                "--size",
                "100000,100000",
                "--hidden",
                "4",
                "--out",
                &out("big"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["`size`", "more than this machine's"],
        ),
        (
            [
                "train",
                "--data",
                digits.to_str().unwrap(),
                "--size",
                &format!("{huge},2"),
                "--hidden",
                "4",
                "--out",
                &out("big2"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["`size`", "past what an image can be"],
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&aekit(&args), &want);
    }
    // Nothing was fitted, trained or filled.
    assert!(!d.join("f.csv").exists() && !d.join("ga/model.safetensors").exists());
    assert!(!d.join("unlabelled").exists() && !d.join("loud").exists());
}
