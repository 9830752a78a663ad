//! Minibatch training of the dense models on the GPU: a chain of dense
//! layers with a loss on top, over the same flat parameter vector as the CPU
//! model, with the parameters, gradient, optimizer state and training data
//! resident on the device. One step is a gather-and-corrupt kernel, a cuBLAS
//! GEMM and a fused bias + activation kernel per layer, a fused loss-and-δ
//! kernel, the backward GEMMs and bias sums, and one fused optimizer kernel
//! over the whole vector (weight decay included). The loss is summed on the
//! device and read once per epoch.
//!
//! The example order is drawn on the host from the run's random stream, as
//! on the CPU; corruption comes from a counter-based stream on the device
//! (the same corruption law, other draws).

use super::opt::DeviceParams;
use super::{activation_code, corruption_code, Arg, Gpu};
use crate::error::{Error, Result};
use crate::layers::activation::Activation;
use crate::layers::Corruption;
use crate::train::TrainConfig;
use cudarc::driver::CudaSlice;
use std::ops::Range;

/// One dense layer `y = act(x·op(W) + b)` of the chain: `W` at offset `w`
/// of the flat vector, stored `[n_in, n_out]` (or `[n_out, n_in]` when
/// `trans`, as a tied decoder uses the encoder's weights).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub w: usize,
    pub b: usize,
    pub n_in: usize,
    pub n_out: usize,
    pub trans: bool,
    pub act: Activation,
}

/// The loss on the last layer's pre-activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head {
    /// Cross-entropy of σ(a) against a target in [0, 1].
    Xent,
    /// ½·squared error of act(a).
    Squared(Activation),
    /// Softmax cross-entropy against class labels.
    Softmax,
}

/// A model as the GPU trains it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetSpec {
    pub layers: Vec<Layer>,
    pub head: Head,
    pub n_params: usize,
    /// The weight ranges that weight decay applies to.
    pub decayed: Vec<Range<usize>>,
}

impl NetSpec {
    fn n_in(&self) -> usize {
        self.layers[0].n_in
    }

    fn n_out(&self) -> usize {
        self.layers.last().expect("a layer").n_out
    }
}

/// A data set on the device: rows of `dim` floats, labels when the head
/// needs them, and an order buffer.
pub struct GpuData {
    x: CudaSlice<f32>,
    labels: Option<CudaSlice<i32>>,
    order: CudaSlice<i32>,
    pub n: usize,
    pub dim: usize,
}

impl GpuData {
    /// Copies `x` (`[n, dim]`) and its labels, if any, to the device.
    pub fn new(gpu: &Gpu, x: &[f32], dim: usize, labels: Option<&[u8]>) -> Result<GpuData> {
        let n = x.len() / dim.max(1);
        if n == 0 || n * dim != x.len() {
            return Err(Error::shape(
                "GPU data",
                format!("rows of {dim}"),
                format!("{} values", x.len()),
            ));
        }
        if n > i32::MAX as usize {
            return Err(Error::Device(format!(
                "{n} examples: the GPU backend indexes at most 2³¹"
            )));
        }
        let labels = match labels {
            Some(l) => Some(gpu.upload(&l.iter().map(|&v| v as i32).collect::<Vec<_>>())?),
            None => None,
        };
        let seq: Vec<i32> = (0..n as i32).collect();
        Ok(GpuData {
            x: gpu.upload(x)?,
            labels,
            order: gpu.upload(&seq)?,
            n,
            dim,
        })
    }

    pub(crate) fn x(&self) -> &CudaSlice<f32> {
        &self.x
    }

    /// 0, 1, …, n − 1 on the device.
    pub(crate) fn order(&self) -> &CudaSlice<i32> {
        &self.order
    }
}

/// A model's parameters, gradient, optimizer state and activations on the
/// device.
pub struct GpuNet<'g> {
    gpu: &'g Gpu,
    spec: NetSpec,
    cap: usize,
    /// Parameters, gradient and optimizer state.
    pub opt: DeviceParams,
    acts: Vec<CudaSlice<f32>>,
    deltas: Vec<CudaSlice<f32>>,
    input: CudaSlice<f32>,
    target: CudaSlice<f32>,
    labels: CudaSlice<i32>,
    loss: CudaSlice<f64>,
    /// The corruption: code, level, stream seed and the stream position.
    noise: (i32, f32),
    pub seed: u64,
    pub ctr: u64,
}

impl<'g> GpuNet<'g> {
    /// A net for `spec` with parameters `p`, batches of up to `batch` rows,
    /// trained by `train` (SGD with momentum, or Adam) with `noise` on its
    /// input.
    pub fn new(
        gpu: &'g Gpu,
        spec: NetSpec,
        p: &[f32],
        train: &TrainConfig,
        noise: Corruption,
        seed: u64,
    ) -> Result<GpuNet<'g>> {
        if p.len() != spec.n_params {
            return Err(Error::shape("GPU parameters", spec.n_params, p.len()));
        }
        let cap = train.batch.max(1024);
        let acts = spec
            .layers
            .iter()
            .map(|l| gpu.zeros::<f32>(cap * l.n_out))
            .collect::<Result<Vec<_>>>()?;
        let deltas = spec
            .layers
            .iter()
            .map(|l| gpu.zeros::<f32>(cap * l.n_out))
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuNet {
            gpu,
            cap,
            opt: DeviceParams::new(gpu, p, train, &spec.decayed)?,
            acts,
            deltas,
            input: gpu.zeros(cap * spec.n_in())?,
            // The clean input, as loaded (a reconstruction head's target).
            target: gpu.zeros(cap * spec.n_in())?,
            labels: gpu.zeros(cap)?,
            loss: gpu.zeros(1)?,
            noise: corruption_code(noise)?,
            seed,
            ctr: 0,
            spec,
        })
    }

    /// The GPU this net lives on.
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// The parameters, copied back.
    pub fn read_params(&self, out: &mut [f32]) -> Result<()> {
        self.opt.read(self.gpu, out)
    }

    /// Overwrites the parameters.
    pub fn write_params(&mut self, p: &[f32]) -> Result<()> {
        self.opt.write(self.gpu, p)
    }

    fn a<T>(&self, buf: &CudaSlice<T>) -> u64 {
        self.gpu.addr(buf, 0)
    }

    /// Forward through every layer from `x` (`rows` rows at address `x`).
    fn forward(&self, x: u64, rows: usize) -> Result<()> {
        let g = self.gpu;
        let pa = self.a(&self.opt.params);
        let mut prev = x;
        for (l, layer) in self.spec.layers.iter().enumerate() {
            let y = self.a(&self.acts[l]);
            let w = pa + 4 * layer.w as u64;
            g.gemm(
                rows,
                layer.n_out,
                layer.n_in,
                1.0,
                prev,
                false,
                w,
                layer.trans,
                0.0,
                y,
            )?;
            g.launch(
                "bias_act",
                rows * layer.n_out,
                &[
                    Arg::U64(y),
                    Arg::U64(pa + 4 * layer.b as u64),
                    Arg::I32(rows as i32),
                    Arg::I32(layer.n_out as i32),
                    Arg::I32(activation_code(layer.act)),
                ],
            )?;
            prev = y;
        }
        Ok(())
    }

    /// The head's loss into the accumulator and, when `grad`, its δ scaled
    /// by `scale` into the last layer's delta buffer.
    fn head(&self, rows: usize, target: u64, labels: u64, grad: bool, scale: f32) -> Result<()> {
        let last = self.spec.layers.len() - 1;
        let (a, d) = (self.a(&self.acts[last]), self.a(&self.deltas[last]));
        let n = rows * self.spec.n_out();
        let (acc, want) = (self.a(&self.loss), grad as i32);
        match self.spec.head {
            Head::Xent => self.gpu.launch(
                "head_xent",
                n,
                &[
                    Arg::U64(a),
                    Arg::U64(target),
                    Arg::U64(d),
                    Arg::I64(n as i64),
                    Arg::F32(scale),
                    Arg::I32(want),
                    Arg::U64(acc),
                ],
            ),
            Head::Squared(act) => self.gpu.launch(
                "head_squared",
                n,
                &[
                    Arg::U64(a),
                    Arg::U64(target),
                    Arg::U64(d),
                    Arg::I64(n as i64),
                    Arg::I32(activation_code(act)),
                    Arg::F32(scale),
                    Arg::I32(want),
                    Arg::U64(acc),
                ],
            ),
            Head::Softmax => self.gpu.launch(
                "head_softmax",
                rows,
                &[
                    Arg::U64(a),
                    Arg::U64(labels),
                    Arg::U64(d),
                    Arg::I32(rows as i32),
                    Arg::I32(self.spec.n_out() as i32),
                    Arg::F32(scale),
                    Arg::I32(want),
                    Arg::U64(acc),
                ],
            ),
        }
    }

    /// Back-propagates the head's δ: every weight and bias gradient into
    /// `grad` (overwritten; a weight used twice, as a tied one, adds up).
    fn backward(&self, x: u64, rows: usize) -> Result<()> {
        let g = self.gpu;
        let (pa, ga) = (self.a(&self.opt.params), self.a(&self.opt.grad));
        let mut written: Vec<usize> = Vec::new();
        for l in (0..self.spec.layers.len()).rev() {
            let layer = &self.spec.layers[l];
            let d = self.a(&self.deltas[l]);
            let prev = if l == 0 { x } else { self.a(&self.acts[l - 1]) };
            let beta = if written.contains(&layer.w) { 1.0 } else { 0.0 };
            written.push(layer.w);
            let gw = ga + 4 * layer.w as u64;
            if layer.trans {
                g.gemm(layer.n_out, layer.n_in, rows, 1.0, d, true, prev, false, beta, gw)?;
            } else {
                g.gemm(layer.n_in, layer.n_out, rows, 1.0, prev, true, d, false, beta, gw)?;
            }
            g.launch(
                "col_sum",
                layer.n_out,
                &[
                    Arg::U64(d),
                    Arg::U64(ga + 4 * layer.b as u64),
                    Arg::I32(rows as i32),
                    Arg::I32(layer.n_out as i32),
                ],
            )?;
            if l > 0 {
                let dx = self.a(&self.deltas[l - 1]);
                let w = pa + 4 * layer.w as u64;
                g.gemm(
                    rows,
                    layer.n_in,
                    layer.n_out,
                    1.0,
                    d,
                    false,
                    w,
                    !layer.trans,
                    0.0,
                    dx,
                )?;
                let below = &self.spec.layers[l - 1];
                g.launch(
                    "act_back",
                    rows * layer.n_in,
                    &[
                        Arg::U64(dx),
                        Arg::U64(self.a(&self.acts[l - 1])),
                        Arg::I64((rows * layer.n_in) as i64),
                        Arg::I32(activation_code(below.act)),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Loads rows `order[pos..pos+rows]` of `data` (corrupted when `noisy`)
    /// into the input and target buffers.
    fn load(
        &mut self,
        data: &GpuData,
        order: &CudaSlice<i32>,
        pos: usize,
        rows: usize,
        noisy: bool,
    ) -> Result<()> {
        let (kind, level) = if noisy { self.noise } else { (0, 0.0) };
        let ord = self.gpu.addr(order, pos);
        self.gpu.launch(
            "gather_corrupt",
            rows * data.dim,
            &[
                Arg::U64(self.a(&self.input)),
                Arg::U64(self.a(&self.target)),
                Arg::U64(self.a(&data.x)),
                Arg::U64(ord),
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
        if let Some(l) = &data.labels {
            self.gpu.launch(
                "gather_labels",
                rows,
                &[
                    Arg::U64(self.a(&self.labels)),
                    Arg::U64(self.a(l)),
                    Arg::U64(ord),
                    Arg::I32(rows as i32),
                ],
            )?;
        }
        Ok(())
    }

    fn check(&self, data: &GpuData) -> Result<()> {
        if data.dim != self.spec.n_in() {
            return Err(Error::shape("GPU data", self.spec.n_in(), data.dim));
        }
        if self.spec.head == Head::Softmax && data.labels.is_none() {
            return Err(Error::config("labels", "a softmax head needs labels"));
        }
        if self.spec.head != Head::Softmax && data.dim != self.spec.n_out() {
            return Err(Error::shape(
                "GPU reconstruction target",
                self.spec.n_out(),
                data.dim,
            ));
        }
        Ok(())
    }

    /// One step on the examples `order[pos..pos+rows]`.
    fn step(&mut self, data: &GpuData, order: &CudaSlice<i32>, pos: usize, rows: usize) -> Result<()> {
        self.load(data, order, pos, rows, true)?;
        let (x, t, lab) = (self.a(&self.input), self.a(&self.target), self.a(&self.labels));
        self.forward(x, rows)?;
        self.head(rows, t, lab, true, 1.0 / rows as f32)?;
        self.backward(x, rows)?;
        self.opt.step(self.gpu)
    }

    /// One epoch in the given example order, in batches of `batch`; calls
    /// `progress(done, total)` now and then and stops early (returning
    /// `None`) when `stop()` says so. Returns the epoch's mean training loss
    /// and the number of updates.
    pub fn epoch(
        &mut self,
        data: &GpuData,
        order: &[usize],
        batch: usize,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<(f64, u64)>> {
        self.check(data)?;
        if order.len() != data.n {
            return Err(Error::shape("GPU epoch order", data.n, order.len()));
        }
        let batch = batch.clamp(1, self.cap);
        let ord: Vec<i32> = order.iter().map(|&i| i as i32).collect();
        // Dropped after the loss is read back, which waits for the stream.
        let dev_order = self.gpu.upload(&ord)?;
        let total = data.n.div_ceil(batch);
        let every = (total / 100).max(1);
        self.gpu.clear(&mut self.loss)?;
        let mut updates = 0u64;
        for (k, pos) in (0..data.n).step_by(batch).enumerate() {
            if stop() {
                return Ok(None);
            }
            let rows = batch.min(data.n - pos);
            self.step(data, &dev_order, pos, rows)?;
            updates += 1;
            if (k + 1) % every == 0 || k + 1 == total {
                progress(k + 1, total);
            }
        }
        let mut l = [0.0f64];
        self.gpu.read(&self.loss, &mut l)?;
        Ok(Some((l[0] / data.n as f64, updates)))
    }

    /// The percentage of `data`'s rows whose largest output is not at their
    /// label (a softmax head's classification error).
    pub fn error_pct(&mut self, data: &GpuData) -> Result<f64> {
        self.check(data)?;
        if self.spec.head != Head::Softmax {
            return Err(Error::config(
                "labels",
                "a classification error needs a softmax head",
            ));
        }
        self.gpu.clear(&mut self.loss)?;
        let last = self.spec.layers.len() - 1;
        for pos in (0..data.n).step_by(self.cap) {
            let rows = self.cap.min(data.n - pos);
            self.load(data, &data.order, pos, rows, false)?;
            self.forward(self.a(&self.input), rows)?;
            self.gpu.launch(
                "count_errors",
                rows,
                &[
                    Arg::U64(self.a(&self.acts[last])),
                    Arg::U64(self.a(&self.labels)),
                    Arg::I32(rows as i32),
                    Arg::I32(self.spec.n_out() as i32),
                    Arg::U64(self.a(&self.loss)),
                ],
            )?;
        }
        let mut l = [0.0f64];
        self.gpu.read(&self.loss, &mut l)?;
        Ok(100.0 * l[0] / data.n as f64)
    }

    /// The mean clean loss over all of `data`.
    pub fn eval(&mut self, data: &GpuData) -> Result<f64> {
        self.check(data)?;
        self.gpu.clear(&mut self.loss)?;
        for pos in (0..data.n).step_by(self.cap) {
            let rows = self.cap.min(data.n - pos);
            self.load(data, &data.order, pos, rows, false)?;
            let (x, t, lab) = (self.a(&self.input), self.a(&self.target), self.a(&self.labels));
            self.forward(x, rows)?;
            self.head(rows, t, lab, false, 1.0)?;
        }
        let mut l = [0.0f64];
        self.gpu.read(&self.loss, &mut l)?;
        Ok(l[0] / data.n as f64)
    }
}
