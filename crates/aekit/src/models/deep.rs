//! A deep sigmoid encoder (the trunk of a stacked autoencoder) with a head on
//! top, on one flat parameter vector `[W₁ b₁ … W_L b_L | head]`.
//!
//! Trunk: h₀ = x (corrupted or not), h_j = σ(h_{j−1}·W_j + b_j), W_j `[n_{j−1}, n_j]`.
//! Heads:
//! - `Reconstruct`: a = h_L·W′ + b′ `[batch, n_out]` against a target in [0, 1]
//!   (cross-entropy from a, or squared error of σ(a)); the gradual schedule's
//!   temporary decoder, and the classic DAE decoder when L = 1.
//! - `Softmax`: logits = h_L·W_o + b_o over k classes, softmax cross-entropy.
//!
//! Backward: δ at the head, then δh_{j−1} = (δ_j·W_jᵀ) and δ_j = δh_j ⊙ h_j(1−h_j),
//! dW_j += h_{j−1}ᵀ·δ_j, db_j += Σ δ_j. Objective per batch: mean loss plus
//! ½·λ·Σ‖W‖² over every weight matrix (trunk and head), biases free.
//!
//! Dropout (fine-tuning only, when the batch carries masks): each hidden
//! layer's output is h_j = σ(·) ⊙ m_j with m_j ∈ {0, 1/(1−p)} drawn per
//! example and unit (inverted dropout), and backward δ_j = δh_j ⊙ m_j ⊙
//! σ_j(1−σ_j), σ_j the output before the mask.

use crate::layers::activation::Activation;
use crate::layers::dense::{step_untied, Dense, Grads, StepParams};
use crate::layers::dropout;
use crate::layers::loss::{self, Loss};
use crate::tensor::fused::StepWrite;
use crate::tensor::gemm::Par;
use crate::tensor::{GradWrite, Real};
use std::ops::Range;

/// What sits on top of the trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// A linear layer to `n_out` units reconstructing a target.
    Reconstruct { n_out: usize, loss: Loss },
    /// A softmax over `classes`.
    Softmax { classes: usize },
}

impl HeadKind {
    pub fn n_out(&self) -> usize {
        match *self {
            HeadKind::Reconstruct { n_out, .. } => n_out,
            HeadKind::Softmax { classes } => classes,
        }
    }
}

/// Offsets of every weight and bias in the flat vector.
#[derive(Debug, Clone, PartialEq)]
pub struct DeepLayout {
    /// Layer widths, input first: `[n₀, n₁, …, n_L]`.
    pub sizes: Vec<usize>,
    pub head: HeadKind,
    /// `(W_j, b_j)` for j = 1..=L, then the head's `(W, b)` last.
    pub layers: Vec<(Range<usize>, Range<usize>)>,
    pub len: usize,
}

impl DeepLayout {
    pub fn new(sizes: &[usize], head: HeadKind) -> DeepLayout {
        assert!(sizes.len() >= 2, "a trunk has an input and at least one layer");
        let mut layers = Vec::new();
        let mut at = 0;
        let dims: Vec<(usize, usize)> = sizes
            .windows(2)
            .map(|w| (w[0], w[1]))
            .chain(std::iter::once((*sizes.last().expect("non-empty"), head.n_out())))
            .collect();
        for (i, o) in dims {
            let w = at..at + i * o;
            let b = w.end..w.end + o;
            at = b.end;
            layers.push((w, b));
        }
        DeepLayout {
            sizes: sizes.to_vec(),
            head,
            layers,
            len: at,
        }
    }

    /// The GPU trainer's view: sigmoid trunk layers, then the head's layer.
    #[cfg(feature = "cuda")]
    pub fn gpu_spec(&self) -> crate::gpu::net::NetSpec {
        use crate::gpu::net::{Head, Layer, NetSpec};
        let l = self.depth();
        let layers = (0..=l)
            .map(|j| Layer {
                w: self.layers[j].0.start,
                b: self.layers[j].1.start,
                n_in: self.sizes[j],
                n_out: self.layers[j].1.len(),
                trans: false,
                act: if j < l {
                    Activation::Sigmoid
                } else {
                    Activation::Identity
                },
            })
            .collect();
        NetSpec {
            layers,
            head: match self.head {
                HeadKind::Reconstruct {
                    loss: Loss::CrossEntropy,
                    ..
                } => Head::Xent,
                HeadKind::Reconstruct {
                    loss: Loss::Squared, ..
                } => Head::Squared(Activation::Sigmoid),
                HeadKind::Softmax { .. } => Head::Softmax,
            },
            n_params: self.len,
            decayed: self.layers.iter().map(|(w, _)| w.clone()).collect(),
        }
    }

    /// Trunk layers (without the head).
    pub fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Where the head starts; everything before is the trunk.
    pub fn trunk_len(&self) -> usize {
        self.layers[self.depth()].0.start
    }
}

/// Activations of one batch.
#[derive(Debug, Clone, Default)]
pub struct DeepWorkspace<T> {
    /// h_1..h_L, each `[batch, n_j]`.
    h: Vec<Vec<T>>,
    /// Head output `[batch, n_out]` (pre-activation) and its delta.
    out: Vec<T>,
    d_out: Vec<T>,
    z: Vec<T>,
    /// Deltas for each trunk layer.
    d: Vec<Vec<T>>,
    /// With dropout, each trunk layer's output before its mask.
    s: Vec<Vec<T>>,
}

/// Runs the trunk on `x` (`[batch, n₀]`); returns the top activations.
pub fn trunk_forward<'a, T: Real>(
    lay: &DeepLayout,
    p: &[T],
    x: &[T],
    batch: usize,
    ws: &'a mut DeepWorkspace<T>,
    par: Par,
) -> &'a [T] {
    trunk_forward_masked(lay, p, x, batch, None, ws, par)
}

/// [`trunk_forward`], each hidden layer's output multiplied by its
/// dropout mask when `drop` is given (the unmasked outputs kept in the
/// workspace for the backward pass).
fn trunk_forward_masked<'a, T: Real>(
    lay: &DeepLayout,
    p: &[T],
    x: &[T],
    batch: usize,
    drop: Option<DropMasks<'_>>,
    ws: &'a mut DeepWorkspace<T>,
    par: Par,
) -> &'a [T] {
    let l = lay.depth();
    ws.h.resize_with(l, Vec::new);
    if drop.is_some() {
        ws.s.resize_with(l, Vec::new);
    }
    for j in 0..l {
        let (n_in, n_out) = (lay.sizes[j], lay.sizes[j + 1]);
        let (w, b) = &lay.layers[j];
        let (prev, rest) = ws.h.split_at_mut(j);
        let input: &[T] = if j == 0 { x } else { &prev[j - 1] };
        let h = &mut rest[0];
        h.resize(batch * n_out, T::ZERO);
        Dense::new(&p[w.clone()], n_in, n_out).forward(h, input, &p[b.clone()], batch, par);
        Activation::Sigmoid.forward(h);
        if let Some(m) = drop {
            ws.s[j].clone_from(h);
            dropout::apply(h, m.layer(lay, j, batch));
        }
    }
    &ws.h[l - 1]
}

/// The dropout masks of a loaded batch, as fine-tuning draws them: hidden
/// layer j's mask `[rows, n_{j+1}]` for every row of the batch, layer after
/// layer in `all`; a slice of the batch's rows reads its own rows of each.
#[derive(Debug, Clone, Copy)]
pub struct DropMasks<'a> {
    pub all: &'a [f32],
    /// The rows of the whole loaded batch.
    pub batch_rows: usize,
    /// The first of those rows this slice holds.
    pub first_row: usize,
}

impl<'a> DropMasks<'a> {
    /// Hidden layer j's mask for the `rows` rows of this slice.
    fn layer(&self, lay: &DeepLayout, j: usize, rows: usize) -> &'a [f32] {
        let before: usize = lay.sizes[1..=j].iter().map(|n| n * self.batch_rows).sum();
        let n = lay.sizes[j + 1];
        let at = before + self.first_row * n;
        &self.all[at..at + rows * n]
    }
}

/// One batch for the deep net: `rows` inputs `x` (`[rows, n₀]`), and the
/// head's reconstruction target (`Reconstruct`) or classes (`Softmax`);
/// the one the head does not use may be empty.
#[derive(Debug, Clone, Copy)]
pub struct DeepBatch<'a, T> {
    pub x: &'a [T],
    pub target: &'a [T],
    pub labels: &'a [u8],
    pub rows: usize,
    /// Dropout masks (fine-tuning); `None`: no dropout.
    pub drop: Option<DropMasks<'a>>,
}

/// Sum over the batch of the head's loss. With `grad`, writes its gradient
/// as the [`GradWrite`] says: added into the buffer, or scaled and written
/// over it or into a multiple of it; every entry belongs to one layer and
/// is written once, so a buffer written over needs no clearing first and
/// no rescaling after.
pub fn deep_loss_grad<T: Real>(
    lay: &DeepLayout,
    p: &[T],
    grad: Option<(&mut [T], GradWrite<T>)>,
    batch: DeepBatch<'_, T>,
    ws: &mut DeepWorkspace<T>,
    par: Par,
) -> T {
    let total = deep_forward_loss(lay, p, batch, ws, grad.is_some(), par);
    let Some((grad, write)) = grad else { return total };
    backward_walk(lay, batch, ws, |j, delta, input, dx| {
        let (gw, gb) = split_pair(grad, &lay.layers[j]);
        let g = Grads {
            dw: gw,
            db: gb,
            write,
        };
        let (n_in, n_out) = (lay.sizes[j], lay.layers[j].1.len());
        Dense::new(&p[lay.layers[j].0.clone()], n_in, n_out).backward(dx, g, delta, input, batch.rows, par);
    });
    total
}

/// Walks the layers from the head down after [`deep_forward_loss`] with
/// gradients: for the head and then each trunk layer j (δ_j already through
/// the sigmoid's derivative), calls `layer(j, δ_j, input_j, dx)` where `dx`
/// is the buffer for the δ of the layer below (none for the first layer),
/// which `layer` must fill before the walk goes on. `j == depth` is the head.
fn backward_walk<T: Real>(
    lay: &DeepLayout,
    batch: DeepBatch<'_, T>,
    ws: &mut DeepWorkspace<T>,
    mut layer: impl FnMut(usize, &[T], &[T], Option<&mut [T]>),
) {
    let l = lay.depth();
    layer(l, &ws.d_out, &ws.h[l - 1], Some(&mut ws.d[l - 1]));
    for j in (0..l).rev() {
        match batch.drop {
            Some(m) => {
                dropout::backward(&mut ws.d[j], m.layer(lay, j, batch.rows));
                Activation::Sigmoid.backward(&mut ws.d[j], &ws.s[j]);
            }
            None => Activation::Sigmoid.backward(&mut ws.d[j], &ws.h[j]),
        }
        let (lower, upper) = ws.d.split_at_mut(j);
        let input: &[T] = if j == 0 { batch.x } else { &ws.h[j - 1] };
        let dx = if j == 0 { None } else { Some(&mut lower[j - 1][..]) };
        layer(j, &upper[0], input, dx);
    }
}

/// One step of SGD with momentum fused into the backward pass, for a
/// velocity `v` kept as [`crate::optim::Sgd`] keeps it: each layer's
/// gradient enters the velocity as `w` says (α already holding −η/batch)
/// and the layer's weights and biases take the step as soon as the layer
/// below has its δ, the weight's inside its gradient's product
/// ([`crate::layers::dense::step_untied`]). The same step as
/// [`deep_loss_grad`] writing into `v` followed by θ ← θ + v, v ← μ·v
/// over the whole vector (every entry belongs to one layer), with one pass
/// over the weights and the velocity instead of two. Returns the summed
/// loss, computed before the step.
pub fn deep_loss_grad_step(
    lay: &DeepLayout,
    p: &mut [f32],
    v: &mut [f32],
    w: StepWrite,
    batch: DeepBatch<'_, f32>,
    ws: &mut DeepWorkspace<f32>,
    par: Par,
) -> f32 {
    assert!(p.len() == lay.len && v.len() == lay.len);
    let total = deep_forward_loss(lay, p, batch, ws, true, par);
    backward_walk(lay, batch, ws, |j, delta, input, dx| {
        let (n_in, n_out) = (lay.sizes[j], lay.layers[j].1.len());
        if let Some(dx) = dx {
            Dense::new(&p[lay.layers[j].0.clone()], n_in, n_out).backward_input(dx, delta, batch.rows, par);
        }
        step_untied(
            layer_params(lay, p, v, j),
            delta,
            input,
            n_in,
            n_out,
            batch.rows,
            w,
            par,
        );
    });
    total
}

/// The trunk and the head forward over the batch and the head's loss summed
/// over it; with `want_grad`, the head's δ in the workspace and the trunk's
/// δ buffers sized.
fn deep_forward_loss<T: Real>(
    lay: &DeepLayout,
    p: &[T],
    batch: DeepBatch<'_, T>,
    ws: &mut DeepWorkspace<T>,
    want_grad: bool,
    par: Par,
) -> T {
    let DeepBatch {
        x,
        target,
        labels,
        rows: batch,
        drop,
    } = batch;
    let l = lay.depth();
    let top_n = lay.sizes[l];
    let n_out = lay.head.n_out();
    trunk_forward_masked(lay, p, x, batch, drop, ws, par);
    let (hw, hb) = &lay.layers[l];
    ws.out.resize(batch * n_out, T::ZERO);
    ws.d_out.resize(batch * n_out, T::ZERO);
    let head = Dense::new(&p[hw.clone()], top_n, n_out);
    head.forward(&mut ws.out, &ws.h[l - 1], &p[hb.clone()], batch, par);
    let total = match lay.head {
        HeadKind::Softmax { classes } => softmax_head(&mut ws.d_out, &ws.out, labels, classes, want_grad),
        HeadKind::Reconstruct {
            loss: Loss::CrossEntropy,
            ..
        } => loss::xent(want_grad.then_some(&mut ws.d_out[..]), &ws.out, target),
        HeadKind::Reconstruct {
            loss: Loss::Squared, ..
        } => {
            ws.z.clear();
            ws.z.extend_from_slice(&ws.out);
            Activation::Sigmoid.forward(&mut ws.z);
            if want_grad {
                loss::squared_backward(&mut ws.d_out, &ws.z, target);
                Activation::Sigmoid.backward(&mut ws.d_out, &ws.z);
            }
            loss::squared_forward(&ws.z, target)
        }
    };
    if want_grad {
        ws.d.resize_with(l, Vec::new);
        for j in 0..l {
            ws.d[j].resize(batch * lay.sizes[j + 1], T::ZERO);
        }
    }
    total
}

/// Layer `j`'s (W, b) in the parameters and in the velocity.
fn layer_params<'a>(lay: &DeepLayout, p: &'a mut [f32], v: &'a mut [f32], j: usize) -> StepParams<'a> {
    StepParams {
        theta: split_pair(p, &lay.layers[j]),
        velocity: split_pair(v, &lay.layers[j]),
    }
}

fn softmax_head<T: Real>(d: &mut [T], logits: &[T], labels: &[u8], k: usize, want_grad: bool) -> T {
    loss::softmax_xent(if want_grad { Some(d) } else { None }, logits, labels, k)
}

/// Disjoint mutable views of one layer's weight and bias gradients.
fn split_pair<'a, T>(g: &'a mut [T], (w, b): &(Range<usize>, Range<usize>)) -> (&'a mut [T], &'a mut [T]) {
    debug_assert_eq!(w.end, b.start);
    let (gw, gb) = g[w.start..b.end].split_at_mut(w.len());
    (gw, gb)
}

/// Mean loss over the batch plus ½·λ·Σ‖W‖²; overwrites `grad`. Returns
/// (mean loss, objective).
pub fn deep_objective<T: Real>(
    lay: &DeepLayout,
    p: &[T],
    grad: &mut [T],
    batch: DeepBatch<'_, T>,
    weight_decay: T,
    ws: &mut DeepWorkspace<T>,
    par: Par,
) -> (T, T) {
    grad.fill(T::ZERO);
    let sum = deep_loss_grad(lay, p, Some((&mut *grad, GradWrite::ADD)), batch, ws, par);
    deep_finish(lay, p, grad, sum, batch.rows, weight_decay)
}

/// Turns a summed loss and gradient over `batch` examples into the mean plus
/// ½·λ·Σ‖W‖² (in place); returns (mean loss, objective).
pub fn deep_finish<T: Real>(
    lay: &DeepLayout,
    p: &[T],
    grad: &mut [T],
    sum: T,
    batch: usize,
    weight_decay: T,
) -> (T, T) {
    let inv = T::ONE / T::of(batch as f64);
    crate::tensor::par::chunks(grad, |_, c| T::scale_slice(c, inv));
    let obj = deep_penalty(lay, p, grad, weight_decay, T::ONE, sum * inv);
    (sum * inv, obj)
}

/// Adds `scale`·λ·W to the weights' gradient (biases excluded) and returns
/// `loss` plus the penalty ½·λ·Σ‖W‖².
pub fn deep_penalty<T: Real>(
    lay: &DeepLayout,
    p: &[T],
    grad: &mut [T],
    weight_decay: T,
    scale: T,
    loss: T,
) -> T {
    let mut obj = loss;
    if weight_decay > T::ZERO {
        for (w, _) in &lay.layers {
            let mut sq = T::ZERO;
            for (g, &v) in grad[w.clone()].iter_mut().zip(&p[w.clone()]) {
                *g += scale * (weight_decay * v);
                sq += v * v;
            }
            obj += T::of(0.5) * weight_decay * sq;
        }
    }
    obj
}

/// The head's output (pre-activation, e.g. logits) of the last forward pass.
pub fn head_output<T: Real>(ws: &DeepWorkspace<T>) -> &[T] {
    &ws.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gradcheck::relative_difference;
    use crate::tensor::rng::seeded;
    use rand::Rng as _;

    /// The gradient check's relative difference, with dropout masks at
    /// rate `drop` on every hidden layer when it is above 0.
    fn check(head: HeadKind, sizes: &[usize], drop: f32) -> f64 {
        let lay = DeepLayout::new(sizes, head);
        let batch = 5;
        let mut rng = seeded(4);
        let mut masks = Vec::new();
        let hidden: usize = sizes[1..].iter().sum();
        crate::layers::dropout::extend_mask(&mut masks, batch * hidden, drop, &mut rng);
        let p: Vec<f64> = (0..lay.len).map(|_| rng.random_range(-0.6..0.6)).collect();
        let x: Vec<f64> = (0..batch * sizes[0])
            .map(|_| rng.random_range(0.0..1.0))
            .collect();
        let target: Vec<f64> = (0..batch * head.n_out())
            .map(|_| rng.random_range(0.0..1.0))
            .collect();
        let labels: Vec<u8> = (0..batch).map(|i| (i % head.n_out()) as u8).collect();
        let mut ws = DeepWorkspace::default();
        let mut g = vec![0.0; lay.len];
        let b = DeepBatch {
            x: &x,
            target: &target,
            labels: &labels,
            rows: batch,
            drop: (drop > 0.0).then_some(DropMasks {
                all: &masks,
                batch_rows: batch,
                first_row: 0,
            }),
        };
        deep_objective(&lay, &p, &mut g, b, 0.01, &mut ws, Par::Seq);
        let mut scratch = vec![0.0; lay.len];
        relative_difference(
            |q| deep_objective(&lay, q, &mut scratch, b, 0.01, &mut ws, Par::Seq).1,
            &p,
            &g,
        )
    }

    #[test]
    fn every_head_and_depth_passes_the_gradient_check() {
        for sizes in [&[6usize, 4][..], &[6, 5, 4], &[6, 5, 4, 3]] {
            for head in [
                HeadKind::Softmax { classes: 3 },
                HeadKind::Reconstruct {
                    n_out: 6,
                    loss: Loss::CrossEntropy,
                },
                HeadKind::Reconstruct {
                    n_out: 6,
                    loss: Loss::Squared,
                },
            ] {
                for drop in [0.0, 0.4] {
                    let e = check(head, sizes, drop);
                    assert!(e < 1e-9, "{sizes:?} {head:?} dropout {drop}: {e:e}");
                }
            }
        }
    }

    #[test]
    fn layout_places_head_after_trunk() {
        let lay = DeepLayout::new(&[4, 3, 2], HeadKind::Softmax { classes: 5 });
        assert_eq!(
            lay.layers,
            vec![(0..12, 12..15), (15..21, 21..23), (23..33, 33..38)]
        );
        assert_eq!((lay.trunk_len(), lay.len, lay.depth()), (23, 38, 2));
    }
}
