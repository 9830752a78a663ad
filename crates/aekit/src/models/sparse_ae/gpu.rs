//! The sparse autoencoder's full-batch cost and gradient on the GPU, the
//! same maths as [`crate::models::sparse_ae::sparse_cost`]: the data stay
//! on the device for the whole fit, each evaluation uploads the parameter
//! vector and reads back the gradient and four sums, and L-BFGS itself runs
//! on the host. Products through the GPU's GEMM door (column sums as a
//! product with a row of ones); the sparsity term, the hidden units'
//! backward step and the weight decay in three small kernels.

use super::{SparseConfig, SparseCost, SparseLayout};
use crate::error::{Error, Result};
use crate::gpu::{activation_code, Arg, Gpu};
use crate::layers::activation::Activation;
use cudarc::driver::CudaSlice;

/// The data and every buffer of one evaluation, on the device.
pub struct SparseGpu<'g> {
    gpu: &'g Gpu,
    cfg: SparseConfig,
    lay: SparseLayout,
    m: usize,
    x: CudaSlice<f32>,
    p: CudaSlice<f32>,
    g: CudaSlice<f32>,
    a: CudaSlice<f32>,
    z: CudaSlice<f32>,
    d3: CudaSlice<f32>,
    d2: CudaSlice<f32>,
    rho_hat: CudaSlice<f32>,
    sp: CudaSlice<f32>,
    ones: CudaSlice<f32>,
    /// Reconstruction, KL sum, Σρ̂, ‖W‖².
    acc: CudaSlice<f64>,
}

impl<'g> SparseGpu<'g> {
    /// Copies `x` (`[m, n_vis]`, row-major) to the device.
    pub fn new(gpu: &'g Gpu, cfg: &SparseConfig, x: &[f32], m: usize) -> Result<SparseGpu<'g>> {
        cfg.validate()?;
        let (v, h) = (cfg.n_vis, cfg.n_hid);
        if m == 0 || x.len() != m * v {
            return Err(Error::shape("sparse autoencoder data on the GPU", m * v, x.len()));
        }
        let lay = SparseLayout::new(v, h);
        Ok(SparseGpu {
            gpu,
            cfg: cfg.clone(),
            m,
            x: gpu.upload(x)?,
            p: gpu.zeros(lay.len)?,
            g: gpu.zeros(lay.len)?,
            a: gpu.zeros(m * h)?,
            z: gpu.zeros(m * v)?,
            d3: gpu.zeros(m * v)?,
            d2: gpu.zeros(m * h)?,
            rho_hat: gpu.zeros(h)?,
            sp: gpu.zeros(h)?,
            ones: gpu.upload(&vec![1.0f32; m])?,
            acc: gpu.zeros(4)?,
            lay,
        })
    }

    /// The cost of parameters `p`; the gradient into `grad` when given.
    pub fn cost(&mut self, p: &[f32], grad: Option<&mut [f32]>) -> Result<SparseCost> {
        let (v, h, m) = (self.cfg.n_vis, self.cfg.n_hid, self.m);
        let lay = &self.lay;
        if p.len() != lay.len {
            return Err(Error::shape("sparse autoencoder parameters", lay.len, p.len()));
        }
        let gpu = self.gpu;
        gpu.write(p, &mut self.p)?;
        gpu.clear(&mut self.acc)?;
        let pa = |r: usize| gpu.addr(&self.p, r);
        let ga = |r: usize| gpu.addr(&self.g, r);
        let (x, a, z, d3, d2) = (
            gpu.addr(&self.x, 0),
            gpu.addr(&self.a, 0),
            gpu.addr(&self.z, 0),
            gpu.addr(&self.d3, 0),
            gpu.addr(&self.d2, 0),
        );
        let (rho_hat, sp, ones) = (
            gpu.addr(&self.rho_hat, 0),
            gpu.addr(&self.sp, 0),
            gpu.addr(&self.ones, 0),
        );
        let acc = gpu.addr(&self.acc, 0);
        let inv_m = 1.0 / m as f32;
        let want = grad.is_some();
        // A = σ(X·W₁ + b₁), then the output's pre-activation A·W₂ + b₂.
        // y = act(y + b) over m rows of `cols`.
        let bias_act = |y: u64, b: usize, cols: usize, act: Activation| {
            gpu.launch(
                "bias_act",
                m * cols,
                &[
                    Arg::U64(y),
                    Arg::U64(pa(b)),
                    Arg::I32(m as i32),
                    Arg::I32(cols as i32),
                    Arg::I32(activation_code(act)),
                ],
            )
        };
        gpu.gemm(m, h, v, 1.0, x, false, pa(lay.w1.start), false, 0.0, a)?;
        bias_act(a, lay.b1.start, h, Activation::Sigmoid)?;
        gpu.gemm(m, v, h, 1.0, a, false, pa(lay.w2.start), false, 0.0, z)?;
        bias_act(z, lay.b2.start, v, Activation::Identity)?;
        // ½Σ‖z − x‖² into acc[0]; δ₃ = (z − x)·g′/m.
        gpu.launch(
            "head_squared",
            m * v,
            &[
                Arg::U64(z),
                Arg::U64(x),
                Arg::U64(d3),
                Arg::I64((m * v) as i64),
                Arg::I32(activation_code(self.cfg.output_activation)),
                Arg::F32(inv_m),
                Arg::I32(want as i32),
                Arg::U64(acc),
            ],
        )?;
        // ρ̂ = (1/m)·1ᵀA, then KL into acc[1], Σρ̂ into acc[2], and the
        // sparsity term of δ₂.
        gpu.gemm(1, h, m, inv_m, ones, false, a, false, 0.0, rho_hat)?;
        let (rho, beta) = (self.cfg.sparsity_target as f32, self.cfg.sparsity_weight as f32);
        gpu.launch(
            "sparse_kl",
            h,
            &[
                Arg::U64(rho_hat),
                Arg::U64(sp),
                Arg::I32(h as i32),
                Arg::F32(rho),
                Arg::F32(beta * inv_m),
                Arg::U64(acc + 8),
            ],
        )?;
        if want {
            // dW₂ = Aᵀδ₃, db₂ = 1ᵀδ₃, δ₂ = (δ₃·W₂ᵀ + sp)⊙A⊙(1 − A).
            gpu.gemm(h, v, m, 1.0, a, true, d3, false, 0.0, ga(lay.w2.start))?;
            gpu.gemm(1, v, m, 1.0, ones, false, d3, false, 0.0, ga(lay.b2.start))?;
            gpu.gemm(m, h, v, 1.0, d3, false, pa(lay.w2.start), true, 0.0, d2)?;
            gpu.launch(
                "sparse_delta",
                m * h,
                &[
                    Arg::U64(d2),
                    Arg::U64(a),
                    Arg::U64(sp),
                    Arg::I32(m as i32),
                    Arg::I32(h as i32),
                ],
            )?;
            // dW₁ = Xᵀδ₂, db₁ = 1ᵀδ₂.
            gpu.gemm(v, h, m, 1.0, x, true, d2, false, 0.0, ga(lay.w1.start))?;
            gpu.gemm(1, h, m, 1.0, ones, false, d2, false, 0.0, ga(lay.b1.start))?;
        }
        // ‖W₁‖² + ‖W₂‖² into acc[3]; λW added to the weights' gradients.
        let lambda = self.cfg.weight_decay as f32;
        for r in [&lay.w1, &lay.w2] {
            gpu.launch(
                "decay_sq",
                r.len(),
                &[
                    Arg::U64(ga(r.start)),
                    Arg::U64(pa(r.start)),
                    Arg::I64(r.len() as i64),
                    Arg::F32(lambda),
                    Arg::I32(want as i32),
                    Arg::U64(acc + 24),
                ],
            )?;
        }
        if let Some(grad) = grad {
            if grad.len() != lay.len {
                return Err(Error::shape("sparse autoencoder gradient", lay.len, grad.len()));
            }
            gpu.read(&self.g, grad)?;
        }
        let mut sums = [0.0f64; 4];
        gpu.read(&self.acc, &mut sums)?;
        let rec = sums[0] / m as f64;
        let sparsity = self.cfg.sparsity_weight * sums[1];
        let decay = 0.5 * self.cfg.weight_decay * sums[3];
        Ok(SparseCost {
            total: rec + decay + sparsity,
            reconstruction: rec,
            weight_decay: decay,
            sparsity,
            mean_activation: sums[2] / h.max(1) as f64,
        })
    }
}
