//! Square patches sampled from a folder of PNG or JPEG images, for the
//! natural-image version of the sparse autoencoder exercise.
//!
//! Colour images are converted to grey (luma). With `normalize`, patches are
//! treated as in the exercise's `sampleIMAGES.m`: each patch's mean is
//! removed, values are clipped at ±3 standard deviations (taken over all
//! patches) and mapped linearly into [0.1, 0.9], the sigmoid output's range.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::tensor::rng::seeded;
use rand::Rng as _;
use std::path::Path;

/// A grey image with values in [0, 1].
#[derive(Debug, Clone)]
pub struct GreyImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

/// Reads every `.png`, `.jpg` and `.jpeg` file of `dir` (sorted by name).
pub fn read_image_dir(dir: &Path) -> Result<Vec<GreyImage>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list images in", dir, e))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::format(dir, "has no .png, .jpg or .jpeg images"));
    }
    paths
        .iter()
        .map(|p| {
            let img = image::open(p).map_err(|e| Error::format(p, format!("cannot decode image: {e}")))?;
            let g = img.to_luma32f();
            Ok(GreyImage {
                width: g.width() as usize,
                height: g.height() as usize,
                pixels: g.into_raw(),
            })
        })
        .collect()
}

/// `count` patches of `size`×`size`, each from a random image at a random
/// place (seeded), as rows of a dataset.
pub fn sample_patches(images: &[GreyImage], size: usize, count: usize, seed: u64) -> Result<Dataset> {
    if size == 0 || count == 0 {
        return Err(Error::config("patches", "size and count must be at least 1"));
    }
    let usable: Vec<&GreyImage> = images
        .iter()
        .filter(|i| i.width >= size && i.height >= size)
        .collect();
    if usable.is_empty() {
        return Err(Error::config(
            "size",
            format!("no image is at least {size}×{size} pixels"),
        ));
    }
    let mut rng = seeded(seed);
    let dim = size * size;
    let mut x = Vec::with_capacity(count * dim);
    for _ in 0..count {
        let img = usable[rng.random_range(0..usable.len())];
        let (r0, c0) = (
            rng.random_range(0..=img.height - size),
            rng.random_range(0..=img.width - size),
        );
        for r in r0..r0 + size {
            x.extend_from_slice(&img.pixels[r * img.width + c0..r * img.width + c0 + size]);
        }
    }
    Ok(Dataset {
        x,
        labels: None,
        n: count,
        dim,
        image: Some((size, size)),
    })
}

/// The exercise's normalisation, in place (see the module docs).
pub fn normalize_patches(d: &mut Dataset) {
    let dim = d.dim;
    for row in d.x.chunks_exact_mut(dim) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
        row.iter_mut().for_each(|v| *v -= mean as f32);
    }
    let n = d.x.len().max(1) as f64;
    let var = d.x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n;
    let limit = (3.0 * var.sqrt()).max(1e-12) as f32;
    for v in &mut d.x {
        // The last clamp absorbs rounding (v / limit can come out as 1 + ε).
        *v = ((v.clamp(-limit, limit) / limit + 1.0) * 0.4 + 0.1).clamp(0.1, 0.9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> GreyImage {
        GreyImage {
            width: w,
            height: h,
            pixels: (0..w * h).map(|i| (i % w) as f32 / w as f32).collect(),
        }
    }

    #[test]
    fn patches_come_from_the_images_and_normalise_into_range() {
        let imgs = vec![ramp(20, 15), ramp(4, 4)];
        let mut d = sample_patches(&imgs, 8, 500, 3).unwrap();
        assert_eq!((d.n, d.dim), (500, 64));
        // A horizontal ramp: each patch row increases by 1/20 per pixel.
        for p in d.x.chunks_exact(64) {
            assert!((p[1] - p[0] - 0.05).abs() < 1e-6);
        }
        normalize_patches(&mut d);
        assert!(d.x.iter().all(|&v| (0.1..=0.9).contains(&v)));
        let mean = d.x.iter().sum::<f32>() / d.x.len() as f32;
        assert!((mean - 0.5).abs() < 1e-3, "patch means removed: {mean}");
        assert!(sample_patches(&imgs, 30, 10, 1).is_err());
    }
}
