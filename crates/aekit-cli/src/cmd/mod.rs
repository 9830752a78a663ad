//! One module per verb.

mod bench;
mod cae;
mod experiment;
mod gradcheck;
mod model_data;
mod stacked;
mod train;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Command::Train(a) => train::run(*a),
        Command::Encode(a) => model_data::encode(a),
        Command::Reconstruct(a) => model_data::reconstruct(a),
        Command::Eval(a) => model_data::eval(a),
        Command::Pretrain(a) => stacked::pretrain(*a),
        Command::Finetune(a) => stacked::finetune(*a),
        Command::Experiment(crate::cli::ExperimentCommand::GradualVsStacked(a)) => {
            experiment::gradual_vs_stacked(*a)
        }
        Command::Experiment(crate::cli::ExperimentCommand::Eager(a)) => cae::eager(*a),
        Command::Cae(a) => cae::train(*a),
        Command::Ensemble(a) => cae::ensemble(*a),
        Command::Gradcheck(a) => gradcheck::run(a),
        Command::Patches(a) => gradcheck::patches(a),
        Command::Bench(crate::cli::BenchCommand::Threads(a)) => bench::threads(a),
        Command::Bench(crate::cli::BenchCommand::Curve(a)) => bench::curve(a),
        Command::Bench(crate::cli::BenchCommand::Sparse(a)) => bench::sparse(a),
    }
}

/// `runs/<prefix>-<unix time>` unless a folder was given.
fn out_dir(out: Option<std::path::PathBuf>, prefix: &str) -> std::path::PathBuf {
    out.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        std::path::PathBuf::from(format!("runs/{prefix}-{t}"))
    })
}

/// The test figures shared by `train`'s summary.json and `eval`.
fn test_metrics_json(m: &aekit::models::Metrics, n: usize) -> serde_json::Value {
    serde_json::json!({
        "n_test": n,
        "test_loss": m.loss,
        "test_squared_error": m.squared_error,
        "test_cross_entropy": m.cross_entropy,
    })
}
