//! Model files in the safetensors format, which PyTorch (and the Python
//! `safetensors` package) read. Tensors are little-endian f32; the model's
//! configuration travels as TOML in the header's metadata.

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// A named f32 tensor to save.
pub struct NamedTensor<'a> {
    pub name: &'a str,
    pub shape: Vec<usize>,
    pub data: &'a [f32],
}

/// Writes tensors and string metadata to `path`, atomically. A tensor with a
/// non-finite value is refused: a model that diverged is never saved as if
/// it were usable.
pub fn save(path: &Path, tensors: &[NamedTensor<'_>], metadata: HashMap<String, String>) -> Result<()> {
    for t in tensors {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::format(
                path,
                format!(
                    "not saved: tensor `{}` holds {} at position {i} (did training diverge?)",
                    t.name, t.data[i]
                ),
            ));
        }
    }
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name, v))
                .map_err(|e| Error::format(path, format!("tensor {}: {e}", t.name)))
        })
        .collect::<Result<_>>()?;
    let out = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::format(path, format!("cannot serialise: {e}")))?;
    super::atomic_write(path, &canonical(out))
}

/// The same file with its header's keys in sorted order (the metadata
/// arrives in a hash map's order, which differs from run to run), so that
/// equal models are equal files.
fn canonical(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + n]) else {
        return bytes;
    };
    // serde_json's maps are sorted by key; the data offsets do not change.
    let mut h = serde_json::to_vec(&header).expect("JSON values serialise");
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// A loaded safetensors file.
pub struct Loaded {
    pub metadata: HashMap<String, String>,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    path: std::path::PathBuf,
}

impl Loaded {
    /// Takes the tensor `name`, checking it has `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (s, d) = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::format(&self.path, format!("has no tensor `{name}`")))?;
        if s != shape {
            return Err(Error::format(
                &self.path,
                format!("tensor `{name}` has shape {s:?}, expected {shape:?}"),
            ));
        }
        if let Some(i) = d.iter().position(|v| !v.is_finite()) {
            return Err(Error::format(
                &self.path,
                format!(
                    "tensor `{name}` holds {} at position {i}: the model is not usable (did its training diverge?)",
                    d[i]
                ),
            ));
        }
        Ok(d)
    }

    /// The shape of tensor `name`, if it is (still) there.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|(s, _)| s.clone())
    }

    /// The names of the tensors (still) there, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.tensors.keys().cloned().collect();
        n.sort();
        n
    }

    /// Whether a tensor of that name is (still) there.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Checks that this is an aekit file of kind `want` (`aekit.dae`,
    /// `aekit.stacked`, `aekit.sparse` or `aekit.cae`), or says what it is
    /// instead and which command makes the wanted kind.
    pub fn expect_kind(&self, want: &str) -> Result<()> {
        let got = match (self.metadata.get("format"), self.metadata.get("model")) {
            (Some(f), _) => f.as_str(),
            (None, Some(m)) if m == "cae" => "aekit.cae",
            _ if self.metadata.contains_key("aekit_state") => "aekit.state",
            _ => "",
        };
        if got == want {
            return Ok(());
        }
        let name = |k: &str| match k {
            "aekit.dae" => "a dense denoising autoencoder (from `aekit train`)".to_string(),
            "aekit.stacked" => {
                "a stacked autoencoder (from `aekit pretrain` or `aekit finetune`)".to_string()
            }
            "aekit.sparse" => "a sparse autoencoder (from `aekit train --kind sparse`)".to_string(),
            "aekit.cae" => "a convolutional autoencoder (from `aekit cae` or `aekit ensemble`)".to_string(),
            "aekit.imputer" => "a table imputer (from `aekit impute fit`)".to_string(),
            "aekit.pca" => "a PCA model (from `aekit pca`)".to_string(),
            "aekit.deep_ae" => "a deep autoencoder (from `aekit deep-ae`)".to_string(),
            "aekit.state" => {
                "a checkpoint's resume state (its model is the model.safetensors beside it)".to_string()
            }
            "" => "not an aekit model (no `format` in its metadata)".to_string(),
            other => format!("of format `{other}`, which this aekit does not know"),
        };
        Err(Error::format(
            &self.path,
            format!("is {}; this needs {}", name(got), name(want)),
        ))
    }

    /// A metadata entry, or an error naming the file.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::format(&self.path, format!("has no `{key}` in its metadata")))
    }
}

/// Reads every f32 tensor and the metadata of a safetensors file.
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = crate::tensor::memory::read_bounded(path, "model file")?;
    let bad =
        |e: safetensors::SafeTensorError| Error::format(path, format!("not a valid safetensors file: {e}"));
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(bad)?;
    let st = SafeTensors::deserialize(&bytes).map_err(bad)?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::format(
                path,
                format!("tensor `{name}` is {:?}; aekit models are F32", view.dtype()),
            ));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(name, (view.shape().to_vec(), data));
    }
    Ok(Loaded {
        metadata: meta.metadata().clone().unwrap_or_default(),
        tensors,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_another_kind_is_named_with_the_command_that_makes_each() {
        let dir = tempfile::tempdir().unwrap();
        let data = [1.0f32, 2.0];
        let file = |format: Option<&str>| {
            let p = dir
                .path()
                .join(format!("{}.safetensors", format.unwrap_or("none")));
            let meta = format.map(|f| HashMap::from([("format".to_string(), f.to_string())]));
            let t = NamedTensor {
                name: "w",
                shape: vec![2],
                data: &data,
            };
            save(&p, &[t], meta.unwrap_or_default()).unwrap();
            load(&p).unwrap()
        };
        let e = file(Some("aekit.dae"))
            .expect_kind("aekit.imputer")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`aekit train`") && e.contains("needs a table imputer (from `aekit impute fit`)"),
            "{e}"
        );
        let e = file(Some("bogus"))
            .expect_kind("aekit.pca")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("of format `bogus`") && e.contains("`aekit pca`"),
            "{e}"
        );
        let e = file(None).expect_kind("aekit.deep_ae").unwrap_err().to_string();
        assert!(e.contains("no `format`") && e.contains("`aekit deep-ae`"), "{e}");
        file(Some("aekit.cae")).expect_kind("aekit.cae").unwrap();
    }
}
