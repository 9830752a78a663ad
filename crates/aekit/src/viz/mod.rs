//! Pictures: tiled filter grids and reconstruction rows, as PNG, grey or
//! (for CHW colour data such as CIFAR) RGB; line charts.

pub mod label;
pub mod plot;

use crate::error::{Error, Result};
pub use image::{GrayImage, RgbImage};
use image::{Luma, Rgb};
use std::path::Path;

/// Height and width of a tile for `dim` features: the image shape when
/// known, a square when `dim` is one, otherwise one row.
pub fn tile_shape(dim: usize, image: Option<(usize, usize)>) -> (usize, usize) {
    if let Some((h, w)) = image {
        if h * w == dim {
            return (h, w);
        }
    }
    let s = (dim as f64).sqrt().round() as usize;
    if s * s == dim {
        (s, s)
    } else {
        (1, dim)
    }
}

/// How tile values become grey levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Each tile stretched from its own min (black) to max (white).
    PerTile,
    /// Values clamped to [0, 1].
    Unit,
    /// Each tile divided by its largest |value|: zero is grey, negative
    /// weights dark, positive bright (the exercise's `display_network`).
    Symmetric,
}

/// Lays `tiles` (each `h·w` values) in a grid of `cols` columns with a
/// one-pixel grey border, every pixel drawn as a `zoom`×`zoom` block.
pub fn tile_grid(tiles: &[Vec<f32>], h: usize, w: usize, cols: usize, scale: Scale, zoom: u32) -> GrayImage {
    let cols = cols.max(1).min(tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let z = zoom.max(1) as usize;
    let (tw, th) = (w * z + 1, h * z + 1);
    let mut img = GrayImage::from_pixel((cols * tw + 1) as u32, (rows * th + 1) as u32, Luma([128]));
    for (t, tile) in tiles.iter().enumerate() {
        assert_eq!(tile.len(), h * w);
        let (lo, hi) = match scale {
            Scale::PerTile => tile
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                }),
            Scale::Unit => (0.0, 1.0),
            Scale::Symmetric => {
                let m = tile
                    .iter()
                    .fold(0.0f32, |a, &v| a.max(v.abs()))
                    .max(f32::MIN_POSITIVE);
                (-m, m)
            }
        };
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (ox, oy) = ((t % cols) * tw + 1, (t / cols) * th + 1);
        for y in 0..h {
            for x in 0..w {
                let v = ((tile[y * w + x] - lo) / span).clamp(0.0, 1.0);
                let g = Luma([(v * 255.0).round() as u8]);
                for dy in 0..z {
                    for dx in 0..z {
                        img.put_pixel((ox + x * z + dx) as u32, (oy + y * z + dy) as u32, g);
                    }
                }
            }
        }
    }
    img
}

/// PNG bytes of a grey image.
pub fn png_bytes(img: &GrayImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encoding to memory");
    out.into_inner()
}

/// Writes a grey image as PNG, atomically.
pub fn save_png(path: &Path, img: &GrayImage) -> Result<()> {
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::format(path, "empty picture"));
    }
    crate::io::atomic_write(path, &png_bytes(img))
}

/// Lays `images` (each `channels·h·w` values in CHW order, as CIFAR rows
/// are) in a grid of `cols` columns with one-pixel grey separators and
/// border, every pixel drawn as a `zoom`×`zoom` block. One channel is drawn
/// grey (the value in red, green and blue), three as RGB. Values are clamped
/// to [0, 1] and mapped to 0..=255.
///
/// Panics when `channels` is not 1 or 3, or an image has the wrong length.
pub fn chw_grid(images: &[&[f32]], channels: usize, h: usize, w: usize, cols: usize, zoom: u32) -> RgbImage {
    assert!(
        channels == 1 || channels == 3,
        "chw_grid draws 1 or 3 channels, not {channels}"
    );
    let cols = cols.max(1).min(images.len().max(1));
    let rows = images.len().div_ceil(cols).max(1);
    let z = zoom.max(1) as usize;
    let (tw, th) = (w * z + 1, h * z + 1);
    let mut img = RgbImage::from_pixel((cols * tw + 1) as u32, (rows * th + 1) as u32, Rgb([128; 3]));
    let plane = h * w;
    let level = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    for (t, im) in images.iter().enumerate() {
        assert_eq!(im.len(), channels * plane, "image {t} has the wrong length");
        let (ox, oy) = ((t % cols) * tw + 1, (t / cols) * th + 1);
        for y in 0..h {
            for x in 0..w {
                let p = y * w + x;
                // Channel c of pixel p sits at c·h·w + p; grey repeats channel 0.
                let c = |k: usize| level(im[if channels == 3 { k * plane + p } else { p }]);
                let px = Rgb([c(0), c(1), c(2)]);
                for dy in 0..z {
                    for dx in 0..z {
                        img.put_pixel((ox + x * z + dx) as u32, (oy + y * z + dy) as u32, px);
                    }
                }
            }
        }
    }
    img
}

/// Writes an RGB image as PNG, atomically.
pub fn save_rgb_png(path: &Path, img: &RgbImage) -> Result<()> {
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::format(path, "empty picture"));
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::format(path, format!("cannot encode PNG ({e})")))?;
    crate::io::atomic_write(path, &out.into_inner())
}

/// The first `count` hidden units' filters: column j of W `[n_vis, n_hid]`.
pub fn filter_tiles(w: &[f32], n_vis: usize, n_hid: usize, count: usize) -> Vec<Vec<f32>> {
    (0..count.min(n_hid))
        .map(|j| (0..n_vis).map(|i| w[i * n_hid + j]).collect())
        .collect()
}

/// Rows of examples for a reconstruction picture: each slice in `rows` holds
/// `n` examples of `dim` values; the grid has one row per slice.
pub fn row_tiles(rows: &[&[f32]], n: usize, dim: usize) -> Vec<Vec<f32>> {
    rows.iter()
        .flat_map(|r| (0..n).map(move |i| r[i * dim..(i + 1) * dim].to_vec()))
        .collect()
}

/// The filters picture: the first 100 hidden units' weight vectors, each
/// normalised on its own, 10 to a row.
pub fn filters_picture(
    model: &crate::models::DenoisingAutoencoder,
    image: Option<(usize, usize)>,
) -> GrayImage {
    let (nv, nh) = (model.config.n_vis, model.config.n_hid);
    let (h, w) = tile_shape(nv, image);
    tile_grid(
        &filter_tiles(model.weights(), nv, nh, 100),
        h,
        w,
        10,
        Scale::PerTile,
        2,
    )
}

/// One tile per hidden unit of a weight matrix `[n_vis, n_hid]`, each scaled
/// symmetrically (negative dark, zero grey), for any square input size.
pub fn weights_picture(w: &[f32], n_vis: usize, n_hid: usize, image: Option<(usize, usize)>) -> GrayImage {
    let (h, wd) = tile_shape(n_vis, image);
    let cols = (n_hid as f64).sqrt().ceil() as usize;
    let zoom = if h * wd <= 100 { 4 } else { 2 };
    tile_grid(
        &filter_tiles(w, n_vis, n_hid, n_hid),
        h,
        wd,
        cols,
        Scale::Symmetric,
        zoom,
    )
}

/// Three rows for the first `count` examples of `x`: the originals, their
/// corruption by the model's noise (seeded), and the reconstructions of the
/// corrupted inputs.
pub fn reconstructions_picture(
    model: &crate::models::DenoisingAutoencoder,
    x: ndarray::ArrayView2<f32>,
    count: usize,
    seed: u64,
    image: Option<(usize, usize)>,
) -> Result<GrayImage> {
    let n = count.min(x.nrows());
    if n == 0 {
        return Err(Error::config("count", "no examples to picture"));
    }
    let x = x.slice(ndarray::s![..n, ..]).as_standard_layout().to_owned();
    let noisy = model.corrupt(x.view(), seed);
    let recon = model.reconstruct(noisy.view())?;
    let dim = x.ncols();
    let rows = [
        x.as_slice().expect("owned"),
        noisy.as_slice().expect("owned"),
        recon.as_slice().expect("owned"),
    ];
    let (h, w) = tile_shape(dim, image);
    Ok(tile_grid(&row_tiles(&rows, n, dim), h, w, n, Scale::Unit, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_geometry_and_per_tile_normalisation() {
        let tiles = vec![
            vec![0.0, 1.0, 2.0, 3.0],
            vec![-1.0, -1.0, -1.0, 5.0],
            vec![0.5; 4],
        ];
        let img = tile_grid(&tiles, 2, 2, 2, Scale::PerTile, 1);
        // 2 columns of 3 px (2 + border) plus a final border: 7 × 7.
        assert_eq!((img.width(), img.height()), (7, 7));
        assert_eq!(img.get_pixel(1, 1)[0], 0); // tile 0 min
        assert_eq!(img.get_pixel(2, 2)[0], 255); // tile 0 max
        assert_eq!(img.get_pixel(5, 2)[0], 255); // tile 1's 5.0
        assert_eq!(img.get_pixel(4, 1)[0], 0); // tile 1's −1
        assert_eq!(img.get_pixel(0, 0)[0], 128); // border
        let png = png_bytes(&img);
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn chw_grid_places_channels_and_tiles() {
        // Two 3×2×2 images (CHW), 2 columns, zoom 2: tiles are 4×4 px plus a
        // separator, so the picture is (2·5 + 1) × (5 + 1) = 11 × 6.
        // Image 0: R = [0, 1, 0, 0], G = [0, 0, 0.5, 0], B = [2 (clamped), 0, 0, -1].
        let a = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 2.0, 0.0, 0.0, -1.0];
        let b = [0.2; 12];
        let img = chw_grid(&[&a, &b], 3, 2, 2, 2, 2);
        assert_eq!((img.width(), img.height()), (11, 6));
        assert_eq!(img.get_pixel(0, 0).0, [128, 128, 128]); // border
                                                            // Pixel (row 0, col 0) of image 0 covers (1..3, 1..3): R 0, G 0, B 255.
        assert_eq!(img.get_pixel(1, 1).0, [0, 0, 255]);
        assert_eq!(img.get_pixel(2, 2).0, [0, 0, 255]);
        // (row 0, col 1) starts at x = 1 + 2: R 255.
        assert_eq!(img.get_pixel(3, 1).0, [255, 0, 0]);
        // (row 1, col 0) starts at y = 3: G 0.5 → round(127.5) = 128.
        assert_eq!(img.get_pixel(1, 3).0, [0, 128, 0]);
        assert_eq!(img.get_pixel(5, 1).0, [128, 128, 128]); // separator
                                                            // Image 1 starts at x = 1 + 5: 0.2 · 255 = 51 everywhere.
        assert_eq!(img.get_pixel(6, 1).0, [51, 51, 51]);
        assert_eq!(img.get_pixel(9, 4).0, [51, 51, 51]);

        // One channel: grey in all three.
        let grey = chw_grid(&[&[0.0, 1.0][..]], 1, 1, 2, 1, 1);
        assert_eq!((grey.width(), grey.height()), (4, 3));
        assert_eq!(grey.get_pixel(2, 1).0, [255, 255, 255]);
        assert_eq!(grey.get_pixel(1, 1).0, [0, 0, 0]);
    }

    #[test]
    fn rgb_png_is_written_atomically() {
        let dir = tempfile::Builder::new().prefix("aekit-viz-").tempdir().unwrap();
        let p = dir.path().join("rgb.png");
        let img = chw_grid(&[&[1.0, 0.0, 0.5][..]], 3, 1, 1, 1, 1);
        save_rgb_png(&p, &img).unwrap();
        let back = image::open(&p).unwrap().to_rgb8();
        assert_eq!(back.get_pixel(1, 1).0, [255, 0, 128]);
        assert!(save_rgb_png(&p, &RgbImage::new(0, 0)).is_err());
    }

    #[test]
    fn filters_are_columns_of_w() {
        // W [3, 2] = [[1,2],[3,4],[5,6]]: filter 0 is (1,3,5), filter 1 is (2,4,6).
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            filter_tiles(&w, 3, 2, 100),
            vec![vec![1.0, 3.0, 5.0], vec![2.0, 4.0, 6.0]]
        );
        assert_eq!(tile_shape(784, None), (28, 28));
        assert_eq!(tile_shape(10, None), (1, 10));
    }
}
