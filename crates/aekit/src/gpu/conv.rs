//! Convolutional autoencoders on the GPU: the CPU network's layers (conv,
//! transposed conv, max pooling and unpooling, nearest upsampling,
//! activations) over NCHW batches, each conv as one im2col kernel and one
//! cuBLAS product for the whole batch (`kernels.cu`), with the parameters,
//! optimizer state and data on the device.

use super::net::GpuData;
use super::opt::DeviceParams;
use super::{activation_code, corruption_code, Arg, Gpu};
use crate::error::{Error, Result};
use crate::layers::activation::Activation;
use crate::layers::{Corruption, Loss};
use crate::tensor::im2col::ConvGeom;
use crate::train::TrainConfig;
use cudarc::driver::{CudaSlice, LaunchConfig};
use std::ops::Range;

/// A layer as the GPU runs it (the CPU network's `Op`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConvLayer {
    Conv {
        g: ConvGeom,
        c_out: usize,
    },
    /// The adjoint of a conv with geometry `g` (from this layer's output).
    ConvT {
        g: ConvGeom,
        c_in: usize,
    },
    Pool {
        s: usize,
        slot: usize,
    },
    Unpool {
        slot: usize,
    },
    Upsample {
        s: usize,
    },
    Act(Activation),
}

/// One layer with its shapes `[c, h, w]` and its weight and bias offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNode {
    pub op: ConvLayer,
    pub inp: [usize; 3],
    pub out: [usize; 3],
    pub w: usize,
    pub b: usize,
}

/// A convolutional autoencoder as the GPU trains it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvSpec {
    pub nodes: Vec<ConvNode>,
    pub n_params: usize,
    pub n_pools: usize,
    /// The weight ranges weight decay applies to.
    pub decayed: Vec<Range<usize>>,
    /// Cross-entropy from the last layer's input (a final sigmoid), or ½·squared error.
    pub loss: Loss,
}

fn len3(s: [usize; 3]) -> usize {
    s[0] * s[1] * s[2]
}

/// A CAE's state and workspace on the device, for batches of up to `cap`.
pub struct GpuCae<'g> {
    gpu: &'g Gpu,
    spec: ConvSpec,
    cap: usize,
    pub opt: DeviceParams,
    /// The input, then every layer's output, each `cap` images.
    acts: Vec<CudaSlice<f32>>,
    idx: Vec<CudaSlice<i32>>,
    d0: CudaSlice<f32>,
    d1: CudaSlice<f32>,
    col: CudaSlice<f32>,
    tmp: CudaSlice<f32>,
    target: CudaSlice<f32>,
    loss: CudaSlice<f64>,
    noise: (i32, f32),
    pub seed: u64,
    pub ctr: u64,
}

impl<'g> GpuCae<'g> {
    pub fn new(
        gpu: &'g Gpu,
        spec: ConvSpec,
        p: &[f32],
        train: &TrainConfig,
        noise: Corruption,
        seed: u64,
    ) -> Result<GpuCae<'g>> {
        if p.len() != spec.n_params {
            return Err(Error::shape("GPU parameters", spec.n_params, p.len()));
        }
        let cap = train.batch.max(256);
        let input = len3(spec.nodes[0].inp);
        let (mut widest, mut col) = (input, 0usize);
        let mut acts = vec![gpu.zeros::<f32>(cap * input)?];
        let mut idx = (0..spec.n_pools)
            .map(|_| None)
            .collect::<Vec<Option<CudaSlice<i32>>>>();
        for n in &spec.nodes {
            acts.push(gpu.zeros::<f32>(cap * len3(n.out))?);
            widest = widest.max(len3(n.out)).max(len3(n.inp));
            match n.op {
                ConvLayer::Conv { g, .. } | ConvLayer::ConvT { g, .. } => {
                    col = col.max(g.col_rows() * g.col_cols())
                }
                ConvLayer::Pool { slot, .. } => idx[slot] = Some(gpu.zeros::<i32>(cap * len3(n.out))?),
                _ => {}
            }
        }
        let idx = idx
            .into_iter()
            .map(|i| i.ok_or_else(|| Error::config("arch", "an unpooling layer without its pooling layer")))
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuCae {
            gpu,
            cap,
            opt: DeviceParams::new(gpu, p, train, &spec.decayed)?,
            acts,
            idx,
            d0: gpu.zeros(cap * widest)?,
            d1: gpu.zeros(cap * widest)?,
            col: gpu.zeros(cap * col)?,
            tmp: gpu.zeros(cap * widest)?,
            target: gpu.zeros(cap * input)?,
            loss: gpu.zeros(1)?,
            noise: corruption_code(noise)?,
            seed,
            ctr: 0,
            spec,
        })
    }

    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    fn a<T>(&self, b: &CudaSlice<T>) -> u64 {
        self.gpu.addr(b, 0)
    }

    fn im2col(&self, col: u64, x: u64, b: usize, g: &ConvGeom) -> Result<()> {
        self.gpu.launch(
            "im2col_b",
            g.col_rows() * b * g.col_cols(),
            &geom_args(col, x, b, g),
        )
    }

    fn col2im(&self, x: u64, col: u64, b: usize, g: &ConvGeom) -> Result<()> {
        self.gpu
            .launch("col2im_b", b * g.input_len(), &geom_args(x, col, b, g))
    }

    fn transpose(
        &self,
        name: &str,
        dst: u64,
        src: u64,
        bias: u64,
        b: usize,
        c: usize,
        plane: usize,
    ) -> Result<()> {
        let mut args = vec![Arg::U64(dst), Arg::U64(src)];
        if name == "cnhw_to_nchw" {
            args.push(Arg::U64(bias));
        }
        args.extend([Arg::I32(b as i32), Arg::I32(c as i32), Arg::I32(plane as i32)]);
        self.gpu.launch(name, b * c * plane, &args)
    }

    /// A pooling index kernel (`maxpool_bwd`, `unpool_fwd`, `unpool_bwd`):
    /// `count` entries of planes shaped `small`, indexing planes shaped
    /// `large`, through pooling slot `slot`.
    fn by_index(
        &self,
        name: &str,
        dst: u64,
        src: u64,
        slot: usize,
        count: usize,
        small: [usize; 3],
        large: [usize; 3],
    ) -> Result<()> {
        self.gpu.launch(
            name,
            count,
            &[
                Arg::U64(dst),
                Arg::U64(src),
                Arg::U64(self.a(&self.idx[slot])),
                Arg::I64(count as i64),
                Arg::I32((small[1] * small[2]) as i32),
                Arg::I32((large[1] * large[2]) as i32),
            ],
        )
    }

    fn channel_sum(&self, db: u64, dy: u64, b: usize, c: usize, plane: usize) -> Result<()> {
        self.gpu.launch_with(
            "channel_sum",
            LaunchConfig {
                grid_dim: (c as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            },
            &[
                Arg::U64(db),
                Arg::U64(dy),
                Arg::I32(b as i32),
                Arg::I32(c as i32),
                Arg::I32(plane as i32),
            ],
            false,
        )
    }

    /// Every layer on the `b` images in the input slot.
    fn forward(&self, b: usize) -> Result<()> {
        let (g_, pa) = (self.gpu, self.a(&self.opt.params));
        let (col, tmp) = (self.a(&self.col), self.a(&self.tmp));
        for (i, n) in self.spec.nodes.iter().enumerate() {
            let (x, y) = (self.a(&self.acts[i]), self.a(&self.acts[i + 1]));
            let (w, bias) = (pa + 4 * n.w as u64, pa + 4 * n.b as u64);
            let planes = b * n.inp[0];
            match n.op {
                ConvLayer::Conv { g, c_out } => {
                    let p = g.col_cols();
                    self.im2col(col, x, b, &g)?;
                    g_.gemm(c_out, b * p, g.col_rows(), 1.0, w, false, col, false, 0.0, tmp)?;
                    self.transpose("cnhw_to_nchw", y, tmp, bias, b, c_out, p)?;
                }
                ConvLayer::ConvT { g, c_in } => {
                    let p_in = g.col_cols();
                    self.transpose("nchw_to_cnhw", tmp, x, 0, b, c_in, p_in)?;
                    g_.gemm(g.col_rows(), b * p_in, c_in, 1.0, w, true, tmp, false, 0.0, col)?;
                    self.col2im(y, col, b, &g)?;
                    g_.launch(
                        "add_channel_bias",
                        b * len3(n.out),
                        &[
                            Arg::U64(y),
                            Arg::U64(bias),
                            Arg::I32(b as i32),
                            Arg::I32(g.c as i32),
                            Arg::I32((g.h * g.w) as i32),
                        ],
                    )?;
                }
                ConvLayer::Pool { s, slot } => g_.launch(
                    "maxpool_fwd",
                    b * len3(n.out),
                    &[
                        Arg::U64(y),
                        Arg::U64(self.a(&self.idx[slot])),
                        Arg::U64(x),
                        Arg::I32(planes as i32),
                        Arg::I32(n.inp[1] as i32),
                        Arg::I32(n.inp[2] as i32),
                        Arg::I32(s as i32),
                    ],
                )?,
                ConvLayer::Unpool { slot } => {
                    self.gpu.stream_memset(y, b * len3(n.out))?;
                    self.by_index("unpool_fwd", y, x, slot, b * len3(n.inp), n.inp, n.out)?;
                }
                ConvLayer::Upsample { s } => g_.launch(
                    "upsample_fwd",
                    b * len3(n.out),
                    &[
                        Arg::U64(y),
                        Arg::U64(x),
                        Arg::I32(planes as i32),
                        Arg::I32(n.inp[1] as i32),
                        Arg::I32(n.inp[2] as i32),
                        Arg::I32(s as i32),
                    ],
                )?,
                ConvLayer::Act(act) => g_.launch(
                    "act_fwd",
                    b * len3(n.out),
                    &[
                        Arg::U64(y),
                        Arg::U64(x),
                        Arg::I64((b * len3(n.out)) as i64),
                        Arg::I32(activation_code(act)),
                    ],
                )?,
            }
        }
        Ok(())
    }

    /// The loss of the `b` reconstructions into the accumulator and, when
    /// `grad`, its δ (scaled by `scale`) into d0; returns the layer the
    /// backward pass starts below.
    fn loss(&self, b: usize, grad: bool, scale: f32) -> Result<usize> {
        let last = self.spec.nodes.len() - 1;
        let n = b * len3(self.spec.nodes[0].inp);
        let (t, d, acc) = (self.a(&self.target), self.a(&self.d0), self.a(&self.loss));
        match self.spec.loss {
            Loss::CrossEntropy => {
                self.gpu.launch(
                    "head_xent",
                    n,
                    &[
                        Arg::U64(self.a(&self.acts[last])),
                        Arg::U64(t),
                        Arg::U64(d),
                        Arg::I64(n as i64),
                        Arg::F32(scale),
                        Arg::I32(grad as i32),
                        Arg::U64(acc),
                    ],
                )?;
                Ok(last)
            }
            Loss::Squared => {
                self.gpu.launch(
                    "head_squared",
                    n,
                    &[
                        Arg::U64(self.a(&self.acts[last + 1])),
                        Arg::U64(t),
                        Arg::U64(d),
                        Arg::I64(n as i64),
                        Arg::I32(activation_code(Activation::Identity)),
                        Arg::F32(scale),
                        Arg::I32(grad as i32),
                        Arg::U64(acc),
                    ],
                )?;
                Ok(last + 1)
            }
        }
    }

    /// Back-propagates d0 from below layer `start` to the input, writing
    /// every parameter's gradient.
    fn backward(&mut self, b: usize, start: usize) -> Result<()> {
        let g_ = self.gpu;
        let (pa, ga) = (self.a(&self.opt.params), self.a(&self.opt.grad));
        let (col, tmp) = (self.a(&self.col), self.a(&self.tmp));
        for i in (0..start).rev() {
            let n = self.spec.nodes[i].clone();
            let (dy, dx) = (self.a(&self.d0), self.a(&self.d1));
            let x = self.a(&self.acts[i]);
            let (w, gw, gb) = (pa + 4 * n.w as u64, ga + 4 * n.w as u64, ga + 4 * n.b as u64);
            let planes = b * n.inp[0];
            match n.op {
                ConvLayer::Conv { g, c_out } => {
                    let p = g.col_cols();
                    self.transpose("nchw_to_cnhw", tmp, dy, 0, b, c_out, p)?;
                    self.im2col(col, x, b, &g)?;
                    g_.gemm(c_out, g.col_rows(), b * p, 1.0, tmp, false, col, true, 0.0, gw)?;
                    self.channel_sum(gb, dy, b, c_out, p)?;
                    if i > 0 {
                        g_.gemm(g.col_rows(), b * p, c_out, 1.0, w, true, tmp, false, 0.0, col)?;
                        self.col2im(dx, col, b, &g)?;
                    }
                }
                ConvLayer::ConvT { g, c_in } => {
                    let p_in = g.col_cols();
                    self.im2col(col, dy, b, &g)?;
                    self.transpose("nchw_to_cnhw", tmp, x, 0, b, c_in, p_in)?;
                    g_.gemm(c_in, g.col_rows(), b * p_in, 1.0, tmp, false, col, true, 0.0, gw)?;
                    self.channel_sum(gb, dy, b, g.c, g.h * g.w)?;
                    if i > 0 {
                        g_.gemm(c_in, b * p_in, g.col_rows(), 1.0, w, false, col, false, 0.0, tmp)?;
                        self.transpose("cnhw_to_nchw", dx, tmp, 0, b, c_in, p_in)?;
                    }
                }
                _ if i == 0 => {}
                ConvLayer::Pool { slot, .. } => {
                    g_.stream_memset(dx, b * len3(n.inp))?;
                    self.by_index("maxpool_bwd", dx, dy, slot, b * len3(n.out), n.out, n.inp)?;
                }
                ConvLayer::Unpool { slot } => {
                    self.by_index("unpool_bwd", dx, dy, slot, b * len3(n.inp), n.inp, n.out)?
                }
                ConvLayer::Upsample { s } => g_.launch(
                    "upsample_bwd",
                    b * len3(n.inp),
                    &[
                        Arg::U64(dx),
                        Arg::U64(dy),
                        Arg::I32(planes as i32),
                        Arg::I32(n.inp[1] as i32),
                        Arg::I32(n.inp[2] as i32),
                        Arg::I32(s as i32),
                    ],
                )?,
                ConvLayer::Act(act) => g_.launch(
                    "act_bwd",
                    b * len3(n.out),
                    &[
                        Arg::U64(dx),
                        Arg::U64(dy),
                        Arg::U64(self.a(&self.acts[i + 1])),
                        Arg::I64((b * len3(n.out)) as i64),
                        Arg::I32(activation_code(act)),
                    ],
                )?,
            }
            std::mem::swap(&mut self.d0, &mut self.d1);
        }
        Ok(())
    }

    /// Loads images `order[pos..pos+rows]` of `data` (corrupted when `noisy`).
    fn load(&mut self, data: &GpuData, order: u64, rows: usize, noisy: bool) -> Result<()> {
        let (kind, level) = if noisy { self.noise } else { (0, 0.0) };
        self.gpu.launch(
            "gather_corrupt",
            rows * data.dim,
            &[
                Arg::U64(self.a(&self.acts[0])),
                Arg::U64(self.a(&self.target)),
                Arg::U64(self.gpu.addr(data.x(), 0)),
                Arg::U64(order),
                Arg::I32(rows as i32),
                Arg::I32(data.dim as i32),
                Arg::I32(kind),
                Arg::F32(level),
                Arg::U64(self.seed),
                Arg::U64(self.ctr),
            ],
        )?;
        if noisy {
            self.ctr += (rows * data.dim) as u64;
        }
        Ok(())
    }

    fn check(&self, data: &GpuData) -> Result<()> {
        let want = len3(self.spec.nodes[0].inp);
        if data.dim != want {
            return Err(Error::shape("GPU images", want, data.dim));
        }
        Ok(())
    }

    /// One epoch in `order`, in batches of `batch`: (mean loss, updates), or
    /// `None` when `stop()` asked to stop.
    pub fn epoch(
        &mut self,
        data: &GpuData,
        order: &[usize],
        batch: usize,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<(f64, u64)>> {
        self.check(data)?;
        let batch = batch.clamp(1, self.cap);
        let ord: Vec<i32> = order.iter().map(|&i| i as i32).collect();
        // Dropped after the loss is read back, which waits for the stream.
        let dev_order = self.gpu.upload(&ord)?;
        let total = order.len().div_ceil(batch);
        let every = (total / 100).max(1);
        self.gpu.clear(&mut self.loss)?;
        let mut updates = 0u64;
        for (k, pos) in (0..order.len()).step_by(batch).enumerate() {
            if stop() {
                return Ok(None);
            }
            let rows = batch.min(order.len() - pos);
            self.load(data, self.gpu.addr(&dev_order, pos), rows, true)?;
            self.forward(rows)?;
            let start = self.loss(rows, true, 1.0 / rows as f32)?;
            self.backward(rows, start)?;
            self.opt.step(self.gpu)?;
            updates += 1;
            if (k + 1) % every == 0 || k + 1 == total {
                progress(k + 1, total);
            }
        }
        let mut l = [0.0f64];
        self.gpu.read(&self.loss, &mut l)?;
        Ok(Some((l[0] / order.len().max(1) as f64, updates)))
    }

    /// The mean loss per image over all of `data`, clean.
    pub fn eval(&mut self, data: &GpuData) -> Result<f64> {
        self.check(data)?;
        self.gpu.clear(&mut self.loss)?;
        for pos in (0..data.n).step_by(self.cap) {
            let rows = self.cap.min(data.n - pos);
            self.load(data, self.gpu.addr(data.order(), pos), rows, false)?;
            self.forward(rows)?;
            self.loss(rows, false, 1.0)?;
        }
        let mut l = [0.0f64];
        self.gpu.read(&self.loss, &mut l)?;
        Ok(l[0] / data.n.max(1) as f64)
    }
}

/// The arguments of `im2col_b` and `col2im_b`: two buffers, then the batch
/// and the geometry.
fn geom_args(a: u64, b: u64, n: usize, g: &ConvGeom) -> [Arg; 11] {
    [
        Arg::U64(a),
        Arg::U64(b),
        Arg::I32(n as i32),
        Arg::I32(g.c as i32),
        Arg::I32(g.h as i32),
        Arg::I32(g.w as i32),
        Arg::I32(g.k as i32),
        Arg::I32(g.stride as i32),
        Arg::I32(g.pad as i32),
        Arg::I32(g.oh as i32),
        Arg::I32(g.ow as i32),
    ]
}
