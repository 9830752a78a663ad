//! One module per verb.

mod model_data;
mod train;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Command::Train(a) => train::run(*a),
        Command::Encode(a) => model_data::encode(a),
        Command::Reconstruct(a) => model_data::reconstruct(a),
        Command::Eval(a) => model_data::eval(a),
    }
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
