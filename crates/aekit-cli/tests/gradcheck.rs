//! `aekit gradcheck`.

mod common;

use common::{aekit, fails_with, stderr};

#[test]
fn gradcheck_passes_and_fails_with_the_right_exit_code() {
    let o = aekit(&[
        "gradcheck",
        "--model",
        "all",
        "--n-vis",
        "9",
        "--hidden",
        "4",
        "--samples",
        "6",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().count() >= 8 && out.lines().all(|l| l.starts_with("ok")),
        "{out}"
    );
    // A tolerance no finite-difference check can meet must fail, non-zero.
    let o = aekit(&[
        "gradcheck",
        "--n-vis",
        "9",
        "--hidden",
        "4",
        "--samples",
        "6",
        "--tolerance",
        "1e-30",
    ]);
    fails_with(&o, &["gradient checks exceeded"]);
    fails_with(&aekit(&["gradcheck", "--model", "cnn"]), &["unknown model"]);
}
