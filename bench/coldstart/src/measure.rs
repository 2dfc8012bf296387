//! One cold start: a fresh process against a fresh Runtime API, timed from spawn to
//! its first `invocation/next` (init), then from handing it the event to its answer
//! (first invocation), then its peak resident memory while it waits for the next one.

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::{Child, Command};

use crate::runtime_api::{Invocation, Report, RuntimeApi};
use crate::subject::Subject;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub init_ms: f64,
    /// CPU time all threads spent until the first `invocation/next`: unlike wall time
    /// it hardly moves when other work competes for the cores.
    pub init_cpu_ms: f64,
    pub first_invoke_ms: f64,
    pub peak_rss_kib: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("exited before {0} ({1})")]
    Exited(&'static str, std::process::ExitStatus),
    #[error("no {0} within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("the function reported an error: {0}")]
    Failed(String),
    #[error("could not read /proc status of pid {0}")]
    NoMemory(u32),
}

/// On-CPU nanoseconds (the first field of `/proc/<pid>/task/<tid>/schedstat`).
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time of every live thread of `pid`, in ms.
fn cpu_ms(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let ns: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| parse_schedstat(&s))
        .sum();
    Some(ns as f64 / 1e6)
}

/// `VmHWM` (peak resident set, KiB) from the text of `/proc/<pid>/status`.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub async fn cold_start(
    subject: &Subject,
    request_id: String,
    log: &Path,
    timeout: Duration,
) -> Result<Sample, MeasureError> {
    let mut api = RuntimeApi::start()
        .await
        .map_err(|e| MeasureError::Io("runtime api", e))?;
    let stderr = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| MeasureError::Io("log file", e))?;
    let mut cmd = Command::new(&subject.program);
    cmd.args(&subject.args)
        .env_clear()
        .envs(subject.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .stdin(Stdio::null())
        // Functions log to stdout; a pipe nobody reads could block them, a file would
        // put disk writes in the timings.
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);

    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| MeasureError::Io("spawn", e))?;
    let result = drive(&mut api, &mut child, subject, request_id, started, timeout).await;
    let _ = child.kill().await;
    result
}

async fn drive(
    api: &mut RuntimeApi,
    child: &mut Child,
    subject: &Subject,
    request_id: String,
    started: Instant,
    timeout: Duration,
) -> Result<Sample, MeasureError> {
    let ready = next_report(api, child, "first invocation/next", timeout).await?;
    let Report::NextRequested(ready_at) = ready else {
        return Err(unexpected(ready));
    };
    let pid = child.id().unwrap_or_default();
    let init_cpu_ms = cpu_ms(pid).ok_or(MeasureError::NoMemory(pid))?;
    api.invoke(Invocation {
        request_id,
        function_arn: subject.function_arn(),
        event: subject.event_now(),
    })
    .await;
    let delivered = next_report(api, child, "event delivery", timeout).await?;
    let Report::Delivered(delivered_at) = delivered else {
        return Err(unexpected(delivered));
    };
    let answered = next_report(api, child, "response", timeout).await?;
    let Report::Responded {
        at: answered_at,
        body,
    } = answered
    else {
        return Err(unexpected(answered));
    };
    check_answer(&body).map_err(MeasureError::Failed)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_rss_kib = parse_vm_hwm(&status).ok_or(MeasureError::NoMemory(pid))?;
    Ok(Sample {
        init_ms: ms(ready_at - started),
        init_cpu_ms,
        first_invoke_ms: ms(answered_at - delivered_at),
        peak_rss_kib,
    })
}

/// The next report, or why none came: the process died, or time ran out.
async fn next_report(
    api: &mut RuntimeApi,
    child: &mut Child,
    what: &'static str,
    timeout: Duration,
) -> Result<Report, MeasureError> {
    let report = tokio::select! {
        r = api.reports.recv() => r,
        status = child.wait() => {
            let status = status.map_err(|e| MeasureError::Io("wait", e))?;
            return Err(MeasureError::Exited(what, status));
        }
        _ = tokio::time::sleep(timeout) => return Err(MeasureError::Timeout(what, timeout)),
    };
    match report {
        Some(Report::Failed { body }) => Err(MeasureError::Failed(
            String::from_utf8_lossy(&body).into_owned(),
        )),
        Some(r) => Ok(r),
        None => Err(MeasureError::Timeout(what, timeout)),
    }
}

/// A timing only counts if the function did its job: an HTTP answer below 400, or a
/// batch answer with no failed items.
pub fn check_answer(body: &[u8]) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if let Some(code) = v.get("statusCode").and_then(serde_json::Value::as_u64) {
        if code >= 400 {
            return Err(format!("HTTP status {code}: {v}"));
        }
    }
    if let Some(failures) = v
        .get("batchItemFailures")
        .and_then(serde_json::Value::as_array)
    {
        if !failures.is_empty() {
            return Err(format!("batch item failures: {v}"));
        }
    }
    Ok(())
}

fn unexpected(report: Report) -> MeasureError {
    MeasureError::Failed(format!("unexpected runtime request: {report:?}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_peak_rss_line() {
        let status =
            "Name:\torder-api\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(9876));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn reads_on_cpu_time() {
        assert_eq!(parse_schedstat("123456789 2000 7\n"), Some(123_456_789));
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn only_successful_answers_count() {
        assert!(check_answer(br#"{"statusCode":200,"body":"{}"}"#).is_ok());
        assert!(check_answer(br#"{"batchItemFailures":[]}"#).is_ok());
        assert!(check_answer(br#"{"statusCode":503}"#).is_err());
        assert!(check_answer(br#"{"batchItemFailures":[{"itemIdentifier":"m-1"}]}"#).is_err());
        assert!(check_answer(b"not json").is_err());
    }
}
