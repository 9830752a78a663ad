//! The CAE trained on a GPU (`train.device = "cuda[:N]"`): the network
//! described to the GPU trainer layer by layer, under the shared epoch loop
//! with the CPU's order (one permutation carried and shuffled again each
//! epoch), validation, eager stop and checkpoints.

use super::model::ConvAutoencoder;
use super::network::{Network, Op};
use super::settings::CaeTrainConfig;
use super::trainer::eager_stop;
use crate::data::Dataset;
use crate::error::Result;
use crate::gpu::conv::{ConvLayer, ConvNode, ConvSpec, GpuCae};
use crate::gpu::net::GpuData;
use crate::gpu::Gpu;
use crate::tensor::rng::{seeded, shuffle, Rng};
use crate::train::{fit_loop_with, Checkpointing, EpochMetrics, Fit, FitReport, Observer, State};

/// The network as the GPU trainer sees it.
pub fn conv_spec(net: &Network, loss: crate::layers::Loss) -> ConvSpec {
    let nodes = net
        .nodes
        .iter()
        .map(|n| ConvNode {
            op: match n.op {
                Op::Conv { g, c_out } => ConvLayer::Conv { g, c_out },
                Op::ConvT { g, c_in } => ConvLayer::ConvT { g, c_in },
                Op::Pool { s, slot } => ConvLayer::Pool { s, slot },
                Op::Unpool { slot } => ConvLayer::Unpool { slot },
                Op::Upsample { s } => ConvLayer::Upsample { s },
                Op::Act(a) => ConvLayer::Act(a),
            },
            inp: n.inp,
            out: n.out,
            w: n.w.start,
            b: n.b.start,
        })
        .collect();
    ConvSpec {
        nodes,
        n_params: net.n_params,
        n_pools: net.n_pools,
        decayed: net
            .nodes
            .iter()
            .map(|n| n.w.clone())
            .filter(|r| !r.is_empty())
            .collect(),
        loss,
    }
}

struct CaeGpuFit<'m, 'g> {
    model: &'m mut ConvAutoencoder,
    cae: GpuCae<'g>,
    data: GpuData,
    val: Option<GpuData>,
    order: Vec<usize>,
    rng: Rng,
    batch: usize,
    epochs: usize,
    updates: u64,
    /// Seconds spent in epochs (not in checkpoints or validation).
    busy: f64,
    min_improvement: f64,
}

impl ConvAutoencoder {
    /// [`ConvAutoencoder::fit`] on GPU `ordinal` (called by it when
    /// `train.device` is a GPU).
    pub(crate) fn fit_gpu(
        &mut self,
        ordinal: usize,
        train: &Dataset,
        val: &Dataset,
        cfg: &CaeTrainConfig,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<FitReport> {
        let gpu = Gpu::open(ordinal)?;
        let batch = cfg.train.batch.min(train.n).max(1);
        let cae = GpuCae::new(
            &gpu,
            conv_spec(&self.net, self.loss),
            &self.params,
            &cfg.train,
            cfg.noise,
            cfg.train.seed,
        )?;
        let vdata = (val.n > 0)
            .then(|| GpuData::new(&gpu, &val.x, val.dim, None))
            .transpose()?;
        let mut run = CaeGpuFit {
            data: GpuData::new(&gpu, &train.x, train.dim, None)?,
            val: vdata,
            order: (0..train.n).collect(),
            rng: seeded(cfg.train.seed ^ 0xcae0_5eed),
            model: self,
            cae,
            batch,
            epochs: 0,
            updates: 0,
            busy: 0.0,
            min_improvement: cfg.min_improvement,
        };
        obs.on_start(cfg.train.epochs, train.n.div_ceil(batch));
        fit_loop_with(
            &mut run,
            cfg.train.epochs,
            cfg.train.patience,
            obs,
            "train.lr",
            ck,
        )
    }
}

impl Fit for CaeGpuFit<'_, '_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        let t0 = std::time::Instant::now();
        // The CPU's carried order: the last epoch's permutation, shuffled again.
        shuffle(&mut self.order, &mut self.rng);
        let out = self
            .cae
            .epoch(
                &self.data,
                &self.order,
                self.batch,
                &mut |k, total| obs.on_progress(k, total),
                &crate::train::checkpoint::stop_requested,
            )?
            .unwrap_or((f64::NAN, 0));
        self.cae.opt.read(self.cae.gpu(), &mut self.model.params)?;
        self.epochs += 1;
        self.updates += out.1;
        self.busy += t0.elapsed().as_secs_f64();
        Ok(out)
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        match &self.val {
            Some(v) => Ok(Some(self.cae.eval(v)?)),
            None => Ok(None),
        }
    }

    fn params(&self) -> &[f32] {
        &self.model.params
    }

    fn set_params(&mut self, p: &[f32]) {
        self.model.params.copy_from_slice(p);
        if let Err(e) = self.cae.opt.write(self.cae.gpu(), p) {
            // Called to restore the best weights at the end, which live on
            // the host; the device copy is not read again.
            eprintln!("note: could not copy the best weights back to the GPU: {e}");
        }
    }

    /// Training time only, not validation.
    fn seconds(&self, _wall: f64) -> f64 {
        self.busy
    }

    fn after_epoch(&mut self, m: &EpochMetrics, best_before: f64) -> Result<bool> {
        Ok(eager_stop(self.min_improvement, m, best_before))
    }

    fn save_state(&self, s: &mut State) -> Result<()> {
        s.put_tensor("params", &self.model.params);
        s.put_rng("rng", &self.rng);
        let (m, v) = self.cae.opt.read_state(self.cae.gpu())?;
        s.put_tensor("adam.m", &m);
        s.put_tensor("adam.v", &v);
        s.put("adam.t", &self.cae.opt.t);
        s.put("gpu_seed", &self.cae.seed);
        s.put("gpu_ctr", &self.cae.ctr);
        let mut b = State::new();
        b.put("epochs", &self.epochs);
        b.put("updates", &self.updates);
        b.put("seconds", &self.busy);
        b.put("order", &self.order);
        s.nest("batches", b);
        Ok(())
    }

    fn load_state(&mut self, s: &State) -> Result<()> {
        let n = self.model.params.len();
        self.model.params.copy_from_slice(s.tensor("params", n)?);
        self.rng = s.rng("rng")?;
        let gpu = self.cae.gpu();
        self.cae.opt.write(gpu, &self.model.params)?;
        self.cae.opt.t = s.get("adam.t")?;
        let len = if self.cae.opt.t == 0 { 0 } else { n };
        self.cae.opt.write_state(
            gpu,
            s.tensor("adam.m", len)?,
            s.tensor_any("adam.v").unwrap_or(&[]),
        )?;
        self.cae.seed = s.get("gpu_seed")?;
        self.cae.ctr = s.get("gpu_ctr")?;
        let b = s.inner("batches").unwrap_or_default();
        self.epochs = b.get("epochs")?;
        self.updates = b.get("updates")?;
        self.busy = b.get("seconds")?;
        let order: Vec<usize> = b.get("order")?;
        if order.len() == self.order.len() {
            self.order = order;
        }
        Ok(())
    }
}
