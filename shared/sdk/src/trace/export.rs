//! Where spans go: OTLP over HTTP to a collector when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, nowhere otherwise. On Lambda
//! that collector is the ADOT layer's, listening on localhost (docs/architecture.md).
//! Lambda freezes the process between invocations, so the runtime [`flush`]es after
//! each one instead of leaving spans to a timer.

use std::sync::OnceLock;

use opentelemetry_sdk::trace::SdkTracerProvider;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether the environment asks for spans to be exported.
pub fn otlp_configured(get: impl Fn(&str) -> Option<String>) -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| get(name).is_some_and(|v| !v.is_empty()))
}

/// A provider batching spans to the OTLP/HTTP endpoint the environment names, for
/// the service `service` (the function's name). `None` if the exporter cannot be built.
pub fn otlp(service: String) -> Option<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| eprintln!("span export off: {e}"))
        .ok()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    Some(
        SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build(),
    )
}

/// A provider writing every span to `exporter` as it ends (the local stack's store).
pub fn immediate(
    exporter: impl opentelemetry_sdk::trace::SpanExporter + 'static,
) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .build()
}

/// Keeps `provider` for [`flush`].
pub(crate) fn keep(provider: SdkTracerProvider) {
    let _ = PROVIDER.set(provider);
}

/// Sends the spans ended so far; a no-op when spans are not exported.
pub fn flush() {
    if let Some(p) = PROVIDER.get() {
        if let Err(e) = p.force_flush() {
            tracing::debug!(error = %e, "span export flush failed");
        }
    }
}
