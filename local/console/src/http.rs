//! The console's routes under [`PREFIX`]: the page and its assets, and the JSON API the
//! page polls.
//!
//! ```text
//! GET  /console/                          the page (console.js, console.css beside it)
//! GET  /console/api/stack                 which stack it shows (its name prefix)
//! GET  /console/api/orders                the funnel and the newest orders
//! GET  /console/api/orders/{id}           one order's status and timeline
//! GET  /console/api/orders/{id}/trace     its spans: {source, spans: [{traceId, spanId,
//!                                         parentSpanId, name, function, start, end, attributes}]}
//! GET  /console/api/queues                work queue depths and every dead-letter queue
//! GET  /console/api/dlqs/{id}/messages    the messages parked in one, with their reasons
//! POST /console/api/dlqs/{id}/redrive     {"all": true} or {"ids": [...]}: back to the source
//! GET  /console/api/breaker               the payment breaker, per provider
//! GET  /console/api/metrics               the metric series with data
//! ```
//!
//! The one write, redrive, is for an operator at this machine: it is refused unless the
//! peer is a loopback address, the request carries [`WRITE_HEADER`] (which a page of
//! another origin cannot send without a preflight, and the console answers none), and
//! any `Origin` is the console's own.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{orders, queues, Console, Error};
use dishpatch_ops::{breaker, dlq};

/// Where the console is mounted.
pub const PREFIX: &str = "/console";
/// The header a redrive must carry.
pub const WRITE_HEADER: &str = "x-dishpatch-console";
/// How many orders the list shows.
const LIST_LIMIT: usize = 50;
/// How many parked messages a dead-letter queue shows.
const SHOW_MAX: usize = 10;
/// How far back the breaker's transitions are looked for.
const BREAKER_WINDOW: Duration = Duration::from_secs(3 * 3600);

const PAGE: &str = include_str!("../assets/console.html");
const SCRIPT: &str = include_str!("../assets/console.js");
const STYLE: &str = include_str!("../assets/console.css");

pub type Reply = hyper::Response<Full<Bytes>>;

/// A request handler as a server mounts it.
pub type Handler = Arc<
    dyn Fn(hyper::Request<Incoming>, SocketAddr) -> Pin<Box<dyn Future<Output = Reply> + Send>>
        + Send
        + Sync,
>;

impl Console {
    /// [`Console::handle`] as a handler a server mounts under [`PREFIX`].
    pub fn handler(&self) -> Handler {
        let console = self.clone();
        Arc::new(move |req, peer| {
            let console = console.clone();
            Box::pin(async move { console.handle(req, peer).await })
        })
    }

    /// Answers a request whose path starts with [`PREFIX`].
    pub async fn handle(&self, req: hyper::Request<Incoming>, peer: SocketAddr) -> Reply {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        self.answer(
            &parts.method,
            parts.uri.path(),
            &parts.headers,
            peer.ip(),
            &body,
        )
        .await
    }

    /// Answers one request, given as parts (tests call it without a connection).
    pub async fn answer(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        peer: IpAddr,
        body: &[u8],
    ) -> Reply {
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return error(StatusCode::NOT_FOUND, "not a console path");
        };
        let segments: Vec<&str> = rest.split('/').skip(1).collect();
        let get = *method == Method::GET || *method == Method::HEAD;
        match (segments.as_slice(), get) {
            ([], _) => redirect(&format!("{PREFIX}/")),
            ([""] | ["index.html"], true) => asset("text/html; charset=utf-8", PAGE),
            (["console.js"], true) => asset("text/javascript; charset=utf-8", SCRIPT),
            (["console.css"], true) => asset("text/css; charset=utf-8", STYLE),
            (["api", "stack"], true) => ok(&json!({
                "prefix": self.target.prefix,
                "deployed": self.target.is_deployed(),
            })),
            (["api", "orders"], true) => json_reply(self.orders().await),
            (["api", "orders", id], true) => self.order(id).await,
            (["api", "orders", id, "trace"], true) => {
                match self.spans.trace(&self.resolved().await, id).await {
                    Ok(Some(t)) => ok(&t),
                    Ok(None) => error(StatusCode::NOT_FOUND, &format!("no order {id}")),
                    Err(e) => failed(&e),
                }
            }
            (["api", "queues"], true) => json_reply(self.queues().await),
            (["api", "dlqs", id, "messages"], true) => {
                json_reply(dlq::show(&self.resolved().await, id, SHOW_MAX).await.map(|ls| {
                    json!({"messages": ls.iter().map(queues::letter_json).collect::<Vec<_>>()})
                }))
            }
            (["api", "dlqs", id, "redrive"], _) if *method == Method::POST => {
                if let Err(why) = may_write(headers, peer) {
                    return error(StatusCode::FORBIDDEN, why);
                }
                self.redrive(id, body).await
            }
            (["api", "breaker"], true) => json_reply(self.breaker().await),
            (["api", "metrics"], true) => {
                json_reply(crate::metrics::read(&self.resolved().await).await.map(|m| json!(m)))
            }
            (["api", ..], false) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            _ => error(StatusCode::NOT_FOUND, "no such console path"),
        }
    }

    async fn orders(&self) -> crate::Result<Value> {
        let all = orders::scan(&self.resolved().await).await?;
        Ok(json!({
            "total": all.len(),
            "funnel": orders::funnel(&all),
            "orders": &all[..all.len().min(LIST_LIMIT)],
        }))
    }

    async fn order(&self, id: &str) -> Reply {
        match dishpatch_ops::orders::snapshot(&self.resolved().await, id).await {
            Ok(Some((status, timeline))) => ok(&json!({
                "orderId": id,
                "status": status,
                "terminal": dishpatch_ops::orders::TERMINAL.contains(&status.as_str()),
                "timeline": timeline.iter().map(|e| json!({
                    "at": e.at, "status": e.status, "cause": e.cause, "detail": e.detail,
                })).collect::<Vec<_>>(),
            })),
            Ok(None) => error(StatusCode::NOT_FOUND, &format!("no order {id}")),
            Err(e) => failed(&e.into()),
        }
    }

    async fn queues(&self) -> crate::Result<Value> {
        let target = self.resolved().await;
        let dlqs = dlq::list(&target).await?;
        Ok(json!({
            "queues": queues::depths(&target).await,
            "dlqs": dlqs.iter().map(queues::dlq_json).collect::<Vec<_>>(),
        }))
    }

    async fn redrive(&self, id: &str, body: &[u8]) -> Reply {
        let asked: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body: {e}")),
        };
        let opts = dlq::RedriveOptions {
            ids: asked["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            all: asked["all"].as_bool().unwrap_or(false),
            auto: false,
        };
        match dlq::redrive(&self.resolved().await, id, &opts).await {
            Ok(report) => {
                tracing::info!(dlq = id, moved = report.moved.len(), "console redrive");
                ok(&queues::redrive_json(&report))
            }
            // Refusals (a stream's DLQ, nothing selected) are the operator's to read.
            Err(dishpatch_ops::Error::Other(why)) => error(StatusCode::BAD_REQUEST, &why),
            Err(e) => failed(&e.into()),
        }
    }

    async fn breaker(&self) -> crate::Result<Value> {
        let status = breaker::status(&self.resolved().await, BREAKER_WINDOW).await?;
        Ok(json!({
            "windowSecs": BREAKER_WINDOW.as_secs(),
            "providers": status.iter().map(|s| json!({
                "provider": s.provider,
                "state": s.latest.as_ref().map_or("CLOSED", |l| l.state),
                "sinceMs": s.latest.as_ref().map(|l| l.at_ms),
                "transitions": s.transitions,
            })).collect::<Vec<_>>(),
        }))
    }
}

/// Why a write is refused, if it is.
pub fn may_write(headers: &HeaderMap, peer: IpAddr) -> Result<(), &'static str> {
    if !peer.is_loopback() {
        return Err("the console writes only for a caller on this machine");
    }
    if !headers.contains_key(WRITE_HEADER) {
        return Err("a console write carries the x-dishpatch-console header");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = host.is_some_and(|h| {
            origin.to_str().ok().and_then(|o| o.strip_prefix("http://")) == Some(h)
        });
        if !own {
            return Err("a console write comes from the console's own page");
        }
    }
    Ok(())
}

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    hyper::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(body.into()))
        .expect("static headers")
}

fn asset(content_type: &str, text: &'static str) -> Reply {
    response(StatusCode::OK, content_type, text)
}

fn redirect(to: &str) -> Reply {
    let mut r = response(StatusCode::PERMANENT_REDIRECT, "text/plain", "");
    if let Ok(v) = header::HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn ok(v: &impl Serialize) -> Reply {
    let body = serde_json::to_vec(v).unwrap_or_default();
    response(StatusCode::OK, "application/json", body)
}

fn error(status: StatusCode, why: &str) -> Reply {
    let body = serde_json::to_vec(&json!({ "error": why })).unwrap_or_default();
    response(status, "application/json", body)
}

/// A reader failed: the stack behind the console did not answer as it should.
fn failed(e: &Error) -> Reply {
    error(StatusCode::BAD_GATEWAY, &e.to_string())
}

fn json_reply<E: Into<Error>>(r: Result<Value, E>) -> Reply {
    match r {
        Ok(v) => ok(&v),
        Err(e) => failed(&e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, header::HeaderValue::from_static(v));
        }
        h
    }

    fn console() -> Console {
        let sdk = aws_config::SdkConfig::builder().build();
        let template = dishpatch_template::Template::embedded().unwrap();
        Console::new(dishpatch_ops::Target::new(sdk, template.into(), "p"))
    }

    async fn get(path: &str) -> Reply {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        console()
            .answer(&Method::GET, path, &HeaderMap::new(), local, b"")
            .await
    }

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_and_name_nothing_off_the_machine() {
        let r = get("/console").await;
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "/console/");
        for (path, kind) in [
            ("/console/", "text/html"),
            ("/console/console.js", "text/javascript"),
            ("/console/console.css", "text/css"),
        ] {
            let r = get(path).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert!(r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind));
        }
        for text in [PAGE, SCRIPT, STYLE] {
            for external in ["src=\"http", "href=\"http", "url(http", "@import", "//cdn"] {
                assert!(!text.contains(external), "{external}");
            }
        }
        assert_eq!(get("/console/nope").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/console/api/stack").await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_redrive_from_elsewhere_is_refused_before_any_aws_call() {
        let from = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9));
        let h = headers(&[(WRITE_HEADER, "1")]);
        let r = console()
            .answer(
                &Method::POST,
                "/console/api/dlqs/InventoryQueueDLQ/redrive",
                &h,
                from,
                b"{}",
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = console()
            .answer(&Method::DELETE, "/console/api/orders", &h, from, b"")
            .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn writes_need_a_loopback_peer_the_header_and_the_own_origin() {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let good = headers(&[(WRITE_HEADER, "1"), ("host", "127.0.0.1:3000")]);
        assert_eq!(may_write(&good, local), Ok(()));
        assert!(may_write(&good, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))).is_err());
        assert!(may_write(&headers(&[("host", "127.0.0.1:3000")]), local).is_err());
        let same = headers(&[
            (WRITE_HEADER, "1"),
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        assert_eq!(may_write(&same, local), Ok(()));
        let other = headers(&[
            (WRITE_HEADER, "1"),
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example"),
        ]);
        assert!(may_write(&other, local).is_err());
    }
}
