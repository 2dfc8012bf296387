//! template.yaml passes both validators the deploy path uses.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var("DISHPATCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".venv"));
    let bin = venv.join("bin").join(tool);
    assert!(
        bin.exists(),
        "{} is missing: run scripts/setup",
        bin.display()
    );
    bin
}

fn run(tool: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(venv_bin(tool))
        .args(args)
        .current_dir(root())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("validator runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn cfn_lint_passes() {
    let (ok, out) = run("cfn-lint", &["template.yaml"]);
    assert!(ok, "cfn-lint found problems:\n{out}");
}

#[test]
fn sam_validate_lint_passes() {
    let (ok, out) = run(
        "sam",
        &["validate", "--lint", "--template", "template.yaml"],
    );
    assert!(
        ok && out.contains("is a valid SAM Template"),
        "sam validate --lint:\n{out}"
    );
}

/// Values neither validator checks: a typo here deploys and then fails at runtime.
#[test]
fn response_types_and_runtimes_are_real_values() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Runtime:") {
            assert_eq!(v.trim(), "provided.al2023", "{line}");
        }
        if line.starts_with("- ") && line.to_lowercase().contains("batchitemfailures") {
            assert_eq!(line, "- ReportBatchItemFailures", "{line}");
        }
    }
    assert!(text.contains("FunctionResponseTypes"));
}
