//! JSON logs for CloudWatch, one line per event, each carrying the fields of the spans
//! it happened in ([`json`]): the runtime's invocation span gives every line the
//! function, request id and trace id, a message's span its id, type, order,
//! correlation and causation, so call sites name none of them.
//!
//! The level is `RUST_LOG`'s, else the one Lambda derives from the template's
//! `LoggingConfig.ApplicationLogLevel` (`AWS_LAMBDA_LOG_LEVEL`), else INFO. Spans are
//! exported as OpenTelemetry when the environment names an OTLP endpoint
//! ([`crate::trace::export`]), or kept in memory in the local stack
//! ([`Logs::record_spans`]).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::trace::{export, recorded};

pub mod json;

/// Installs the process's logs as the environment says.
pub fn init() {
    Logs::from_env().install();
}

/// What [`Logs::install`] sets up: the level filter and where spans go.
pub struct Logs {
    filter: EnvFilter,
    spans: Option<SdkTracerProvider>,
}

/// The filter directives when `RUST_LOG` is unset: Lambda's level, lowercased
/// (`FATAL` is `error`), else `info`.
pub fn default_directives(lambda_level: Option<&str>) -> String {
    match lambda_level.map(str::to_ascii_lowercase).as_deref() {
        Some(l @ ("trace" | "debug" | "info" | "warn" | "error")) => l.to_owned(),
        Some("fatal") => "error".to_owned(),
        _ => "info".to_owned(),
    }
}

impl Logs {
    pub fn from_env() -> Logs {
        let env = |name: &str| std::env::var(name).ok();
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(default_directives(env("AWS_LAMBDA_LOG_LEVEL").as_deref()))
        });
        // Built only when asked for: the exporter's client and thread cost cold start.
        let spans = export::otlp_configured(env)
            .then(|| {
                let service = env("OTEL_SERVICE_NAME")
                    .or_else(|| env("AWS_LAMBDA_FUNCTION_NAME"))
                    .unwrap_or_else(|| "dishpatch".to_owned());
                export::otlp(service)
            })
            .flatten();
        Logs { filter, spans }
    }

    /// Keeps every span in the process's [`recorded::store`] instead.
    pub fn record_spans(mut self) -> Logs {
        self.spans = Some(export::immediate(recorded::store().clone()));
        self
    }

    /// To stdout. `false` when the process already had a subscriber (the local stack
    /// hosts several functions in one process).
    pub fn install(self) -> bool {
        self.install_to(std::io::stdout)
    }

    /// To `writer` (tests, the benchmark's byte counter).
    pub fn install_to<W>(self, writer: W) -> bool
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let lines = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(json::Json)
            .with_writer(writer);
        let spans = self.spans.map(|provider| {
            let tracer = provider.tracer("dishpatch");
            export::keep(provider);
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
        });
        tracing_subscriber::registry()
            .with(self.filter)
            .with(lines)
            .with(spans)
            .try_init()
            .is_ok()
    }
}

/// The lines written, kept in memory (tests read what was logged).
#[derive(Debug, Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_level_applies_when_rust_log_is_unset() {
        assert_eq!(default_directives(None), "info");
        assert_eq!(default_directives(Some("WARN")), "warn");
        assert_eq!(default_directives(Some("DEBUG")), "debug");
        assert_eq!(default_directives(Some("FATAL")), "error");
        assert_eq!(default_directives(Some("nonsense")), "info");
    }
}
