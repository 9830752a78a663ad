//! The DAE trained on a GPU (`train.device = "cuda[:N]"`): per-example SGD
//! of a tied sigmoid model in the persistent kernel, any other batch,
//! optimizer and shape through the minibatch trainer; the same epochs,
//! early stopping and checkpoints as on the CPU through the shared loop.

use super::maths::{DaeConfig, Layout};
use super::model::DenoisingAutoencoder;
use crate::error::Result;
use crate::gpu::fit::{NetFit, Rows};
use crate::gpu::net::{GpuData, Head, Layer, NetSpec};
use crate::gpu::tied::TiedGpu;
use crate::gpu::Gpu;
use crate::layers::activation::Activation;
use crate::layers::Loss;
use crate::tensor::rng::shuffle;
use crate::train::{fit_loop_with, Checkpointing, Fit, FitReport, Observer, State};

/// The DAE as the GPU's minibatch trainer sees it: encoder, then decoder
/// (Wᵀ when tied).
pub fn net_spec(cfg: &DaeConfig, lay: &Layout) -> NetSpec {
    let (nv, nh) = (cfg.n_vis, cfg.n_hid);
    let dec = match &lay.w_dec {
        None => (lay.w.start, true),
        Some(r) => (r.start, false),
    };
    NetSpec {
        layers: vec![
            Layer {
                w: lay.w.start,
                b: lay.b_hid.start,
                n_in: nv,
                n_out: nh,
                trans: false,
                act: cfg.hidden_activation,
            },
            Layer {
                w: dec.0,
                b: lay.b_vis.start,
                n_in: nh,
                n_out: nv,
                trans: dec.1,
                act: Activation::Identity,
            },
        ],
        head: match cfg.loss {
            Loss::CrossEntropy => Head::Xent,
            Loss::Squared => Head::Squared(cfg.output_activation),
        },
        n_params: lay.len,
        decayed: lay.weight_ranges(),
    }
}

/// Per-example SGD in the persistent kernel under the shared loop.
struct TiedFit<'m, 'g> {
    model: &'m mut DenoisingAutoencoder,
    tied: TiedGpu<'g>,
    data: GpuData,
    val: Option<&'m [f32]>,
    x: &'m [f32],
    order: Vec<usize>,
    epochs: usize,
    /// Seconds spent in epochs (not in checkpoints or validation).
    busy: f64,
}

impl DenoisingAutoencoder {
    /// [`DenoisingAutoencoder::fit_with`] on GPU `ordinal` (called by it
    /// when `train.device` is a GPU).
    pub(crate) fn fit_gpu(
        &mut self,
        ordinal: usize,
        x: &[f32],
        val: Option<&[f32]>,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<FitReport> {
        let gpu = Gpu::open(ordinal)?;
        let nv = self.config.n_vis;
        let (epochs, patience) = (self.train.epochs, self.train.patience);
        if !self.uses_fused_kernel() {
            let rows = |x| Rows {
                x,
                dim: nv,
                labels: None,
            };
            let (spec, p, train, noise) = (
                net_spec(&self.config, &self.layout),
                self.params.clone(),
                self.train.clone(),
                self.config.noise,
            );
            let seed = train.seed;
            let mut run = NetFit::new(
                &gpu,
                spec,
                &p,
                &train,
                noise,
                seed,
                rows(x),
                val.map(rows),
                &mut self.rng,
            )?;
            obs.on_start(epochs, run.batches_per_epoch());
            let report = fit_loop_with(&mut run, epochs, patience, obs, "train.lr", ck);
            self.params.copy_from_slice(&run.p);
            return report;
        }
        let seed = self.train.seed;
        let tied = TiedGpu::new(
            &gpu,
            self.tied_shape().expect("a tied sigmoid model"),
            self.layout.tied(&self.params),
            self.train.lr,
            self.train.weight_decay,
            self.config.noise,
            seed,
        )?;
        let mut run = TiedFit {
            data: GpuData::new(&gpu, x, nv, None)?,
            order: (0..x.len() / nv).collect(),
            model: self,
            tied,
            val,
            x,
            epochs: 0,
            busy: 0.0,
        };
        obs.on_start(epochs, 1);
        fit_loop_with(&mut run, epochs, patience, obs, "train.lr", ck)
    }
}

impl Fit for TiedFit<'_, '_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        let t0 = std::time::Instant::now();
        // A fresh order per epoch from the model's stream, as on the CPU.
        self.order.iter_mut().enumerate().for_each(|(i, v)| *v = i);
        shuffle(&mut self.order, &mut self.model.rng);
        let loss = self.tied.epoch(&self.data, &self.order)?;
        obs.on_progress(1, 1);
        self.tied
            .read(self.model.layout.tied_mut(&mut self.model.params))?;
        self.epochs += 1;
        self.busy += t0.elapsed().as_secs_f64();
        Ok((loss, self.order.len() as u64))
    }

    /// Training time only: the epochs, with the copy of the weights back.
    fn seconds(&self, _wall: f64) -> f64 {
        self.busy
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        Ok(self.val.map(|v| self.model.clean_loss(v, usize::MAX)))
    }

    fn start_loss(&mut self) -> Result<Option<f64>> {
        Ok(Some(self.model.clean_loss(self.x, 500)))
    }

    fn params(&self) -> &[f32] {
        &self.model.params
    }

    fn set_params(&mut self, p: &[f32]) {
        self.model.params.copy_from_slice(p);
        if let Err(e) = self.tied.write(self.model.layout.tied(p)) {
            // Called to restore the best weights at the end, which live on
            // the host; the device copy is not read again.
            eprintln!("note: could not copy the best weights back to the GPU: {e}");
        }
    }

    fn save_state(&self, s: &mut State) -> Result<()> {
        s.put_tensor("params", &self.model.params);
        s.put_rng("rng", &self.model.rng);
        s.put("gpu_seed", &self.tied.seed);
        s.put("gpu_ctr", &self.tied.ctr);
        s.put("epochs", &self.epochs);
        s.put("seconds", &self.busy);
        Ok(())
    }

    fn load_state(&mut self, s: &State) -> Result<()> {
        let n = self.model.params.len();
        self.model.params.copy_from_slice(s.tensor("params", n)?);
        self.model.rng = s.rng("rng")?;
        self.tied.seed = s.get("gpu_seed")?;
        self.tied.ctr = s.get("gpu_ctr")?;
        self.epochs = s.get("epochs")?;
        self.busy = s.get("seconds")?;
        self.tied.write(self.model.layout.tied(&self.model.params))
    }
}
