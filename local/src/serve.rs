//! The HTTP/1.1 accept loop the local servers share (the API gateway, the AWS proxy).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// Serves on `listener` until the returned task is aborted, which also drops every open
/// connection. `handle` answers each request, given its connection's peer and local
/// addresses; `what` names the server in logs.
pub fn serve<H, F>(listener: TcpListener, what: &'static str, handle: H) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>, SocketAddr, Option<SocketAddr>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, server = what, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let local = stream.local_addr().ok();
            let handle = handle.clone();
            connections.spawn(async move {
                let svc = service_fn(move |req| {
                    let answer = handle(req, peer, local);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(error = %e, server = what, "connection closed with an error");
                }
            });
        }
    })
}
