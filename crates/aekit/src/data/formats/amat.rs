//! The LISA `.amat` text format of the MNIST variants (Larochelle et al.,
//! 2007): one image a line, 784 intensities in [0, 1] then the label, all
//! as decimal numbers separated by spaces. In every variant but the basic
//! set the pixels are stored column by column (transposed); [`read_amat`]
//! turns them back when told to, and [`read_amat_dir`] tells it from the
//! archives' file names (`rotation` or `background`:
//! `mnist_all_rotation_normalized_float_*`, `mnist_background_random_*`,
//! `mnist_background_images_*`, `mnist_all_background_images_rotation_*`;
//! the basic set's `mnist_train.amat` and `mnist_test.amat` are stored row
//! by row). The random-background set is transposed too: the skdata
//! library and other published loaders transpose it, as they do the
//! image-background and rotated sets.

use crate::data::Dataset;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Reads an `.amat` file of square images; `transposed` undoes the
/// column-major storage.
pub fn read_amat(path: &Path, transposed: bool) -> Result<Dataset> {
    let bytes = crate::tensor::memory::read_bounded(path, ".amat file")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::format(path, "is not text (UTF-8)"))?;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    let mut dim = None;
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let vals: Vec<f64> = line
            .split_whitespace()
            .enumerate()
            .map(|(j, v)| {
                v.parse::<f64>().map_err(|_| {
                    Error::format(
                        path,
                        format!("line {}, field {}: `{v}` is not a number", k + 1, j + 1),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let d = vals.len().saturating_sub(1);
        match dim {
            None => {
                let side = (d as f64).sqrt().round() as usize;
                if d == 0 || side * side != d {
                    return Err(Error::format(
                        path,
                        format!(
                            "line {}: {} pixels and a label do not make a square image",
                            k + 1,
                            d
                        ),
                    ));
                }
                dim = Some(d);
            }
            Some(e) if e != d => {
                return Err(Error::format(
                    path,
                    format!("line {} has {} pixels, the first line {e}", k + 1, d),
                ))
            }
            _ => {}
        }
        let (px, label) = vals.split_at(d);
        if let Some(j) = px.iter().position(|v| !(0.0..=1.0).contains(v)) {
            return Err(Error::format(
                path,
                format!("line {}, pixel {}: {} is outside [0, 1]", k + 1, j + 1, px[j]),
            ));
        }
        let l = label[0];
        if !((0.0..256.0).contains(&l) && l.fract() == 0.0) {
            return Err(Error::format(
                path,
                format!("line {}: the label {l} is not a class number", k + 1),
            ));
        }
        let side = (d as f64).sqrt().round() as usize;
        if transposed {
            for r in 0..side {
                for c in 0..side {
                    x.push(px[c * side + r] as f32);
                }
            }
        } else {
            x.extend(px.iter().map(|&v| v as f32));
        }
        labels.push(l as u8);
    }
    let dim = dim.ok_or_else(|| Error::format(path, "holds no images"))?;
    let side = (dim as f64).sqrt().round() as usize;
    Ok(Dataset {
        n: labels.len(),
        x,
        labels: Some(labels),
        dim,
        image: Some((side, side)),
    })
}

/// Whether an archive's file is stored transposed, by its name.
pub fn is_transposed(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.contains("rotation") || name.contains("background")
}

/// The `.amat` training and test files in `dir` (names containing `train`
/// and `test`), if it holds any.
pub fn find_amat_pair(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "amat"))
        .collect();
    let pick = |key: &str| {
        files
            .iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().to_lowercase().contains(key))
            })
            .cloned()
    };
    Some((pick("train")?, pick("test")?))
}

/// Reads the training and test `.amat` files of `dir`.
pub fn read_amat_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    let (train, test) = find_amat_pair(dir).ok_or_else(|| {
        Error::format(
            dir,
            "holds no pair of .amat files named *train*.amat and *test*.amat",
        )
    })?;
    let a = read_amat(&train, is_transposed(&train))?;
    let b = read_amat(&test, is_transposed(&test))?;
    if a.dim != b.dim {
        return Err(Error::format(
            dir,
            format!(
                "{} has {} pixels an image, {} has {}",
                train.display(),
                a.dim,
                test.display(),
                b.dim
            ),
        ));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, rows: &[(Vec<f64>, u8)]) -> PathBuf {
        let p = dir.join(name);
        let text: String = rows
            .iter()
            .map(|(px, l)| {
                let mut s: Vec<String> = px.iter().map(|v| format!("{v:.6e}")).collect();
                s.push(format!("{l}.000000e+00"));
                s.join("   ") + "\n"
            })
            .collect();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_rows_and_undoes_the_transposition_by_name() {
        let dir = tempfile::tempdir().unwrap();
        // A 3×3 image with a vertical bar in column 0, stored column-major:
        // the first three stored values are column 0.
        let stored = vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0];
        write(
            dir.path(),
            "mnist_all_rotation_normalized_float_train_valid.amat",
            &[(stored.clone(), 3)],
        );
        write(
            dir.path(),
            "mnist_all_rotation_normalized_float_test.amat",
            &[(stored.clone(), 7), (stored, 1)],
        );
        let (train, test) = read_amat_dir(dir.path()).unwrap();
        assert_eq!(train.x, vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.0]);
        assert_eq!((test.n, test.labels.clone().unwrap()), (2, vec![7, 1]));
        assert_eq!(train.image, Some((3, 3)));
        assert!(is_transposed(Path::new("mnist_background_images_test.amat")));
        assert!(is_transposed(Path::new("mnist_background_random_test.amat")));
        assert!(!is_transposed(Path::new("mnist_train.amat")));
        // Without "rotation" or "background" in the name: stored as read.
        let p = write(dir.path(), "plain_train.amat", &[(vec![0.0, 1.0, 0.0, 0.0], 2)]);
        assert_eq!(
            read_amat(&p, is_transposed(&p)).unwrap().x,
            vec![0.0, 1.0, 0.0, 0.0]
        );
    }

    #[test]
    fn bad_files_name_the_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad_train.amat");
        std::fs::write(&p, "0 0 0 0 1\n0 0 x 0 1\n").unwrap();
        let e = read_amat(&p, false).unwrap_err().to_string();
        assert!(e.contains("line 2, field 3") && e.contains("`x`"), "{e}");
        std::fs::write(&p, "0 0 0 0 1\n0 0 0 1\n").unwrap();
        let e = read_amat(&p, false).unwrap_err().to_string();
        assert!(e.contains("line 2 has 3 pixels"), "{e}");
        std::fs::write(&p, "0 0 2 0 1\n").unwrap();
        assert!(read_amat(&p, false)
            .unwrap_err()
            .to_string()
            .contains("outside [0, 1]"));
        std::fs::write(&p, "0 0 0 1\n").unwrap();
        assert!(read_amat(&p, false).unwrap_err().to_string().contains("square"));
        std::fs::write(&p, "0 0 0 0 1.5\n").unwrap();
        assert!(read_amat(&p, false)
            .unwrap_err()
            .to_string()
            .contains("not a class number"));
    }
}
