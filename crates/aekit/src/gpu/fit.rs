//! [`NetFit`]: a [`GpuNet`] as the shared epoch loop trains it (shuffled
//! epochs from the run's stream, validation, early stopping's best weights
//! and checkpoints), for every dense model that trains on the GPU.

use super::net::{GpuData, GpuNet, NetSpec};
use super::Gpu;
use crate::error::Result;
use crate::layers::Corruption;
use crate::tensor::rng::{shuffle, Rng};
use crate::train::{Fit, Observer, State, StepRule, TrainConfig};

/// Training data for a [`NetFit`]: rows of `dim` values and, for a softmax
/// head, their labels.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub x: &'a [f32],
    pub dim: usize,
    pub labels: Option<&'a [u8]>,
}

impl<'a> Rows<'a> {
    fn upload(&self, gpu: &Gpu, n: usize) -> Result<GpuData> {
        GpuData::new(
            gpu,
            &self.x[..n * self.dim],
            self.dim,
            self.labels.map(|l| &l[..n]),
        )
    }

    fn n(&self) -> usize {
        self.x.len() / self.dim.max(1)
    }
}

/// A dense model training on the GPU under the shared loop.
pub struct NetFit<'g, 'r> {
    net: GpuNet<'g>,
    data: GpuData,
    val: Option<GpuData>,
    first: GpuData,
    /// The parameters as of the last epoch (the device holds the live ones).
    pub p: Vec<f32>,
    rng: &'r mut Rng,
    order: Vec<usize>,
    train: TrainConfig,
    epochs: usize,
    updates: u64,
    /// Seconds spent in epochs (not in checkpoints or validation).
    busy: f64,
    /// The step size's factor after each epoch.
    lr_decay: f32,
    /// Validate by classification error instead of loss.
    error: bool,
}

impl<'g, 'r> NetFit<'g, 'r> {
    /// `spec` from parameters `p`, trained by `train` on `x` corrupted by
    /// `noise` (the device stream `noise_seed`), validated on `val`; the
    /// epoch orders come from `rng`, as on the CPU, so that a run without
    /// noise takes the CPU's steps.
    pub fn new(
        gpu: &'g Gpu,
        spec: NetSpec,
        p: &[f32],
        train: &TrainConfig,
        noise: Corruption,
        noise_seed: u64,
        x: Rows<'_>,
        val: Option<Rows<'_>>,
        rng: &'r mut Rng,
    ) -> Result<NetFit<'g, 'r>> {
        let n = x.n();
        Ok(NetFit {
            net: GpuNet::new(gpu, spec, p, train, noise, noise_seed)?,
            data: x.upload(gpu, n)?,
            first: x.upload(gpu, n.min(500))?,
            val: val.map(|v| v.upload(gpu, v.n())).transpose()?,
            p: p.to_vec(),
            rng,
            order: (0..n).collect(),
            train: train.clone(),
            epochs: 0,
            updates: 0,
            busy: 0.0,
            lr_decay: 1.0,
            error: false,
        })
    }

    /// Multiplies the step size by `f` after every epoch.
    pub fn with_lr_decay(mut self, f: f32) -> Self {
        self.lr_decay = f;
        self
    }

    /// Validates by the classification error (%) on the validation rows.
    pub fn with_error_validation(mut self) -> Self {
        self.error = true;
        self
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.data.n.div_ceil(self.train.batch.max(1))
    }
}

impl Fit for NetFit<'_, '_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        let t0 = std::time::Instant::now();
        // A fresh order per epoch from the run's stream, as on the CPU.
        self.order.iter_mut().enumerate().for_each(|(i, v)| *v = i);
        shuffle(&mut self.order, self.rng);
        let out = self
            .net
            .epoch(
                &self.data,
                &self.order,
                self.train.batch,
                &mut |k, total| obs.on_progress(k, total),
                &crate::train::checkpoint::stop_requested,
            )?
            .unwrap_or((f64::NAN, 0));
        self.net.read_params(&mut self.p)?;
        self.epochs += 1;
        self.updates += out.1;
        self.busy += t0.elapsed().as_secs_f64();
        let lr = self.net.opt.lr() * self.lr_decay;
        self.net.opt.set_lr(lr);
        Ok(out)
    }

    /// Training time only: the epochs, with the copy of the weights back.
    fn seconds(&self, _wall: f64) -> f64 {
        self.busy
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        match &self.val {
            Some(v) if self.error => Ok(Some(self.net.error_pct(v)?)),
            Some(v) => Ok(Some(self.net.eval(v)?)),
            None => Ok(None),
        }
    }

    /// The clean loss of the first (up to) 500 training examples.
    fn start_loss(&mut self) -> Result<Option<f64>> {
        Ok(Some(self.net.eval(&self.first)?))
    }

    fn params(&self) -> &[f32] {
        &self.p
    }

    fn set_params(&mut self, p: &[f32]) {
        self.p.copy_from_slice(p);
        if let Err(e) = self.net.write_params(p) {
            // Called to restore the best weights at the end, which live on
            // the host; the device copy is not read again.
            eprintln!("note: could not copy the best weights back to the GPU: {e}");
        }
    }

    fn save_state(&self, s: &mut State) -> Result<()> {
        s.put_tensor("params", &self.p);
        s.put_rng("rng", self.rng);
        s.put("gpu_seed", &self.net.seed);
        s.put("gpu_ctr", &self.net.ctr);
        let (m, v) = self.net.opt.read_state(self.net.gpu())?;
        let mut rule = StepRule::new(&self.train);
        match &mut rule {
            StepRule::Sgd(g) => {
                g.set_velocity(&m);
                g.lr = self.net.opt.lr();
            }
            StepRule::Adam(a) => {
                a.set_moments(&m, &v, self.net.opt.t);
                a.config.lr = self.net.opt.lr();
            }
        }
        let mut o = State::new();
        rule.save_state(&mut o);
        s.nest("opt", o);
        let mut b = State::new();
        b.put("epochs", &self.epochs);
        b.put("updates", &self.updates);
        b.put("seconds", &self.busy);
        s.nest("batches", b);
        Ok(())
    }

    fn load_state(&mut self, s: &State) -> Result<()> {
        let n = self.p.len();
        self.p.copy_from_slice(s.tensor("params", n)?);
        *self.rng = s.rng("rng")?;
        self.net.seed = s.get("gpu_seed")?;
        self.net.ctr = s.get("gpu_ctr")?;
        let mut rule = StepRule::new(&self.train);
        rule.load_state(&s.inner("opt").unwrap_or_default(), n)?;
        let gpu = self.net.gpu();
        match &rule {
            StepRule::Sgd(g) => {
                self.net.opt.write_state(gpu, &g.plain_velocity(), &[])?;
                self.net.opt.set_lr(g.lr);
            }
            StepRule::Adam(a) => {
                let (m, v, t) = a.moments();
                self.net.opt.write_state(gpu, m, v)?;
                self.net.opt.t = t;
                self.net.opt.set_lr(a.config.lr);
            }
        }
        let b = s.inner("batches").unwrap_or_default();
        self.epochs = b.get("epochs")?;
        self.updates = b.get("updates")?;
        self.busy = b.get("seconds")?;
        self.net.write_params(&self.p)
    }
}
