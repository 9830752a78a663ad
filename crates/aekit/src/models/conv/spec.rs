//! A CAE's architecture: a list of layers from TOML or a preset name.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub(crate) fn one() -> usize {
    1
}

/// One layer of a CAE spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// Conv2d to `out` channels, square `kernel`, `stride` (default 1),
    /// zero padding `pad` (default 0).
    Conv {
        out: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        pad: usize,
    },
    /// ConvTranspose2d to `out` channels; output size
    /// (in − 1)·stride − 2·pad + kernel + output_padding.
    ConvTranspose {
        out: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        pad: usize,
        #[serde(default)]
        output_padding: usize,
    },
    /// Max pooling, kernel = stride = `size`.
    Maxpool {
        size: usize,
    },
    /// Max unpooling with the mirrored encoder pool's indices.
    Unpool {
        size: usize,
    },
    /// Nearest-neighbour upsampling by `scale`.
    Upsample {
        scale: usize,
    },
    Relu,
    Sigmoid,
    Tanh,
    Identity,
}

/// A CAE architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaeSpec {
    /// Input shape `[channels, height, width]`.
    pub input: [usize; 3],
    pub encoder: Vec<LayerSpec>,
    pub decoder: Vec<LayerSpec>,
}

/// The names [`CaeSpec::preset`] knows.
pub const PRESETS: [&str; 4] = ["cae-mnist", "cae-mnist-unpool", "cae-mnist-upsample", "cae-cifar"];

impl CaeSpec {
    /// A built-in architecture:
    /// - `cae-mnist`: the eager-training paper's LeNet-like CAE for 1×28×28:
    ///   conv 1→16 3×3 pad 1, ReLU, maxpool 2, conv 16→32 3×3 pad 1, ReLU,
    ///   maxpool 2 (code 32×7×7); decoder ConvTranspose 32→16 3×3 stride 2
    ///   pad 1 output_padding 1, ReLU, ConvTranspose 16→1 likewise, sigmoid;
    /// - `cae-mnist-unpool` / `cae-mnist-upsample`: the same encoder, decoded
    ///   by max-unpooling (resp. nearest upsampling) then 3×3 convs;
    /// - `cae-cifar`: the same shape for 3×32×32 with 32 and 64 channels.
    pub fn preset(name: &str) -> Option<CaeSpec> {
        use LayerSpec::*;
        let conv = |out| Conv {
            out,
            kernel: 3,
            stride: 1,
            pad: 1,
        };
        let up = |out| ConvTranspose {
            out,
            kernel: 3,
            stride: 2,
            pad: 1,
            output_padding: 1,
        };
        let encoder = |c1, c2| {
            vec![
                conv(c1),
                Relu,
                Maxpool { size: 2 },
                conv(c2),
                Relu,
                Maxpool { size: 2 },
            ]
        };
        Some(match name {
            "cae-mnist" => CaeSpec {
                input: [1, 28, 28],
                encoder: encoder(16, 32),
                decoder: vec![up(16), Relu, up(1), Sigmoid],
            },
            "cae-mnist-unpool" => CaeSpec {
                input: [1, 28, 28],
                encoder: encoder(16, 32),
                decoder: vec![
                    Unpool { size: 2 },
                    conv(16),
                    Relu,
                    Unpool { size: 2 },
                    conv(1),
                    Sigmoid,
                ],
            },
            "cae-mnist-upsample" => CaeSpec {
                input: [1, 28, 28],
                encoder: encoder(16, 32),
                decoder: vec![
                    Upsample { scale: 2 },
                    conv(16),
                    Relu,
                    Upsample { scale: 2 },
                    conv(1),
                    Sigmoid,
                ],
            },
            "cae-cifar" => CaeSpec {
                input: [3, 32, 32],
                encoder: encoder(32, 64),
                decoder: vec![up(32), Relu, up(3), Sigmoid],
            },
            _ => return None,
        })
    }

    /// A preset name, or the path of a TOML file holding a spec.
    pub fn load(arg: &str) -> Result<CaeSpec> {
        if let Some(s) = CaeSpec::preset(arg) {
            return Ok(s);
        }
        let path = Path::new(arg);
        if !path.is_file() {
            return Err(Error::config(
                "arch",
                format!(
                    "`{arg}` is neither a preset ({}) nor a TOML file",
                    PRESETS.join(", ")
                ),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        toml::from_str(&text).map_err(|e| Error::format(path, format!("not a valid CAE spec: {e}")))
    }

    /// The same spec with every conv's channel count multiplied by `factor`,
    /// except a decoder conv whose output is the image (a wider "monolithic"
    /// model for comparisons).
    /// The same architecture with a linear output: the decoder's last
    /// activation becomes the identity (one is added when it ends in a
    /// convolution).
    pub fn linear_output(&self) -> CaeSpec {
        let mut s = self.clone();
        match s.decoder.last_mut() {
            Some(l @ (LayerSpec::Relu | LayerSpec::Sigmoid | LayerSpec::Tanh)) => *l = LayerSpec::Identity,
            Some(LayerSpec::Identity) => {}
            _ => s.decoder.push(LayerSpec::Identity),
        }
        s
    }

    pub fn widen(&self, factor: usize) -> CaeSpec {
        let mut s = self.clone();
        let image_c = self.input[0];
        let last_conv = s
            .decoder
            .iter()
            .rposition(|l| matches!(l, LayerSpec::Conv { .. } | LayerSpec::ConvTranspose { .. }));
        for (i, l) in s.encoder.iter_mut().chain(s.decoder.iter_mut()).enumerate() {
            let is_out = last_conv.is_some_and(|j| i == self.encoder.len() + j);
            if let LayerSpec::Conv { out, .. } | LayerSpec::ConvTranspose { out, .. } = l {
                if !(is_out && *out == image_c) {
                    *out *= factor;
                }
            }
        }
        s
    }

    pub(crate) fn to_toml(&self) -> String {
        toml::to_string(self).expect("a spec serialises")
    }
}
