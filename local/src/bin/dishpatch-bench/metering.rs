//! What the proxy cannot see: Lambda invocations and their durations (a wrapper around
//! each handler) and the bytes the functions log (a counting log writer).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::{Function, MessageError};
use lambda_http::{Body, Request, Response};

/// Invocations and handler time per function.
#[derive(Debug, Clone, Copy, Default)]
pub struct Invocations {
    pub count: u64,
    pub busy: Duration,
}

/// Shared tally of every wrapped function.
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<BTreeMap<String, Invocations>>>);

impl Tally {
    /// Wraps `inner` so each HTTP request, SQS message and stream record it handles
    /// counts as one invocation of `name`.
    pub fn wrap(&self, name: &str, inner: Arc<dyn Function>) -> Arc<dyn Function> {
        Arc::new(Metered {
            name: name.to_owned(),
            inner,
            tally: self.clone(),
        })
    }
    pub fn snapshot(&self) -> BTreeMap<String, Invocations> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
    fn add(&self, name: &str, took: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = t.entry(name.to_owned()).or_default();
        e.count += 1;
        e.busy += took;
    }
}

struct Metered {
    name: String,
    inner: Arc<dyn Function>,
    tally: Tally,
}

#[async_trait::async_trait]
impl Function for Metered {
    async fn http(&self, req: Request) -> Response<Body> {
        let t = Instant::now();
        let r = self.inner.http(req).await;
        self.tally.add(&self.name, t.elapsed());
        r
    }

    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        let t = Instant::now();
        let r = self.inner.message(envelope, kind).await;
        self.tally.add(&self.name, t.elapsed());
        r
    }

    async fn stream_record(
        &self,
        record: &aws_lambda_events::dynamodb::EventRecord,
    ) -> Result<(), MessageError> {
        let t = Instant::now();
        let r = self.inner.stream_record(record).await;
        self.tally.add(&self.name, t.elapsed());
        r
    }

    async fn scheduled(
        &self,
        event: &dishpatch::runtime::Scheduled,
    ) -> Result<serde_json::Value, MessageError> {
        self.inner.scheduled(event).await
    }
}

/// Counts the bytes of the JSON log lines the functions write (as they would go to
/// CloudWatch Logs) and drops them.
#[derive(Clone, Default)]
pub struct LogBytes(Arc<AtomicU64>);

impl LogBytes {
    /// Installs the process's log subscriber: the functions' format and level, into
    /// this counter.
    pub fn install(&self) {
        let sink = self.clone();
        dishpatch::logging::Logs::from_env().install_to(move || sink.clone());
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

impl Write for LogBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
