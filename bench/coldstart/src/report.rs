//! The results: one JSON document and one self-contained markdown section, with each
//! target checked against the figure measured in this run.

use std::fmt::Write;

use serde::Serialize;

use crate::measure::Sample;
use crate::sizes::Sizes;
use crate::stats::{summarize, Summary};
use crate::subject::Kind;

pub const INIT_TARGET_MS: f64 = 4.0;
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
    /// Another build's runs: that build's label.
    pub build: Option<String>,
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
            build: subject.build.clone(),
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
        self.kind == Kind::Rust && !self.with_io && self.variant.is_none() && self.build.is_none()
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
    let init_target = format!("cold init median <= {INIT_TARGET_MS} ms");
    for s in subjects.iter().filter(|s| s.is_plain_function()) {
        let f = s.name.as_str();
        match median_of(&s.init_ms) {
            Some(m) => push(
                &init_target,
                f,
                format!("{m:.2} ms"),
                Some(m <= INIT_TARGET_MS),
            ),
            None => push(&init_target, f, "no successful run".into(), Some(false)),
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

/// A function as this build runs it and as another build does, in the same run.
pub struct Pair<'a> {
    pub this: &'a SubjectResult,
    pub other: &'a SubjectResult,
}

/// Every function that ran in another build too.
pub fn pairs(r: &Results) -> Vec<Pair<'_>> {
    r.subjects
        .iter()
        .filter(|s| s.is_plain_function())
        .filter_map(|this| {
            let other = r
                .subjects
                .iter()
                .find(|o| o.build.is_some() && o.function == this.function)?;
            Some(Pair { this, other })
        })
        .collect()
}

/// `a`'s median over `b`'s.
fn quotient(a: &Option<Summary>, b: &Option<Summary>) -> Option<f64> {
    Some(median_of(a)? / median_of(b).filter(|m| *m > 0.0)?)
}

fn quotient_cell(a: &Option<Summary>, b: &Option<Summary>) -> String {
    quotient(a, b)
        .map(|q| format!("{q:.2}"))
        .unwrap_or_else(|| "n/a".into())
}

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

    let pairs = pairs(r);
    if let Some(label) = pairs.first().and_then(|p| p.other.build.clone()) {
        let _ = writeln!(
            md,
            "\n### This build against build `{label}`, same run (I/O-free event)\n"
        );
        let _ = writeln!(md, "The other build's binaries ran in the same rounds as `<function>@{label}`, with the same environment and event; \"this / other\" divides this build's median by the other's.\n");
        table(
            &mut md,
            &[
                Column("function", false, |p: &Pair| p.this.function.clone()),
                Column("init median, other", true, |p| {
                    ms_cell(&p.other.init_ms, |x| x.median)
                }),
                Column("init median, this", true, |p| {
                    ms_cell(&p.this.init_ms, |x| x.median)
                }),
                Column("this / other", true, |p| {
                    quotient_cell(&p.this.init_ms, &p.other.init_ms)
                }),
                Column("init CPU median, other", true, |p| {
                    ms_cell(&p.other.init_cpu_ms, |x| x.median)
                }),
                Column("init CPU median, this", true, |p| {
                    ms_cell(&p.this.init_cpu_ms, |x| x.median)
                }),
                Column("CPU this / other", true, |p| {
                    quotient_cell(&p.this.init_cpu_ms, &p.other.init_cpu_ms)
                }),
                Column("first invocation median, other", true, |p| {
                    ms_cell(&p.other.first_invoke_ms, |x| x.median)
                }),
                Column("first invocation median, this", true, |p| {
                    ms_cell(&p.this.first_invoke_ms, |x| x.median)
                }),
                Column("runs ok, other / this", true, |p| {
                    format!("{} / {}", p.other.samples.len(), p.this.samples.len())
                }),
            ],
            &pairs,
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
    let pairs = pairs(r);
    if let Some(label) = pairs.first().and_then(|p| p.other.build.as_deref()) {
        let this = spread(pairs.iter().map(|p| p.this), |s| median_of(&s.init_ms));
        let other = spread(pairs.iter().map(|p| p.other), |s| median_of(&s.init_ms));
        let values: Vec<f64> = pairs
            .iter()
            .filter_map(|p| quotient(&p.this.init_ms, &p.other.init_ms))
            .collect();
        let lo = values.iter().copied().reduce(f64::min);
        let hi = values.iter().copied().reduce(f64::max);
        if let (Some((tlo, thi)), Some((olo, ohi)), Some(lo), Some(hi)) = (this, other, lo, hi) {
            out.push(format!(
                "Against build `{label}` in the same rounds: init medians {tlo:.2}-{thi:.2} ms here, {olo:.2}-{ohi:.2} ms there; this / other {lo:.2}-{hi:.2} per function."
            ));
        }
    }
    if r.subjects.iter().any(|s| {
        s.variant
            .as_deref()
            .is_some_and(|v| v.starts_with("SSL_CERT_"))
    }) {
        out.push(
            "Roots: the functions' HTTPS client builds its root store on the first AWS call, not at init (`shared/sdk/src/tls.rs`): the Mozilla roots compiled into the binary by default, the system store when `SSL_CERT_FILE` or `SSL_CERT_DIR` is set. So the certificate what-ifs should match the plain runs at init; building the bundled roots is part of the first invocation with I/O. `/dev/null` (no roots, so no HTTPS; a what-if only) is the init without any roots: process start, dynamic linking, the Tokio runtime, configuration, logging and building the clients.".to_owned(),
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
            build: None,
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
            subject("order-api", Kind::Rust, &[3.0, 4.0, 5.0]),
            subject("python-peer", Kind::Python, &[300.0, 250.0, 200.0]),
            subject("node-peer", Kind::Node, &[40.0, 44.0, 48.0]),
        ];
        let r = ratios(&subjects);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].python_over_rust, Some(62.5));
        assert_eq!(r[0].node_over_rust, Some(11.0));
        let c = checks(&subjects, &r);
        let met = |t: &str| c.iter().find(|c| c.target.starts_with(t)).unwrap().met;
        assert_eq!(met("cold init"), Some(true));
        assert_eq!(met("init >= 40x"), Some(true));
        assert_eq!(met("init >= 12x"), Some(false));
        assert_eq!(met("peak memory"), Some(true));
        assert_eq!(met("arm64 zip"), None);
    }

    #[test]
    fn another_build_is_compared_not_checked() {
        let mut other = subject("order-api@before", Kind::Rust, &[5.0, 6.0, 7.0]);
        other.function = "order-api".to_owned();
        other.build = Some("before".to_owned());
        let subjects = vec![
            subject("order-api", Kind::Rust, &[2.0, 3.0, 4.0]),
            other,
            subject("python-peer", Kind::Python, &[300.0]),
        ];
        let r = ratios(&subjects);
        assert_eq!(r.len(), 1, "only this build's function has ratios");
        let c = checks(&subjects, &r);
        assert!(c.iter().all(|c| c.function == "order-api"));
        assert_eq!(
            c.iter()
                .filter(|c| c.target.starts_with("cold init"))
                .count(),
            1
        );
        let results = Results {
            command: String::new(),
            machine: Machine {
                date: String::new(),
                cpu: String::new(),
                cores: 2,
                kernel: String::new(),
                rustc: String::new(),
                load_before: String::new(),
                load_after: String::new(),
            },
            runs: 3,
            warmup: 0,
            notes: vec![],
            subjects,
            ratios: r,
            checks: c,
        };
        let p = pairs(&results);
        assert_eq!(p.len(), 1);
        assert_eq!(quotient(&p[0].this.init_ms, &p[0].other.init_ms), Some(0.5));
        let md = markdown(&results);
        assert!(md.contains("against build `before`"), "{md}");
        assert!(md.contains("| order-api | 6.00 | 3.00 | 0.50 |"), "{md}");
    }
}
