//! HTTP: routing, headers, bodies.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::state::{
    error, ChargeRequest, ConfigPatch, Fault, Outcome, RefundRequest, Reply, Shared,
};

type Response = hyper::Response<Full<Bytes>>;

const MAX_BODY: usize = 64 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Serves until the returned task is aborted, which also drops every open connection
/// (and every answer still being held back).
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "psp sandbox accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let shared = shared.clone();
            connections.spawn(async move {
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(error = %e, "psp sandbox connection closed with an error");
                }
            });
        }
    })
}

enum Route<'a> {
    Charges,
    Refunds(&'a str),
    Config,
    ChargesList,
    Reset,
}

fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["", "v1", "charges"] => Some(Route::Charges),
        ["", "v1", "charges", id, "refunds"] if !id.is_empty() => Some(Route::Refunds(id)),
        ["", "_sandbox", "config"] => Some(Route::Config),
        ["", "_sandbox", "charges"] => Some(Route::ChargesList),
        ["", "_sandbox", "reset"] => Some(Route::Reset),
        _ => None,
    }
}

async fn handle(shared: &Shared, req: hyper::Request<Incoming>) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => Err(e.to_string()),
    };
    let reply = match (route(&path), body) {
        (None, _) => error(404, "not_found", format!("no route {path}")),
        (Some(_), Err(e)) => error(400, "bad_request", format!("could not read the body: {e}")),
        (Some(route), Ok(body)) => {
            dispatch(shared, &parts.method, route, &parts.headers, &body).await
        }
    };
    tracing::info!(
        method = %parts.method,
        path,
        status = reply.status,
        replayed = reply.replayed,
        idempotency_key = parts.headers.get("idempotency-key").and_then(|v| v.to_str().ok()),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "psp sandbox request"
    );
    respond(reply)
}

async fn dispatch(
    shared: &Shared,
    method: &Method,
    route: Route<'_>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    match (route, method) {
        (Route::Charges, &Method::POST) => provider_call(shared, None, headers, body).await,
        (Route::Refunds(id), &Method::POST) => provider_call(shared, Some(id), headers, body).await,
        (Route::Config, &Method::GET) => ok(json!(shared.config())),
        (Route::Config, &Method::PUT) => match parse::<ConfigPatch>(body) {
            Err(e) => e,
            Ok(patch) => match shared.patch_config(patch) {
                Ok(config) => ok(json!(config)),
                Err(e) => error(400, "bad_request", e.0),
            },
        },
        (Route::ChargesList, &Method::GET) => ok(json!({ "charges": shared.charges() })),
        (Route::Reset, &Method::POST) => {
            shared.reset();
            Reply {
                status: 204,
                body: Value::Null,
                replayed: false,
            }
        }
        _ => error(
            405,
            "method_not_allowed",
            format!("{method} is not allowed here"),
        ),
    }
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body,
        replayed: false,
    }
}

/// A charge (`charge_id` `None`) or a refund of `charge_id`.
async fn provider_call(
    shared: &Shared,
    charge_id: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    match shared.fault() {
        Fault::Down => return error(503, "provider_unavailable", "the provider is down"),
        Fault::Failure => {
            return error(
                503,
                "provider_unavailable",
                "the provider failed (injected)",
            )
        }
        Fault::Pass { latency } => {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
        }
    }

    let authorized = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| k == shared.api_key);
    if !authorized {
        return error(
            401,
            "unauthorized",
            "missing or wrong Authorization: Bearer <api key>",
        );
    }
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => {
            return error(
                400,
                "idempotency_key_missing",
                "the Idempotency-Key header is required",
            )
        }
        Some(Ok(k)) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => k,
        Some(_) => {
            return error(
                400,
                "idempotency_key_invalid",
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ),
            )
        }
    };
    let fingerprint = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(e) => return error(400, "bad_request", format!("the body is not JSON: {e}")),
    };

    match charge_id {
        None => {
            let req = match typed::<ChargeRequest>(&fingerprint) {
                Ok(r) => r,
                Err(e) => return e,
            };
            if let Err(e) = req.validate() {
                return error(400, "bad_request", e);
            }
            match shared.charge(key, fingerprint.clone(), &req) {
                Outcome::Now(reply) => reply,
                Outcome::After(delay, reply) => {
                    tracing::info!(
                        reference = req.reference(),
                        delay_ms = delay.as_millis() as u64,
                        "psp sandbox holding the answer"
                    );
                    tokio::time::sleep(delay).await;
                    reply
                }
            }
        }
        Some(charge_id) => {
            let req = match typed::<RefundRequest>(&fingerprint) {
                Ok(r) => r,
                Err(e) => return e,
            };
            if let Err(e) = req.validate() {
                return error(400, "bad_request", e);
            }
            shared.refund(charge_id, key, fingerprint.clone(), &req)
        }
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| error(400, "bad_request", format!("bad body: {e}")))
}

fn typed<T: DeserializeOwned>(value: &Value) -> Result<T, Reply> {
    T::deserialize(value).map_err(|e| error(400, "bad_request", format!("bad body: {e}")))
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if status == StatusCode::NO_CONTENT {
        Bytes::new()
    } else {
        Bytes::from(reply.body.to_string())
    };
    let mut resp = hyper::Response::new(Full::new(body));
    *resp.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if reply.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}
