//! An AWS API proxy between the in-process functions and the emulator: it counts every
//! call by service and action, meters DynamoDB request units from what is actually
//! written and read, and injects AWS errors and throttling at configurable rates.
//!
//! ```no_run
//! # async fn t() -> dishpatch_local::Result<()> {
//! use dishpatch_local::awsproxy::{AwsFaults, AwsProxyConfig};
//! use dishpatch_local::{testing, LocalStack, LocalStackOptions};
//! let local = LocalStack::start(
//!     LocalStackOptions::new(testing::unique_prefix("chaos"))
//!         .endpoint(testing::moto())
//!         .aws_proxy(AwsProxyConfig::default()),
//! )
//! .await?;
//! let proxy = local.aws_proxy().expect("enabled");
//! proxy.set_faults(AwsFaults { throttle_rate: 0.05, error_rate: 0.01, ..Default::default() });
//! // ... traffic ...
//! let counts = proxy.counts();
//! println!("{} DynamoDB write units", counts.dynamodb.write_units());
//! # Ok(()) }
//! ```
//!
//! **Who goes through it.** The local stack points the functions' SDK configuration at
//! [`AwsProxy::function_url`] and the event-source mapping pollers' at
//! [`AwsProxy::event_source_url`]; provisioning, seeding, the invariant checker and tests
//! keep talking to the emulator directly, so they are neither counted nor faulted. Calls
//! are counted per [`Caller`]: in AWS the pollers' `ReceiveMessage`/`DeleteMessageBatch`
//! and stream reads are made by the Lambda service, not by our code. Faults hit only
//! function calls unless [`AwsProxyConfig::fault_event_sources`] is set. Every attempt is
//! counted, so the SDK's own retries show up.
//!
//! **Faults.** Each function call draws from a PRNG seeded by [`AwsFaults::seed`]: with
//! `throttle_rate` it is answered with the service's throttling error (DynamoDB
//! `ProvisionedThroughputExceededException` or `ThrottlingException`, SQS
//! `RequestThrottled`, SNS `Throttling`; 400), with `error_rate` with its internal error
//! (500); neither is forwarded, as when AWS rejects a call. With `lost_response_rate` the
//! call *is* forwarded and applied, and its answer replaced by a 500: the caller retries
//! something that already happened, as when a response is lost on the way back.
//! [`AwsProxy::fault_next`] forces the next calls' outcome (tests).
//!
//! **DynamoDB request units** (function and poller calls alike; the proxy's own reads
//! are not counted). Item sizes follow DynamoDB's documented sizing ([`units`]). Writes:
//! one write unit per started KB of the item, with a minimum of 1; `PutItem`,
//! `UpdateItem` and `DeleteItem` are charged on the larger of the item before and after
//! (the proxy reads the item from the emulator, strongly consistent, before the write and,
//! for updates, after it); a write whose condition fails is charged on the existing item;
//! `TransactWriteItems` charges every action twice (prepare and commit), a
//! `ConditionCheck` included, and a cancelled transaction once (the prepare phase — an
//! estimate: AWS does not document it); `BatchWriteItem` charges each put or delete.
//! Every write also charges each global secondary index it changes: one write of the
//! projected entry, two when the index key changes (delete and put), none when neither
//! the key nor a projected attribute changes — at the standard rate, also inside a
//! transaction. Reads: `GetItem` one unit per started 4 KB of the item (minimum 1, half
//! for eventually consistent reads), `BatchGetItem` the same per item, `Query`/`Scan` per
//! started 4 KB of all items read (the returned items, scaled up by
//! `ScannedCount / Count` when a filter dropped some), `TransactGetItems` two units per
//! 4 KB per item. Streams reads are free for Lambda triggers and not metered. Concurrent
//! writers may change an item between the proxy's reads and the write: the units are
//! exact for a quiet item and an estimate under contention.

mod dynamo;
mod protocol;
mod traced;
pub mod units;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use protocol::FaultKind;
pub use traced::{CallLog, TracedCall};

use crate::{Error, Result};

/// Fault rates (each in 0..=1, drawn per call) and the PRNG seed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AwsFaults {
    /// Answered with a 500 internal error, not applied.
    pub error_rate: f64,
    /// Answered with the service's throttling error, not applied.
    pub throttle_rate: f64,
    /// Applied, then answered with a 500 (the response is lost).
    pub lost_response_rate: f64,
    pub seed: u64,
}

/// How to run the proxy.
#[derive(Debug, Clone)]
pub struct AwsProxyConfig {
    pub faults: AwsFaults,
    /// Meter DynamoDB request units (costs the emulator an extra read or two per write).
    pub meter_units: bool,
    /// Inject faults into the event-source mapping pollers' calls too.
    pub fault_event_sources: bool,
}

impl Default for AwsProxyConfig {
    fn default() -> Self {
        AwsProxyConfig {
            faults: AwsFaults::default(),
            meter_units: true,
            fault_event_sources: false,
        }
    }
}

impl AwsProxyConfig {
    pub fn faults(mut self, faults: AwsFaults) -> Self {
        self.faults = faults;
        self
    }
    pub fn meter_units(mut self, on: bool) -> Self {
        self.meter_units = on;
        self
    }
    pub fn fault_event_sources(mut self, on: bool) -> Self {
        self.fault_event_sources = on;
        self
    }
}

/// Who made a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Caller {
    /// The function code (billed to us as the service's requests).
    Function,
    /// The local event-source mappings (in AWS: the Lambda service's pollers).
    EventSource,
}

/// A counted call: who, which service, which action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct CallKey {
    pub caller: Caller,
    pub service: String,
    pub action: String,
}

/// What the proxy saw since it started or was last [`AwsProxy::reset`].
#[derive(Debug, Clone, Default)]
pub struct CallCounts {
    /// Attempts by caller, service and action (faulted ones included).
    pub calls: BTreeMap<CallKey, u64>,
    /// Injected faults by service and kind.
    pub faults: BTreeMap<(String, FaultKind), u64>,
    /// Request units, by table.
    pub dynamodb: DynamoUnits,
    /// SQS and SNS requests as billed: one per started 64 KB of payload, by caller and
    /// service.
    pub billed_chunks: BTreeMap<(Caller, String), u64>,
    /// `ReceiveMessage` calls that returned no message, by caller.
    pub empty_receives: BTreeMap<Caller, u64>,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl CallCounts {
    /// Attempts of `action` on `service` by `caller`.
    pub fn count(&self, caller: Caller, service: &str, action: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.caller == caller && k.service == service && k.action == action)
            .map(|(_, n)| n)
            .sum()
    }
    /// Attempts on `service` by `caller`.
    pub fn service_total(&self, caller: Caller, service: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.caller == caller && k.service == service)
            .map(|(_, n)| n)
            .sum()
    }
    /// Attempts by `caller`.
    pub fn total(&self, caller: Caller) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.caller == caller)
            .map(|(_, n)| n)
            .sum()
    }
    /// Injected faults of `kind` on every service.
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.faults
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

/// DynamoDB request units by table, and write units (table and index) by action.
#[derive(Debug, Clone, Default)]
pub struct DynamoUnits {
    pub tables: BTreeMap<String, TableUnits>,
    pub writes_by_action: BTreeMap<String, f64>,
    /// Every metered write (a transaction's actions one by one), by table, kind of item
    /// and action: where the write units go.
    pub writes: BTreeMap<WriteKey, WriteStat>,
}

/// One kind of write: the table, the kind of item (its key values up to the first `#`,
/// e.g. `ORDER/ORDER`, `RESTAURANT/ITEM`) and the action (`PutItem`,
/// `TransactWriteItems.Update`, ...; ` (refused)` when its condition failed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct WriteKey {
    pub table: String,
    pub item: String,
    pub action: String,
}

/// The writes of one [`WriteKey`]: how many, the bytes they were charged on (the larger
/// of the item before and after), and their units (table and index).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct WriteStat {
    pub count: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    pub write: f64,
    pub index_write: f64,
}

/// Request units of one table (names as the caller gave them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TableUnits {
    /// Write units on the table itself.
    pub write: f64,
    /// Write units on its global secondary indexes.
    pub index_write: f64,
    pub read: f64,
}

impl DynamoUnits {
    /// Table and index write units.
    pub fn write_units(&self) -> f64 {
        self.tables.values().map(|t| t.write + t.index_write).sum()
    }
    pub fn index_write_units(&self) -> f64 {
        self.tables.values().map(|t| t.index_write).sum()
    }
    pub fn read_units(&self) -> f64 {
        self.tables.values().map(|t| t.read).sum()
    }
    fn add(&mut self, table: &str, units: TableUnits) {
        let t = self.tables.entry(table.to_owned()).or_default();
        t.write += units.write;
        t.index_write += units.index_write;
        t.read += units.read;
    }
}

/// A running proxy. Dropping it stops it.
pub struct AwsProxy {
    shared: Arc<Shared>,
    function_addr: SocketAddr,
    event_source_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for AwsProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProxy")
            .field("upstream", &self.shared.upstream)
            .field("function_addr", &self.function_addr)
            .field("event_source_addr", &self.event_source_addr)
            .finish_non_exhaustive()
    }
}

type Upstream = Client<HttpConnector, Full<Bytes>>;

struct Shared {
    /// `http://host:port` of the emulator.
    upstream: String,
    client: Upstream,
    meter_units: bool,
    fault_event_sources: bool,
    state: Mutex<State>,
    schemas: dynamo::Schemas,
    traced: Arc<CallLog>,
}

struct State {
    counts: CallCounts,
    faults: AwsFaults,
    rng: SplitMix,
    forced: VecDeque<FaultKind>,
}

impl AwsProxy {
    /// Starts the proxy in front of `upstream` (`http://host:port`), listening on two
    /// free loopback ports: one for the functions, one for the pollers.
    pub async fn start(upstream: &str, config: AwsProxyConfig) -> Result<AwsProxy> {
        let upstream = upstream.trim_end_matches('/').to_owned();
        if !upstream.starts_with("http://") {
            return Err(Error::Other(format!(
                "AWS proxy: the emulator endpoint must be http://, got {upstream}"
            )));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        let shared = Arc::new(Shared {
            upstream,
            client,
            meter_units: config.meter_units,
            fault_event_sources: config.fault_event_sources,
            state: Mutex::new(State {
                counts: CallCounts::default(),
                faults: config.faults,
                rng: SplitMix(config.faults.seed),
                forced: VecDeque::new(),
            }),
            schemas: Default::default(),
            traced: Default::default(),
        });
        let functions = TcpListener::bind(("127.0.0.1", 0)).await?;
        let sources = TcpListener::bind(("127.0.0.1", 0)).await?;
        let function_addr = functions.local_addr()?;
        let event_source_addr = sources.local_addr()?;
        let tasks = vec![
            serve(shared.clone(), functions, Caller::Function),
            serve(shared.clone(), sources, Caller::EventSource),
        ];
        tracing::info!(upstream = %shared.upstream, %function_addr, %event_source_addr, "AWS proxy started");
        Ok(AwsProxy {
            shared,
            function_addr,
            event_source_addr,
            tasks,
        })
    }

    /// Every call forwarded so far with its trace header, oldest first.
    pub fn traced_calls(&self) -> Vec<TracedCall> {
        self.shared.traced.snapshot()
    }

    /// The log of those calls, for readers that outlive a borrow of the proxy.
    pub fn call_log(&self) -> Arc<CallLog> {
        self.shared.traced.clone()
    }

    /// The endpoint for function code.
    pub fn function_url(&self) -> String {
        format!("http://{}", self.function_addr)
    }

    /// The endpoint for the event-source mapping pollers.
    pub fn event_source_url(&self) -> String {
        format!("http://{}", self.event_source_addr)
    }

    /// `base` pointed at [`AwsProxy::function_url`].
    pub fn function_sdk(&self, base: &SdkConfig) -> SdkConfig {
        base.to_builder().endpoint_url(self.function_url()).build()
    }

    /// `base` pointed at [`AwsProxy::event_source_url`].
    pub fn event_source_sdk(&self, base: &SdkConfig) -> SdkConfig {
        base.to_builder()
            .endpoint_url(self.event_source_url())
            .build()
    }

    /// Sets the fault rates; the PRNG restarts from `faults.seed`.
    pub fn set_faults(&self, faults: AwsFaults) {
        let mut s = self.shared.lock();
        s.faults = faults;
        s.rng = SplitMix(faults.seed);
    }

    pub fn faults(&self) -> AwsFaults {
        self.shared.lock().faults
    }

    /// The next `n` faultable calls fail with `kind`, whatever the rates say.
    pub fn fault_next(&self, kind: FaultKind, n: usize) {
        self.shared
            .lock()
            .forced
            .extend(std::iter::repeat_n(kind, n));
    }

    /// A snapshot of the counts.
    pub fn counts(&self) -> CallCounts {
        self.shared.lock().counts.clone()
    }

    /// Zeroes the counts (faults and forced outcomes stay).
    pub fn reset(&self) {
        self.shared.lock().counts = CallCounts::default();
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fault for this call, if any, and a coin for the throttling error's flavour.
    fn draw(&self, caller: Caller) -> (Option<FaultKind>, bool) {
        if caller == Caller::EventSource && !self.fault_event_sources {
            return (None, false);
        }
        let mut s = self.lock();
        if let Some(kind) = s.forced.pop_front() {
            let coin = s.rng.next() & 1 == 1;
            return (Some(kind), coin);
        }
        let f = s.faults;
        if f.error_rate <= 0.0 && f.throttle_rate <= 0.0 && f.lost_response_rate <= 0.0 {
            return (None, false);
        }
        let u = s.rng.unit();
        let coin = s.rng.next() & 1 == 1;
        let kind = if u < f.throttle_rate {
            Some(FaultKind::Throttle)
        } else if u < f.throttle_rate + f.error_rate {
            Some(FaultKind::Error)
        } else if u < f.throttle_rate + f.error_rate + f.lost_response_rate {
            Some(FaultKind::LostResponse)
        } else {
            None
        };
        (kind, coin)
    }

    async fn handle(
        self: Arc<Self>,
        caller: Caller,
        req: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
        };
        let (service, action) = protocol::classify(&parts.headers, &body);
        self.traced
            .record(caller, &service, &action, &parts.headers);
        let (fault, coin) = self.draw(caller);
        {
            let mut s = self.lock();
            let key = CallKey {
                caller,
                service: service.clone(),
                action: action.clone(),
            };
            *s.counts.calls.entry(key).or_default() += 1;
            s.counts.request_bytes += body.len() as u64;
            if let Some(kind) = fault {
                *s.counts.faults.entry((service.clone(), kind)).or_default() += 1;
            }
        }
        if let Some(kind @ (FaultKind::Throttle | FaultKind::Error)) = fault {
            tracing::debug!(%service, %action, kind = kind.as_str(), "AWS proxy: injected fault");
            return protocol::fault_response(&service, kind, coin);
        }

        let metering = self.meter_units && service == "dynamodb";
        let before = if metering {
            dynamo::before(&self, &parts.headers, &action, &body).await
        } else {
            None
        };
        let (status, headers, resp_body) = match self.forward(&parts, body.clone()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%service, %action, error = %e, "AWS proxy: emulator unreachable");
                return plain(StatusCode::BAD_GATEWAY, &e);
            }
        };
        if metering {
            let units = dynamo::after(
                &self,
                &parts.headers,
                &action,
                &body,
                status,
                &resp_body,
                before,
            )
            .await;
            let mut s = self.lock();
            for (table, u, write) in units {
                s.counts.dynamodb.add(&table, u);
                if let Some((key, bytes)) = write {
                    let w = s.counts.dynamodb.writes.entry(key).or_default();
                    w.count += 1;
                    w.bytes += bytes;
                    w.max_bytes = w.max_bytes.max(bytes);
                    w.write += u.write;
                    w.index_write += u.index_write;
                }
                if u.write + u.index_write > 0.0 {
                    *s.counts
                        .dynamodb
                        .writes_by_action
                        .entry(action.clone())
                        .or_default() += u.write + u.index_write;
                }
            }
        }
        {
            let mut s = self.lock();
            s.counts.response_bytes += resp_body.len() as u64;
            if service == "sqs" || service == "sns" {
                let chunks = (body.len().max(resp_body.len()) as u64)
                    .div_ceil(65_536)
                    .max(1);
                *s.counts
                    .billed_chunks
                    .entry((caller, service.clone()))
                    .or_default() += chunks;
            }
            if service == "sqs" && action == "ReceiveMessage" && status.is_success() {
                let empty = serde_json::from_slice::<serde_json::Value>(&resp_body)
                    .map(|v| v["Messages"].as_array().is_none_or(Vec::is_empty))
                    .unwrap_or(false);
                if empty {
                    *s.counts.empty_receives.entry(caller).or_default() += 1;
                }
            }
        }
        if fault == Some(FaultKind::LostResponse) {
            tracing::debug!(%service, %action, "AWS proxy: applied, response lost");
            return protocol::fault_response(&service, FaultKind::LostResponse, coin);
        }
        let mut resp = Response::builder().status(status);
        for (name, value) in headers.iter() {
            if name != http::header::TRANSFER_ENCODING && name != http::header::CONTENT_LENGTH {
                resp = resp.header(name, value);
            }
        }
        resp.body(Full::new(resp_body))
            .unwrap_or_else(|e| plain(StatusCode::BAD_GATEWAY, &e.to_string()))
    }

    /// Sends the request on to the emulator; its status, headers and whole body.
    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> std::result::Result<(StatusCode, http::HeaderMap, Bytes), String> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri: hyper::Uri = format!("{}{path}", self.upstream)
            .parse()
            .map_err(|e| format!("bad upstream uri: {e}"))?;
        let mut req = Request::builder().method(parts.method.clone()).uri(uri);
        for (name, value) in parts.headers.iter() {
            if name != http::header::HOST {
                req = req.header(name, value);
            }
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

fn plain(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(msg.to_owned())));
    *r.status_mut() = status;
    r
}

fn serve(shared: Arc<Shared>, listener: TcpListener, caller: Caller) -> JoinHandle<()> {
    crate::serve::serve(listener, "AWS proxy", move |req, _, _| {
        shared.clone().handle(caller, req)
    })
}

/// splitmix64: small, seedable, good enough to pick faults.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
