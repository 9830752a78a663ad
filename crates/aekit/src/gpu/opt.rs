//! A model's parameters, gradient and optimizer state on the device, and the
//! one fused kernel that steps them (SGD with momentum or Adam, weight decay
//! added to the gradient of the weights): shared by every GPU trainer.

use super::{Arg, Gpu};
use crate::error::{Error, Result};
use crate::train::{Optimizer, TrainConfig};
use cudarc::driver::CudaSlice;
use std::ops::Range;

/// How the optimizer steps.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Sgd { lr: f32, momentum: f32 },
    Adam { lr: f32, b1: f32, b2: f32, eps: f32 },
}

/// Parameters, gradient and optimizer state of one model on the device.
pub struct DeviceParams {
    pub(crate) params: CudaSlice<f32>,
    pub(crate) grad: CudaSlice<f32>,
    m: CudaSlice<f32>,
    v: CudaSlice<f32>,
    decay: CudaSlice<f32>,
    rule: Rule,
    n: usize,
    /// Adam's step count.
    pub t: u32,
}

impl DeviceParams {
    /// `p` on the device, to be stepped as `train` says, with weight decay on
    /// the ranges `decayed`.
    pub fn new(gpu: &Gpu, p: &[f32], train: &TrainConfig, decayed: &[Range<usize>]) -> Result<DeviceParams> {
        let rule = match train.optimizer {
            Optimizer::Sgd => Rule::Sgd {
                lr: train.lr,
                momentum: train.momentum,
            },
            Optimizer::Adam => Rule::Adam {
                lr: train.lr,
                b1: train.beta1,
                b2: train.beta2,
                eps: train.eps,
            },
            o => {
                return Err(Error::config(
                    "train.optimizer",
                    format!("the GPU backend trains with sgd or adam, not {o}"),
                ))
            }
        };
        let n = p.len();
        let mut mask = vec![0.0f32; n];
        for r in decayed {
            mask[r.clone()].fill(train.weight_decay);
        }
        Ok(DeviceParams {
            params: gpu.upload(p)?,
            grad: gpu.zeros(n)?,
            m: gpu.zeros(n)?,
            v: gpu.zeros(if matches!(rule, Rule::Adam { .. }) { n } else { 1 })?,
            decay: gpu.upload(&mask)?,
            rule,
            n,
            t: 0,
        })
    }

    /// The step size in force.
    pub fn lr(&self) -> f32 {
        match self.rule {
            Rule::Sgd { lr, .. } | Rule::Adam { lr, .. } => lr,
        }
    }

    /// Sets the step size (a decay between epochs).
    pub fn set_lr(&mut self, v: f32) {
        match &mut self.rule {
            Rule::Sgd { lr, .. } | Rule::Adam { lr, .. } => *lr = v,
        }
    }

    /// The parameters, copied back.
    pub fn read(&self, gpu: &Gpu, out: &mut [f32]) -> Result<()> {
        gpu.read(&self.params, out)
    }

    /// Overwrites the parameters.
    pub fn write(&mut self, gpu: &Gpu, p: &[f32]) -> Result<()> {
        gpu.write(p, &mut self.params)
    }

    /// The optimizer's state: the velocity (SGD) or the moments (Adam; `v`
    /// empty for SGD).
    pub fn read_state(&self, gpu: &Gpu) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut m = vec![0.0; self.n];
        gpu.read(&self.m, &mut m)?;
        let mut v = vec![
            0.0;
            if matches!(self.rule, Rule::Adam { .. }) {
                self.n
            } else {
                0
            }
        ];
        if !v.is_empty() {
            gpu.read(&self.v, &mut v)?;
        }
        Ok((m, v))
    }

    /// Restores what [`DeviceParams::read_state`] gave (empty slices: zeros).
    pub fn write_state(&mut self, gpu: &Gpu, m: &[f32], v: &[f32]) -> Result<()> {
        if m.len() == self.n {
            gpu.write(m, &mut self.m)?;
        }
        if v.len() == self.n && matches!(self.rule, Rule::Adam { .. }) {
            gpu.write(v, &mut self.v)?;
        }
        Ok(())
    }

    /// One step along the gradient in `grad` (weight decay added here).
    pub fn step(&mut self, gpu: &Gpu) -> Result<()> {
        let n = self.n;
        let (p, gr, m, v, dm) = (
            gpu.addr(&self.params, 0),
            gpu.addr(&self.grad, 0),
            gpu.addr(&self.m, 0),
            gpu.addr(&self.v, 0),
            gpu.addr(&self.decay, 0),
        );
        match self.rule {
            Rule::Sgd { lr, momentum } => gpu.launch(
                "sgd_step",
                n,
                &[
                    Arg::U64(p),
                    Arg::U64(gr),
                    Arg::U64(m),
                    Arg::U64(dm),
                    Arg::I64(n as i64),
                    Arg::F32(lr),
                    Arg::F32(momentum),
                ],
            ),
            Rule::Adam { lr, b1, b2, eps } => {
                self.t += 1;
                let bc1 = 1.0 - b1.powi(self.t as i32);
                let bc2 = 1.0 - b2.powi(self.t as i32);
                gpu.launch(
                    "adam_step",
                    n,
                    &[
                        Arg::U64(p),
                        Arg::U64(gr),
                        Arg::U64(m),
                        Arg::U64(v),
                        Arg::U64(dm),
                        Arg::I64(n as i64),
                        Arg::F32(lr),
                        Arg::F32(b1),
                        Arg::F32(b2),
                        Arg::F32(eps),
                        Arg::F32(bc1),
                        Arg::F32(bc2),
                    ],
                )
            }
        }
    }
}
