//! Trace context: which trace the running code belongs to, and how it travels.
//!
//! One trace per order: Lambda hands each invocation an X-Ray header
//! (`Context::xray_trace_id`); a message carries its maker's context in its envelope
//! (a W3C `traceparent`), a DynamoDB stream record in the outbox entries it holds.
//! The runtime opens a span per invocation and per message with [`start`], which makes
//! it a child of that context, and runs the handling inside [`scope`]. What is made
//! or called there reads [`current`]: a new envelope's `traceparent`, and the
//! `X-Amzn-Trace-Id` header of every AWS call ([`http`]), so SQS sets the message's
//! `AWSTraceHeader` from the order's trace, not from the invocation's.
//!
//! The context is task-local, not `_X_AMZN_TRACE_ID`: the local stack runs every
//! function in one process, where one environment variable cannot hold each
//! invocation's trace.
//!
//! With spans exported ([`crate::logging`] installs the OpenTelemetry layer) the ids
//! are the exported spans'; without, they are made here, and the trace id still
//! follows the order.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub mod export;
pub mod http;
pub mod recorded;

/// A position in a trace: the trace, the span that is current there, and whether
/// the trace is sampled (exported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The context of the code running now; `None` outside any invocation.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// Runs `fut` with `ctx` as its [`current`] context.
pub async fn scope<F: Future>(ctx: TraceContext, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// Makes `span` a child of `parent` (a new trace when there is none) and records its
/// `traceId` field; the context its work runs in. Call before the span is entered.
pub fn start(span: &tracing::Span, parent: Option<TraceContext>) -> TraceContext {
    if let Some(p) = parent {
        // Fails only when spans are not exported (no layer) or the span is disabled.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(
            SpanContext::new(
                TraceId::from_bytes(p.trace_id),
                SpanId::from_bytes(p.span_id),
                if p.sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::default(),
            ),
        ));
    }
    let otel = span.context();
    let otel_span = otel.span();
    let exported = otel_span.span_context();
    let ctx = if exported.is_valid() {
        TraceContext {
            trace_id: exported.trace_id().to_bytes(),
            span_id: exported.span_id().to_bytes(),
            sampled: exported.is_sampled(),
        }
    } else {
        let fresh = TraceContext::root();
        TraceContext {
            span_id: fresh.span_id,
            ..parent.unwrap_or(fresh)
        }
    };
    span.record("traceId", ctx.trace_id_hex());
    ctx
}

impl TraceContext {
    /// A new sampled trace. Its id starts with the time in seconds, as X-Ray's do, so
    /// X-Ray accepts it.
    pub fn root() -> TraceContext {
        let random = uuid::Uuid::new_v4().into_bytes();
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as u32;
        let mut trace_id = [0u8; 16];
        trace_id[..4].copy_from_slice(&secs.to_be_bytes());
        trace_id[4..].copy_from_slice(&random[..12]);
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&random[8..]);
        span_id[0] |= 1; // never all zero
        TraceContext {
            trace_id,
            span_id,
            sampled: true,
        }
    }

    /// The trace id as 32 lowercase hex digits (OpenTelemetry's and the logs' form).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// `00-{trace}-{span}-{flags}`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    /// Reads a W3C `traceparent` (version 00, or a later one read as 00).
    pub fn from_traceparent(s: &str) -> Option<TraceContext> {
        let mut parts = s.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        TraceContext::of(trace, span, u8::from_str_radix(flags, 16).ok()? & 1 == 1)
    }

    /// The `X-Amzn-Trace-Id` header: `Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled={0|1}`.
    pub fn xray(&self) -> String {
        let t = hex(&self.trace_id);
        format!(
            "Root=1-{}-{};Parent={};Sampled={}",
            &t[..8],
            &t[8..],
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    /// Reads an X-Ray header (Lambda's `Context::xray_trace_id`, SQS's
    /// `AWSTraceHeader`). Without a `Parent` the root is its own parent; without
    /// `Sampled` it is sampled.
    pub fn from_xray(s: &str) -> Option<TraceContext> {
        let (mut root, mut parent, mut sampled) = (None, None, true);
        for part in s.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) => root = Some(v),
                Some(("Parent", v)) => parent = Some(v),
                Some(("Sampled", v)) => sampled = v != "0",
                _ => {}
            }
        }
        let mut root = root?.split('-');
        let (one, time, rest) = (root.next()?, root.next()?, root.next()?);
        if one != "1" || time.len() != 8 || rest.len() != 24 || root.next().is_some() {
            return None;
        }
        let trace = format!("{time}{rest}");
        TraceContext::of(&trace, parent.unwrap_or(&trace[16..]), sampled)
    }

    fn of(trace: &str, span: &str, sampled: bool) -> Option<TraceContext> {
        let trace_id: [u8; 16] = unhex(trace)?;
        let span_id: [u8; 8] = unhex(span)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_w3c_and_xray_forms_carry_the_same_context() {
        let ctx = TraceContext::root();
        assert_eq!(
            TraceContext::from_traceparent(&ctx.traceparent()),
            Some(ctx)
        );
        assert_eq!(TraceContext::from_xray(&ctx.xray()), Some(ctx));
        let xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let read = TraceContext::from_xray(xray).unwrap();
        assert_eq!(read.trace_id_hex(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(
            read.traceparent(),
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
        );
        assert_eq!(read.xray(), xray);
        let unsampled =
            TraceContext::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0");
        assert!(!unsampled.unwrap().sampled);
    }

    #[test]
    fn malformed_headers_are_no_context() {
        for bad in [
            "",
            "00-abc-def-01",
            "00-00000000000000000000000000000000-53995c3f42cd8ad8-01",
            "ff-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01",
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01-extra",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad}");
        }
        for bad in [
            "",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Parent=53995c3f42cd8ad8",
        ] {
            assert_eq!(TraceContext::from_xray(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn the_context_is_current_only_inside_its_scope() {
        assert_eq!(current(), None);
        let ctx = TraceContext::root();
        assert_eq!(scope(ctx, async { current() }).await, Some(ctx));
        assert_eq!(current(), None);
    }

    #[test]
    fn without_exported_spans_a_child_keeps_the_trace_and_gets_its_own_span() {
        let parent = TraceContext::root();
        let child = start(&tracing::Span::none(), Some(parent));
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_ne!(
            start(&tracing::Span::none(), None).trace_id,
            parent.trace_id
        );
    }
}
