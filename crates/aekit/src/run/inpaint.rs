//! `aekit inpaint`: fill the missing pixels of images with a trained
//! autoencoder (the dense DAE or a CAE), keeping every known pixel, against
//! two simple fills (each image's mean, the nearest known pixel).

use super::denoise::Restorer;
use super::dir::{Out, RunDir};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::tensor::rng::{seeded, Rng};
use crate::viz;
use rand::Rng as _;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The most squares or lines one drawn mask takes (`blocks:K:S`, `lines:K`).
pub const MAX_MASK_COUNT: usize = 1000;

/// The most passes of the model one inpainting takes (`--iterations`).
pub const MAX_ITERATIONS: usize = 1000;

/// Which pixels are missing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaskKind {
    /// One random S×S square per image.
    Block(usize),
    /// K random S×S squares per image.
    Blocks(usize, usize),
    /// Each pixel missing with probability P.
    Random(f32),
    /// K random full rows or columns per image.
    Lines(usize),
}

impl std::str::FromStr for MaskKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        // Sizes from 1 (a mask of nothing has nothing to score), counts
        // from 1 to MAX_MASK_COUNT per image.
        let num = |t: &str, most: usize| {
            t.parse::<usize>()
                .ok()
                .filter(|v| (1..=most).contains(v))
                .ok_or_else(|| format!("`{t}` in mask `{s}` is not a whole number from 1 to {most}"))
        };
        let (side, count) = (usize::MAX, MAX_MASK_COUNT);
        match parts.as_slice() {
            ["block", n] => Ok(MaskKind::Block(num(n, side)?)),
            ["blocks", k, n] => Ok(MaskKind::Blocks(num(k, count)?, num(n, side)?)),
            ["random", p] => p
                .parse::<f32>()
                .ok()
                .filter(|p| *p > 0.0 && *p <= 1.0)
                .map(MaskKind::Random)
                .ok_or_else(|| format!("`{p}` in mask `{s}` is not a probability in (0, 1]")),
            ["lines", k] => Ok(MaskKind::Lines(num(k, count)?)),
            _ => Err(format!(
                "unknown mask `{s}` (expected block:S, blocks:K:S, random:P or lines:K)"
            )),
        }
    }
}

impl std::fmt::Display for MaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaskKind::Block(n) => write!(f, "block:{n}"),
            MaskKind::Blocks(k, n) => write!(f, "blocks:{k}:{n}"),
            MaskKind::Random(p) => write!(f, "random:{p}"),
            MaskKind::Lines(k) => write!(f, "lines:{k}"),
        }
    }
}

/// Where an inpainting job's holes come from: drawn at random, or a
/// user's mask (one for every image, or one per image).
#[derive(Debug, Clone, PartialEq)]
pub enum MaskSource {
    Drawn(MaskKind),
    Given {
        /// `[rows, values per image]`, true where a pixel is missing.
        missing: Vec<bool>,
        rows: usize,
        file: PathBuf,
    },
}

impl MaskSource {
    /// A `--mask` argument: a kind (`block:12`, …), or a file: an `.npy` of
    /// `[n, h·w]`, `[h·w]` or `[h, w]` with 1 where a pixel is missing and 0
    /// where it is known, or an image (PNG, JPEG…) whose white pixels are
    /// the missing ones (grey level ≥ 0.5).
    pub fn parse(arg: &str) -> Result<MaskSource> {
        let path = Path::new(arg);
        let is_file = path.extension().is_some() && !arg.contains(':');
        if !is_file {
            return arg
                .parse()
                .map(MaskSource::Drawn)
                .map_err(|e: String| Error::config("mask", e));
        }
        if !path.is_file() {
            return Err(Error::config("mask", format!("no mask file {}", path.display())));
        }
        let (rows, values) = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
            let (shape, v) = crate::data::npy::read_npy(path)?;
            // [n, h·w], or one picture ([h·w], [h, w]): told apart by size later.
            let rows = if shape.len() == 2 { shape[0] } else { 1 };
            if let Some(i) = v.iter().position(|&x| x != 0.0 && x != 1.0) {
                return Err(Error::format(
                    path,
                    format!(
                        "value {} at index {i}: a mask holds 1 (missing) or 0 (known)",
                        v[i]
                    ),
                ));
            }
            (rows, v.iter().map(|&x| x == 1.0).collect::<Vec<bool>>())
        } else {
            let img = image::open(path)
                .map_err(|e| Error::format(path, format!("cannot decode the mask image: {e}")))?
                .to_luma32f();
            (1, img.pixels().map(|p| p.0[0] >= 0.5).collect())
        };
        Ok(MaskSource::Given {
            missing: values,
            rows,
            file: path.to_path_buf(),
        })
    }

    /// The missing values of `n` images of `shape` `[c, h, w]`, seeded: one
    /// mask per image, the same for each of its colour channels.
    pub fn missing_values(&self, n: usize, shape: [usize; 3], seed: u64) -> Result<Vec<bool>> {
        let [c, h, w] = shape;
        let pixels = self.missing(n, h, w, &mut seeded(seed))?;
        Ok(pixels
            .chunks_exact(h * w)
            .flat_map(|m| m.iter().cycle().take(c * h * w).copied())
            .collect())
    }

    /// The missing pixels of `n` images of `h`×`w`, image after image.
    fn missing(&self, n: usize, h: usize, w: usize, rng: &mut Rng) -> Result<Vec<bool>> {
        match self {
            MaskSource::Drawn(kind) => Ok((0..n).flat_map(|_| kind.draw(h, w, rng)).collect()),
            MaskSource::Given { missing, rows, file } => {
                let d = h * w;
                if missing.len() == d {
                    // One mask for every image.
                    return Ok((0..n).flat_map(|_| missing.iter().copied()).collect());
                }
                if *rows == n && missing.len() == n * d {
                    return Ok(missing.clone());
                }
                Err(Error::shape(
                    &format!("the mask in {}", file.display()),
                    format!("{d} values ({h}×{w}, one mask for every image) or {n}×{d} (one per image)"),
                    format!("{} values", missing.len()),
                ))
            }
        }
    }
}

impl MaskKind {
    /// A mask for one `h`×`w` image: true where the pixel is missing.
    pub fn draw(&self, h: usize, w: usize, rng: &mut Rng) -> Vec<bool> {
        let mut m = vec![false; h * w];
        let mut square = |s: usize, rng: &mut Rng| {
            let s = s.min(h).min(w);
            let (y0, x0) = (rng.random_range(0..=h - s), rng.random_range(0..=w - s));
            for y in y0..y0 + s {
                m[y * w + x0..y * w + x0 + s].iter_mut().for_each(|v| *v = true);
            }
        };
        match *self {
            MaskKind::Block(s) => square(s, rng),
            MaskKind::Blocks(k, s) => (0..k).for_each(|_| square(s, rng)),
            MaskKind::Random(p) => {
                for v in m.iter_mut() {
                    *v = rng.random::<f32>() < p;
                }
            }
            MaskKind::Lines(k) => {
                for _ in 0..k {
                    if rng.random::<bool>() {
                        let y = rng.random_range(0..h);
                        m[y * w..(y + 1) * w].iter_mut().for_each(|v| *v = true);
                    } else {
                        let x = rng.random_range(0..w);
                        (0..h).for_each(|y| m[y * w + x] = true);
                    }
                }
            }
        }
        m
    }
}

/// What `aekit inpaint` does.
pub struct InpaintJob<'a> {
    /// The model, and the file or folder it came from (for the summary).
    pub model: &'a Restorer,
    pub model_path: &'a Path,
    pub data: &'a Dataset,
    pub mask: MaskSource,
    pub seed: u64,
    /// Passes of the model, putting the known pixels back after each.
    pub iterations: usize,
    pub count: usize,
    pub threads: usize,
    /// The image files the rows came from: each filled image is also
    /// written as `inpainted/<name>.png`.
    pub names: Option<&'a [std::path::PathBuf]>,
}

/// Mean squared error over the missing pixels of all images, and its PSNR.
pub(crate) fn masked_error(clean: &[f32], x: &[f32], missing: &[bool]) -> (f64, f64) {
    let (mut s, mut n) = (0.0f64, 0usize);
    for ((&c, &v), &m) in clean.iter().zip(x).zip(missing) {
        if m {
            s += (c as f64 - v as f64).powi(2);
            n += 1;
        }
    }
    let mse = s / n.max(1) as f64;
    (mse, -10.0 * mse.log10())
}

/// Fills `missing` pixels of one `h`×`w` image with the nearest known one
/// (by city-block distance, growing rings; the image mean when none is
/// known).
fn nearest_fill(img: &mut [f32], missing: &[bool], h: usize, w: usize) {
    let known: Vec<usize> = (0..h * w).filter(|&i| !missing[i]).collect();
    let mean = if known.is_empty() {
        0.0
    } else {
        known.iter().map(|&i| img[i]).sum::<f32>() / known.len() as f32
    };
    let src = img.to_vec();
    for i in (0..h * w).filter(|&i| missing[i]) {
        let (y, x) = ((i / w) as isize, (i % w) as isize);
        let mut found = None;
        'rings: for r in 1..(h + w) as isize {
            for dy in -r..=r {
                let dx = r - dy.abs();
                for xx in [x - dx, x + dx] {
                    let yy = y + dy;
                    if yy >= 0 && yy < h as isize && xx >= 0 && xx < w as isize {
                        let j = yy as usize * w + xx as usize;
                        if !missing[j] {
                            found = Some(src[j]);
                            break 'rings;
                        }
                    }
                }
            }
        }
        img[i] = found.unwrap_or(mean);
    }
}

/// `x` with its missing values set to 0.
pub(crate) fn masked_rows(x: &[f32], missing: &[bool]) -> Vec<f32> {
    x.iter()
        .zip(missing)
        .map(|(&v, &m)| if m { 0.0 } else { v })
        .collect()
}

/// The model's fill of the `missing` values of `data`: `iterations` passes
/// (at least 1), each putting the known values back; the filled rows and
/// the masked MSE after each pass.
pub(crate) fn fill(
    model: &Restorer,
    data: &Dataset,
    missing: &[bool],
    iterations: usize,
    threads: usize,
) -> Result<(Vec<f32>, Vec<f64>)> {
    let mut filled = Dataset {
        x: masked_rows(&data.x, missing),
        ..data.clone()
    };
    let mut per_pass = Vec::new();
    for _ in 0..iterations.max(1) {
        let rec = model.restore(&filled, threads)?;
        for ((v, r), &m) in filled.x.iter_mut().zip(rec).zip(missing) {
            if m {
                *v = r;
            }
        }
        per_pass.push(masked_error(&data.x, &filled.x, missing).0);
    }
    Ok((filled.x, per_pass))
}

/// The classical fills of `masked` images (`shape` `[c, h, w]`, each
/// colour plane on its own): every missing value set to its plane's mean
/// known value, and to the nearest known pixel.
pub(crate) fn classical_fills(masked: &[f32], missing: &[bool], shape: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    let [_, h, w] = shape;
    let mut mean_fill = masked.to_vec();
    let mut nearest = masked.to_vec();
    for ((mf, nf), m) in mean_fill
        .chunks_exact_mut(h * w)
        .zip(nearest.chunks_exact_mut(h * w))
        .zip(missing.chunks_exact(h * w))
    {
        let known: Vec<f32> = mf.iter().zip(m).filter(|(_, &m)| !m).map(|(&v, _)| v).collect();
        let mean = known.iter().sum::<f32>() / known.len().max(1) as f32;
        mf.iter_mut()
            .zip(m)
            .filter(|(_, &m)| m)
            .for_each(|(v, _)| *v = mean);
        nearest_fill(nf, m, h, w);
    }
    (mean_fill, nearest)
}

/// Runs the job into a run directory: `inpainted.npy`, `mask.npy` (1 where
/// a pixel was missing), `inpainted.png` (rows of original, masked and
/// filled images, the last two labelled with their PSNR), `inpainted/
/// <name>.png` for a folder of images, and `summary.json`. RGB images share
/// one mask across their channels.
pub fn inpaint(job: &InpaintJob<'_>, out: &Out) -> Result<RunDir> {
    let model = job.model;
    let data = job.data;
    let shape = model.fitting_shape(data, job.model_path, "inpaint")?;
    let [c, h, w] = shape;
    if c * h * w != data.dim || !matches!(c, 1 | 3) {
        return Err(Error::shape(
            "the images to inpaint",
            "grey or RGB images (h·w or 3·h·w values)",
            format!("{shape:?} for {} values", data.dim),
        ));
    }
    if !(1..=MAX_ITERATIONS).contains(&job.iterations) {
        return Err(Error::config(
            "iterations",
            format!(
                "{} passes of the model: give 1 to {MAX_ITERATIONS} (each pass fills the holes again from the last fill)",
                job.iterations
            ),
        ));
    }
    let missing = job.mask.missing_values(data.n, shape, job.seed)?;
    let run = RunDir::claim(out, "inpaint")?;
    let masked = masked_rows(&data.x, &missing);
    let t = std::time::Instant::now();
    let (filled, per_pass) = fill(model, data, &missing, job.iterations, job.threads)?;
    let filled = Dataset {
        x: filled,
        ..data.clone()
    };
    let seconds = t.elapsed().as_secs_f64();
    let (mean_fill, nearest) = classical_fills(&masked, &missing, shape);
    crate::data::npy::write_npy(&run.file("inpainted.npy"), &[data.n, data.dim], &filled.x)?;
    let mask: Vec<f32> = missing.iter().map(|&m| m as u8 as f32).collect();
    crate::data::npy::write_npy(&run.file("mask.npy"), &[data.n, data.dim], &mask)?;
    if let Some(names) = job.names {
        super::denoise::write_pngs(&run.file("inpainted"), names, &filled.x, shape)?;
    }
    let k = job.count.clamp(1, data.n);
    let rows: [(&[f32], bool); 3] = [(&data.x, false), (&masked, true), (&filled.x, true)];
    viz::save_rgb_png(
        &run.file("inpainted.png"),
        &super::denoise::picture(&rows, &data.x, k, shape),
    )?;
    let (em, pm) = masked_error(&data.x, &mean_fill, &missing);
    let (en, pn) = masked_error(&data.x, &nearest, &missing);
    let (ea, pa) = masked_error(&data.x, &filled.x, &missing);
    let frac = missing.iter().filter(|&&m| m).count() as f64 / missing.len() as f64;
    run.write_summary(&json!({
        "model": job.model_path.display().to_string(),
        "n": data.n,
        "missing_fraction": frac,
        "iterations": job.iterations,
        "masked_mse": { "mean_fill": em, "nearest_fill": en, "inpainted": ea },
        "masked_psnr": { "mean_fill": pm, "nearest_fill": pn, "inpainted": pa },
        "masked_mse_per_pass": per_pass,
        "seconds": seconds,
    }))?;
    eprintln!(
        "{} images, {:.1}% missing: masked MSE {em:.4} mean fill, {en:.4} nearest known pixel, {ea:.4} inpainted \
         ({} passes: {per_pass:.4?}); run directory {}",
        data.n,
        100.0 * frac,
        job.iterations,
        run.path.display()
    );
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_masks_mask_something_and_count_within_the_bound() {
        for ok in [
            "block:1",
            "blocks:1000:3",
            "lines:1000",
            "random:1",
            "random:0.01",
        ] {
            assert!(ok.parse::<MaskKind>().is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("block:0", "from 1"),
            ("blocks:0:3", "from 1 to 1000"),
            ("blocks:1001:3", "from 1 to 1000"),
            ("blocks:18446744073709551615:3", "from 1 to 1000"),
            ("lines:18446744073709551615", "from 1 to 1000"),
            ("random:0", "(0, 1]"),
            ("random:NaN", "(0, 1]"),
            ("lines:x", "whole number"),
        ] {
            let e = bad.parse::<MaskKind>().unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }
}
