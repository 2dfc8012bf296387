//! Per-function message counts for the summary: how many messages each SQS-driven
//! function handled, how many of those it had handled before (redeliveries: duplicates,
//! crashed batches, retries), and how many failed and were left for a retry.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::{Function, MessageError};
use lambda_http::{Body, Request, Response};

/// Counts of one function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub handled: u64,
    pub redelivered: u64,
    pub failed: u64,
}

#[derive(Default)]
struct Inner {
    counts: BTreeMap<String, Counts>,
    /// (function, envelope id) pairs seen.
    seen: HashSet<(String, String)>,
}

/// Shared by the wrappers of every function.
#[derive(Clone, Default)]
pub struct MessageCounts(Arc<Mutex<Inner>>);

impl std::fmt::Debug for MessageCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MessageCounts")
            .field(&self.snapshot())
            .finish()
    }
}

impl MessageCounts {
    /// `inner`, counting its messages under `function`.
    pub fn wrap(&self, function: &str, inner: Arc<dyn Function>) -> Arc<dyn Function> {
        Arc::new(Counted {
            inner,
            function: function.to_owned(),
            counts: self.clone(),
        })
    }

    pub fn snapshot(&self) -> BTreeMap<String, Counts> {
        self.lock().counts.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Counted {
    inner: Arc<dyn Function>,
    function: String,
    counts: MessageCounts,
}

#[async_trait::async_trait]
impl Function for Counted {
    async fn http(&self, req: Request) -> Response<Body> {
        self.inner.http(req).await
    }

    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        {
            let mut st = self.counts.lock();
            let again = !st.seen.insert((self.function.clone(), envelope.id.clone()));
            let c = st.counts.entry(self.function.clone()).or_default();
            c.handled += 1;
            c.redelivered += u64::from(again);
        }
        let out = self.inner.message(envelope, kind).await;
        if out.is_err() {
            let mut st = self.counts.lock();
            st.counts.entry(self.function.clone()).or_default().failed += 1;
        }
        out
    }

    async fn stream_record(
        &self,
        record: &aws_lambda_events::dynamodb::EventRecord,
    ) -> Result<(), MessageError> {
        self.inner.stream_record(record).await
    }

    async fn scheduled(
        &self,
        event: &dishpatch::runtime::Scheduled,
    ) -> Result<serde_json::Value, MessageError> {
        self.inner.scheduled(event).await
    }
}
