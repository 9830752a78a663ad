//! An in-memory dataset: examples as rows of f32 (images scaled to [0, 1]),
//! optional labels.

/// `n` examples of `dim` features each, row-major, with optional labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `[n, dim]`.
    pub x: Vec<f32>,
    /// `[n]`, class indices.
    pub labels: Option<Vec<u8>>,
    pub n: usize,
    pub dim: usize,
    /// Image height and width, when the rows are images (`h·w = dim`).
    pub image: Option<(usize, usize)>,
}

impl Dataset {
    /// The examples as an `[n, dim]` array view.
    pub fn view(&self) -> ndarray::ArrayView2<'_, f32> {
        ndarray::ArrayView2::from_shape((self.n, self.dim), &self.x).expect("x holds n·dim values")
    }

    /// The i-th example.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// The examples at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Dataset {
            x,
            labels: self.labels.as_ref().map(|l| idx.iter().map(|&i| l[i]).collect()),
            n: idx.len(),
            dim: self.dim,
            image: self.image,
        }
    }

    /// These examples followed by `other`'s (as the training and
    /// validation sets joined for a refit); both must have the same width
    /// and both labels or neither.
    pub fn concat(&self, other: &Dataset) -> crate::Result<Dataset> {
        if self.dim != other.dim {
            return Err(crate::Error::shape(
                "joined examples' values a row",
                self.dim,
                other.dim,
            ));
        }
        let labels = match (&self.labels, &other.labels) {
            (Some(a), Some(b)) => Some(a.iter().chain(b).copied().collect()),
            (None, None) => None,
            _ => {
                return Err(crate::Error::config(
                    "data",
                    "cannot join a labelled set with an unlabelled one",
                ))
            }
        };
        let mut x = Vec::with_capacity(self.x.len() + other.x.len());
        x.extend_from_slice(&self.x);
        x.extend_from_slice(&other.x);
        Ok(Dataset {
            x,
            labels,
            n: self.n + other.n,
            dim: self.dim,
            image: self.image,
        })
    }

    /// Colour channels per example: `dim / (h·w)` for images (1 for MNIST, 3
    /// for CIFAR, whose rows are CHW), 1 when the rows are not images.
    pub fn channels(&self) -> usize {
        match self.image {
            Some((h, w)) if h * w > 0 => self.dim / (h * w),
            _ => 1,
        }
    }

    /// Number of classes (max label + 1), or 0 without labels.
    pub fn n_classes(&self) -> usize {
        self.labels
            .as_ref()
            .and_then(|l| l.iter().max())
            .map_or(0, |&m| m as usize + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rows: &[[f32; 2]], labels: Option<&[u8]>) -> Dataset {
        Dataset {
            x: rows.iter().flatten().copied().collect(),
            labels: labels.map(<[u8]>::to_vec),
            n: rows.len(),
            dim: 2,
            image: None,
        }
    }

    #[test]
    fn concat_puts_the_second_sets_rows_after_the_first_and_refuses_a_mismatch() {
        let a = set(&[[1.0, 2.0], [3.0, 4.0]], Some(&[0, 1]));
        let b = set(&[[5.0, 6.0]], Some(&[2]));
        let j = a.concat(&b).unwrap();
        assert_eq!((j.n, j.dim), (3, 2));
        assert_eq!(j.x, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(j.labels.as_deref(), Some(&[0u8, 1, 2][..]));
        // Joining nothing keeps the set.
        assert_eq!(a.concat(&a.select(&[])).unwrap().x, a.x);
        let wide = Dataset {
            x: vec![0.0; 3],
            labels: Some(vec![0]),
            n: 1,
            dim: 3,
            image: None,
        };
        let e = a.concat(&wide).unwrap_err().to_string();
        assert!(
            e.contains("joined examples") && e.contains('2') && e.contains('3'),
            "{e}"
        );
        let e = a.concat(&set(&[[0.0, 0.0]], None)).unwrap_err().to_string();
        assert!(e.contains("labelled set with an unlabelled one"), "{e}");
    }
}
