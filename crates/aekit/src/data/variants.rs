//! The harder MNIST variants of Larochelle et al. (2007), generated from
//! MNIST: `basic` (the digits as they are), `rot` (each digit rotated by an
//! angle drawn uniformly in [0, 2π), bilinear interpolation about the
//! image centre), `bg-rand` (background pixels uniform in [0, 1]), `bg-img`
//! (the background a random 28×28 patch of a grey natural image, patches
//! whose pixel standard deviation is below 0.05 drawn again) and
//! `bg-img-rot` (rotation, then the image background). A digit and its
//! background combine by the maximum of the two at each pixel ([`Blend::Max`],
//! the default), or the background fills only the pixels the digit leaves
//! at zero ([`Blend::Replace`]); the original files do not document their
//! rule.
//!
//! The sizes are the original ones: 12,000 training images (the first
//! 12,000 of MNIST's training set; `--val-size 2000` holds 2000 of them out
//! for validation) and 50,000 test images drawn from the remaining 58,000
//! (MNIST's other training images and its test images).

use crate::data::{load_train_test, DataSource, Dataset};
use crate::error::{Error, Result};
use crate::tensor::rng::{seeded, shuffle, Rng};
use rand::Rng as _;
use std::path::Path;

/// A variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Basic,
    Rot,
    BgRand,
    BgImg,
    BgImgRot,
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "basic" => Ok(Variant::Basic),
            "rot" => Ok(Variant::Rot),
            "bg-rand" => Ok(Variant::BgRand),
            "bg-img" => Ok(Variant::BgImg),
            "bg-img-rot" => Ok(Variant::BgImgRot),
            _ => Err(format!(
                "variant `{s}` should be basic, rot, bg-rand, bg-img or bg-img-rot"
            )),
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Variant::Basic => "basic",
            Variant::Rot => "rot",
            Variant::BgRand => "bg-rand",
            Variant::BgImg => "bg-img",
            Variant::BgImgRot => "bg-img-rot",
        })
    }
}

/// How a digit and its background combine at each pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Blend {
    /// The larger of the two: a stroke's faint edge takes the larger of its
    /// value and the background's.
    #[default]
    Max,
    /// The background only where the digit is zero; every digit pixel keeps
    /// its value.
    Replace,
}

impl std::str::FromStr for Blend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "max" => Ok(Blend::Max),
            "replace" => Ok(Blend::Replace),
            _ => Err(format!("blend `{s}` should be max or replace")),
        }
    }
}

impl std::fmt::Display for Blend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Blend::Max => "max",
            Blend::Replace => "replace",
        })
    }
}

/// How a variant is made: which one, and how digit and background combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    pub variant: Variant,
    pub blend: Blend,
}

impl From<Variant> for Recipe {
    fn from(variant: Variant) -> Self {
        Recipe {
            variant,
            blend: Blend::default(),
        }
    }
}

/// The grey images behind `bg-img` (sources and licences in
/// `data/backgrounds/README.md`).
static BACKGROUNDS: [&[u8]; 8] = [
    include_bytes!("../../../../data/backgrounds/camera.png"),
    include_bytes!("../../../../data/backgrounds/astronaut.png"),
    include_bytes!("../../../../data/backgrounds/coffee.png"),
    include_bytes!("../../../../data/backgrounds/chelsea.png"),
    include_bytes!("../../../../data/backgrounds/brick.png"),
    include_bytes!("../../../../data/backgrounds/grass.png"),
    include_bytes!("../../../../data/backgrounds/gravel.png"),
    include_bytes!("../../../../data/backgrounds/rocket.png"),
];

/// Decoded background images: (pixels in [0, 1], height, width).
pub fn backgrounds() -> Vec<(Vec<f32>, usize, usize)> {
    BACKGROUNDS
        .iter()
        .map(|b| {
            let img = image::load_from_memory(b).expect("a shipped PNG").to_luma8();
            let (w, h) = img.dimensions();
            (
                img.pixels().map(|p| p.0[0] as f32 / 255.0).collect(),
                h as usize,
                w as usize,
            )
        })
        .collect()
}

/// `img` (`side`×`side`, row-major) rotated by `angle` radians about its
/// centre, bilinear; pixels that come from outside the image are 0.
pub fn rotate(img: &[f32], side: usize, angle: f64) -> Vec<f32> {
    let c = (side as f64 - 1.0) / 2.0;
    let (s, co) = angle.sin_cos();
    let at = |r: isize, q: isize| -> f64 {
        if r < 0 || q < 0 || r >= side as isize || q >= side as isize {
            0.0
        } else {
            img[r as usize * side + q as usize] as f64
        }
    };
    let mut out = vec![0.0f32; side * side];
    for r in 0..side {
        for q in 0..side {
            // The source of output pixel (r, q): rotate back by −angle.
            let (y, x) = (r as f64 - c, q as f64 - c);
            let sx = co * x + s * y + c;
            let sy = -s * x + co * y + c;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            let v = at(y0, x0) * (1.0 - fx) * (1.0 - fy)
                + at(y0, x0 + 1) * fx * (1.0 - fy)
                + at(y0 + 1, x0) * (1.0 - fx) * fy
                + at(y0 + 1, x0 + 1) * fx * fy;
            out[r * side + q] = v.clamp(0.0, 1.0) as f32;
        }
    }
    out
}

/// A random `side`×`side` patch of one of `bgs` whose pixel standard
/// deviation is at least 0.05 (up to 100 draws; then the last one).
pub fn patch(bgs: &[(Vec<f32>, usize, usize)], side: usize, rng: &mut Rng) -> Vec<f32> {
    let mut p = vec![0.0f32; side * side];
    for _ in 0..100 {
        let (img, h, w) = &bgs[rng.random_range(0..bgs.len())];
        let (r0, c0) = (rng.random_range(0..=h - side), rng.random_range(0..=w - side));
        for r in 0..side {
            p[r * side..(r + 1) * side].copy_from_slice(&img[(r0 + r) * w + c0..(r0 + r) * w + c0 + side]);
        }
        let m = p.iter().sum::<f32>() / p.len() as f32;
        let sd = (p.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / p.len() as f32).sqrt();
        if sd >= 0.05 {
            break;
        }
    }
    p
}

/// One digit made into a variant (random choices from `rng`; the same
/// choices whatever the blend).
pub fn make(
    recipe: Recipe,
    digit: &[f32],
    side: usize,
    bgs: &[(Vec<f32>, usize, usize)],
    rng: &mut Rng,
) -> Vec<f32> {
    let v = recipe.variant;
    let mut x = match v {
        Variant::Rot | Variant::BgImgRot => rotate(digit, side, rng.random_range(0.0..std::f64::consts::TAU)),
        _ => digit.to_vec(),
    };
    let bg: Option<Vec<f32>> = match v {
        Variant::BgRand => Some((0..side * side).map(|_| rng.random::<f32>()).collect()),
        Variant::BgImg | Variant::BgImgRot => Some(patch(bgs, side, rng)),
        _ => None,
    };
    if let Some(b) = bg {
        match recipe.blend {
            Blend::Max => x.iter_mut().zip(&b).for_each(|(a, &b)| *a = a.max(b)),
            Blend::Replace => x.iter_mut().zip(&b).for_each(|(a, &b)| {
                if *a == 0.0 {
                    *a = b
                }
            }),
        }
    }
    x
}

/// Every row of `d` made into a variant.
pub fn make_all(recipe: Recipe, d: &Dataset, rng: &mut Rng) -> Result<Dataset> {
    let side = match d.image {
        Some((h, w)) if h == w => h,
        _ => return Err(Error::config("data", "the variants need square images")),
    };
    let bgs = backgrounds();
    let mut x = Vec::with_capacity(d.x.len());
    for i in 0..d.n {
        x.extend(make(recipe, d.row(i), side, &bgs, rng));
    }
    Ok(Dataset { x, ..d.clone() })
}

/// Variant `v` of a source's training and test sets, with the original
/// sizes: the first `n_train` training digits (returned as they are, then
/// made into the variant) and `n_test` drawn from the rest, made into the
/// variant.
pub fn make_split(
    recipe: Recipe,
    train: &Dataset,
    test: &Dataset,
    n_train: usize,
    n_test: usize,
    seed: u64,
) -> Result<(Dataset, Dataset, Dataset)> {
    if train.labels.is_none() || test.labels.is_none() {
        return Err(Error::config("data", "the variants need labelled digits"));
    }
    if n_train == 0 || n_train >= train.n {
        return Err(Error::config(
            "train",
            format!(
                "must be between 1 and {} (the source's training images, less one)",
                train.n - 1
            ),
        ));
    }
    let rest = train.n - n_train + test.n;
    if n_test == 0 || n_test > rest {
        return Err(Error::config(
            "test",
            format!("must be between 1 and the {rest} images left after the training ones"),
        ));
    }
    let mut rng = seeded(seed);
    let tr = train.select(&(0..n_train).collect::<Vec<_>>());
    // The rest: the source's other training images, then its test images.
    let mut idx: Vec<usize> = (0..rest).collect();
    shuffle(&mut idx, &mut rng);
    idx.truncate(n_test);
    let row = |i: usize| {
        if i < train.n - n_train {
            (
                train.row(n_train + i),
                train.labels.as_ref().expect("labels")[n_train + i],
            )
        } else {
            let j = i - (train.n - n_train);
            (test.row(j), test.labels.as_ref().expect("labels")[j])
        }
    };
    let mut te = Dataset {
        x: Vec::with_capacity(n_test * train.dim),
        labels: Some(Vec::with_capacity(n_test)),
        n: n_test,
        dim: train.dim,
        image: train.image,
    };
    for &i in &idx {
        let (x, l) = row(i);
        te.x.extend_from_slice(x);
        te.labels.as_mut().expect("labels").push(l);
    }
    let tr_v = make_all(recipe, &tr, &mut rng)?;
    let te_v = make_all(recipe, &te, &mut rng)?;
    Ok((tr, tr_v, te_v))
}

/// The files [`write_variant`] writes into its folder.
pub const VARIANT_FILES: [&str; 5] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "examples.png",
];

/// Writes variant `v` of `source` into `out` as IDX files that `--data out`
/// reads: `n_train` training images (the first of the source's training
/// set) and `n_test` test images drawn from the rest, plus
/// `examples.png` (ten digits, one per class, above their variant). Files
/// of those names already in `out` are replaced only with `force`, and
/// never when they are the source's own.
#[allow(clippy::too_many_arguments)]
pub fn write_variant(
    recipe: Recipe,
    source: &DataSource,
    data_dir: Option<&Path>,
    out: &Path,
    n_train: usize,
    n_test: usize,
    seed: u64,
    force: bool,
) -> Result<()> {
    if out.is_dir() {
        // The source's files, when it is a folder of them.
        let read: Vec<std::path::PathBuf> = match source {
            DataSource::Dir(dir) => std::fs::read_dir(dir)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let inputs: Vec<&Path> = read.iter().map(|p| p.as_path()).collect();
        for name in VARIANT_FILES {
            crate::io::check_output_file(&out.join(name), force, &inputs)?;
        }
    }
    let (train, test) = load_train_test(source, data_dir)?;
    let (tr, tr_v, te_v) = make_split(recipe, &train, &test, n_train, n_test, seed)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io("cannot create folder", out, e))?;
    let (h, w) = tr.image.expect("square images");
    let bytes = |d: &Dataset| -> Vec<u8> {
        d.x.iter()
            .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect()
    };
    for (name, d) in [("train", &tr_v), ("t10k", &te_v)] {
        crate::io::atomic_write(
            &out.join(format!("{name}-images-idx3-ubyte.gz")),
            &crate::data::idx::encode_idx_gz(&[d.n, h, w], &bytes(d)),
        )?;
        crate::io::atomic_write(
            &out.join(format!("{name}-labels-idx1-ubyte.gz")),
            &crate::data::idx::encode_idx_gz(&[d.n], d.labels.as_ref().expect("labels")),
        )?;
    }
    // One digit of each class, original above variant.
    let labels = tr.labels.as_ref().expect("labels");
    let pick: Vec<usize> = (0..10u8)
        .filter_map(|c| labels.iter().position(|&l| l == c))
        .collect();
    let tiles: Vec<Vec<f32>> = pick
        .iter()
        .map(|&i| tr.row(i).to_vec())
        .chain(pick.iter().map(|&i| tr_v.row(i).to_vec()))
        .collect();
    crate::viz::save_png(
        &out.join("examples.png"),
        &crate::viz::tile_grid(&tiles, h, w, pick.len().max(1), crate::viz::Scale::Unit, 3),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_centre_and_turns_a_quarter_exactly() {
        let side = 5;
        let mut img = vec![0.0f32; 25];
        img[2 * 5 + 4] = 1.0; // middle row, right edge
        img[12] = 0.5; // centre
        let r = rotate(&img, side, std::f64::consts::FRAC_PI_2);
        assert!((r[12] - 0.5).abs() < 1e-6, "the centre stays");
        let ones: Vec<usize> = (0..25).filter(|&i| r[i] > 0.99).collect();
        assert_eq!(ones.len(), 1, "{r:?}");
        // A quarter turn moves the right-edge pixel to the middle of the top or bottom edge.
        assert!(ones[0] == 2 || ones[0] == 22, "{ones:?}");
        assert!(
            (rotate(&img, side, 0.0)
                .iter()
                .zip(&img)
                .all(|(a, b)| (a - b).abs() < 1e-6))
        );
        // Total intensity is kept by a quarter turn (no pixel leaves the grid).
        let sum = |v: &[f32]| v.iter().sum::<f32>();
        assert!((sum(&r) - sum(&img)).abs() < 1e-5);
    }

    #[test]
    fn backgrounds_decode_and_patches_have_texture() {
        let bgs = backgrounds();
        assert_eq!(bgs.len(), 8);
        let mut rng = seeded(3);
        for _ in 0..20 {
            let p = patch(&bgs, 28, &mut rng);
            let m = p.iter().sum::<f32>() / 784.0;
            let sd = (p.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / 784.0).sqrt();
            assert!(sd >= 0.05, "{sd}");
        }
    }

    #[test]
    fn a_digit_stays_on_top_of_its_background() {
        let bgs = backgrounds();
        let digit: Vec<f32> = (0..784).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect();
        let mut rng = seeded(1);
        for v in [Variant::BgRand, Variant::BgImg] {
            let x = make(v.into(), &digit, 28, &bgs, &mut rng);
            assert!(x
                .iter()
                .zip(&digit)
                .all(|(a, &d)| *a >= d && (0.0..=1.0).contains(a)));
            assert!(
                x.iter().zip(&digit).any(|(a, &d)| d == 0.0 && *a > 0.0),
                "{v}: a background shows"
            );
        }
        assert_eq!(make(Variant::Basic.into(), &digit, 28, &bgs, &mut rng), digit);
    }

    #[test]
    fn replace_keeps_every_digit_pixel_and_fills_the_rest_with_the_same_draws() {
        let bgs = backgrounds();
        // Strokes with faint edges, as MNIST's anti-aliased digits have.
        let digit: Vec<f32> = (0..784)
            .map(|i| match i % 9 {
                0 => 1.0,
                1 => 0.2,
                _ => 0.0,
            })
            .collect();
        for v in [Variant::BgRand, Variant::BgImg] {
            let max = make(v.into(), &digit, 28, &bgs, &mut seeded(5));
            let rep = Recipe {
                variant: v,
                blend: Blend::Replace,
            };
            let x = make(rep, &digit, 28, &bgs, &mut seeded(5));
            for (i, ((&a, &m), &d)) in x.iter().zip(&max).zip(&digit).enumerate() {
                if d > 0.0 {
                    assert_eq!(a, d, "{v} pixel {i}: a digit pixel keeps its value");
                } else {
                    // Where the digit is zero, both rules show the background.
                    assert_eq!(a, m, "{v} pixel {i}");
                }
            }
            assert!(
                x.iter().zip(&max).any(|(a, m)| a != m),
                "{v}: some faint edge differs between the rules"
            );
        }
        assert_eq!("replace".parse::<Blend>(), Ok(Blend::Replace));
        assert!("mean".parse::<Blend>().unwrap_err().contains("max or replace"));
    }
}
