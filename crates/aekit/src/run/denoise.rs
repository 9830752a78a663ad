//! `aekit denoise`: a trained autoencoder (the dense DAE or a CAE) applied
//! to a user's noisy images, or to clean ones corrupted first, with PSNR
//! and SSIM of the noisy, median-filtered and denoised images against the
//! clean ones.

use super::dir::{Out, RunDir};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layers::Corruption;
use crate::metrics::{gaussian_blur, median3, psnr, ssim};
use crate::models::conv::ConvAutoencoder;
use crate::models::deep_ae::DeepAutoencoder;
use crate::models::DenoisingAutoencoder;
use crate::tensor::rng::seeded;
use crate::viz;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A model that maps images to their restorations.
pub enum Restorer {
    Dae(Box<DenoisingAutoencoder>),
    Cae(Box<ConvAutoencoder>),
    /// A deep (untied) autoencoder, e.g. fine-tuned with `--noise`.
    Deep(Box<DeepAutoencoder>),
}

impl Restorer {
    /// The dense DAE or the CAE in a model file (or a run folder's).
    pub fn load(path: &Path) -> Result<Restorer> {
        let path = super::dir::model_file(path)?;
        let f = crate::io::safetensors::load(&path)?;
        if f.metadata.get("model").map(String::as_str) == Some("cae") {
            return Ok(Restorer::Cae(Box::new(ConvAutoencoder::load(&path)?)));
        }
        match f.metadata.get("format").map(String::as_str) {
            Some("aekit.dae") | None => Ok(Restorer::Dae(Box::new(DenoisingAutoencoder::load(&path)?))),
            Some("aekit.deep_ae") => Ok(Restorer::Deep(Box::new(DeepAutoencoder::load(&path)?))),
            Some(other) => Err(Error::format(
                &path,
                format!(
                    "a `{other}` model does not denoise: give a dense DAE (`aekit train`), a deep autoencoder \
                     (`aekit deep-ae`) or a CAE (`aekit cae`)"
                ),
            )),
        }
    }

    /// Values per image the model takes.
    pub fn dim(&self) -> usize {
        match self {
            Restorer::Dae(m) => m.config.n_vis,
            Restorer::Cae(m) => m.net.input_len(),
            Restorer::Deep(m) => m.sizes[0],
        }
    }

    /// `[c, h, w]` of the images: the CAE's input, or the data's picture
    /// shape for the dense model (one channel, or three when the values
    /// are three times the pixels).
    pub fn shape(&self, data: &Dataset) -> [usize; 3] {
        match self {
            Restorer::Cae(m) => m.net.spec.input,
            Restorer::Dae(_) | Restorer::Deep(_) => match data.image {
                Some((h, w)) if h * w > 0 && data.dim.is_multiple_of(h * w) => [data.dim / (h * w), h, w],
                _ => {
                    let (h, w) = viz::tile_shape(data.dim, data.image);
                    [data.dim / (h * w).max(1), h, w]
                }
            },
        }
    }

    /// `[c, h, w]` of `data`'s images once they are shown to fit the model
    /// loaded from `path`: at least one image, and the values per image the
    /// model was trained on. `what` names the job ("denoise", "inpaint").
    pub fn fitting_shape(&self, data: &Dataset, path: &Path, what: &str) -> Result<[usize; 3]> {
        if data.n == 0 {
            return Err(Error::config("data", format!("no images to {what}")));
        }
        if data.dim != self.dim() {
            return Err(Error::shape(
                &format!("the images for {}", path.display()),
                format!("{} values per image, as the model was trained", self.dim()),
                format!("{} values per image", data.dim),
            ));
        }
        Ok(self.shape(data))
    }

    /// The restorations `[n, dim]` of the rows of `x`.
    pub fn restore(&self, x: &Dataset, threads: usize) -> Result<Vec<f32>> {
        match self {
            Restorer::Dae(m) => Ok(m.reconstruct(x.view())?.into_raw_vec_and_offset().0),
            Restorer::Cae(m) => m.reconstruct(x, threads),
            Restorer::Deep(m) => Ok(m.reconstruct(&x.x, crate::tensor::gemm::Par::from_threads(threads))),
        }
    }
}

/// What `aekit denoise` does.
pub struct DenoiseJob<'a> {
    /// The model, and the file or folder it came from (for the summary).
    pub model: &'a Restorer,
    pub model_path: &'a Path,
    /// The images: noisy already, or clean when `noise` is given.
    pub data: &'a Dataset,
    /// Corrupt the clean images first (seeded) and measure against them.
    pub noise: Option<Corruption>,
    pub seed: u64,
    /// Images in the picture.
    pub count: usize,
    pub threads: usize,
    /// The image files the rows came from: each restoration is also written
    /// as `denoised/<name>.png`.
    pub names: Option<&'a [PathBuf]>,
}

/// Rows of `x` (`dim` values each) corrupted by `c`, seeded.
pub(crate) fn corrupt_rows(x: &[f32], dim: usize, c: Corruption, seed: u64) -> Vec<f32> {
    let mut rng = seeded(seed);
    let mut out = vec![0.0f32; x.len()];
    for (o, r) in out.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
        c.apply(o, r, &mut rng);
    }
    out
}

/// Every image of `x` through the 3×3 median filter.
pub(crate) fn median_rows(x: &[f32], shape: [usize; 3]) -> Vec<f32> {
    let plane = shape[0] * shape[1] * shape[2];
    x.chunks_exact(plane)
        .flat_map(|img| median3(img, shape[0], shape[1], shape[2]))
        .collect()
}

/// Every image of `x` through a Gaussian blur of `sigma` pixels.
pub(crate) fn blur_rows(x: &[f32], shape: [usize; 3], sigma: f64) -> Vec<f32> {
    let plane = shape[0] * shape[1] * shape[2];
    x.chunks_exact(plane)
        .flat_map(|img| gaussian_blur(img, shape[0], shape[1], shape[2], sigma))
        .collect()
}

/// The blur's σ (of 0.5, 0.7, 1, 1.4 and 2 pixels) with the best mean PSNR
/// of `noisy` against `clean`.
pub(crate) fn tune_blur(clean: &[f32], noisy: &[f32], shape: [usize; 3]) -> f64 {
    [0.5, 0.7, 1.0, 1.4, 2.0]
        .into_iter()
        .map(|s| (s, quality(clean, &blur_rows(noisy, shape, s), shape).0))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(1.0, |(s, _)| s)
}

/// Means over the images of PSNR and SSIM against the clean ones.
pub(crate) fn quality(clean: &[f32], x: &[f32], shape: [usize; 3]) -> (f64, f64) {
    let d = shape[0] * shape[1] * shape[2];
    let n = clean.len() / d.max(1);
    let (mut p, mut s) = (0.0, 0.0);
    for i in 0..n {
        let (r, y) = (&clean[i * d..(i + 1) * d], &x[i * d..(i + 1) * d]);
        p += psnr(r, y).min(100.0);
        s += ssim(r, y, shape[0], shape[1], shape[2]);
    }
    (p / n.max(1) as f64, s / n.max(1) as f64)
}

/// The first `k` images of each of `rows` in a row of tiles; a row marked
/// true is labelled with each tile's PSNR against `clean`.
pub(crate) fn picture(rows: &[(&[f32], bool)], clean: &[f32], k: usize, shape: [usize; 3]) -> viz::RgbImage {
    let d = shape[0] * shape[1] * shape[2];
    let mut tiles: Vec<&[f32]> = Vec::new();
    let mut labels = Vec::new();
    for &(x, scored) in rows {
        for i in 0..k {
            let tile = &x[i * d..(i + 1) * d];
            tiles.push(tile);
            labels.push(if scored {
                format!("{:.1}", psnr(&clean[i * d..(i + 1) * d], tile).min(99.9))
            } else {
                String::new()
            });
        }
    }
    viz::label::labelled_grid(&tiles, &labels, shape[0], shape[1], shape[2], k, 2)
}

/// Writes each row of `x` as `dir/<file stem>.png`, grey or RGB.
pub(crate) fn write_pngs(dir: &Path, names: &[PathBuf], x: &[f32], shape: [usize; 3]) -> Result<()> {
    let d = shape[0] * shape[1] * shape[2];
    if names.len() * d != x.len() {
        return Err(Error::shape(
            "the image names",
            format!("one per row ({})", x.len() / d.max(1)),
            names.len(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    for (name, row) in names.iter().zip(x.chunks_exact(d)) {
        let stem = name
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        crate::data::formats::images::write_png(
            &dir.join(format!("{stem}.png")),
            row,
            shape[0],
            shape[1],
            shape[2],
        )?;
    }
    Ok(())
}

/// Runs the job into a run directory: `denoised.npy`, `noisy.npy` (when it
/// corrupted the images), `denoised.png` (rows of clean, noisy and denoised
/// images, or noisy and denoised; each noisy and denoised tile labelled
/// with its PSNR when there are clean ones), `denoised/<name>.png` for
/// a folder of images, and `summary.json`.
pub fn denoise(job: &DenoiseJob<'_>, out: &Out) -> Result<RunDir> {
    let model = job.model;
    let data = job.data;
    let shape = model.fitting_shape(data, job.model_path, "denoise")?;
    if shape[0] * shape[1] * shape[2] != data.dim {
        return Err(Error::shape(
            "the images",
            "a picture shape whose pixels match the values per image",
            format!("{:?} for {} values", shape, data.dim),
        ));
    }
    let run = RunDir::claim(out, "denoise")?;
    let noisy = match job.noise {
        Some(c) => Dataset {
            x: corrupt_rows(&data.x, data.dim, c, job.seed),
            ..data.clone()
        },
        None => data.clone(),
    };
    let t = std::time::Instant::now();
    let restored = model.restore(&noisy, job.threads)?;
    let seconds = t.elapsed().as_secs_f64();
    crate::data::npy::write_npy(&run.file("denoised.npy"), &[data.n, data.dim], &restored)?;
    if job.noise.is_some() {
        // The corrupted inputs, for baselines run elsewhere on the same images.
        crate::data::npy::write_npy(&run.file("noisy.npy"), &[data.n, data.dim], &noisy.x)?;
    }
    if let Some(names) = job.names {
        write_pngs(&run.file("denoised"), names, &restored, shape)?;
    }
    let k = job.count.clamp(1, data.n);
    let mut rows: Vec<(&[f32], bool)> = Vec::new();
    if job.noise.is_some() {
        rows.push((&data.x, false));
    }
    rows.push((&noisy.x, job.noise.is_some()));
    rows.push((&restored, job.noise.is_some()));
    if matches!(shape[0], 1 | 3) {
        viz::save_rgb_png(&run.file("denoised.png"), &picture(&rows, &data.x, k, shape))?;
    }
    let mut summary = json!({
        "model": job.model_path.display().to_string(),
        "n": data.n,
        "image": shape,
        "seconds": seconds,
    });
    let pictures = data.image.is_some() || matches!(model, Restorer::Cae(_));
    if let (Some(c), false) = (job.noise, pictures) {
        // Rows that are not images (a table): the mean squared error per
        // value, in the data's units, and no image filters.
        let mse = |x: &[f32]| {
            x.iter()
                .zip(&data.x)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / x.len().max(1) as f64
        };
        let (mn, md) = (mse(&noisy.x), mse(&restored));
        summary["noise"] = c.to_string().into();
        summary["seed"] = job.seed.into();
        summary["mse"] = json!({ "noisy": mn, "denoised": md });
        eprintln!(
            "{} rows, noise {c}: mean squared error per value {mn:.4} noisy, {md:.4} denoised",
            data.n
        );
    }
    if let (Some(c), true) = (job.noise, pictures) {
        let plane = shape[0] * shape[1] * shape[2];
        let median = median_rows(&noisy.x, shape);
        // The blur's σ is the best of a grid on the first (up to) 500
        // images, as a validation set; it is then measured on all.
        let tune = 500.min(data.n) * plane;
        let sigma = tune_blur(&data.x[..tune], &noisy.x[..tune], shape);
        let blurred = blur_rows(&noisy.x, shape, sigma);
        let (pn, sn) = quality(&data.x, &noisy.x, shape);
        let (pm, sm) = quality(&data.x, &median, shape);
        let (pb, sb) = quality(&data.x, &blurred, shape);
        let (pd, sd) = quality(&data.x, &restored, shape);
        summary["noise"] = c.to_string().into();
        summary["seed"] = job.seed.into();
        summary["blur_sigma"] = sigma.into();
        summary["psnr"] = json!({ "noisy": pn, "median3": pm, "gaussian_blur": pb, "denoised": pd });
        summary["ssim"] = json!({ "noisy": sn, "median3": sm, "gaussian_blur": sb, "denoised": sd });
        eprintln!(
            "{} images, noise {c}: PSNR {pn:.2} dB noisy, {pm:.2} median 3×3, {pb:.2} Gaussian blur (σ {sigma}), \
             {pd:.2} denoised; SSIM {sn:.3}, {sm:.3}, {sb:.3}, {sd:.3}",
            data.n
        );
    }
    run.write_summary(&summary)?;
    eprintln!(
        "denoised {} images in {seconds:.2} s; run directory {}",
        data.n,
        run.path.display()
    );
    Ok(run)
}
