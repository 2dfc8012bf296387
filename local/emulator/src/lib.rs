//! The AWS emulator for tests, started once per process: the one place that knows how.
//!
//! [`endpoint`] returns `AWS_ENDPOINT_URL` when the test command started an emulator
//! (`scripts/test` does), otherwise a moto server started for this process on a free
//! port: `$MOTO_SERVER` if set, else `local/moto_serial.py` under the workspace venv's
//! python (moto serving one request at a time), else `.venv/bin/moto_server`, else
//! `moto_server` on `PATH`. It is stopped when the process exits: it runs under a small
//! shell that kills it when our end of its stdin closes, which the OS does at exit even
//! after a panic.
//!
//! Why one request at a time: moto's threaded server applies a TransactWriteItems item by
//! item while other requests run (and rolls a failed one back by restoring a snapshot
//! over their writes), so two racing conditional transactions could both "win" there,
//! which DynamoDB never allows. Tests that race writes rely on this; clients still
//! interleave freely.
//!
//! Depends on the standard library only.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static ENDPOINT: OnceLock<String> = OnceLock::new();
static PROCESS: Mutex<Option<Child>> = Mutex::new(None);

/// The emulator's URL for this process (see the crate docs).
pub fn endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start(),
    })
}

/// The workspace root (this crate lives at `local/emulator`).
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How to run the emulator: `(program, args before the port, args after the port)`.
fn command() -> (PathBuf, Vec<PathBuf>, Vec<String>) {
    let host = vec!["-H".to_owned(), "127.0.0.1".to_owned(), "-p".to_owned()];
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return (PathBuf::from(p), Vec::new(), host);
    }
    let venv = std::env::var("DISHPATCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".venv"));
    let python = venv.join("bin/python");
    let serial = workspace().join("local/moto_serial.py");
    if python.exists() && serial.exists() {
        return (python, vec![serial], Vec::new());
    }
    let server = venv.join("bin/moto_server");
    if server.exists() {
        return (server, Vec::new(), host);
    }
    (PathBuf::from("moto_server"), Vec::new(), host)
}

fn start() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port for the emulator");
    let (program, pre, flags) = command();
    // The emulator logs every request: kept only when asked for.
    let log = std::env::var("DISHPATCH_MOTO_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/dev/null"));
    // `sh -c SCRIPT LOG PROGRAM ARGS... PORT`: runs the emulator in the background and
    // kills it when our end of the shell's stdin closes.
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"log="$0"; "$@" >"$log" 2>&1 & pid=$!; cat >/dev/null; kill $pid 2>/dev/null"#)
        .arg(&log)
        .arg(&program)
        .args(&pre)
        .args(&flags)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); run scripts/setup first",
                program.display()
            )
        });
    *PROCESS.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);

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
