//! A minimal Lambda Runtime API (the `2018-06-01` HTTP interface) serving one function
//! process: it hands out the invocations it is given and reports, with timestamps, when
//! the runtime asks for work and when it answers. One instance per cold start, so each
//! process gets a fresh port and nothing carries over between runs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

const PREFIX: &str = "/2018-06-01/runtime";

/// What a runtime request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Next,
    Response(String),
    InvocationError(String),
    InitError,
    Unknown,
}

/// Maps a request line to its Runtime API route.
pub fn route(method: &Method, path: &str) -> Route {
    let path = path.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Route::Unknown;
    };
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => Route::Next,
        (&Method::POST, ["invocation", id, "response"]) if !id.is_empty() => {
            Route::Response((*id).to_owned())
        }
        (&Method::POST, ["invocation", id, "error"]) if !id.is_empty() => {
            Route::InvocationError((*id).to_owned())
        }
        (&Method::POST, ["init", "error"]) => Route::InitError,
        _ => Route::Unknown,
    }
}

/// One event for the function.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub function_arn: String,
    pub event: Bytes,
}

/// What the runtime did, and when.
#[derive(Debug)]
pub enum Report {
    /// The runtime asked for its next event (the first one ends init).
    NextRequested(Instant),
    /// An event was written to the runtime.
    Delivered(Instant),
    Responded {
        at: Instant,
        body: Bytes,
    },
    /// `init/error` or `invocation/{id}/error`: the body says why.
    Failed {
        body: Bytes,
    },
}

#[derive(Clone)]
struct Shared {
    invocations: Arc<Mutex<mpsc::Receiver<Invocation>>>,
    reports: mpsc::UnboundedSender<Report>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    pub reports: mpsc::UnboundedReceiver<Report>,
    invocations: mpsc::Sender<Invocation>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Binds a free loopback port and starts serving.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (inv_tx, inv_rx) = mpsc::channel(1);
        let (rep_tx, rep_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            invocations: Arc::new(Mutex::new(inv_rx)),
            reports: rep_tx,
        };
        let server = tokio::spawn(serve(listener, shared));
        Ok(RuntimeApi {
            addr,
            reports: rep_rx,
            invocations: inv_tx,
            server,
        })
    }

    /// Queues an event for the runtime's pending (or next) `invocation/next`.
    pub async fn invoke(&self, invocation: Invocation) {
        // The receiver lives as long as the server: a send error means it stopped.
        let _ = self.invocations.send(invocation).await;
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Shared) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| handle(req, shared.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    // Dropping the set aborts connections still parked on `invocation/next`.
}

async fn handle(
    req: Request<Incoming>,
    shared: Shared,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = route(req.method(), req.uri().path());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = |status: StatusCode| {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")));
        *resp.status_mut() = status;
        Ok(resp)
    };
    match route {
        Route::Next => {
            let _ = shared.reports.send(Report::NextRequested(Instant::now()));
            let next = shared.invocations.lock().await.recv().await;
            let Some(inv) = next else {
                return reply(StatusCode::GONE);
            };
            let _ = shared.reports.send(Report::Delivered(Instant::now()));
            Ok(next_response(inv))
        }
        Route::Response(_) => {
            let _ = shared.reports.send(Report::Responded {
                at: Instant::now(),
                body,
            });
            reply(StatusCode::ACCEPTED)
        }
        Route::InvocationError(_) | Route::InitError => {
            let _ = shared.reports.send(Report::Failed { body });
            reply(StatusCode::ACCEPTED)
        }
        Route::Unknown => reply(StatusCode::NOT_FOUND),
    }
}

/// The `invocation/next` answer, with the headers the managed service sends.
fn next_response(inv: Invocation) -> Response<Full<Bytes>> {
    let deadline = SystemTime::now() + Duration::from_secs(10);
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &inv.request_id)
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &inv.function_arn)
        .header(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
        )
        .body(Full::new(inv.event))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_runtime_requests() {
        let p = |m: Method, path: &str| route(&m, path);
        assert_eq!(
            p(Method::GET, "/2018-06-01/runtime/invocation/next"),
            Route::Next
        );
        assert_eq!(
            p(
                Method::POST,
                "/2018-06-01/runtime/invocation/abc-1/response"
            ),
            Route::Response("abc-1".into())
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation/abc-1/error"),
            Route::InvocationError("abc-1".into())
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/init/error"),
            Route::InitError
        );
    }

    #[test]
    fn rejects_other_requests() {
        let p = |m: Method, path: &str| route(&m, path);
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation/next"),
            Route::Unknown
        );
        assert_eq!(
            p(Method::GET, "/2018-06-01/runtime/invocation/x/response"),
            Route::Unknown
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation//response"),
            Route::Unknown
        );
        assert_eq!(
            p(Method::GET, "/2020-01-01/extension/event/next"),
            Route::Unknown
        );
        assert_eq!(p(Method::GET, "/"), Route::Unknown);
    }

    #[test]
    fn ignores_query_strings() {
        assert_eq!(
            route(&Method::GET, "/2018-06-01/runtime/invocation/next?x=1"),
            Route::Next
        );
    }

    #[tokio::test]
    async fn serves_one_invocation_end_to_end() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut api = RuntimeApi::start().await.unwrap();
        api.invoke(Invocation {
            request_id: "r-1".into(),
            function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:f".into(),
            event: Bytes::from_static(b"{}"),
        })
        .await;
        let mut s = tokio::net::TcpStream::connect(api.addr).await.unwrap();
        s.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains("lambda-runtime-aws-request-id: r-1"),
            "{head}"
        );
        s.write_all(
            b"POST /2018-06-01/runtime/invocation/r-1/response HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nok",
        )
        .await
        .unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 202"));
        assert!(matches!(
            api.reports.recv().await,
            Some(Report::NextRequested(_))
        ));
        assert!(matches!(
            api.reports.recv().await,
            Some(Report::Delivered(_))
        ));
        match api.reports.recv().await {
            Some(Report::Responded { body, .. }) => assert_eq!(&body[..], b"ok"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
