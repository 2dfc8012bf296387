//! The AWS emulator for tests, started once per process: the one place that knows how.
//!
//! [`endpoint`] returns `AWS_ENDPOINT_URL` when the test command started an emulator
//! (`scripts/test` does), otherwise an emulator started for this process on a free
//! port, the one `DISHPATCH_EMULATOR` names ([`Emulator`]; ministack when unset). It is
//! stopped when the process exits: each emulator process runs under a small shell that
//! kills it when our end of its stdin closes, which the OS does at exit even after a
//! panic.
//!
//! * `ministack` (the default): `.venv/ministack/bin/ministack` (the Python package
//!   `ministack`), every service on one port, serving requests concurrently.
//! * `moto`: `$MOTO_SERVER` if set, else `local/moto_serial.py` under the workspace
//!   venv's python (moto serving one request at a time), else `.venv/bin/moto_server`,
//!   else `moto_server` on `PATH`.
//! * `dynoxide+fauxqs`: dynoxide (the Rust crate `dynoxide-rs`, SQLite-backed) for
//!   DynamoDB and its streams, fauxqs (a Node package) for SQS and SNS, and moto for what
//!   neither serves (SSM, CloudWatch), behind one endpoint that routes each request by its
//!   service ([`router`]).
//!
//! `scripts/setup` installs ministack and moto, `scripts/setup --emulators` the pair too;
//! `dishpatch-emulator PORT` (this crate's binary, run by `scripts/emulator`) starts the
//! selected one for a whole stack.
//!
//! Why ministack is the default: it passes every test the suite has (transactions atomic
//! under concurrency, streams, redrive, filter policies, delays, trace headers) and serves
//! requests concurrently, so the whole suite runs in about half moto's time.
//!
//! Why moto serves one request at a time: moto's threaded server applies a
//! TransactWriteItems item by item while other requests run (and rolls a failed one back
//! by restoring a snapshot over their writes), so two racing conditional transactions
//! could both "win" there, which DynamoDB never allows. Tests that race writes rely on
//! this; clients still interleave freely.
//!
//! Depends on the standard library only.

pub mod router;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static ENDPOINT: OnceLock<String> = OnceLock::new();
static PROCESSES: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// The emulators the local stack can run on (`DISHPATCH_EMULATOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// MiniStack: every service in one asyncio server (the default).
    Ministack,
    /// moto server, one request at a time (`local/moto_serial.py`).
    Moto,
    /// dynoxide for DynamoDB and streams, fauxqs for SQS and SNS, moto for the rest.
    DynoxideFauxqs,
}

impl Emulator {
    /// Every emulator, the default first.
    pub const ALL: [Emulator; 3] = [
        Emulator::Ministack,
        Emulator::Moto,
        Emulator::DynoxideFauxqs,
    ];

    /// Its `DISHPATCH_EMULATOR` value.
    pub fn name(self) -> &'static str {
        match self {
            Emulator::Moto => "moto",
            Emulator::Ministack => "ministack",
            Emulator::DynoxideFauxqs => "dynoxide+fauxqs",
        }
    }

    /// The emulator a `DISHPATCH_EMULATOR` value names.
    pub fn parse(name: &str) -> Result<Emulator, String> {
        Emulator::ALL
            .into_iter()
            .find(|e| e.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Emulator::ALL.iter().map(|e| e.name()).collect();
                format!("unknown emulator {name:?}: one of {}", names.join(", "))
            })
    }

    /// The one `DISHPATCH_EMULATOR` names, moto when unset or empty.
    pub fn from_env() -> Emulator {
        match std::env::var("DISHPATCH_EMULATOR") {
            Ok(v) if !v.trim().is_empty() => {
                Emulator::parse(&v).unwrap_or_else(|e| panic!("DISHPATCH_EMULATOR: {e}"))
            }
            _ => Emulator::ALL[0],
        }
    }
}

/// The emulator's URL for this process (see the crate docs).
pub fn endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start(Emulator::from_env(), 0),
    })
}

/// The workspace root (this crate lives at `local/emulator`).
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn venv() -> PathBuf {
    std::env::var("DISHPATCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".venv"))
}

/// A process to start: program, arguments (the port is appended unless an argument or
/// variable holds `{port}`), environment.
struct Spec {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

impl Spec {
    fn new(program: PathBuf, args: &[&str]) -> Spec {
        Spec {
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
        }
    }
}

/// How to run moto.
fn moto() -> Spec {
    let host = ["-H", "127.0.0.1", "-p", "{port}"];
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return Spec::new(PathBuf::from(p), &host);
    }
    let python = venv().join("bin/python");
    let serial = workspace().join("local/moto_serial.py");
    if python.exists() && serial.exists() {
        let serial = serial.to_string_lossy().into_owned();
        return Spec::new(python, &[&serial, "{port}"]);
    }
    let server = venv().join("bin/moto_server");
    if server.exists() {
        return Spec::new(server, &host);
    }
    Spec::new(PathBuf::from("moto_server"), &host)
}

fn ministack() -> Spec {
    let mut s = Spec::new(venv().join("ministack/bin/ministack"), &[]);
    s.env = vec![
        ("GATEWAY_PORT", "{port}".to_owned()),
        ("BIND_HOST", "127.0.0.1".to_owned()),
        ("LOG_LEVEL", "WARNING".to_owned()),
    ];
    s
}

fn dynoxide() -> Spec {
    Spec::new(
        venv().join("dynoxide/bin/dynoxide"),
        &["--host", "127.0.0.1", "--port", "{port}", "--log", "quiet"],
    )
}

fn fauxqs() -> Spec {
    let app = venv().join("node/node_modules/fauxqs/dist/app.js");
    let launcher = workspace().join("local/fauxqs.mjs");
    Spec::new(
        PathBuf::from("node"),
        &[
            &launcher.to_string_lossy(),
            &app.to_string_lossy(),
            "{port}",
        ],
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port for the emulator")
}

/// Starts `spec` on `port` (0: a free one) and waits until it accepts connections.
/// `log_suffix` tells apart the logs of an emulator's several processes.
fn run(spec: Spec, port: u16, log_suffix: &str) -> SocketAddr {
    let port = if port == 0 { free_port() } else { port };
    let fill = |s: &str| s.replace("{port}", &port.to_string());
    // Each emulator logs every request: kept only when asked for.
    let log = std::env::var("DISHPATCH_MOTO_LOG")
        .map(|p| PathBuf::from(format!("{p}{log_suffix}")))
        .unwrap_or_else(|_| PathBuf::from("/dev/null"));
    // `sh -c SCRIPT LOG PROGRAM ARGS...`: runs the emulator in the background and kills
    // it when our end of the shell's stdin closes.
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"log="$0"; "$@" >"$log" 2>&1 & pid=$!; cat >/dev/null; kill $pid 2>/dev/null"#)
        .arg(&log)
        .arg(&spec.program)
        .args(spec.args.iter().map(|a| fill(a)))
        .envs(spec.env.iter().map(|(k, v)| (*k, fill(v))))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); run scripts/setup first",
                spec.program.display()
            )
        });
    PROCESSES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(child);

    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the emulator ({}) did not start on port {port} (set DISHPATCH_MOTO_LOG=<file> to see its output)",
            spec.program.display(),
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    addr
}

/// Starts `emulator` with its endpoint on `port` (0: a free one); its URL. The processes
/// live as long as this one.
pub fn start(emulator: Emulator, port: u16) -> String {
    let addr = match emulator {
        Emulator::Moto => run(moto(), port, ""),
        Emulator::Ministack => run(ministack(), port, ""),
        Emulator::DynoxideFauxqs => {
            let listener = TcpListener::bind(("127.0.0.1", port)).expect("the emulator's port");
            let addr = listener.local_addr().expect("a bound address");
            let dynamo = run(dynoxide(), 0, ".dynoxide");
            let queues = run(fauxqs(), 0, ".fauxqs");
            let rest = run(moto(), 0, ".moto");
            router::spawn(
                listener,
                router::Routes {
                    services: vec![
                        ("dynamodb", dynamo),
                        ("dynamodbstreams", dynamo),
                        ("sqs", queues),
                        ("sns", queues),
                    ],
                    fallback: rest,
                },
            );
            addr
        }
    };
    format!("http://{addr}")
}

/// Stops every emulator process [`start`] started in this process (a benchmark that
/// compares emulators runs one after the other).
pub fn stop_all() {
    let children: Vec<Child> =
        std::mem::take(&mut *PROCESSES.lock().unwrap_or_else(|p| p.into_inner()));
    for mut c in children {
        drop(c.stdin.take()); // its shell kills the emulator, then exits
        let _ = c.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_emulator_is_named_by_its_switch_value() {
        for e in Emulator::ALL {
            assert_eq!(Emulator::parse(e.name()), Ok(e));
        }
        assert!(Emulator::parse("localstack").is_err());
    }
}
