//! The trace header of every call the proxy forwards: which trace each AWS call was
//! made in, as AWS would see it (`X-Amzn-Trace-Id`; SQS turns it into a message's
//! `AWSTraceHeader`).

use std::collections::VecDeque;
use std::sync::Mutex;

use super::Caller;

/// The most calls kept, the oldest dropped first.
const MAX_CALLS: usize = 100_000;

/// One forwarded call and its trace header, if it had one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TracedCall {
    pub caller: Caller,
    pub service: String,
    pub action: String,
    /// `X-Amzn-Trace-Id` as sent.
    pub trace_header: Option<String>,
    /// Its `Root`, as 32 hex digits (the logs' and spans' `traceId`).
    pub trace_id: Option<String>,
}

/// The calls forwarded, with their trace headers.
#[derive(Debug, Default)]
pub struct CallLog(Mutex<VecDeque<TracedCall>>);

impl CallLog {
    pub(super) fn record(
        &self,
        caller: Caller,
        service: &str,
        action: &str,
        headers: &http::HeaderMap,
    ) {
        let header = headers
            .get("x-amzn-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let trace_id = header
            .as_deref()
            .and_then(dishpatch::runtime::trace::TraceContext::from_xray)
            .map(|c| c.trace_id_hex());
        let mut calls = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if calls.len() == MAX_CALLS {
            calls.pop_front();
        }
        calls.push_back(TracedCall {
            caller,
            service: service.to_owned(),
            action: action.to_owned(),
            trace_header: header,
            trace_id,
        });
    }

    /// Every call kept, oldest first.
    pub fn snapshot(&self) -> Vec<TracedCall> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
