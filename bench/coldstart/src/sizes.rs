//! Artefact sizes: the stripped release binary and the deployment zip that
//! `cargo lambda build --output-format zip` writes, per architecture.

use std::path::Path;

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sizes {
    pub binary_x86_64: Option<u64>,
    pub zip_x86_64: Option<u64>,
    pub binary_arm64: Option<u64>,
    pub zip_arm64: Option<u64>,
}

pub struct Dirs<'a> {
    /// Cargo's target dir: binaries are under `<triple>/release/`.
    pub target: &'a Path,
    pub lambda_x86_64: &'a Path,
    pub lambda_arm64: &'a Path,
}

pub fn of(function: &str, dirs: &Dirs) -> Sizes {
    let len = |p: &Path| std::fs::metadata(p).ok().map(|m| m.len());
    let bin = |triple: &str| len(&dirs.target.join(triple).join("release").join(function));
    Sizes {
        binary_x86_64: bin("x86_64-unknown-linux-gnu"),
        zip_x86_64: len(&dirs.lambda_x86_64.join(function).join("bootstrap.zip")),
        binary_arm64: bin("aarch64-unknown-linux-gnu"),
        zip_arm64: len(&dirs.lambda_arm64.join(function).join("bootstrap.zip")),
    }
}
