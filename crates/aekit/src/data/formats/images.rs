//! A folder of PNG or JPEG images as a dataset: every image of one size
//! (or resized to one with `size`), grey or RGB, pixels scaled to [0, 1].
//! RGB rows are laid out channel by channel (CHW), as CIFAR's are.
//!
//! A folder that holds `train/` and `test/` folders of images is split by
//! them; otherwise its images are taken in name order and the last tenth is
//! the test part (as for an `.npy` file).

use crate::data::Dataset;
use crate::error::{Error, Result};
use image::imageops::FilterType;
use image::DynamicImage;
use std::path::{Path, PathBuf};

/// The extensions read as images (any case).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

fn is_image(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The image files directly in `dir`, in name order.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    let mut files = Vec::new();
    for entry in rd {
        let p = entry.map_err(|e| Error::io("cannot list", dir, e))?.path();
        if is_image(&p) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Whether `dir` holds images (directly, or in `train/` and `test/`).
pub fn holds_images(dir: &Path) -> bool {
    split_folders(dir).is_some() || image_files(dir).is_ok_and(|f| !f.is_empty())
}

/// `train/` and `test/` when both hold images.
fn split_folders(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (tr, te) = (dir.join("train"), dir.join("test"));
    let has = |d: &Path| d.is_dir() && image_files(d).is_ok_and(|f| !f.is_empty());
    (has(&tr) && has(&te)).then_some((tr, te))
}

/// Every image of `dir` in row order, unsplit: `train/` then `test/`
/// when it has both, else its own images (one is enough).
pub fn all_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let (mut train, test) = split_files_or_one(dir)?;
    train.extend(test);
    Ok(train)
}

/// The files of the training and test parts, in row order.
pub fn split_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (files, test) = split_files_or_one(dir)?;
    if test.is_empty() {
        return Err(Error::format(
            dir,
            "holds 1 image; a training and a test part need at least 2 (or train/ and test/ folders)",
        ));
    }
    Ok((files, test))
}

/// [`split_files`], but a folder of one image is that image and no test part.
fn split_files_or_one(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    if let Some((tr, te)) = split_folders(dir) {
        return Ok((image_files(&tr)?, image_files(&te)?));
    }
    let mut files = image_files(dir)?;
    if files.is_empty() {
        return Err(Error::format(
            dir,
            format!(
                "holds no images ({}), IDX files (train-images-idx3-ubyte and the rest), CIFAR or .amat files",
                IMAGE_EXTENSIONS.join(", ")
            ),
        ));
    }
    if files.len() < 2 {
        return Ok((files, Vec::new()));
    }
    let cut = files.len() - (files.len() / 10).max(1);
    let test = files.split_off(cut);
    Ok((files, test))
}

fn open(p: &Path) -> Result<DynamicImage> {
    image::ImageReader::open(p)
        .map_err(|e| Error::io("cannot read", p, e))?
        .with_guessed_format()
        .map_err(|e| Error::io("cannot read", p, e))?
        .decode()
        .map_err(|e| Error::format(p, format!("is not an image aekit can read: {e}")))
}

/// The images of `files` as rows: RGB when any of them has colour, grey
/// otherwise; resized to `size` (height, width) when given, else all must
/// share the first image's size.
pub fn read_images(files: &[PathBuf], size: Option<(usize, usize)>) -> Result<Dataset> {
    let images = files.iter().map(|p| open(p)).collect::<Result<Vec<_>>>()?;
    images_to_rows(files, images, size)
}

fn images_to_rows(
    files: &[PathBuf],
    images: Vec<DynamicImage>,
    size: Option<(usize, usize)>,
) -> Result<Dataset> {
    let Some(first) = images.first() else {
        return Err(Error::config("data", "no images to read"));
    };
    let (h, w) = size.unwrap_or((first.height() as usize, first.width() as usize));
    if h == 0 || w == 0 {
        return Err(Error::config("size", "height and width must be at least 1"));
    }
    if h > u32::MAX as usize || w > u32::MAX as usize {
        return Err(Error::config(
            "size",
            format!("{h}×{w} is past what an image can be"),
        ));
    }
    let rgb = images.iter().any(|i| i.color().has_color());
    let c = if rgb { 3 } else { 1 };
    // The rows, and a resized image and its float copy on the way.
    let plane = c as u128 * h as u128 * w as u128;
    crate::tensor::memory::check_f32s("size", (images.len() as u128 + 2) * plane)?;
    let dim = c * h * w;
    let mut x = Vec::with_capacity(images.len() * dim);
    for (k, img) in images.into_iter().enumerate() {
        let (ih, iw) = (img.height() as usize, img.width() as usize);
        let img = if (ih, iw) == (h, w) {
            img
        } else if size.is_some() {
            img.resize_exact(w as u32, h as u32, FilterType::Triangle)
        } else {
            return Err(Error::format(
                &files[k],
                format!(
                    "is {ih}×{iw} (height×width) but {} is {h}×{w}; give --size H,W to resize every image to one size",
                    files[0].display()
                ),
            ));
        };
        if rgb {
            let px = img.to_rgb32f();
            for ch in 0..3 {
                x.extend(px.pixels().map(|p| p.0[ch].clamp(0.0, 1.0)));
            }
        } else {
            x.extend(img.to_luma32f().pixels().map(|p| p.0[0].clamp(0.0, 1.0)));
        }
    }
    Ok(Dataset {
        n: files.len(),
        x,
        labels: None,
        dim,
        image: Some((h, w)),
    })
}

/// The training and test parts of an image folder (see the module).
pub fn read_image_dir(dir: &Path, size: Option<(usize, usize)>) -> Result<(Dataset, Dataset)> {
    let (train, test) = split_files(dir)?;
    let all: Vec<PathBuf> = train.iter().chain(&test).cloned().collect();
    // Read together so that one size and one colour mode hold for both.
    let mut d = read_images(&all, size)?;
    let n_train = train.len();
    let test_part = d.select(&(n_train..d.n).collect::<Vec<_>>());
    d.x.truncate(n_train * d.dim);
    d.n = n_train;
    Ok((d, test_part))
}

/// Writes row `x` (`[c, h, w]`, c = 1 or 3, values clipped to [0, 1]) as an
/// 8-bit PNG.
pub fn write_png(path: &Path, x: &[f32], c: usize, h: usize, w: usize) -> Result<()> {
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let plane = h * w;
    let img = if c == 3 {
        let mut buf = Vec::with_capacity(3 * plane);
        for i in 0..plane {
            buf.extend([byte(x[i]), byte(x[plane + i]), byte(x[2 * plane + i])]);
        }
        DynamicImage::ImageRgb8(image::RgbImage::from_raw(w as u32, h as u32, buf).expect("3·h·w bytes"))
    } else {
        let buf = x[..plane].iter().map(|&v| byte(v)).collect();
        DynamicImage::ImageLuma8(image::GrayImage::from_raw(w as u32, h as u32, buf).expect("h·w bytes"))
    };
    img.save(path)
        .map_err(|e| Error::format(path, format!("cannot write the PNG: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(dir: &Path, name: &str, h: u32, w: u32, v: u8) -> PathBuf {
        let p = dir.join(name);
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([v.wrapping_add((x + y) as u8)]))
            .save(&p)
            .unwrap();
        p
    }

    #[test]
    fn a_grey_folder_reads_in_name_order_with_the_last_tenth_as_test() {
        let d = tempfile::tempdir().unwrap();
        for k in 0..10 {
            grey(d.path(), &format!("img{k:02}.png"), 3, 4, 10 * k as u8);
        }
        let (train, test) = read_image_dir(d.path(), None).unwrap();
        assert_eq!(
            (train.n, test.n, train.dim, train.image),
            (9, 1, 12, Some((3, 4)))
        );
        // img09's first pixel (x = y = 0) is 90/255; the next along x 91/255.
        assert!((test.x[0] - 90.0 / 255.0).abs() < 1e-6);
        assert!((test.x[1] - 91.0 / 255.0).abs() < 1e-6);
        assert!(
            (train.x[12] - 10.0 / 255.0).abs() < 1e-6,
            "img01 is the second row"
        );
    }

    #[test]
    fn colour_makes_every_row_rgb_in_chw_order() {
        let d = tempfile::tempdir().unwrap();
        grey(d.path(), "a.png", 2, 2, 0);
        image::RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 51]))
            .save(d.path().join("b.png"))
            .unwrap();
        let rows = read_images(&image_files(d.path()).unwrap(), None).unwrap();
        assert_eq!((rows.n, rows.dim), (2, 12));
        // b: all red, then all green, then all blue.
        assert_eq!(
            &rows.x[12..],
            &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.2, 0.2, 0.2]
        );
        // a, grey: the three planes equal.
        assert_eq!(rows.x[0..4], rows.x[4..8]);
    }

    #[test]
    fn mixed_sizes_are_refused_naming_both_files_unless_resized() {
        let d = tempfile::tempdir().unwrap();
        grey(d.path(), "a.png", 4, 4, 0);
        grey(d.path(), "b.png", 6, 5, 0);
        let files = image_files(d.path()).unwrap();
        let e = read_images(&files, None).unwrap_err().to_string();
        assert!(
            e.contains("b.png") && e.contains("6×5") && e.contains("a.png") && e.contains("--size"),
            "{e}"
        );
        let r = read_images(&files, Some((8, 7))).unwrap();
        assert_eq!((r.dim, r.image), (56, Some((8, 7))));
    }

    #[test]
    fn an_unreadable_image_and_an_empty_folder_are_named() {
        let d = tempfile::tempdir().unwrap();
        let e = read_image_dir(d.path(), None).unwrap_err().to_string();
        assert!(e.contains("holds no images"), "{e}");
        grey(d.path(), "a.png", 2, 2, 0);
        std::fs::write(d.path().join("broken.png"), b"not a png").unwrap();
        let e = read_image_dir(d.path(), None).unwrap_err().to_string();
        assert!(e.contains("broken.png") && e.contains("not an image"), "{e}");
    }

    #[test]
    fn train_and_test_folders_split_the_data_and_png_round_trips() {
        let d = tempfile::tempdir().unwrap();
        for part in ["train", "test"] {
            std::fs::create_dir(d.path().join(part)).unwrap();
        }
        for k in 0..3 {
            grey(&d.path().join("train"), &format!("{k}.png"), 5, 5, k);
        }
        let t = grey(&d.path().join("test"), "t.png", 5, 5, 7);
        let (train, test) = read_image_dir(d.path(), None).unwrap();
        assert_eq!((train.n, test.n), (3, 1));
        let out = d.path().join("copy.png");
        write_png(&out, &test.x, 1, 5, 5).unwrap();
        assert_eq!(
            image::open(&out).unwrap().to_luma8(),
            image::open(&t).unwrap().to_luma8()
        );
    }
}
