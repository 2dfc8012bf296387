//! The results: one JSON document and one self-contained markdown section, with each
//! target checked against the figure measured in this run.

use std::fmt::Write;

use serde::Serialize;

use crate::measure::Sample;
use crate::sizes::Sizes;
use crate::stats::{summarize, Summary};
use crate::subject::Kind;

pub const INIT_TARGET_MS: f64 = 8.0;
pub const PYTHON_RATIO_TARGET: f64 = 40.0;
pub const NODE_RATIO_TARGET: f64 = 12.0;
/// Lambda's memory figures ("Max Memory Used") are MiB.
pub const RSS_TARGET_MIB: f64 = 20.0;
/// File sizes are decimal megabytes (10^6 bytes), the stricter reading.
pub const ZIP_TARGET_BYTES: u64 = 6_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub rustc: String,
    /// `/proc/loadavg` (1, 5, 15 min) when the measurements started and ended.
    pub load_before: String,
    pub load_after: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectResult {
    pub name: String,
    pub function: String,
    pub kind: Kind,
    /// The first invocation talked to the emulator (a second run of the function).
    pub with_io: bool,
    /// What-if runs: the label of their extra environment.
    pub variant: Option<String>,
    /// Versions of what a peer runs; empty for the functions.
    pub label: String,
    pub event: String,
    pub init_ms: Option<Summary>,
    pub init_cpu_ms: Option<Summary>,
    pub first_invoke_ms: Option<Summary>,
    pub peak_rss_mib: Option<Summary>,
    pub sizes: Option<Sizes>,
    pub failures: Vec<String>,
    pub samples: Vec<Sample>,
}

impl SubjectResult {
    pub fn new(subject: &crate::subject::Subject, label: String, sizes: Option<Sizes>) -> Self {
        SubjectResult {
            name: subject.name.clone(),
            function: subject.function.clone(),
            kind: subject.kind,
            with_io: subject.with_io,
            variant: subject.variant.clone(),
            label,
            event: subject.event_label.clone(),
            init_ms: None,
            init_cpu_ms: None,
            first_invoke_ms: None,
            peak_rss_mib: None,
            sizes,
            failures: vec![],
            samples: vec![],
        }
    }

    /// A function measured with the I/O-free event (the one the targets use).
    pub fn is_plain_function(&self) -> bool {
        self.kind == Kind::Rust && !self.with_io && self.variant.is_none()
    }

    pub fn summarize(&mut self) {
        let pick =
            |f: fn(&Sample) -> f64| summarize(&self.samples.iter().map(f).collect::<Vec<_>>());
        self.init_ms = pick(|s| s.init_ms);
        self.init_cpu_ms = pick(|s| s.init_cpu_ms);
        self.first_invoke_ms = pick(|s| s.first_invoke_ms);
        self.peak_rss_mib = pick(|s| s.peak_rss_kib as f64 / 1024.0);
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub function: String,
    /// Python peer's init median over the function's, same run.
    pub python_over_rust: Option<f64>,
    pub node_over_rust: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub target: String,
    pub function: String,
    pub figure: String,
    /// `None`: not measurable here (the figure says why).
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub command: String,
    pub machine: Machine,
    pub runs: usize,
    pub warmup: usize,
    pub notes: Vec<String>,
    pub subjects: Vec<SubjectResult>,
    pub ratios: Vec<Ratio>,
    pub checks: Vec<Check>,
}

fn median_of(s: &Option<Summary>) -> Option<f64> {
    s.as_ref().map(|s| s.median)
}

pub fn ratios(subjects: &[SubjectResult]) -> Vec<Ratio> {
    let peer = |k: Kind| {
        subjects
            .iter()
            .find(|s| s.kind == k)
            .and_then(|s| median_of(&s.init_ms))
    };
    let (py, node) = (peer(Kind::Python), peer(Kind::Node));
    subjects
        .iter()
        .filter(|s| s.is_plain_function())
        .map(|s| {
            let rust = median_of(&s.init_ms).filter(|m| *m > 0.0);
            let over = |p: Option<f64>| Some(p? / rust?);
            Ratio {
                function: s.name.clone(),
                python_over_rust: over(py),
                node_over_rust: over(node),
            }
        })
        .collect()
}

pub fn checks(subjects: &[SubjectResult], ratios: &[Ratio]) -> Vec<Check> {
    let mut out = vec![];
    let mut push = |target: &str, function: &str, figure: String, met: Option<bool>| {
        out.push(Check {
            target: target.to_owned(),
            function: function.to_owned(),
            figure,
            met,
        })
    };
    for s in subjects.iter().filter(|s| s.is_plain_function()) {
        let f = s.name.as_str();
        match median_of(&s.init_ms) {
            Some(m) => push(
                "cold init median <= 8 ms",
                f,
                format!("{m:.2} ms"),
                Some(m <= INIT_TARGET_MS),
            ),
            None => push(
                "cold init median <= 8 ms",
                f,
                "no successful run".into(),
                Some(false),
            ),
        }
        let r = ratios.iter().find(|r| r.function == s.name);
        for (target, value, goal) in [
            (
                "init >= 40x faster than Python peer",
                r.and_then(|r| r.python_over_rust),
                PYTHON_RATIO_TARGET,
            ),
            (
                "init >= 12x faster than Node peer",
                r.and_then(|r| r.node_over_rust),
                NODE_RATIO_TARGET,
            ),
        ] {
            match value {
                Some(v) => push(target, f, format!("{v:.1}x"), Some(v >= goal)),
                None => push(target, f, "not measured".into(), Some(false)),
            }
        }
        // The larger of the I/O-free and the emulator variant, when both ran.
        let io = subjects
            .iter()
            .find(|o| o.with_io && o.function == s.function)
            .and_then(|o| o.peak_rss_mib);
        let rss = match (s.peak_rss_mib, io) {
            (Some(a), Some(b)) if b.max > a.max => Some(b),
            (a, b) => a.or(b),
        };
        match rss {
            Some(m) => push(
                "peak memory <= 20 MiB (max over runs)",
                f,
                format!("{:.1} MiB (median {:.1})", m.max, m.median),
                Some(m.max <= RSS_TARGET_MIB),
            ),
            None => push(
                "peak memory <= 20 MiB (max over runs)",
                f,
                "not measured".into(),
                Some(false),
            ),
        }
        match s.sizes.and_then(|z| z.zip_arm64) {
            Some(z) => push("arm64 zip <= 6 MB", f, mb(z), Some(z <= ZIP_TARGET_BYTES)),
            None => push("arm64 zip <= 6 MB", f, "arm64 zip not built".into(), None),
        }
    }
    out
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn opt_mb(bytes: Option<u64>) -> String {
    bytes.map(mb).unwrap_or_else(|| "n/a".into())
}

fn ms_cell(s: &Option<Summary>, f: fn(&Summary) -> f64) -> String {
    s.as_ref()
        .map(|s| format!("{:.2}", f(s)))
        .unwrap_or_else(|| "n/a".into())
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.1}x"))
        .unwrap_or_else(|| "n/a".into())
}

/// A Markdown table column: its header, whether it holds figures (right-aligned), and
/// its cell.
struct Column<T>(&'static str, bool, fn(&T) -> String);

/// A Markdown table: the header, the alignment rule, one line per row.
fn table<'a, T: 'a>(md: &mut String, columns: &[Column<T>], rows: impl IntoIterator<Item = &'a T>) {
    let header: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let rule: String = columns
        .iter()
        .map(|c| if c.1 { "---:|" } else { "---|" })
        .collect();
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{rule}");
    for row in rows {
        let cells: Vec<String> = columns.iter().map(|c| (c.2)(row)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
}

// The columns the subject tables share.
const NAME: Column<SubjectResult> = Column("function", false, |s| s.name.clone());
const FUNCTION: Column<SubjectResult> = Column("function", false, |s| s.function.clone());
const INIT_MEDIAN: Column<SubjectResult> =
    Column("init median", true, |s| ms_cell(&s.init_ms, |x| x.median));
const INIT_P90: Column<SubjectResult> =
    Column("init p90", true, |s| ms_cell(&s.init_ms, |x| x.p90));
const INIT_CPU_MEDIAN: Column<SubjectResult> = Column("init CPU median", true, |s| {
    ms_cell(&s.init_cpu_ms, |x| x.median)
});
const FIRST_MEDIAN: Column<SubjectResult> = Column("first invocation median", true, |s| {
    ms_cell(&s.first_invoke_ms, |x| x.median)
});
const FIRST_P90: Column<SubjectResult> = Column("first invocation p90", true, |s| {
    ms_cell(&s.first_invoke_ms, |x| x.p90)
});
const RSS_MEDIAN: Column<SubjectResult> = Column("peak RSS median", true, |s| {
    ms_cell(&s.peak_rss_mib, |x| x.median)
});
const RSS_MAX: Column<SubjectResult> = Column("peak RSS max", true, |s| {
    ms_cell(&s.peak_rss_mib, |x| x.max)
});
const RUNS_OK: Column<SubjectResult> = Column("runs ok", true, |s| s.samples.len().to_string());

/// The artefact sizes of a subject (all `n/a` for a peer).
fn sizes(s: &SubjectResult) -> Sizes {
    s.sizes.unwrap_or_default()
}

pub fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let _ = writeln!(md, "## Cold start and artefact size\n");
    let _ = writeln!(md, "Command: `{}`  ", r.command);
    let _ = writeln!(md, "Date: {}  ", m.date);
    let _ = writeln!(
        md,
        "Machine: {}, {} cores, Linux {}, {}  ",
        m.cpu, m.cores, m.kernel, m.rustc
    );
    let _ = writeln!(
        md,
        "Load average (1/5/15 min): {} at the start, {} at the end  ",
        m.load_before, m.load_after
    );
    let _ = writeln!(
        md,
        "Runs: {} measured per subject after {} warm-up round(s), interleaved (each round starts one subject later).\n",
        r.runs, r.warmup
    );
    if r.runs < 20 {
        let _ = writeln!(
            md,
            "**Fewer than 20 runs per subject: a trial, not a result.**\n"
        );
    }
    for note in &r.notes {
        let _ = writeln!(md, "- {note}");
    }
    if !r.notes.is_empty() {
        md.push('\n');
    }

    let _ = writeln!(
        md,
        "### Functions (times in ms, sizes in 10^6 bytes, memory in MiB)\n"
    );
    table(
        &mut md,
        &[
            NAME,
            Column("binary x86_64", true, |s| opt_mb(sizes(s).binary_x86_64)),
            Column("zip x86_64", true, |s| opt_mb(sizes(s).zip_x86_64)),
            Column("binary arm64", true, |s| opt_mb(sizes(s).binary_arm64)),
            Column("zip arm64", true, |s| opt_mb(sizes(s).zip_arm64)),
            INIT_MEDIAN,
            INIT_P90,
            INIT_CPU_MEDIAN,
            FIRST_MEDIAN,
            FIRST_P90,
            RSS_MEDIAN,
            RSS_MAX,
            RUNS_OK,
        ],
        r.subjects.iter().filter(|s| s.is_plain_function()),
    );
    let _ = writeln!(md, "\nFirst-invocation events:");
    for s in r.subjects.iter() {
        let _ = writeln!(md, "- {}: {}", s.name, s.event);
    }

    if r.subjects.iter().any(|s| s.with_io) {
        let _ = writeln!(
            md,
            "\n### First invocation with I/O against the emulator, same run\n"
        );
        let _ = writeln!(md, "The same binaries started again with `AWS_ENDPOINT_URL` set and the local stack's resource names; the first invocation makes real DynamoDB/SNS/SQS calls to moto on loopback (plain HTTP, so no TLS handshake as in AWS).\n");
        table(
            &mut md,
            &[
                FUNCTION,
                INIT_MEDIAN,
                FIRST_MEDIAN,
                FIRST_P90,
                RSS_MEDIAN,
                RSS_MAX,
                RUNS_OK,
            ],
            r.subjects.iter().filter(|s| s.with_io),
        );
    }

    if r.subjects.iter().any(|s| s.variant.is_some()) {
        let _ = writeln!(md, "\n### What-if runs, same run (I/O-free event)\n");
        let environment = Column("environment", false, |s: &SubjectResult| {
            s.variant.clone().unwrap_or_default()
        });
        table(
            &mut md,
            &[
                FUNCTION,
                environment,
                INIT_MEDIAN,
                INIT_P90,
                INIT_CPU_MEDIAN,
                RUNS_OK,
            ],
            r.subjects.iter().filter(|s| s.variant.is_some()),
        );
    }

    let _ = writeln!(md, "\n### Peers and harness floor, same run\n");
    table(
        &mut md,
        &[
            Column("peer", false, |s: &SubjectResult| s.name.clone()),
            Column("what", false, |s| s.label.clone()),
            INIT_MEDIAN,
            INIT_P90,
            INIT_CPU_MEDIAN,
            FIRST_MEDIAN,
            RSS_MEDIAN,
            RUNS_OK,
        ],
        r.subjects.iter().filter(|s| s.kind != Kind::Rust),
    );

    let _ = writeln!(
        md,
        "\n### Init ratios (peer median / function median, same run)\n"
    );
    table(
        &mut md,
        &[
            Column("function", false, |x: &Ratio| x.function.clone()),
            Column("Python / Rust", true, |x| ratio_cell(x.python_over_rust)),
            Column("Node / Rust", true, |x| ratio_cell(x.node_over_rust)),
        ],
        &r.ratios,
    );

    let _ = writeln!(md, "\n### Targets\n");
    let met = |c: &Check| {
        let met = match c.met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "not measurable",
        };
        met.to_owned()
    };
    table(
        &mut md,
        &[
            Column("target", false, |c: &Check| c.target.clone()),
            Column("function", false, |c| c.function.clone()),
            Column("figure", true, |c| c.figure.clone()),
            Column("met", false, met),
        ],
        &r.checks,
    );
    let notes = analysis(r);
    if !notes.is_empty() {
        let _ = writeln!(md, "\n### Reading the figures\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    let failures: Vec<_> = r
        .subjects
        .iter()
        .flat_map(|s| s.failures.iter().map(move |f| format!("{}: {f}", s.name)))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "\n### Failed runs\n");
        for f in failures {
            let _ = writeln!(md, "- {f}");
        }
    }
    md
}

/// The lowest and highest of `f` over `subjects`, if any has a value.
fn spread<'a>(
    subjects: impl Iterator<Item = &'a SubjectResult>,
    f: impl Fn(&SubjectResult) -> Option<f64>,
) -> Option<(f64, f64)> {
    let values: Vec<f64> = subjects.filter_map(f).collect();
    let lo = values.iter().copied().reduce(f64::min)?;
    let hi = values.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// What the run says about the targets it misses, from this run's own figures.
pub fn analysis(r: &Results) -> Vec<String> {
    let mut out = vec![];
    let plain = || r.subjects.iter().filter(|s| s.is_plain_function());
    let missed = r
        .checks
        .iter()
        .filter(|c| c.target.starts_with("cold init") && c.met == Some(false))
        .count();
    let init = spread(plain(), |s| median_of(&s.init_ms));
    let cpu = spread(plain(), |s| median_of(&s.init_cpu_ms));
    if let (true, Some((lo, hi)), Some((clo, chi))) = (missed > 0, init, cpu) {
        out.push(format!(
            "Cold init misses {INIT_TARGET_MS} ms for {missed} of {} functions: medians {lo:.1}-{hi:.1} ms wall, of which {clo:.1}-{chi:.1} ms is CPU time of the process's threads. The load average above counts runnable tasks on {} cores, so the wall figures include waiting for a core.",
            plain().count(),
            r.machine.cores
        ));
    }
    if let Some(f) = r
        .subjects
        .iter()
        .find(|s| s.kind == Kind::Floor)
        .and_then(|s| s.init_ms)
    {
        out.push(format!(
            "The harness floor (a do-nothing client) reaches its first `invocation/next` in {:.1} ms median (p90 {:.1}): that much of every figure is exec, linking and the connect under this machine's load.",
            f.median, f.p90
        ));
    }
    let variants: Vec<&str> = {
        let mut v: Vec<&str> = r
            .subjects
            .iter()
            .filter_map(|s| s.variant.as_deref())
            .collect();
        v.dedup();
        v.sort_unstable();
        v.dedup();
        v
    };
    for v in variants {
        let of = |s: &SubjectResult| s.variant.as_deref() == Some(v);
        let wall = spread(r.subjects.iter().filter(|s| of(s)), |s| {
            median_of(&s.init_ms)
        });
        let cpu = spread(r.subjects.iter().filter(|s| of(s)), |s| {
            median_of(&s.init_cpu_ms)
        });
        if let (Some((lo, hi)), Some((clo, chi))) = (wall, cpu) {
            out.push(format!(
                "With `{v}`: init medians {lo:.1}-{hi:.1} ms wall, {clo:.1}-{chi:.1} ms CPU."
            ));
        }
    }
    if r.subjects.iter().any(|s| s.variant.is_some()) {
        out.push(
            "Why: the SDK's HTTP client loads its root certificates when a client is built, before the first event. By default the functions give it the Mozilla roots compiled into the binary (`shared/src/tls.rs`), so init reads no certificate files; `SSL_CERT_FILE` (or `SSL_CERT_DIR`) switches them to the system store, here one bundle file. `/dev/null` (no roots, so no HTTPS; a what-if only) leaves the rest of init: process start, dynamic linking, the Tokio runtime, configuration, logging and building the clients.".to_owned(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(name: &str, kind: Kind, inits: &[f64]) -> SubjectResult {
        let spec = crate::subject::Subject {
            name: name.to_owned(),
            function: name.to_owned(),
            with_io: false,
            variant: None,
            kind,
            program: Default::default(),
            args: vec![],
            env: vec![],
            event: Default::default(),
            event_label: String::new(),
        };
        let mut s = SubjectResult::new(&spec, String::new(), None);
        s.samples = inits
            .iter()
            .map(|&init_ms| Sample {
                init_ms,
                init_cpu_ms: init_ms,
                first_invoke_ms: 1.0,
                peak_rss_kib: 10 * 1024,
            })
            .collect();
        s.summarize();
        s
    }

    #[test]
    fn ratios_and_checks_use_medians_of_the_same_run() {
        let subjects = vec![
            subject("order-api", Kind::Rust, &[4.0, 5.0, 6.0]),
            subject("python-peer", Kind::Python, &[300.0, 250.0, 200.0]),
            subject("node-peer", Kind::Node, &[40.0, 50.0, 60.0]),
        ];
        let r = ratios(&subjects);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].python_over_rust, Some(50.0));
        assert_eq!(r[0].node_over_rust, Some(10.0));
        let c = checks(&subjects, &r);
        let met = |t: &str| c.iter().find(|c| c.target.starts_with(t)).unwrap().met;
        assert_eq!(met("cold init"), Some(true));
        assert_eq!(met("init >= 40x"), Some(true));
        assert_eq!(met("init >= 12x"), Some(false));
        assert_eq!(met("peak memory"), Some(true));
        assert_eq!(met("arm64 zip"), None);
    }
}
