//! Each function's environment against a running local stack, as a dotenv file
//! (`KEY=VALUE` lines), so a function run on its own (`cargo lambda watch --env-file`)
//! talks to the stack's resources in the emulator: the template's variables as the
//! stack resolved them, the emulator's endpoint, the region and test credentials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::provision::{FunctionInfo, Stack};

/// Where `dishpatch-local up` writes them, relative to the directory it runs in.
pub const DIR: &str = ".local/env";

/// The variables of one function, by name.
pub fn variables(stack: &Stack, f: &FunctionInfo, endpoint: &str) -> BTreeMap<String, String> {
    let credential = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "test".to_owned())
    };
    let mut vars = f.variables.clone();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", stack.region.clone()),
        ("AWS_DEFAULT_REGION", stack.region.clone()),
        ("AWS_ACCESS_KEY_ID", credential("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", credential("AWS_SECRET_ACCESS_KEY")),
        // The deployed name, so log lines name the function as the stack's do.
        ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
    ] {
        vars.insert(k.to_owned(), v);
    }
    vars
}

/// The file's text. Values are written bare: the stack's values are names, ARNs, URLs
/// and numbers, with no character a dotenv reader would treat specially.
pub fn render(vars: &BTreeMap<String, String>) -> String {
    vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// Reads a file [`render`] wrote (blank lines and `#` comments skipped).
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// Writes `<dir>/<binary>.env` for every function of the stack; returns the paths.
pub fn write(dir: &Path, stack: &Stack, endpoint: &str) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for f in stack.functions.values() {
        let path = dir.join(format!("{}.env", f.binary));
        std::fs::write(&path, render(&variables(stack, f, endpoint)))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_what_render_writes() {
        let vars: BTreeMap<String, String> = [
            ("ORDERS_TABLE", "dishpatch-OrdersTable"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("COMPENSATION_RETRY_DELAYS", "1,2,4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(parse(&render(&vars)), vars);
        assert_eq!(parse("# c\n\nA=b=c\n"), parse("A=b=c"));
    }
}
