//! The stacked DAE: a deep sigmoid encoder with each layer's pretraining
//! decoder bias, its codes, reconstruction and model files.

use super::schedule::PretrainConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::safetensors::{self as st, NamedTensor};
use crate::layers::dense::Dense;
use crate::models::deep::{trunk_forward, DeepLayout, DeepWorkspace, HeadKind};
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use rand::Rng as _;
use std::collections::HashMap;
use std::path::Path;

/// A deep sigmoid encoder with each layer's pretraining decoder bias.
#[derive(Debug, Clone)]
pub struct StackedDae {
    /// `[n_vis, n₁, …, n_L]`.
    pub sizes: Vec<usize>,
    /// `[W₁ b₁ … W_L b_L]`.
    pub trunk: Vec<f32>,
    /// b′_j of layer j's pretraining DAE (tied or untied), `[n_{j−1}]`.
    pub decoder_bias: Vec<Vec<f32>>,
    /// W′_j `[n_j, n_{j−1}]` of layer j's untied pretraining DAE; `None`
    /// where the layer was pretrained tied (its decoder is W_jᵀ).
    pub decoder_weight: Vec<Option<Vec<f32>>>,
    /// The decoder (W′ `[n_L, n_vis]`, b′) from the top layer to x, when the
    /// top layer's training ended gradually; otherwise x is reconstructed
    /// through each layer's decoder (tied or untied), top down.
    pub top_decoder: Option<(Vec<f32>, Vec<f32>)>,
    /// The softmax layer from fine-tuning (W `[n_L, classes]`, b `[classes]`),
    /// saved with the model so that it can classify.
    pub classifier: Option<(Vec<f32>, Vec<f32>)>,
    /// How [`Estimator::fit`](crate::models::Estimator::fit) pretrains it
    /// (the widths and seed as given to `new`, otherwise the defaults).
    pub pretrain: PretrainConfig,
}

pub(crate) fn uniform(rng: &mut Rng, n: usize, r: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-r..r)).collect()
}

/// The sigmoid-unit initialisation U(±4·√(6/(fan_in + fan_out))).
pub(crate) fn init_range(a: usize, b: usize) -> f32 {
    4.0 * (6.0 / (a + b) as f32).sqrt()
}

impl StackedDae {
    /// Random weights for widths `[n_vis, layers…]`.
    pub fn new(n_vis: usize, layers: &[usize], seed: u64) -> StackedDae {
        let sizes: Vec<usize> = std::iter::once(n_vis).chain(layers.iter().copied()).collect();
        let lay = DeepLayout::new(&sizes, HeadKind::Softmax { classes: 1 });
        let mut rng = seeded(seed ^ 0x57ac);
        let mut trunk = vec![0.0; lay.trunk_len()];
        for j in 0..lay.depth() {
            let w = lay.layers[j].0.clone();
            let r = init_range(sizes[j], sizes[j + 1]);
            trunk[w.clone()].copy_from_slice(&uniform(&mut rng, w.len(), r));
        }
        let decoder_bias = sizes[..sizes.len() - 1].iter().map(|&n| vec![0.0; n]).collect();
        let decoder_weight = vec![None; sizes.len() - 1];
        let mut pretrain = PretrainConfig::default().with_layers(layers);
        pretrain.train.seed = seed;
        StackedDae {
            sizes,
            trunk,
            decoder_bias,
            decoder_weight,
            top_decoder: None,
            classifier: None,
            pretrain,
        }
    }

    pub fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    pub(crate) fn layout(&self, upto: usize, head: HeadKind) -> DeepLayout {
        DeepLayout::new(&self.sizes[..=upto], head)
    }

    /// The top code of `x` through the first `upto` layers, `[n, n_upto]`.
    pub fn encode(&self, x: &[f32], n: usize, upto: usize, par: Par) -> Vec<f32> {
        if upto == 0 {
            return x.to_vec();
        }
        let lay = self.layout(upto, HeadKind::Softmax { classes: 1 });
        let mut ws = DeepWorkspace::default();
        let mut out = Vec::with_capacity(n * self.sizes[upto]);
        for start in (0..n).step_by(1000) {
            let b = 1000.min(n - start);
            let xb = &x[start * self.sizes[0]..(start + b) * self.sizes[0]];
            out.extend_from_slice(trunk_forward(&lay, &self.trunk, xb, b, &mut ws, par));
        }
        out
    }
}

impl StackedDae {
    /// Mean per image of the cross-entropy −Σ[x ln z + (1−x) ln(1−z)] of
    /// reconstructing clean `x` from the top layer (see `top_decoder`).
    pub fn reconstruction_xent(&self, x: &Dataset, par: Par) -> f64 {
        let l = self.depth();
        let nv = self.sizes[0];
        let mut total = 0.0f64;
        for start in (0..x.n).step_by(1000) {
            let b = 1000.min(x.n - start);
            let xb = &x.x[start * nv..(start + b) * nv];
            let mut h = self.encode(xb, b, l, par);
            let lay = self.layout(l, HeadKind::Softmax { classes: 1 });
            let logits = match &self.top_decoder {
                Some((w, bias)) => {
                    let mut a = vec![0.0f32; b * nv];
                    Dense::new(w, self.sizes[l], nv).forward(&mut a, &h, bias, b, par);
                    a
                }
                None => {
                    let mut a = Vec::new();
                    for j in (0..l).rev() {
                        let (n_lo, n_hi) = (self.sizes[j], self.sizes[j + 1]);
                        a = vec![0.0f32; b * n_lo];
                        let dense = match &self.decoder_weight[j] {
                            Some(w) => Dense::new(w, n_hi, n_lo),
                            None => Dense::tied(&self.trunk[lay.layers[j].0.clone()], n_hi, n_lo),
                        };
                        dense.forward(&mut a, &h, &self.decoder_bias[j], b, par);
                        if j > 0 {
                            h = a.clone();
                            crate::layers::Activation::Sigmoid.forward(&mut h);
                        }
                    }
                    a
                }
            };
            total += crate::layers::loss::xent_forward(&logits, xb) as f64;
        }
        total / x.n.max(1) as f64
    }

    /// Saves `layers.{j}.weight` `[n_{j−1}, n_j]`, `layers.{j}.bias`,
    /// `layers.{j}.decoder_bias` and, for an untied layer,
    /// `layers.{j}.decoder_weight` `[n_j, n_{j−1}]` (j from 0), widths in the
    /// metadata.
    pub fn save(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        let lay = self.layout(self.depth(), HeadKind::Softmax { classes: 1 });
        let names: Vec<[String; 4]> = (0..self.depth())
            .map(|j| ["weight", "bias", "decoder_bias", "decoder_weight"].map(|t| format!("layers.{j}.{t}")))
            .collect();
        let mut t = Vec::new();
        for (j, [wn, bn, dn, dwn]) in names.iter().enumerate() {
            let (w, b) = &lay.layers[j];
            t.push(NamedTensor {
                name: wn,
                shape: vec![self.sizes[j], self.sizes[j + 1]],
                data: &self.trunk[w.clone()],
            });
            t.push(NamedTensor {
                name: bn,
                shape: vec![self.sizes[j + 1]],
                data: &self.trunk[b.clone()],
            });
            t.push(NamedTensor {
                name: dn,
                shape: vec![self.sizes[j]],
                data: &self.decoder_bias[j],
            });
            if let Some(w) = &self.decoder_weight[j] {
                t.push(NamedTensor {
                    name: dwn,
                    shape: vec![self.sizes[j + 1], self.sizes[j]],
                    data: w,
                });
            }
        }
        if let Some((w, b)) = &self.top_decoder {
            let (l, nv) = (self.depth(), self.sizes[0]);
            t.push(NamedTensor {
                name: "top_decoder.weight",
                shape: vec![self.sizes[l], nv],
                data: w,
            });
            t.push(NamedTensor {
                name: "top_decoder.bias",
                shape: vec![nv],
                data: b,
            });
        }
        if let Some((w, b)) = &self.classifier {
            t.push(NamedTensor {
                name: "classifier.weight",
                shape: vec![self.sizes[self.depth()], b.len()],
                data: w,
            });
            t.push(NamedTensor {
                name: "classifier.bias",
                shape: vec![b.len()],
                data: b,
            });
        }
        let mut meta = metadata;
        meta.insert("format".into(), "aekit.stacked".into());
        meta.insert(
            "sizes".into(),
            self.sizes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        st::save(path, &t, meta)
    }

    /// Loads a model saved by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<StackedDae> {
        let mut f = st::load(path)?;
        f.expect_kind("aekit.stacked")?;
        let sizes: Vec<usize> = f
            .meta("sizes")?
            .split(',')
            .map(|s| {
                s.parse()
                    .map_err(|_| Error::format(path, "bad `sizes` in metadata"))
            })
            .collect::<Result<_>>()?;
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::format(path, format!("bad layer widths {sizes:?}")));
        }
        // The widths the metadata declares must be those of the tensors,
        // before a stack of that size is allocated.
        for (j, w) in sizes.windows(2).enumerate() {
            let want = vec![w[0], w[1]];
            let got = f.shape_of(&format!("layers.{j}.weight"));
            if got.as_ref() != Some(&want) {
                return Err(Error::format(
                    path,
                    format!(
                        "its `sizes` declare layer {j} as {want:?} but `layers.{j}.weight` has shape {got:?}"
                    ),
                ));
            }
        }
        let mut m = StackedDae::new(sizes[0], &sizes[1..], 0);
        let lay = m.layout(m.depth(), HeadKind::Softmax { classes: 1 });
        for j in 0..m.depth() {
            let (w, b) = lay.layers[j].clone();
            m.trunk[w].copy_from_slice(&f.take(&format!("layers.{j}.weight"), &[sizes[j], sizes[j + 1]])?);
            m.trunk[b].copy_from_slice(&f.take(&format!("layers.{j}.bias"), &[sizes[j + 1]])?);
            m.decoder_bias[j] = f.take(&format!("layers.{j}.decoder_bias"), &[sizes[j]])?;
            let dw = format!("layers.{j}.decoder_weight");
            if f.has(&dw) {
                m.decoder_weight[j] = Some(f.take(&dw, &[sizes[j + 1], sizes[j]])?);
            }
        }
        if f.has("top_decoder.weight") {
            let (l, nv) = (m.depth(), sizes[0]);
            m.top_decoder = Some((
                f.take("top_decoder.weight", &[sizes[l], nv])?,
                f.take("top_decoder.bias", &[nv])?,
            ));
        }
        if let Some(shape) = f.shape_of("classifier.bias") {
            let [k] = shape[..] else {
                return Err(Error::format(
                    path,
                    format!("`classifier.bias` has shape {shape:?}, not [classes]"),
                ));
            };
            let b = f.take("classifier.bias", &[k])?;
            let w = f.take("classifier.weight", &[sizes[m.depth()], k])?;
            m.classifier = Some((w, b));
        }
        Ok(m)
    }
}
