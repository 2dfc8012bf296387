//! The operator CLI targets real AWS: its build graph holds none of the local stack's
//! weight (the emulator, the six function crates, the card sandbox, plotting), nor the
//! Lambda runtime the functions' shared crate brings. hyper is not checked by name: the
//! AWS SDK's HTTPS client brings it in as a client anyway.

use std::collections::BTreeSet;
use std::process::Command;

/// Besides the function crates (the template's list).
const FORBIDDEN: &[&str] = &[
    "dishpatch-local",
    "dishpatch-emulator",
    "dishpatch-psp-sandbox",
    "dishpatch-shared",
    "lambda_runtime",
    "lambda_http",
    "plotters",
];

fn forbidden() -> impl Iterator<Item = &'static str> {
    let functions = dishpatch_template::embedded_binaries().iter();
    FORBIDDEN
        .iter()
        .copied()
        .chain(functions.map(String::as_str))
}

/// The names of every package in `package`'s normal (non-dev, non-build) dependency graph.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(" v").next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_operator_cli_depends_on_no_emulator_function_sandbox_or_plotting_crate() {
    let ops = normal_dependencies("dishpatch-ops");
    assert!(
        ops.contains("dishpatch-invariants") && ops.contains("dishpatch-template"),
        "{ops:?}"
    );
    let found: Vec<_> = forbidden().filter(|n| ops.contains(*n)).collect();
    assert!(found.is_empty(), "dishpatch-ops depends on {found:?}");
}

#[test]
fn the_checker_and_the_template_reader_depend_on_none_either() {
    for package in ["dishpatch-invariants", "dishpatch-template"] {
        let deps = normal_dependencies(package);
        let found: Vec<_> = forbidden().filter(|n| deps.contains(*n)).collect();
        assert!(found.is_empty(), "{package} depends on {found:?}");
    }
}

/// The same reading of the same command finds them where they are: the check has teeth.
#[test]
fn the_local_stack_does_depend_on_them() {
    let local = normal_dependencies("dishpatch-local");
    for name in forbidden().filter(|n| *n != "dishpatch-local") {
        assert!(local.contains(name), "{name} not found in {local:?}");
    }
}
