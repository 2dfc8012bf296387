//! Test helpers: one moto server per test process, unique prefixes, polling with a
//! deadline.
//!
//! ```no_run
//! # async fn t() {
//! use dishpatch_local::{testing, LocalStack, LocalStackOptions};
//! let local = LocalStack::start(
//!     LocalStackOptions::new(testing::unique_prefix("saga")).endpoint(testing::moto()),
//! )
//! .await
//! .unwrap();
//! # }
//! ```

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static MOTO: OnceLock<String> = OnceLock::new();
static MOTO_PROCESS: Mutex<Option<Child>> = Mutex::new(None);

/// The emulator endpoint for tests: `AWS_ENDPOINT_URL` when set; otherwise a moto
/// server started once for this process on a free port: `$MOTO_SERVER` if set, else
/// `local/moto_serial.py` under the workspace venv's python (moto serving one request at
/// a time), else `.venv/bin/moto_server`, else `moto_server` on `PATH`. It is stopped
/// when the test process exits: it runs under a small shell that kills it when our end
/// of its stdin closes, which the OS does at exit even after a panic.
pub fn moto() -> &'static str {
    MOTO.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start_moto(),
    })
}

/// How to run the emulator: `(program, args before the port, args after the port)`.
fn moto_command() -> (PathBuf, Vec<PathBuf>, Vec<String>) {
    let host = vec!["-H".to_owned(), "127.0.0.1".to_owned(), "-p".to_owned()];
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return (PathBuf::from(p), Vec::new(), host);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = here.join("../.venv/bin/python");
    let serial = here.join("moto_serial.py");
    if python.exists() && serial.exists() {
        // One request at a time: moto's threaded server is not atomic for concurrent
        // conditional TransactWriteItems.
        return (python, vec![serial], Vec::new());
    }
    let venv = here.join("../.venv/bin/moto_server");
    if venv.exists() {
        return (venv, Vec::new(), host);
    }
    (PathBuf::from("moto_server"), Vec::new(), host)
}

fn start_moto() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port for moto");
    let (program, pre, flags) = moto_command();
    // The emulator logs every request: kept only when asked for.
    let log = std::env::var("DISHPATCH_MOTO_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/dev/null"));
    // `sh -c SCRIPT LOG PROGRAM ARGS... PORT`: runs the emulator in the background and
    // kills it when our end of the shell's stdin closes.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"log="$0"; "$@" >"$log" 2>&1 & pid=$!; cat >/dev/null; kill $pid 2>/dev/null"#)
        .arg(&log)
        .arg(&program)
        .args(&pre)
        .args(&flags)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    *MOTO_PROCESS.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);

    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the emulator ({}) did not start on port {port} (set DISHPATCH_MOTO_LOG=<file> to see its output)",
            program.display(),
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    format!("http://127.0.0.1:{port}")
}

/// A prefix no other test (or test run) uses: `t<8 hex>-<name>`, within 40 characters.
pub fn unique_prefix(name: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    format!("t{}-{clean}", &id[..8])
}

/// An SDK configuration for the test emulator.
pub async fn sdk() -> aws_config::SdkConfig {
    crate::sdk::emulator_config(Some(moto())).await
}

/// Polls `f` until it returns `Some` or `timeout` passes (then `None`). Polls every
/// 25 ms, growing to 250 ms.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(25);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
