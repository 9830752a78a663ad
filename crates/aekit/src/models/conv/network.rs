//! A spec resolved into layers with shapes and parameter offsets, its
//! workspace, and the forward and backward passes over a chunk of images.

use super::spec::*;
use crate::error::{Error, Result};
use crate::layers::conv::{
    conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward, conv_transpose_geom,
};
use crate::layers::loss::{squared_backward, squared_forward, xent};
use crate::layers::pool::{
    max_unpool2d_backward, max_unpool2d_forward, maxpool2d_backward, maxpool2d_forward, upsample_backward,
    upsample_forward,
};
use crate::layers::{Activation, Loss};
use crate::tensor::im2col::ConvGeom;
use crate::tensor::rng::seeded;
use crate::tensor::Real;
use rand::Rng as _;
use std::ops::Range;

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Conv { g: ConvGeom, c_out: usize },
    ConvT { g: ConvGeom, c_in: usize },
    Pool { s: usize, slot: usize },
    Unpool { slot: usize },
    Upsample { s: usize },
    Act(Activation),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) op: Op,
    /// `[c, h, w]` in and out.
    pub(crate) inp: [usize; 3],
    pub(crate) out: [usize; 3],
    /// Where this layer's weight and bias live in the flat vector.
    pub(crate) w: Range<usize>,
    pub(crate) b: Range<usize>,
    /// The weight's shape in PyTorch's layout, for model files.
    pub(crate) w_shape: Vec<usize>,
}

pub(crate) fn len3(s: [usize; 3]) -> usize {
    s[0] * s[1] * s[2]
}

/// A spec resolved into layers with shapes and parameter offsets.
#[derive(Debug, Clone)]
pub struct Network {
    pub spec: CaeSpec,
    pub(crate) nodes: Vec<Node>,
    pub(crate) n_enc: usize,
    pub(crate) n_pools: usize,
    pub(crate) n_params: usize,
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
        let net = Network {
            spec: spec.clone(),
            n_enc: spec.encoder.len(),
            n_pools: pools.len(),
            nodes,
            n_params: off,
        };
        // Parameters, gradient and Adam's two moments, and one image's
        // activations, before any of them is allocated.
        crate::tensor::memory::check_f32s("arch", 4 * off as u128 + net.floats_per_image(1))?;
        Ok(net)
    }

    /// Floats a workspace for `cap` images holds: activations of every
    /// layer, two gradient buffers, and the widest im2col matrix.
    pub fn floats_per_image(&self, cap: usize) -> u128 {
        let cap = cap as u128;
        let (mut acts, mut widest, mut col) = (
            cap * len3(self.spec.input) as u128,
            len3(self.spec.input) as u128,
            0u128,
        );
        for n in &self.nodes {
            acts += cap * len3(n.out) as u128;
            widest = widest.max(len3(n.out) as u128);
            if let Op::Conv { g, .. } | Op::ConvT { g, .. } = n.op {
                col = col.max((g.col_rows() * g.col_cols()) as u128);
            }
        }
        acts + 2 * cap * widest + col
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

    pub(crate) fn ends_in_sigmoid(&self) -> bool {
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

/// Whether node `i` is an activation that overwrites its input with its
/// output: its backward pass reads only its output, and no other node's
/// backward pass reads its own output. Never node 0 (the input slot stays
/// the input) nor the last node, whose input the cross-entropy loss reads as
/// the logits of a final sigmoid.
fn in_place(net: &Network, i: usize) -> bool {
    matches!(net.nodes[i].op, Op::Act(_)) && i > 0 && i + 1 < net.nodes.len()
}

/// Buffers for forward and backward on up to `cap` images; built once per
/// (network, chunk size), so a training step allocates nothing.
pub struct Workspace<T> {
    pub(crate) cap: usize,
    /// `[input | out of node 0 | out of node 1 | …]`, each `cap·len`; an
    /// activation that runs in place (see `in_place`) shares its input's slot.
    pub(crate) acts: Vec<T>,
    pub(crate) offs: Vec<usize>,
    /// Max-pool indices per pool.
    pub(crate) idx: Vec<Vec<u32>>,
    pub(crate) d0: Vec<T>,
    pub(crate) d1: Vec<T>,
    pub(crate) col: Vec<T>,
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
        for (i, n) in net.nodes.iter().enumerate() {
            offs.push(total);
            if in_place(net, i) {
                // Written over its input, which no backward pass reads.
                *offs.last_mut().expect("pushed above") = offs[i];
            } else {
                total += cap * len3(n.out);
            }
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
    pub(crate) fn input_mut(&mut self, len: usize, b: usize) -> &mut [T] {
        &mut self.acts[..b * len]
    }

    pub(crate) fn out(&self, net: &Network, i: usize, b: usize) -> &[T] {
        &self.acts[self.offs[i + 1]..self.offs[i + 1] + b * len3(net.nodes[i].out)]
    }
}

/// Runs nodes `0..upto` on the `b` images in the workspace's input slot.
pub(crate) fn forward<T: Real>(net: &Network, p: &[T], ws: &mut Workspace<T>, b: usize, upto: usize) {
    assert!(b <= ws.cap);
    for (i, n) in net.nodes[..upto].iter().enumerate() {
        match n.op {
            Op::Act(a) if in_place(net, i) => {
                a.forward(&mut ws.acts[ws.offs[i]..ws.offs[i] + b * len3(n.out)]);
                continue;
            }
            _ => {}
        }
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
pub(crate) fn loss_backward<T: Real>(
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
        let l = xent(grad.then_some(&mut ws.d0[..n_out]), a, target).f64();
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
pub(crate) fn backward_nodes<T: Real>(net: &Network, p: &[T], ws: &mut Workspace<T>, b: usize, start: usize) {
    for i in (0..start).rev() {
        let n = &net.nodes[i];
        match n.op {
            // dL/da = dL/dy · f'(a) in place, so d0 stays the current gradient.
            Op::Act(a) if i > 0 => {
                let nout = b * len3(n.out);
                a.backward(
                    &mut ws.d0[..nout],
                    &ws.acts[ws.offs[i + 1]..ws.offs[i + 1] + nout],
                );
                continue;
            }
            _ => {}
        }
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
            // Node 0's activation has no input gradient to pass on; the
            // others ran in place above.
            Op::Act(_) => {}
        }
        std::mem::swap(&mut ws.d0, &mut ws.d1);
    }
}
