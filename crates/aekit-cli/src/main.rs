//! The `aekit` command: a thin face over the library.

mod cli;
mod cmd;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches();
    if let Err(e) = cli::check_resume(&matches) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Subnormal results are 0 on this thread too, as on the pools' threads
    // (why: `aekit::tensor::ftz`).
    aekit::tensor::ftz::enable_for_thread();
    // This thread lives as long as the process: it becomes one of the
    // thread pool's threads, so a parallel loop starts without a hand-over.
    aekit::tensor::pool_includes_this_thread();
    // Ctrl-C or SIGTERM: the training loops stop at their next step, keeping
    // the last complete checkpoint; a second one quits at once.
    let _ = ctrlc::set_handler(|| {
        if aekit::train::checkpoint::stop_requested() {
            std::process::exit(130);
        }
        eprintln!("\nstopping at the next step (again to quit at once)");
        aekit::train::checkpoint::request_stop();
    });
    match cmd::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let stopped = e
                .downcast_ref::<aekit::Error>()
                .is_some_and(|e| matches!(e, aekit::Error::Interrupted(_)));
            if stopped {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
