//! The SDK's HTTP client, stamping every AWS call with the current trace.
//!
//! The SDK's recursion-detection interceptor copies `_X_AMZN_TRACE_ID` into
//! `X-Amzn-Trace-Id`: on Lambda that is the invocation's trace, which for a batch of
//! messages is not the order's, and in the local stack no trace at all. This client
//! sets the header from [`super::current`] instead, where there is one. SigV4 does not
//! sign the header, so setting it after signing is sound.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// `inner`, with each request's `X-Amzn-Trace-Id` set from the current trace.
pub fn traced(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(Traced(inner))
}

#[derive(Debug)]
struct Traced(SharedHttpClient);

impl HttpClient for Traced {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(TracedConnector(self.0.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct TracedConnector(SharedHttpConnector);

impl HttpConnector for TracedConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        if let Some(ctx) = super::current() {
            request.headers_mut().insert("x-amzn-trace-id", ctx.xray());
        }
        self.0.call(request)
    }
}
