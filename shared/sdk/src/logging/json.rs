//! One JSON object per event: `timestamp`, `level`, `message`, the event's fields,
//! then the fields of every span it happened in, outermost first (an inner span's
//! field wins over an outer one of the same name, the event's over both). Flat, so
//! CloudWatch Logs Insights reads `orderId` as it is.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format; its spans' fields must be formatted by [`JsonFields`].
pub struct Json;

impl<S> FormatEvent<S, JsonFields> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(f) = ext.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(m)) = serde_json::from_str(&f.fields) {
                    fields.extend(m);
                }
            }
        }
        let mut own = Fields(Map::new());
        event.record(&mut own);
        let message = own.0.remove("message");
        fields.extend(own.0);

        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut line = Map::new();
        line.insert("timestamp".into(), timestamp.into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        if let Some(m) = message {
            line.insert("message".into(), m);
        }
        line.extend(fields);
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// An event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use crate::logging::Captured;

    #[test]
    fn a_line_carries_its_spans_fields_the_innermost_winning() {
        let lines = Captured::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(super::JsonFields::new())
                .event_format(super::Json)
                .with_writer(move || sink.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("invoke", function = "inventory", traceId = "a");
            let _o = outer.enter();
            let inner =
                tracing::info_span!("message", orderId = "o-1", traceId = tracing::field::Empty);
            inner.record("traceId", "b");
            let _i = inner.enter();
            tracing::info!(units = 3, "reserved");
        });
        let text = lines.text();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "reserved");
        assert_eq!(line["units"], 3);
        assert_eq!(line["function"], "inventory");
        assert_eq!(line["orderId"], "o-1");
        assert_eq!(line["traceId"], "b");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(text.lines().count(), 1);
    }
}
