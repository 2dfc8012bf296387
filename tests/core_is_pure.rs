//! dishpatch-core stays pure: nothing it builds on, in its code or its tests, is an
//! AWS, Lambda or HTTP crate or an async runtime. The dependency graph is the proof,
//! so a stray dependency fails here rather than in review.

use std::path::PathBuf;
use std::process::Command;

/// Crate-name prefixes core may not reach. `http ` and `http v` catch the `http` crate
/// without catching names that merely start with it.
const FORBIDDEN: &[&str] = &[
    "aws-", "aws_", "lambda", "hyper", "reqwest", "http ", "http v", "tokio",
];

#[test]
fn core_depends_on_no_aws_lambda_or_http_crate() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "dishpatch-core",
            "-e",
            "normal,dev",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo tree runs");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        tree.lines().any(|l| l.starts_with("dishpatch-core ")),
        "cargo tree did not list dishpatch-core:\n{tree}"
    );
    let offending: Vec<&str> = tree
        .lines()
        .filter(|l| FORBIDDEN.iter().any(|p| l.starts_with(p)))
        .collect();
    assert!(
        offending.is_empty(),
        "dishpatch-core reaches crates it may not depend on:\n{}",
        offending.join("\n")
    );
}
