//! Convolutional autoencoders (CAEs) defined as a list of layers, in TOML or
//! by a preset name, on one flat parameter vector, trained with Adam.
//!
//! A spec has an `input` shape `[c, h, w]`, an `encoder` and a `decoder`, each
//! a list of layers (`conv`, `conv_transpose`, `maxpool`, `unpool`,
//! `upsample`, `relu`, `sigmoid`, `tanh`, `identity`). The encoder's output is
//! the code (the features a classifier uses); the decoder must map it back to
//! the input shape. An `unpool` layer uses the indices of the encoder's
//! max-pooling in mirror order (the last pool for the first unpool).
//!
//! Loss per image: squared ½·Σ(x − z)², or cross-entropy computed from the
//! logits of a final sigmoid (the stable form of `layers::loss`). The batch
//! gradient is the mean over its images, plus λ·W for every weight when
//! weight decay is on (biases free). Parameters follow PyTorch's default
//! initialisation: U(−1/√fan_in, 1/√fan_in) for weights and biases, with
//! fan_in = c_in·k·k for a conv and c_out·k·k for a transposed conv.
//!
//! Data parallelism: a batch is cut into one contiguous chunk per worker; each
//! worker runs forward and backward on its chunk with its own workspace and
//! gradient, and the gradients are summed. Corruption is drawn for the whole
//! batch first, so the result does not depend on the number of workers
//! beyond summation order.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::safetensors::{self as st, NamedTensor};
use crate::layers::conv::{
    conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward, conv_transpose_geom,
};
use crate::layers::loss::{squared_backward, squared_forward, xent_backward, xent_forward};
use crate::layers::pool::{
    max_unpool2d_backward, max_unpool2d_forward, maxpool2d_backward, maxpool2d_forward, upsample_backward,
    upsample_forward,
};
use crate::layers::Corruption;
use crate::layers::{Activation, Loss};
use crate::models::classifier::{error_percent, ClassifierConfig, FeatureClassifier};
use crate::optim::Adam;
use crate::tensor::gemm::Par;
use crate::tensor::im2col::ConvGeom;
use crate::tensor::rng::{seeded, shuffle, Rng};
use crate::tensor::Real;
use crate::train::{
    fit_loop, EarlyStopping, EpochMetrics, Finished, Fit, FitReport, Minibatches, Objective, Observer,
    Optimizer, Shuffle, TrainConfig,
};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

fn one() -> usize {
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

    fn to_toml(&self) -> String {
        toml::to_string(self).expect("a spec serialises")
    }
}

#[derive(Debug, Clone)]
enum Op {
    Conv { g: ConvGeom, c_out: usize },
    ConvT { g: ConvGeom, c_in: usize },
    Pool { s: usize, slot: usize },
    Unpool { slot: usize },
    Upsample { s: usize },
    Act(Activation),
}

#[derive(Debug, Clone)]
struct Node {
    op: Op,
    /// `[c, h, w]` in and out.
    inp: [usize; 3],
    out: [usize; 3],
    /// Where this layer's weight and bias live in the flat vector.
    w: Range<usize>,
    b: Range<usize>,
    /// The weight's shape in PyTorch's layout, for model files.
    w_shape: Vec<usize>,
}

fn len3(s: [usize; 3]) -> usize {
    s[0] * s[1] * s[2]
}

/// A spec resolved into layers with shapes and parameter offsets.
#[derive(Debug, Clone)]
pub struct Network {
    pub spec: CaeSpec,
    nodes: Vec<Node>,
    n_enc: usize,
    n_pools: usize,
    n_params: usize,
}

impl Network {
    /// Resolves `spec`, checking every layer fits its input and the decoder
    /// returns the input shape.
    pub fn new(spec: &CaeSpec) -> Result<Network> {
        let [c, h, w] = spec.input;
        if c == 0 || h == 0 || w == 0 {
            return Err(Error::config("arch.input", "every dimension must be at least 1"));
        }
        if spec.encoder.is_empty() || spec.decoder.is_empty() {
            return Err(Error::config(
                "arch",
                "needs at least one encoder and one decoder layer",
            ));
        }
        let mut nodes = Vec::new();
        let mut shape = spec.input;
        let mut pools: Vec<([usize; 3], [usize; 3])> = Vec::new();
        let mut unpools = 0usize;
        let mut off = 0usize;
        let layers = spec
            .encoder
            .iter()
            .map(|l| ("encoder", l))
            .chain(spec.decoder.iter().map(|l| ("decoder", l)));
        for (i, (part, l)) in layers.enumerate() {
            let j = if part == "encoder" {
                i
            } else {
                i - spec.encoder.len()
            };
            let field = format!("arch.{part}[{j}]");
            let bad = |why: String| Error::config(&field, format!("{why} (input {shape:?})"));
            let [c, h, w] = shape;
            let (op, out, wlen, blen, w_shape) = match *l {
                LayerSpec::Conv {
                    out,
                    kernel,
                    stride,
                    pad,
                } => {
                    let g = ConvGeom::new(c, h, w, kernel, stride, pad)
                        .filter(|_| out > 0)
                        .ok_or_else(|| {
                            bad(format!(
                                "conv {kernel}×{kernel}, stride {stride}, pad {pad} does not fit"
                            ))
                        })?;
                    let ws = vec![out, c, kernel, kernel];
                    (
                        Op::Conv { g, c_out: out },
                        [out, g.oh, g.ow],
                        out * c * kernel * kernel,
                        out,
                        ws,
                    )
                }
                LayerSpec::ConvTranspose {
                    out,
                    kernel,
                    stride,
                    pad,
                    output_padding,
                } => {
                    let g = conv_transpose_geom(out, h, w, kernel, stride, pad, output_padding)
                        .filter(|_| out > 0)
                        .ok_or_else(|| {
                            bad(format!(
                                "conv_transpose {kernel}×{kernel}, stride {stride}, pad {pad}, output_padding \
                                 {output_padding} does not fit (output_padding must be below stride)"
                            ))
                        })?;
                    let ws = vec![c, out, kernel, kernel];
                    (
                        Op::ConvT { g, c_in: c },
                        [out, g.h, g.w],
                        c * out * kernel * kernel,
                        out,
                        ws,
                    )
                }
                LayerSpec::Maxpool { size } => {
                    if size == 0 || h < size || w < size {
                        return Err(bad(format!("maxpool {size} does not fit")));
                    }
                    let o = [c, h / size, w / size];
                    pools.push((shape, o));
                    (
                        Op::Pool {
                            s: size,
                            slot: pools.len() - 1,
                        },
                        o,
                        0,
                        0,
                        vec![],
                    )
                }
                LayerSpec::Unpool { size } => {
                    if part == "encoder" {
                        return Err(bad("unpool belongs in the decoder".into()));
                    }
                    let slot = pools
                        .len()
                        .checked_sub(unpools + 1)
                        .ok_or_else(|| bad("no encoder maxpool left to mirror".into()))?;
                    unpools += 1;
                    let (pin, pout) = pools[slot];
                    if pout != shape || pin[1] != pout[1] * size || pin[2] != pout[2] * size {
                        return Err(bad(format!(
                            "unpool {size} must mirror the encoder's maxpool from {pin:?} to {pout:?}"
                        )));
                    }
                    (Op::Unpool { slot }, pin, 0, 0, vec![])
                }
                LayerSpec::Upsample { scale } => {
                    if scale == 0 {
                        return Err(bad("upsample scale must be at least 1".into()));
                    }
                    (Op::Upsample { s: scale }, [c, h * scale, w * scale], 0, 0, vec![])
                }
                LayerSpec::Relu => (Op::Act(Activation::Relu), shape, 0, 0, vec![]),
                LayerSpec::Sigmoid => (Op::Act(Activation::Sigmoid), shape, 0, 0, vec![]),
                LayerSpec::Tanh => (Op::Act(Activation::Tanh), shape, 0, 0, vec![]),
                LayerSpec::Identity => (Op::Act(Activation::Identity), shape, 0, 0, vec![]),
            };
            nodes.push(Node {
                op,
                inp: shape,
                out,
                w: off..off + wlen,
                b: off + wlen..off + wlen + blen,
                w_shape,
            });
            off += wlen + blen;
            shape = out;
        }
        if shape != spec.input {
            return Err(Error::config(
                "arch.decoder",
                format!(
                    "ends with shape {shape:?} but must give back the input shape {:?}",
                    spec.input
                ),
            ));
        }
        Ok(Network {
            spec: spec.clone(),
            n_enc: spec.encoder.len(),
            n_pools: pools.len(),
            nodes,
            n_params: off,
        })
    }

    /// Parameters in the flat vector.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Elements of one input image.
    pub fn input_len(&self) -> usize {
        len3(self.spec.input)
    }

    /// The code's shape `[c, h, w]` (the encoder's output).
    pub fn code_shape(&self) -> [usize; 3] {
        self.nodes[self.n_enc - 1].out
    }

    /// Elements of one image's code.
    pub fn code_len(&self) -> usize {
        len3(self.code_shape())
    }

    fn ends_in_sigmoid(&self) -> bool {
        matches!(
            self.nodes.last().map(|n| &n.op),
            Some(Op::Act(Activation::Sigmoid))
        )
    }

    /// Forward FLOPs per image of the conv layers (2 per multiply-add).
    pub fn flops_per_image(&self) -> f64 {
        self.nodes
            .iter()
            .map(|n| match n.op {
                Op::Conv { g, c_out } => 2.0 * (c_out * g.col_rows() * g.col_cols()) as f64,
                Op::ConvT { g, c_in } => 2.0 * (c_in * g.col_rows() * g.col_cols()) as f64,
                _ => 0.0,
            })
            .sum()
    }

    /// Fresh parameters, PyTorch's default initialisation.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut rng = seeded(seed);
        let mut p = vec![0.0f32; self.n_params];
        for n in &self.nodes {
            let fan_in = match n.op {
                Op::Conv { g, .. } => g.col_rows(),
                Op::ConvT { g, .. } => g.col_rows(),
                _ => continue,
            };
            let bound = 1.0 / (fan_in as f32).sqrt();
            for v in &mut p[n.w.start..n.b.end] {
                *v = rng.random_range(-bound..bound);
            }
        }
        p
    }
}

/// Buffers for forward and backward on up to `cap` images; built once per
/// (network, chunk size), so a training step allocates nothing.
pub struct Workspace<T> {
    cap: usize,
    /// `[input | out of node 0 | out of node 1 | …]`, each `cap·len`.
    acts: Vec<T>,
    offs: Vec<usize>,
    /// Max-pool indices per pool.
    idx: Vec<Vec<u32>>,
    d0: Vec<T>,
    d1: Vec<T>,
    col: Vec<T>,
    /// The gradient of the chunk's summed loss.
    pub grad: Vec<T>,
    /// The chunk's summed loss.
    pub loss: f64,
}

impl<T: Real> Workspace<T> {
    pub fn new(net: &Network, cap: usize) -> Workspace<T> {
        let mut offs = vec![0usize];
        let mut total = cap * net.input_len();
        let mut widest = net.input_len();
        let mut col = 0;
        let mut idx = vec![Vec::new(); net.n_pools];
        for n in &net.nodes {
            offs.push(total);
            total += cap * len3(n.out);
            widest = widest.max(len3(n.out));
            match n.op {
                Op::Conv { g, .. } | Op::ConvT { g, .. } => col = col.max(g.col_rows() * g.col_cols()),
                Op::Pool { slot, .. } => idx[slot] = vec![0u32; cap * len3(n.out)],
                _ => {}
            }
        }
        Workspace {
            cap,
            acts: vec![T::ZERO; total],
            offs,
            idx,
            d0: vec![T::ZERO; cap * widest],
            d1: vec![T::ZERO; cap * widest],
            col: vec![T::ZERO; col],
            grad: vec![T::ZERO; net.n_params],
            loss: 0.0,
        }
    }

    /// The input slot for `b` images.
    fn input_mut(&mut self, len: usize, b: usize) -> &mut [T] {
        &mut self.acts[..b * len]
    }

    fn out(&self, net: &Network, i: usize, b: usize) -> &[T] {
        &self.acts[self.offs[i + 1]..self.offs[i + 1] + b * len3(net.nodes[i].out)]
    }
}

/// Runs nodes `0..upto` on the `b` images in the workspace's input slot.
fn forward<T: Real>(net: &Network, p: &[T], ws: &mut Workspace<T>, b: usize, upto: usize) {
    assert!(b <= ws.cap);
    for (i, n) in net.nodes[..upto].iter().enumerate() {
        let (head, tail) = ws.acts.split_at_mut(ws.offs[i + 1]);
        let x = &head[ws.offs[i]..ws.offs[i] + b * len3(n.inp)];
        let y = &mut tail[..b * len3(n.out)];
        let planes = b * n.inp[0];
        match n.op {
            Op::Conv { g, c_out } => {
                let col = &mut ws.col[..g.col_rows() * g.col_cols()];
                conv2d_forward(y, x, &p[n.w.clone()], &p[n.b.clone()], col, &g, c_out, b);
            }
            Op::ConvT { g, c_in } => {
                let col = &mut ws.col[..g.col_rows() * g.col_cols()];
                conv_transpose2d_forward(y, x, &p[n.w.clone()], &p[n.b.clone()], col, &g, c_in, b);
            }
            Op::Pool { s, slot } => {
                let idx = &mut ws.idx[slot][..y.len()];
                maxpool2d_forward(y, idx, x, planes, n.inp[1], n.inp[2], s);
            }
            Op::Unpool { slot, .. } => {
                max_unpool2d_forward(y, x, &ws.idx[slot][..x.len()], planes, n.out[1], n.out[2]);
            }
            Op::Upsample { s } => upsample_forward(y, x, planes, n.inp[1], n.inp[2], s),
            Op::Act(a) => {
                y.copy_from_slice(x);
                a.forward(y);
            }
        }
    }
}

/// The summed loss of the `b` reconstructions against `target`, and (when
/// `grad`) its gradient added into `ws.grad` (which the caller zeroes).
fn loss_backward<T: Real>(
    net: &Network,
    p: &[T],
    ws: &mut Workspace<T>,
    target: &[T],
    b: usize,
    loss: Loss,
    grad: bool,
) -> f64 {
    let last = net.nodes.len() - 1;
    let n_out = b * net.input_len();
    let z = &ws.acts[ws.offs[last + 1]..ws.offs[last + 1] + n_out];
    // With cross-entropy on a final sigmoid the gradient enters at its logits.
    let (l, start) = if loss == Loss::CrossEntropy {
        let a = &ws.acts[ws.offs[last]..ws.offs[last] + n_out];
        let l = xent_forward(a, target).f64();
        if grad {
            xent_backward(&mut ws.d0[..n_out], a, target);
        }
        (l, last)
    } else {
        let l = squared_forward(z, target).f64();
        if grad {
            squared_backward(&mut ws.d0[..n_out], z, target);
        }
        (l, last + 1)
    };
    if grad {
        backward_nodes(net, p, ws, b, start);
    }
    l
}

/// Back-propagates from the output of node `start − 1` (its gradient in
/// `ws.d0`) down to node 0, adding parameter gradients into `ws.grad`.
fn backward_nodes<T: Real>(net: &Network, p: &[T], ws: &mut Workspace<T>, b: usize, start: usize) {
    for i in (0..start).rev() {
        let n = &net.nodes[i];
        let (nin, nout) = (b * len3(n.inp), b * len3(n.out));
        let x = &ws.acts[ws.offs[i]..ws.offs[i] + nin];
        let dy = &ws.d0[..nout];
        let dx = (i > 0).then_some(&mut ws.d1[..nin]);
        let planes = b * n.inp[0];
        let (gw, gb) = ws.grad[n.w.start..n.b.end].split_at_mut(n.w.len());
        match n.op {
            Op::Conv { g, c_out } => {
                let col = &mut ws.col[..g.col_rows() * g.col_cols()];
                conv2d_backward(dx, gw, gb, dy, x, &p[n.w.clone()], col, &g, c_out, b);
            }
            Op::ConvT { g, c_in } => {
                let col = &mut ws.col[..g.col_rows() * g.col_cols()];
                conv_transpose2d_backward(dx, gw, gb, dy, x, &p[n.w.clone()], col, &g, c_in, b);
            }
            Op::Pool { slot, .. } => {
                if let Some(dx) = dx {
                    maxpool2d_backward(dx, dy, &ws.idx[slot][..nout], planes, n.inp[1], n.inp[2]);
                }
            }
            Op::Unpool { slot, .. } => {
                if let Some(dx) = dx {
                    max_unpool2d_backward(dx, dy, &ws.idx[slot][..nin], planes, n.out[1], n.out[2]);
                }
            }
            Op::Upsample { s } => {
                if let Some(dx) = dx {
                    upsample_backward(dx, dy, planes, n.inp[1], n.inp[2], s);
                }
            }
            Op::Act(a) => {
                if let Some(dx) = dx {
                    dx.copy_from_slice(dy);
                    a.backward(dx, &ws.acts[ws.offs[i + 1]..ws.offs[i + 1] + nout]);
                }
            }
        }
        std::mem::swap(&mut ws.d0, &mut ws.d1);
    }
}

/// How a CAE is trained: its loss and corruption, an eager stop, and the
/// loop (Adam by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaeTrainConfig {
    /// `squared` (½·Σ(x − z)² per image) or `xent` (needs a final sigmoid).
    pub loss: Loss,
    /// Input corruption for a denoising CAE (`none`, `mask:P`, `gauss:S`, …).
    pub noise: Corruption,
    /// Eager stop: end training once an epoch improves the validation loss
    /// by less than this fraction of the previous best; 0 disables.
    pub min_improvement: f64,
    /// The loop: `threads` workers split each batch (1 for ensemble
    /// members; 0 = all cores); `patience` counts epochs without a better
    /// validation loss.
    pub train: TrainConfig,
}

impl Default for CaeTrainConfig {
    fn default() -> Self {
        CaeTrainConfig {
            loss: Loss::Squared,
            noise: Corruption::None,
            min_improvement: 0.0,
            train: TrainConfig {
                epochs: 10,
                batch: 100,
                patience: 0,
                ..TrainConfig::adam(1e-3)
            },
        }
    }
}

impl CaeTrainConfig {
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        if self.train.optimizer != Optimizer::Adam {
            return Err(Error::config("train.optimizer", "a CAE trains with adam"));
        }
        if !(0.0..1.0).contains(&self.min_improvement) {
            return Err(Error::config("train.min_improvement", "must be in [0, 1)"));
        }
        self.noise.validate("train.noise")
    }
}

/// A convolutional autoencoder: a resolved network and its parameters.
#[derive(Debug, Clone)]
pub struct ConvAutoencoder {
    pub net: Network,
    /// The flat parameter vector, layer by layer (weight then bias).
    pub params: Vec<f32>,
    pub loss: Loss,
}

impl ConvAutoencoder {
    /// A freshly initialised CAE.
    pub fn new(spec: &CaeSpec, loss: Loss, seed: u64) -> Result<ConvAutoencoder> {
        let net = Network::new(spec)?;
        if loss == Loss::CrossEntropy && !net.ends_in_sigmoid() {
            return Err(Error::config(
                "loss",
                "cross-entropy needs a decoder that ends with a sigmoid layer",
            ));
        }
        let params = net.init_params(seed);
        Ok(ConvAutoencoder { net, params, loss })
    }

    fn check(&self, data: &Dataset) -> Result<()> {
        let want = self.net.input_len();
        if data.dim != want {
            return Err(Error::shape(
                "images (features per example)",
                format!("{want} ({:?})", self.net.spec.input),
                data.dim,
            ));
        }
        Ok(())
    }

    /// Runs `f` over `data` in chunks of `batch` images, one workspace per
    /// worker, and collects each chunk's result in order.
    fn map_chunks<R: Send>(
        &self,
        data: &Dataset,
        batch: usize,
        threads: usize,
        upto: usize,
        f: impl Fn(&mut Workspace<f32>, Range<usize>) -> R + Sync,
    ) -> Vec<R> {
        let starts: Vec<usize> = (0..data.n).step_by(batch.max(1)).collect();
        let run = |ws: &mut Workspace<f32>, s: usize| {
            let e = (s + batch).min(data.n);
            let d = data.dim;
            ws.input_mut(d, e - s).copy_from_slice(&data.x[s * d..e * d]);
            forward(&self.net, &self.params, ws, e - s, upto);
            f(ws, s..e)
        };
        if threads <= 1 {
            let mut ws = Workspace::new(&self.net, batch);
            return starts.iter().map(|&s| run(&mut ws, s)).collect();
        }
        use rayon::prelude::*;
        starts
            .par_iter()
            .map_init(|| Workspace::new(&self.net, batch), |ws, &s| run(ws, s))
            .collect()
    }

    /// The codes `[n, code_len]` of `data` (the encoder's output, flattened).
    pub fn transform(&self, data: &Dataset, threads: usize) -> Result<Vec<f32>> {
        self.check(data)?;
        let k = self.net.n_enc;
        let parts = self.map_chunks(data, 100, threads, k, |ws, r| {
            ws.out(&self.net, k - 1, r.len()).to_vec()
        });
        Ok(parts.concat())
    }

    /// The reconstructions `[n, dim]` of `data` (clean input).
    pub fn reconstruct(&self, data: &Dataset, threads: usize) -> Result<Vec<f32>> {
        self.check(data)?;
        let last = self.net.nodes.len();
        let parts = self.map_chunks(data, 100, threads, last, |ws, r| {
            ws.out(&self.net, last - 1, r.len()).to_vec()
        });
        Ok(parts.concat())
    }

    /// Mean loss per image on the clean `data`.
    pub fn score(&self, data: &Dataset, threads: usize) -> Result<f64> {
        self.check(data)?;
        if data.n == 0 {
            return Ok(0.0);
        }
        let last = self.net.nodes.len();
        let parts = self.map_chunks(data, 100, threads, last, |ws, r| {
            let target = &data.x[r.start * data.dim..r.end * data.dim];
            loss_backward(&self.net, &self.params, ws, target, r.len(), self.loss, false)
        });
        Ok(parts.iter().sum::<f64>() / data.n as f64)
    }

    /// Saves the parameters (PyTorch layouts, keys `layers.{i}.weight` and
    /// `.bias` over encoder then decoder layers) and the spec, atomically.
    pub fn save(&self, path: &Path, mut metadata: HashMap<String, String>) -> Result<()> {
        let names: Vec<(String, String)> = (0..self.net.nodes.len())
            .map(|i| (format!("layers.{i}.weight"), format!("layers.{i}.bias")))
            .collect();
        let mut tensors = Vec::new();
        for (n, (wn, bn)) in self.net.nodes.iter().zip(&names) {
            if n.w.is_empty() {
                continue;
            }
            tensors.push(NamedTensor {
                name: wn,
                shape: n.w_shape.clone(),
                data: &self.params[n.w.clone()],
            });
            tensors.push(NamedTensor {
                name: bn,
                shape: vec![n.b.len()],
                data: &self.params[n.b.clone()],
            });
        }
        metadata.insert("model".into(), "cae".into());
        metadata.insert("spec".into(), self.net.spec.to_toml());
        metadata.insert("loss".into(), self.loss.to_string());
        st::save(path, &tensors, metadata)
    }

    /// Loads a file written by [`ConvAutoencoder::save`].
    pub fn load(path: &Path) -> Result<ConvAutoencoder> {
        let mut f = st::load(path)?;
        if f.meta("model")? != "cae" {
            return Err(Error::format(
                path,
                "is not a convolutional autoencoder (metadata `model` is not `cae`)",
            ));
        }
        let spec: CaeSpec = toml::from_str(f.meta("spec")?)
            .map_err(|e| Error::format(path, format!("bad `spec` metadata: {e}")))?;
        let loss: Loss = f
            .meta("loss")?
            .parse()
            .map_err(|e: String| Error::format(path, format!("bad `loss` metadata: {e}")))?;
        let mut m = ConvAutoencoder::new(&spec, loss, 0).map_err(|e| Error::format(path, e.to_string()))?;
        for i in 0..m.net.nodes.len() {
            let n = m.net.nodes[i].clone();
            if n.w.is_empty() {
                continue;
            }
            let w = f.take(&format!("layers.{i}.weight"), &n.w_shape)?;
            let b = f.take(&format!("layers.{i}.bias"), &[n.b.len()])?;
            m.params[n.w].copy_from_slice(&w);
            m.params[n.b].copy_from_slice(&b);
        }
        Ok(m)
    }

    /// Trains on `train` with Adam, validating on `val` (when not empty) after
    /// each epoch; `checkpoint` sees the model after every epoch (to save
    /// it). With patience or an eager threshold, the best epoch's weights are
    /// kept.
    pub fn fit(
        &mut self,
        train: &Dataset,
        val: &Dataset,
        cfg: &CaeTrainConfig,
        observer: &mut dyn Observer,
        checkpoint: &mut dyn FnMut(&ConvAutoencoder, &EpochMetrics) -> Result<()>,
    ) -> Result<FitReport> {
        cfg.validate()?;
        self.check(train)?;
        if val.n > 0 {
            self.check(val)?;
        }
        let mut run = CaeFit {
            trainer: Trainer::new(self.clone(), train, cfg)?,
            val,
            threads: cfg.train.resolved_threads(),
            min_improvement: cfg.min_improvement,
            checkpoint,
        };
        observer.on_start(cfg.train.epochs, run.trainer.batches_per_epoch());
        let report = fit_loop(
            &mut run,
            cfg.train.epochs,
            cfg.train.patience,
            observer,
            "train.lr",
        )?;
        *self = run.trainer.model;
        Ok(report)
    }
}

/// A CAE lent to the shared epoch loop.
struct CaeFit<'d, 'c> {
    trainer: Trainer<'d>,
    val: &'d Dataset,
    threads: usize,
    min_improvement: f64,
    checkpoint: &'c mut dyn FnMut(&ConvAutoencoder, &EpochMetrics) -> Result<()>,
}

impl Fit for CaeFit<'_, '_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        let before = self.trainer.updates;
        let loss = self.trainer.run_epoch(|done, total| obs.on_progress(done, total));
        Ok((loss, self.trainer.updates - before))
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        if self.val.n == 0 {
            return Ok(None);
        }
        Ok(Some(self.trainer.model.score(self.val, self.threads)?))
    }

    fn params(&self) -> &[f32] {
        &self.trainer.model.params
    }

    fn set_params(&mut self, p: &[f32]) {
        self.trainer.model.params.copy_from_slice(p);
    }

    /// Training time only, not validation.
    fn seconds(&self, _wall: f64) -> f64 {
        self.trainer.seconds
    }

    /// Saves the checkpoint, then stops eagerly once an epoch improved the
    /// validation loss by less than `min_improvement` of the best before it.
    fn after_epoch(&mut self, m: &EpochMetrics, best_before: f64) -> Result<bool> {
        (self.checkpoint)(&self.trainer.model, m)?;
        Ok(match m.val_loss {
            Some(v) => {
                self.min_improvement > 0.0
                    && best_before.is_finite()
                    && (best_before - v) < self.min_improvement * best_before
            }
            None => false,
        })
    }
}

/// What [`ConvAutoencoder::finetune_encoder`] did.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneReport {
    /// Validation error (%) after each epoch.
    pub val_errors: Vec<f64>,
    /// The epoch whose weights were kept (0: none beat the starting point).
    pub best_epoch: usize,
    pub valid_error: f64,
    pub train_seconds: f64,
}

impl ConvAutoencoder {
    /// Supervised fine-tuning: the encoder and `clf` (already fitted on the
    /// codes, which fixes its standardisation) train together on the labels
    /// with Adam, softmax cross-entropy back-propagated through the
    /// classifier into the encoder (the decoder is left as it is). Stops
    /// after `patience` epochs without a lower validation error and keeps the
    /// best epoch's encoder and classifier.
    pub fn finetune_encoder(
        &mut self,
        clf: &mut FeatureClassifier,
        train: &Dataset,
        val: &Dataset,
        cfg: &ClassifierConfig,
        obs: &mut dyn Observer,
    ) -> Result<FinetuneReport> {
        cfg.validate()?;
        self.check(train)?;
        self.check(val)?;
        let (Some(ytr), Some(yva)) = (&train.labels, &val.labels) else {
            return Err(Error::config(
                "data",
                "fine-tuning needs labelled training and validation images",
            ));
        };
        let k = self.net.n_enc;
        let cl = self.net.code_len();
        if clf.inv_std.len() != cl {
            return Err(Error::shape("classifier inputs", cl, clf.inv_std.len()));
        }
        let t0 = Instant::now();
        let batch = cfg.train.batch.min(train.n).max(1);
        let mut ws = Workspace::<f32>::new(&self.net, batch);
        let mut rng = seeded(cfg.train.seed ^ 0xf1e7_0e5e);
        let mut order: Vec<usize> = (0..train.n).collect();
        let (mut adam_e, mut adam_c) = (
            Adam::new(cfg.train.adam_config()),
            Adam::new(cfg.train.adam_config()),
        );
        let mut gc = vec![0.0f32; clf.params.len()];
        let mut dxs = vec![0.0f32; batch * cl];
        let (mut scratch, mut xs) = (crate::models::classifier::Scratch::default(), Vec::new());
        let mut labels = Vec::with_capacity(batch);
        let val_error = |m: &ConvAutoencoder, c: &FeatureClassifier| -> Result<f64> {
            let codes = m.transform(val, 1)?;
            Ok(error_percent(&c.predict(&codes), yva))
        };
        // The starting point is the one to beat.
        let mut stop = EarlyStopping::new(cfg.train.patience);
        stop.best = val_error(self, clf)?;
        let mut best = (self.params.clone(), clf.params.clone());
        let mut val_errors = Vec::new();
        let mut updates = 0u64;
        for epoch in 1..=cfg.train.epochs {
            shuffle(&mut order, &mut rng);
            let mut loss_sum = 0.0f64;
            for chunk in order.chunks(batch) {
                let b = chunk.len();
                let d = train.dim;
                labels.clear();
                {
                    let input = ws.input_mut(d, b);
                    for (j, &i) in chunk.iter().enumerate() {
                        input[j * d..(j + 1) * d].copy_from_slice(train.row(i));
                        labels.push(ytr[i]);
                    }
                }
                forward(&self.net, &self.params, &mut ws, b, k);
                clf.standardise_into(ws.out(&self.net, k - 1, b), &mut xs);
                gc.fill(0.0);
                loss_sum += clf.batch_grad(&xs, &labels, &mut gc, &mut dxs[..b * cl], &mut scratch) as f64;
                // d(code) = d(standardised code) / σ
                for (row_d, row_s) in ws.d0[..b * cl].chunks_exact_mut(cl).zip(dxs.chunks_exact(cl)) {
                    for ((o, &v), &s) in row_d.iter_mut().zip(row_s).zip(&clf.inv_std) {
                        *o = v * s;
                    }
                }
                ws.grad.fill(0.0);
                backward_nodes(&self.net, &self.params, &mut ws, b, k);
                let inv = 1.0 / b as f32;
                let lambda = cfg.train.weight_decay;
                ws.grad.iter_mut().for_each(|g| *g *= inv);
                gc.iter_mut().for_each(|g| *g *= inv);
                for n in &self.net.nodes[..k] {
                    for (g, &w) in ws.grad[n.w.clone()].iter_mut().zip(&self.params[n.w.clone()]) {
                        *g += lambda * w;
                    }
                }
                for r in clf.weight_ranges() {
                    for (g, &w) in gc[r.clone()].iter_mut().zip(&clf.params[r]) {
                        *g += lambda * w;
                    }
                }
                // The decoder's gradient is zero; only the encoder moves.
                // (Layers are laid out in order, so the encoder's parameters
                // are the prefix up to its last layer's end.)
                let enc_end = self.net.nodes[k - 1].b.end;
                adam_e.step(&mut self.params[..enc_end], &ws.grad[..enc_end]);
                adam_c.step(&mut clf.params, &gc);
                updates += 1;
            }
            let err = val_error(self, clf)?;
            val_errors.push(err);
            obs.on_epoch(&EpochMetrics {
                epoch,
                train_loss: loss_sum / train.n as f64,
                val_loss: Some(err),
                seconds: t0.elapsed().as_secs_f64(),
                updates,
            });
            let (improved, halt) = stop.update(epoch, err);
            if improved {
                best = (self.params.clone(), clf.params.clone());
            }
            if halt {
                break;
            }
        }
        obs.on_end();
        (self.params, clf.params) = best;
        clf.valid_error = stop.best;
        Ok(FinetuneReport {
            val_errors,
            best_epoch: stop.best_epoch.unwrap_or(0),
            valid_error: stop.best,
            train_seconds: t0.elapsed().as_secs_f64(),
        })
    }
}

/// Resumable Adam training of one CAE: epochs, or any number of batches
/// (for comparisons at equal wall-clock time). `seconds` counts training time
/// only, not evaluation between calls.
pub struct Trainer<'d> {
    pub model: ConvAutoencoder,
    pub adam: Adam,
    pub cfg: CaeTrainConfig,
    data: &'d Dataset,
    rng: Rng,
    batches: Minibatches<CaeBatch, Workspace<f32>>,
    /// Weight updates so far.
    pub updates: u64,
    /// Training seconds so far.
    pub seconds: f64,
    /// Whole epochs completed.
    pub epochs: usize,
}

impl<'d> Trainer<'d> {
    pub fn new(model: ConvAutoencoder, data: &'d Dataset, cfg: &CaeTrainConfig) -> Result<Trainer<'d>> {
        cfg.validate()?;
        model.check(data)?;
        if data.n == 0 {
            return Err(Error::config("data", "no training images"));
        }
        let batch = cfg.train.batch.min(data.n);
        let workers = cfg.train.resolved_threads().min(batch);
        let o = CaeObjective::new(&model.net, model.loss, data, cfg);
        let batches = Minibatches::new(&o, batch, workers, Par::Seq, Shuffle::Carried);
        Ok(Trainer {
            adam: Adam::new(cfg.train.adam_config()),
            cfg: CaeTrainConfig {
                train: TrainConfig {
                    batch,
                    ..cfg.train.clone()
                },
                ..cfg.clone()
            },
            batches,
            model,
            data,
            rng: seeded(cfg.train.seed ^ 0xcae0_5eed),
            updates: 0,
            seconds: 0.0,
            epochs: 0,
        })
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.batches.batches_per_epoch()
    }

    /// One Adam step on the next batch; returns the epoch's mean training
    /// loss when the step finished an epoch.
    pub fn step(&mut self) -> Option<f64> {
        let o = CaeObjective::new(&self.model.net, self.model.loss, self.data, &self.cfg);
        let done = self
            .batches
            .step(&o, &mut self.model.params, &mut self.adam, &mut self.rng);
        self.sync();
        done
    }

    /// Runs to the end of the current epoch; returns its mean training loss.
    pub fn run_epoch(&mut self, mut progress: impl FnMut(usize, usize)) -> f64 {
        let total = self.batches_per_epoch();
        let every = (total / 100).max(1);
        let mut k = 0;
        loop {
            if let Some(l) = self.step() {
                progress(total, total);
                return l;
            }
            k += 1;
            if k % every == 0 {
                progress(k, total);
            }
        }
    }

    /// Trains until `seconds` of training time have been spent in all.
    pub fn run_until(&mut self, seconds: f64) {
        while self.seconds < seconds {
            self.step();
        }
    }

    fn sync(&mut self) {
        (self.updates, self.seconds, self.epochs) =
            (self.batches.updates, self.batches.seconds, self.batches.epochs);
    }
}

/// A CAE's training objective: the loss of reconstructing each clean image
/// from its corrupted copy, mean over the batch, plus ½·λ·‖W‖² on the
/// weights.
pub struct CaeObjective<'a> {
    net: &'a Network,
    loss: Loss,
    data: &'a Dataset,
    noise: Corruption,
    weight_decay: f32,
}

impl<'a> CaeObjective<'a> {
    pub fn new(net: &'a Network, loss: Loss, data: &'a Dataset, cfg: &CaeTrainConfig) -> CaeObjective<'a> {
        CaeObjective {
            net,
            loss,
            data,
            noise: cfg.noise,
            weight_decay: cfg.train.weight_decay,
        }
    }
}

/// A loaded batch of images: clean and corrupted, `[batch, C·H·W]`.
pub struct CaeBatch {
    clean: Vec<f32>,
    noisy: Vec<f32>,
}

impl Objective for CaeObjective<'_> {
    type Batch = CaeBatch;
    type Workspace = Workspace<f32>;

    fn n_params(&self) -> usize {
        self.net.n_params()
    }

    fn n_examples(&self) -> usize {
        self.data.n
    }

    fn new_batch(&self, cap: usize) -> CaeBatch {
        CaeBatch {
            clean: Vec::with_capacity(cap * self.data.dim),
            noisy: Vec::with_capacity(cap * self.data.dim),
        }
    }

    fn new_workspace(&self, rows: usize) -> Workspace<f32> {
        Workspace::new(self.net, rows)
    }

    /// Each image is corrupted on its own, in order.
    fn load(&self, idx: &[usize], b: &mut CaeBatch, rng: &mut Rng) {
        let d = self.data.dim;
        b.clean.clear();
        for &i in idx {
            b.clean.extend_from_slice(self.data.row(i));
        }
        b.noisy.resize(b.clean.len(), 0.0);
        for (o, c) in b.noisy.chunks_exact_mut(d).zip(b.clean.chunks_exact(d)) {
            self.noise.apply(o, c, rng);
        }
    }

    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &CaeBatch,
        rows: Range<usize>,
        ws: &mut Workspace<f32>,
        _par: Par,
    ) -> f64 {
        let d = self.data.dim;
        let n = rows.len();
        ws.input_mut(d, n)
            .copy_from_slice(&b.noisy[rows.start * d..rows.end * d]);
        forward(self.net, p, ws, n, self.net.nodes.len());
        let target = &b.clean[rows.start * d..rows.end * d];
        match grad {
            // The backward pass adds into the workspace's own gradient; the
            // sum is then added into the caller's.
            Some(g) => {
                ws.grad.fill(0.0);
                let l = loss_backward(self.net, p, ws, target, n, self.loss, true);
                g.iter_mut().zip(&ws.grad).for_each(|(a, &v)| *a += v);
                l
            }
            None => loss_backward(self.net, p, ws, target, n, self.loss, false),
        }
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let inv = 1.0 / n as f32;
        grad.iter_mut().for_each(|g| *g *= inv);
        let mut penalty = 0.0f64;
        if self.weight_decay > 0.0 {
            let lambda = self.weight_decay;
            for node in &self.net.nodes {
                for (g, &w) in grad[node.w.clone()].iter_mut().zip(&p[node.w.clone()]) {
                    *g += lambda * w;
                    penalty += 0.5 * (lambda * w * w) as f64;
                }
            }
        }
        Finished {
            loss: loss_sum,
            objective: loss_sum / n as f64 + penalty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::max_rel_error;

    /// The batch loss in f64 through the same forward pass.
    fn loss_f64(net: &Network, p: &[f64], x: &[f64], b: usize, loss: Loss) -> f64 {
        let mut ws = Workspace::<f64>::new(net, b);
        ws.input_mut(net.input_len(), b).copy_from_slice(x);
        forward(net, p, &mut ws, b, net.nodes.len());
        loss_backward(net, p, &mut ws, x, b, loss, false)
    }

    fn tiny_specs() -> Vec<CaeSpec> {
        use LayerSpec::*;
        let enc = vec![
            Conv {
                out: 2,
                kernel: 3,
                stride: 1,
                pad: 1,
            },
            Tanh,
            Maxpool { size: 2 },
        ];
        let out = |c| Conv {
            out: c,
            kernel: 3,
            stride: 1,
            pad: 1,
        };
        vec![
            CaeSpec {
                input: [1, 6, 6],
                encoder: enc.clone(),
                decoder: vec![
                    ConvTranspose {
                        out: 1,
                        kernel: 3,
                        stride: 2,
                        pad: 1,
                        output_padding: 1,
                    },
                    Sigmoid,
                ],
            },
            CaeSpec {
                input: [1, 6, 6],
                encoder: enc.clone(),
                decoder: vec![Unpool { size: 2 }, out(1), Sigmoid],
            },
            CaeSpec {
                input: [2, 4, 4],
                encoder: enc,
                decoder: vec![Upsample { scale: 2 }, out(2), Sigmoid],
            },
        ]
    }

    #[test]
    fn model_gradient_matches_finite_differences() {
        // Over the flat parameter vector, in f64, for each decoder kind and
        // both losses (the tanh encoder keeps the check away from ReLU's kink).
        for (si, spec) in tiny_specs().iter().enumerate() {
            for loss in [Loss::Squared, Loss::CrossEntropy] {
                let m = ConvAutoencoder::new(spec, loss, 3).unwrap();
                let b = 3;
                let n = m.net.input_len();
                let x: Vec<f64> = (0..b * n).map(|i| ((i * 7 % 11) as f64) / 10.0).collect();
                let p: Vec<f64> = m.params.iter().map(|&v| v as f64).collect();
                let mut ws = Workspace::<f64>::new(&m.net, b);
                ws.input_mut(n, b).copy_from_slice(&x);
                forward(&m.net, &p, &mut ws, b, m.net.nodes.len());
                loss_backward(&m.net, &p, &mut ws, &x, b, loss, true);
                let err = max_rel_error(|q| loss_f64(&m.net, q, &x, b, loss), &p, &ws.grad);
                assert!(err < 1e-6, "spec {si} {loss}: relative error {err}");
            }
        }
    }

    #[test]
    fn presets_resolve_with_the_papers_shapes() {
        let m = Network::new(&CaeSpec::preset("cae-mnist").unwrap()).unwrap();
        assert_eq!(m.code_shape(), [32, 7, 7]);
        // 16·9+16 + 32·16·9+32 + 32·16·9+16 + 16·9+1
        assert_eq!(m.n_params(), 160 + 4640 + 4624 + 145);
        for p in PRESETS {
            Network::new(&CaeSpec::preset(p).unwrap()).unwrap();
        }
        assert_eq!(
            Network::new(&CaeSpec::preset("cae-cifar").unwrap())
                .unwrap()
                .code_shape(),
            [64, 8, 8]
        );
        let wide = Network::new(&CaeSpec::preset("cae-mnist").unwrap().widen(2)).unwrap();
        assert_eq!(wide.code_shape(), [64, 7, 7]);
    }

    #[test]
    fn bad_specs_are_refused_with_the_layer_named() {
        let mut s = CaeSpec::preset("cae-mnist").unwrap();
        s.decoder.pop();
        s.decoder.pop();
        let e = Network::new(&s).unwrap_err().to_string();
        assert!(e.contains("arch.decoder") && e.contains("[16, 14, 14]"), "{e}");
        let e = ConvAutoencoder::new(&s, Loss::CrossEntropy, 1);
        assert!(e.is_err());
        let text = r#"
            input = [1, 8, 8]
            [[encoder]]
            type = "conv"
            out = 4
            kernel = 9
            [[decoder]]
            type = "upsample"
            scale = 2
        "#;
        let spec: CaeSpec = toml::from_str(text).unwrap();
        let e = Network::new(&spec).unwrap_err().to_string();
        assert!(e.contains("arch.encoder[0]") && e.contains("does not fit"), "{e}");
        assert!(toml::from_str::<CaeSpec>("input = [1, 8, 8]\nencoder = [{ type = \"conv\", out = 1, kernel = 3, strid = 2 }]\ndecoder = []").is_err());
    }

    #[test]
    fn training_lowers_the_loss_and_threads_agree() {
        let data = crate::data::builtin::builtin_mnist()
            .unwrap()
            .select(&(0..300).collect::<Vec<_>>());
        let spec = CaeSpec::preset("cae-mnist").unwrap();
        let cfg = CaeTrainConfig {
            train: TrainConfig {
                epochs: 2,
                batch: 50,
                lr: 3e-3,
                ..CaeTrainConfig::default().train
            },
            ..CaeTrainConfig::default()
        };
        let m0 = ConvAutoencoder::new(&spec, Loss::Squared, 1).unwrap();
        let before = m0.score(&data, 1).unwrap();
        let mut runs = Vec::new();
        for threads in [1, 2] {
            let mut m = m0.clone();
            let mut cfg = cfg.clone();
            cfg.train.threads = threads;
            let empty = data.select(&[]);
            let r = m
                .fit(&data, &empty, &cfg, &mut crate::train::Silent, &mut |_, _| Ok(()))
                .unwrap();
            assert_eq!(r.updates, 12);
            runs.push(m);
        }
        let after = runs[0].score(&data, 1).unwrap();
        assert!(after < 0.7 * before, "loss {before} → {after}");
        let diff = runs[0]
            .params
            .iter()
            .zip(&runs[1].params)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "1 and 2 workers differ by {diff}");
        let codes = runs[0].transform(&data, 2).unwrap();
        assert_eq!(codes.len(), 300 * 32 * 49);
    }

    #[test]
    fn finetuning_moves_only_the_encoder_and_lowers_the_validation_error() {
        let all = crate::data::builtin::builtin_mnist().unwrap();
        let train = all.select(&(0..500).collect::<Vec<_>>());
        let val = all.select(&(500..700).collect::<Vec<_>>());
        let mut m = ConvAutoencoder::new(&CaeSpec::preset("cae-mnist").unwrap(), Loss::Squared, 2).unwrap();
        let mut cls = ClassifierConfig::default();
        cls.train.epochs = 3;
        let codes = |m: &ConvAutoencoder, d: &Dataset| m.transform(d, 1).unwrap();
        let (ytr, yva) = (train.labels.clone().unwrap(), val.labels.clone().unwrap());
        let cl = m.net.code_len();
        let mut clf =
            FeatureClassifier::fit(&codes(&m, &train), &ytr, &codes(&m, &val), &yva, cl, 10, &cls).unwrap();
        let before = error_percent(&clf.predict(&codes(&m, &val)), &yva);
        let p0 = m.params.clone();
        let r = m
            .finetune_encoder(&mut clf, &train, &val, &cls, &mut crate::train::Silent)
            .unwrap();
        let after = error_percent(&clf.predict(&codes(&m, &val)), &yva);
        assert_eq!(after, r.valid_error);
        assert!(after < before, "validation error {before}% → {after}%");
        let enc_end = m.net.nodes[m.net.n_enc - 1].b.end;
        assert_ne!(m.params[..enc_end], p0[..enc_end]);
        assert_eq!(m.params[enc_end..], p0[enc_end..], "the decoder is left alone");
    }

    #[test]
    fn save_and_load_round_trip() {
        let m = ConvAutoencoder::new(
            &CaeSpec::preset("cae-mnist-unpool").unwrap(),
            Loss::CrossEntropy,
            5,
        )
        .unwrap();
        let dir = tempfile::Builder::new().prefix("aekit-cae-").tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        m.save(&path, HashMap::new()).unwrap();
        let back = ConvAutoencoder::load(&path).unwrap();
        assert_eq!(back.params, m.params);
        assert_eq!(back.net.spec, m.net.spec);
        assert_eq!(back.loss, Loss::CrossEntropy);
    }
}
