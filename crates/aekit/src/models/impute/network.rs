//! The imputer's network: a dense autoencoder over an encoded row, its
//! hidden layers sharing one activation with inverted dropout after each, and
//! one output head per column: linear with squared error for a continuous
//! column, sigmoid with cross-entropy for a binary one, softmax with
//! cross-entropy over a categorical's one-hot group. The loss counts the
//! cells a mask marks (the observed ones) only.

use super::schema::{Kind, Schema};
use crate::layers::dense::{Dense, Grads};
use crate::layers::{dropout, Activation};
use crate::tensor::gemm::Par;
use std::ops::Range;

/// One column's output head and where it sits in the encoded row.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    Linear(usize),
    Sigmoid(usize),
    Softmax(Range<usize>),
}

impl Head {
    /// The heads of a schema's columns (none for ignored ones).
    pub fn of(schema: &Schema) -> Vec<Head> {
        let mut at = 0;
        let mut heads = Vec::new();
        for c in &schema.columns {
            let w = c.width();
            match &c.kind {
                Kind::Continuous { .. } => heads.push(Head::Linear(at)),
                Kind::Binary { .. } => heads.push(Head::Sigmoid(at)),
                Kind::Categorical { .. } => heads.push(Head::Softmax(at..at + w)),
                Kind::Ignored => {}
            }
            at += w;
        }
        heads
    }

    /// The encoded values the head covers.
    pub fn range(&self) -> Range<usize> {
        match self {
            Head::Linear(i) | Head::Sigmoid(i) => *i..*i + 1,
            Head::Softmax(r) => r.clone(),
        }
    }
}

/// The network's shape: widths from the encoded row through the hidden
/// layers back to it, the hidden activation and the heads.
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    pub sizes: Vec<usize>,
    pub act: Activation,
    pub heads: Vec<Head>,
    /// A continuous column's output is the input's value (the linear
    /// path's fill where the cell is hidden) plus the network's: it learns
    /// a correction.
    pub residual: bool,
}

/// Activations of a batch: per layer, the post-activation values `h` and
/// what the next layer reads (`a`: after dropout); `a[0]` is the input.
pub struct Workspace {
    h: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    delta: Vec<f32>,
    back: Vec<f32>,
    pub grad: Vec<f32>,
}

impl Net {
    /// Layers (weight matrices).
    pub fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Where layer `l`'s weight `[sizes[l], sizes[l+1]]` and bias sit in the
    /// parameter vector.
    pub fn layer(&self, l: usize) -> (Range<usize>, Range<usize>) {
        let mut at = 0;
        for j in 0..l {
            at += self.sizes[j] * self.sizes[j + 1] + self.sizes[j + 1];
        }
        let w = at..at + self.sizes[l] * self.sizes[l + 1];
        (w.clone(), w.end..w.end + self.sizes[l + 1])
    }

    pub fn n_params(&self) -> usize {
        self.layer(self.depth() - 1).1.end
    }

    /// Glorot-uniform weights (scaled for the activation), zero biases.
    pub fn init(&self, rng: &mut crate::tensor::rng::Rng) -> Vec<f32> {
        use rand::Rng as _;
        let mut p = vec![0.0; self.n_params()];
        for l in 0..self.depth() {
            let (w, _) = self.layer(l);
            let r = (6.0 / (self.sizes[l] + self.sizes[l + 1]) as f32).sqrt();
            p[w].iter_mut().for_each(|v| *v = rng.random_range(-r..r));
        }
        p
    }

    pub fn workspace(&self, rows: usize) -> Workspace {
        let width = self.sizes.iter().copied().max().unwrap_or(0);
        Workspace {
            h: self.sizes.iter().map(|&s| vec![0.0; rows * s]).collect(),
            a: self.sizes.iter().map(|&s| vec![0.0; rows * s]).collect(),
            delta: vec![0.0; rows * width],
            back: vec![0.0; rows * width],
            grad: vec![0.0; self.n_params()],
        }
    }

    /// The output layer's pre-activations for the `rows` rows of `input`,
    /// with hidden layer j's dropout mask `drop[j]` when given (inference
    /// passes none). The result is left in the workspace's last layer.
    pub fn forward(
        &self,
        p: &[f32],
        input: &[f32],
        rows: usize,
        drop: Option<&[&[f32]]>,
        ws: &mut Workspace,
        par: Par,
    ) {
        let d = self.depth();
        ws.a[0][..input.len()].copy_from_slice(input);
        for l in 0..d {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let (w, b) = self.layer(l);
            let (lo, hi) = ws.a.split_at_mut(l + 1);
            let x = &lo[l][..rows * n_in];
            let y = &mut ws.h[l + 1][..rows * n_out];
            Dense::new(&p[w], n_in, n_out).forward(y, x, &p[b], rows, par);
            let next = &mut hi[0][..rows * n_out];
            if l + 1 < d {
                self.act.forward(y);
                next.copy_from_slice(y);
                if let Some(m) = drop {
                    dropout::apply(next, m[l]);
                }
            } else {
                next.copy_from_slice(y);
            }
        }
    }

    /// What a continuous column's output adds to the network's: the
    /// input's value under `residual`, else 0.
    fn base(&self, ws: &Workspace, r: usize, i: usize) -> f32 {
        if self.residual {
            ws.a[0][r * self.sizes[0] + i]
        } else {
            0.0
        }
    }

    /// The output after the heads (values, probabilities) of the last
    /// forward pass, `[rows, width]`, into `out`.
    pub fn outputs(&self, ws: &Workspace, rows: usize, out: &mut [f32]) {
        let width = self.sizes[self.depth()];
        let z = &ws.a[self.depth()][..rows * width];
        out.copy_from_slice(z);
        for r in 0..rows {
            let row = &mut out[r * width..(r + 1) * width];
            for h in &self.heads {
                match h {
                    Head::Linear(i) => row[*i] += self.base(ws, r, *i),
                    Head::Sigmoid(i) => row[*i] = crate::layers::activation::sigmoid(row[*i]),
                    Head::Softmax(g) => softmax(&mut row[g.clone()]),
                }
            }
        }
    }

    /// After [`Net::forward`] with the batch's dropout masks: the summed loss
    /// over the cells `mask` marks, and (when `grad` is given) its gradient
    /// added into `grad`.
    pub fn loss_backward(
        &self,
        p: &[f32],
        target: &[f32],
        mask: &[f32],
        rows: usize,
        drop: &[&[f32]],
        ws: &mut Workspace,
        grad: Option<&mut [f32]>,
        par: Par,
    ) -> f64 {
        let d = self.depth();
        let width = self.sizes[d];
        let mut loss = 0.0f64;
        {
            let z = &ws.a[d][..rows * width];
            let delta = &mut ws.delta[..rows * width];
            let a0 = &ws.a[0];
            delta.fill(0.0);
            for r in 0..rows {
                let o = r * width;
                for h in &self.heads {
                    let g = h.range();
                    if mask[o + g.start] == 0.0 {
                        continue;
                    }
                    let (zr, tr) = (&z[o + g.start..o + g.end], &target[o + g.start..o + g.end]);
                    let dr = &mut delta[o + g.start..o + g.end];
                    match h {
                        Head::Linear(i) => {
                            let base = if self.residual {
                                a0[r * self.sizes[0] + *i]
                            } else {
                                0.0
                            };
                            let e = zr[0] + base - tr[0];
                            loss += 0.5 * (e as f64) * (e as f64);
                            dr[0] = e;
                        }
                        Head::Sigmoid(_) => {
                            // −[t ln σ(z) + (1−t) ln(1−σ(z))] = softplus(z) − t·z.
                            let zz = zr[0] as f64;
                            let sp = zz.max(0.0) + (-zz.abs()).exp().ln_1p();
                            loss += sp - tr[0] as f64 * zz;
                            dr[0] = crate::layers::activation::sigmoid(zr[0]) - tr[0];
                        }
                        Head::Softmax(_) => {
                            let m = zr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                            let lse = m + zr.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
                            for k in 0..zr.len() {
                                let pk = (zr[k] as f64 - lse).exp();
                                loss -= tr[k] as f64 * (zr[k] as f64 - lse);
                                dr[k] = (pk - tr[k] as f64) as f32;
                            }
                        }
                    }
                }
            }
        }
        let Some(grad) = grad else {
            return loss;
        };
        for l in (0..d).rev() {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let (w, b) = self.layer(l);
            let (gw, gb) = {
                let (gw, rest) = grad[w.start..b.end].split_at_mut(w.len());
                (gw, rest)
            };
            let x = &ws.a[l][..rows * n_in];
            let dy = &ws.delta[..rows * n_out];
            let dx = (l > 0).then(|| &mut ws.back[..rows * n_in]);
            Dense::new(&p[w.clone()], n_in, n_out).backward(dx, Grads::add(gw, gb), dy, x, rows, par);
            if l > 0 {
                let back = &mut ws.back[..rows * n_in];
                dropout::backward(back, drop[l - 1]);
                self.act.backward(back, &ws.h[l][..rows * n_in]);
                ws.delta[..rows * n_in].copy_from_slice(back);
            }
        }
        loss
    }
}

/// A softmax in place, stable.
pub fn softmax(v: &mut [f32]) {
    let m = v.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut s = 0.0f32;
    v.iter_mut().for_each(|x| {
        *x = (*x - m).exp();
        s += *x;
    });
    v.iter_mut().for_each(|x| *x /= s);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loss's gradient through every head, the dropout masks and the
    /// activations matches central differences of the loss (in f64 sums,
    /// on an f32 network: a loose but telling bound).
    #[test]
    fn gradient_matches_finite_differences() {
        // (ReLU's kink breaks central differences at this step; its
        // derivative is checked in layers::activation.)
        for act in [Activation::Elu, Activation::Tanh] {
            let net = Net {
                sizes: vec![6, 5, 4, 6],
                act,
                heads: vec![
                    Head::Linear(0),
                    Head::Sigmoid(1),
                    Head::Softmax(2..5),
                    Head::Linear(5),
                ],
                residual: act == Activation::Tanh,
            };
            let mut rng = crate::tensor::rng::seeded(5);
            let p = net.init(&mut rng);
            let rows = 3;
            let input: Vec<f32> = (0..rows * 6).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
            let mut target = vec![0.3f32, 1.0, 0.0, 1.0, 0.0, -0.4];
            target.extend_from_slice(&[-1.0, 0.0, 1.0, 0.0, 0.0, 0.8]);
            target.extend_from_slice(&[0.5, 1.0, 0.0, 0.0, 1.0, 0.1]);
            let mut mask = vec![1.0f32; rows * 6];
            mask[6 + 2..6 + 5].fill(0.0); // a categorical cell not observed
            mask[12] = 0.0;
            let mut masks = Vec::new();
            for (j, &h) in net.sizes[1..net.depth()].iter().enumerate() {
                let mut m = Vec::new();
                crate::layers::dropout::draw_mask(
                    &mut m,
                    rows * h,
                    0.3,
                    &mut crate::tensor::rng::seeded(j as u64),
                );
                masks.push(m);
            }
            let drop: Vec<&[f32]> = masks.iter().map(Vec::as_slice).collect();
            let mut ws = net.workspace(rows);
            let loss_at = |q: &[f32], ws: &mut Workspace| {
                net.forward(q, &input, rows, Some(&drop), ws, Par::Seq);
                net.loss_backward(q, &target, &mask, rows, &drop, ws, None, Par::Seq)
            };
            net.forward(&p, &input, rows, Some(&drop), &mut ws, Par::Seq);
            let mut g = vec![0.0f32; p.len()];
            net.loss_backward(&p, &target, &mask, rows, &drop, &mut ws, Some(&mut g), Par::Seq);
            let h = 1e-3f32;
            let mut worst = 0.0f64;
            for i in 0..p.len() {
                let (mut a, mut b) = (p.clone(), p.clone());
                a[i] += h;
                b[i] -= h;
                let num = (loss_at(&a, &mut ws) - loss_at(&b, &mut ws)) / (2.0 * h as f64);
                let err = (num - g[i] as f64).abs() / (num.abs() + (g[i] as f64).abs()).max(1e-2);
                worst = worst.max(err);
            }
            assert!(worst < 2e-2, "{act:?}: relative error {worst}");
        }
    }
}
