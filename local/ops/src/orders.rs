//! `orders watch`: follows an order's timeline by reading the OrdersTable directly
//! (works wherever the table is readable, no token needed).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use dishpatch_core::keys;
use serde_json::Value;

use crate::Target;
use crate::{Error, Result};

/// Statuses after which nothing more happens to an order.
pub const TERMINAL: &[&str] = &["DELIVERED", "CANCELLED", "COMPENSATION_FAILED"];

/// One timeline entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: String,
    pub status: String,
    pub cause: String,
    pub detail: Option<String>,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}  {:<20} {}", self.at, self.status, self.cause)?;
        if let Some(d) = &self.detail {
            write!(f, "  ({d})")?;
        }
        Ok(())
    }
}

/// The order's current status and timeline, `None` when there is no such order.
pub async fn snapshot(target: &Target, order_id: &str) -> Result<Option<(String, Vec<Entry>)>> {
    let table = target.table_name("OrdersTable");
    let out = target
        .dynamodb()
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(keys::order_pk(order_id)))
        .key("sk", AttributeValue::S(keys::ORDER_SK.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::aws(format!("read order {order_id} from {table}"), e))?;
    let Some(item) = out.item else {
        return Ok(None);
    };
    let v: Value = serde_dynamo::from_item(item)
        .map_err(|e| Error::Other(format!("order {order_id}: {e}")))?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let status = s(&v, "status")
        .or_else(|| {
            v.pointer("/saga/status")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    // Either stored shape (compact strings or maps).
    let timeline = dishpatch_core::stored::timeline_of(&v)
        .into_iter()
        .map(|e| Entry {
            at: e.at,
            status: e.status.as_str().to_owned(),
            cause: e.cause,
            detail: e.detail,
        })
        .collect();
    Ok(Some((status, timeline)))
}

/// How `watch` polls.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub interval: Duration,
    /// Give up after this long (`None`: until terminal).
    pub timeout: Option<Duration>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_millis(500),
            timeout: None,
        }
    }
}

/// Polls the order, calling `on_entry` for every new timeline entry, until it is
/// terminal (returns its status) or the timeout passes (an error). A missing order is
/// waited for (it may not be written yet).
pub async fn watch(
    target: &Target,
    order_id: &str,
    opts: &WatchOptions,
    mut on_entry: impl FnMut(&Entry),
) -> Result<String> {
    let start = Instant::now();
    let mut shown = 0;
    loop {
        if let Some((status, timeline)) = snapshot(target, order_id).await? {
            for e in timeline.iter().skip(shown) {
                on_entry(e);
            }
            shown = shown.max(timeline.len());
            if TERMINAL.contains(&status.as_str()) {
                return Ok(status);
            }
        }
        if opts.timeout.is_some_and(|t| start.elapsed() >= t) {
            return Err(Error::Other(format!(
                "order {order_id} not terminal after {:?}",
                opts.timeout.unwrap_or_default()
            )));
        }
        tokio::time::sleep(opts.interval).await;
    }
}
