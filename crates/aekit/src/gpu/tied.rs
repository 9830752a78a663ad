//! Exact per-example SGD of the tied sigmoid autoencoder on the GPU: the
//! whole epoch in one persistent kernel (`tied_sgd_epoch` in
//! `kernels.cu`). Each block keeps its share of W's rows in shared memory
//! for the epoch; two grid barriers per example add up the blocks' partial
//! sums, so every example sees every update of the one before it: the same
//! SGD as one CPU thread, up to the order of summation.

use super::net::GpuData;
use super::{corruption_code, Arg, Gpu};
use crate::error::{Error, Result};
use crate::layers::{Corruption, Loss};
use crate::per_example::{TiedParams, TiedParamsMut, TiedShape};
use cudarc::driver::{CudaSlice, LaunchConfig};

/// The tied model's weights and the kernel's buffers on the device.
pub struct TiedGpu<'g> {
    gpu: &'g Gpu,
    shape: TiedShape,
    w: CudaSlice<f32>,
    b: CudaSlice<f32>,
    c: CudaSlice<f32>,
    acc_p: CudaSlice<f32>,
    acc_q: CudaSlice<f32>,
    bar: CudaSlice<u32>,
    loss: CudaSlice<f64>,
    blocks: usize,
    rows_per_block: usize,
    threads: usize,
    smem: usize,
    lr: f32,
    decay: f32,
    noise: (i32, f32),
    pub seed: u64,
    pub ctr: u64,
}

impl<'g> TiedGpu<'g> {
    pub fn new(
        gpu: &'g Gpu,
        shape: TiedShape,
        p: TiedParams<'_>,
        lr: f32,
        decay: f32,
        noise: Corruption,
        seed: u64,
    ) -> Result<TiedGpu<'g>> {
        p.check(shape)?;
        let (nv, nh) = (shape.n_vis, shape.n_hid);
        let rows_per_block = nv.div_ceil(gpu.multiprocessors().min(nv).max(1));
        let blocks = nv.div_ceil(rows_per_block);
        let threads = (nh.div_ceil(32) * 32).clamp(64, 1024);
        let smem = 4 * (rows_per_block * nh + 2 * nh + 4 * rows_per_block + 32 * rows_per_block);
        let f = gpu.func("tied_sgd_epoch");
        let most = gpu
            .ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
            )
            .map_err(|e| Error::Device(format!("reading the shared memory size: {e:?}")))?
            as usize;
        // Room for the kernel's own static shared memory too.
        if smem + 1024 > most {
            return Err(Error::Device(format!(
                "a {nv}x{nh} tied model needs {smem} bytes of shared memory per block for the per-example \
                 GPU kernel; this GPU has {most}: train with --batch 2 or more on the GPU, or on the CPU"
            )));
        }
        f.set_attribute(
            cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            smem as i32,
        )
        .map_err(|e| Error::Device(format!("setting the kernel's shared memory: {e:?}")))?;
        Ok(TiedGpu {
            gpu,
            shape,
            w: gpu.upload(p.w)?,
            b: gpu.upload(p.b)?,
            c: gpu.upload(p.c)?,
            acc_p: gpu.zeros(3 * nh)?,
            acc_q: gpu.zeros(3 * nh)?,
            bar: gpu.zeros(2)?,
            loss: gpu.zeros(blocks)?,
            blocks,
            rows_per_block,
            threads,
            smem,
            lr,
            decay,
            noise: corruption_code(noise)?,
            seed,
            ctr: 0,
        })
    }

    /// One epoch of per-example SGD over `data` in `order`; the mean loss
    /// (each example's before its update).
    pub fn epoch(&mut self, data: &GpuData, order: &[usize]) -> Result<f64> {
        if data.dim != self.shape.n_vis {
            return Err(Error::shape("GPU data", self.shape.n_vis, data.dim));
        }
        if order.is_empty() {
            return Ok(0.0);
        }
        let ord: Vec<i32> = order.iter().map(|&i| i as i32).collect();
        let dev_order = self.gpu.upload(&ord)?;
        self.gpu.clear(&mut self.acc_p)?;
        self.gpu.clear(&mut self.acc_q)?;
        self.gpu.clear(&mut self.bar)?;
        let g = self.gpu;
        let a = |b: &CudaSlice<f32>| g.addr(b, 0);
        let args = [
            Arg::U64(a(&self.w)),
            Arg::U64(a(&self.b)),
            Arg::U64(a(&self.c)),
            Arg::U64(g.addr(data.x(), 0)),
            Arg::U64(g.addr(&dev_order, 0)),
            Arg::I32(order.len() as i32),
            Arg::I32(self.shape.n_vis as i32),
            Arg::I32(self.shape.n_hid as i32),
            Arg::I32(self.rows_per_block as i32),
            Arg::F32(self.lr),
            Arg::F32(self.decay),
            Arg::I32(match self.shape.loss {
                Loss::CrossEntropy => 0,
                Loss::Squared => 1,
            }),
            Arg::I32(self.noise.0),
            Arg::F32(self.noise.1),
            Arg::U64(self.seed),
            Arg::U64(self.ctr),
            Arg::U64(a(&self.acc_p)),
            Arg::U64(a(&self.acc_q)),
            Arg::U64(g.addr(&self.bar, 0)),
            Arg::U64(g.addr(&self.loss, 0)),
        ];
        g.launch_with(
            "tied_sgd_epoch",
            LaunchConfig {
                grid_dim: (self.blocks as u32, 1, 1),
                block_dim: (self.threads as u32, 1, 1),
                shared_mem_bytes: self.smem as u32,
            },
            &args,
            true,
        )?;
        self.ctr += (order.len() * self.shape.n_vis) as u64;
        let mut per_block = vec![0.0f64; self.blocks];
        g.read(&self.loss, &mut per_block)?;
        drop(dev_order);
        Ok(per_block.iter().sum::<f64>() / order.len() as f64)
    }

    /// The weights, copied back into `p`.
    pub fn read(&self, p: TiedParamsMut<'_>) -> Result<()> {
        self.gpu.read(&self.w, p.w)?;
        self.gpu.read(&self.b, p.b)?;
        self.gpu.read(&self.c, p.c)
    }

    /// Overwrites the weights.
    pub fn write(&mut self, p: TiedParams<'_>) -> Result<()> {
        self.gpu.write(p.w, &mut self.w)?;
        self.gpu.write(p.b, &mut self.b)?;
        self.gpu.write(p.c, &mut self.c)
    }
}
