//! The local HTTP API: serves every `HttpApi` route of the template like API Gateway
//! HTTP APIs do. Requests become payload-format 2.0 events, routes not opted out with
//! `Auth: {Authorizer: NONE}` need a valid dev JWT (checked like the JWT authorizer,
//! before the function is invoked: known `kid`, signature, `iss`, `aud`, `exp`/`nbf`/`iat`;
//! see [`tokens::verify`]), the function's v2 response JSON is translated back
//! to HTTP. CORS preflights are answered from the template's `CorsConfiguration`.
//! Not emulated: throttling, stages other than `$default`, custom domains.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::functions::LocalFunction;
use crate::template::{CorsDef, HttpRouteDef};
use crate::tokens;

type Response = hyper::Response<Full<Bytes>>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// One route: a template `HttpApi` event bound to its function.
#[derive(Debug, Clone)]
pub struct Route {
    pub def: HttpRouteDef,
    pub requires_auth: bool,
    pub function: LocalFunction,
    segments: Option<Vec<Segment>>,
}

impl Route {
    pub fn new(def: HttpRouteDef, requires_auth: bool, function: LocalFunction) -> Route {
        let segments = (def.path != "$default").then(|| parse_path(&def.path));
        Route {
            def,
            requires_auth,
            function,
            segments,
        }
    }

    /// Path parameters and a specificity score when `path` matches.
    fn matches(&self, method: &str, path: &str) -> Option<(Vec<u8>, Map<String, Value>)> {
        let method_score = if self.def.method == "ANY" {
            0
        } else if self.def.method == method {
            1
        } else {
            return None;
        };
        let Some(segments) = &self.segments else {
            // `$default`: matches anything, least specific of all.
            return Some((Vec::new(), Map::new()));
        };
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        let mut params = Map::new();
        let mut score = Vec::new();
        let mut i = 0;
        for seg in segments {
            match seg {
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                    score.push(3);
                    i += 1;
                }
                Segment::Param(name) => {
                    let p = parts.get(i).filter(|p| !p.is_empty())?;
                    params.insert(name.clone(), Value::String(percent_decode(p)));
                    score.push(2);
                    i += 1;
                }
                Segment::Greedy(name) => {
                    if i >= parts.len() {
                        return None;
                    }
                    params.insert(
                        name.clone(),
                        Value::String(percent_decode(&parts[i..].join("/"))),
                    );
                    score.push(1);
                    i = parts.len();
                }
            }
        }
        if i != parts.len() {
            return None;
        }
        score.push(method_score);
        Some((score, params))
    }
}

fn parse_path(path: &str) -> Vec<Segment> {
    path.split('/')
        .skip(1)
        .map(|s| {
            if let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                match inner.strip_suffix('+') {
                    Some(g) => Segment::Greedy(g.to_owned()),
                    None => Segment::Param(inner.to_owned()),
                }
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

/// Answers every request under a path prefix on the gateway's port, ahead of the API's
/// routes (the operator console).
pub type MountHandler = Arc<
    dyn Fn(hyper::Request<Incoming>, SocketAddr) -> Pin<Box<dyn Future<Output = Response> + Send>>
        + Send
        + Sync,
>;

/// The HTTP API.
#[derive(Clone)]
pub struct Gateway {
    pub routes: Vec<Route>,
    pub cors: Option<CorsDef>,
    pub account_id: String,
    pub api_id: String,
    /// Path prefixes served by other handlers.
    pub mounts: Vec<(String, MountHandler)>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routes", &self.routes)
            .field("cors", &self.cors)
            .field("account_id", &self.account_id)
            .field("api_id", &self.api_id)
            .field(
                "mounts",
                &self.mounts.iter().map(|m| &m.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Gateway {
    pub fn new(routes: Vec<Route>, cors: Option<CorsDef>, account_id: &str) -> Gateway {
        Gateway {
            routes,
            cors,
            account_id: account_id.to_owned(),
            api_id: "local".to_owned(),
            mounts: Vec::new(),
        }
    }

    /// Serves `prefix` and every path under it with `handler` instead of the routes.
    pub fn mount(mut self, prefix: &str, handler: MountHandler) -> Gateway {
        self.mounts.push((prefix.to_owned(), handler));
        self
    }

    fn mounted(&self, path: &str) -> Option<&MountHandler> {
        self.mounts
            .iter()
            .find(|(p, _)| {
                path.strip_prefix(p.as_str())
                    .is_some_and(|r| r.is_empty() || r.starts_with('/'))
            })
            .map(|(_, h)| h)
    }

    fn find(&self, method: &str, path: &str) -> Option<(&Route, Map<String, Value>)> {
        let mut best: Option<(Vec<u8>, &Route, Map<String, Value>)> = None;
        for r in &self.routes {
            if let Some((score, params)) = r.matches(method, path) {
                if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                    best = Some((score, r, params));
                }
            }
        }
        best.map(|(_, r, p)| (r, p))
    }

    /// Serves on `listener` until the returned task is aborted (which also drops every
    /// open connection).
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> JoinHandle<()> {
        crate::serve::serve(listener, "gateway", move |req, peer, local| {
            let gw = self.clone();
            async move {
                match gw.mounted(req.uri().path()) {
                    Some(handler) => handler(req, peer).await,
                    None => gw.handle(req, peer, local).await,
                }
            }
        })
    }

    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                tracing::debug!(error = %e, "could not read request body");
                return message(StatusCode::BAD_REQUEST, "Bad Request", &request_id);
            }
        };
        let origin = parts
            .headers
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);

        // CORS preflight: answered by API Gateway itself when CORS is configured.
        if parts.method == Method::OPTIONS
            && parts.headers.contains_key("access-control-request-method")
        {
            if let Some(cors) = &self.cors {
                let mut resp = hyper::Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Full::new(Bytes::new()))
                    .expect("static response");
                cors_headers(cors, origin.as_deref(), true, resp.headers_mut());
                resp.headers_mut()
                    .insert("apigw-requestid", header_value(&request_id));
                return resp;
            }
        }

        let method = parts.method.as_str().to_owned();
        let raw_path = parts.uri.path().to_owned();
        let mut resp = match self.find(&method, &raw_path) {
            None => message(StatusCode::NOT_FOUND, "Not Found", &request_id),
            Some((route, params)) => {
                let authorizer = if route.requires_auth {
                    match authorize(&parts.headers) {
                        Some(claims) => Some(claims),
                        None => {
                            let mut r =
                                message(StatusCode::UNAUTHORIZED, "Unauthorized", &request_id);
                            r.headers_mut().insert(
                                http::header::WWW_AUTHENTICATE,
                                HeaderValue::from_static("Bearer"),
                            );
                            return with_cors(self.cors.as_ref(), origin.as_deref(), r);
                        }
                    }
                } else {
                    None
                };
                let event = v2_event(V2Request {
                    route,
                    params,
                    parts: &parts,
                    body: &body,
                    peer,
                    local,
                    authorizer,
                    request_id: &request_id,
                    account_id: &self.account_id,
                    api_id: &self.api_id,
                });
                match route.function.invoke(event).await {
                    Ok(v) => from_v2_response(&v, &request_id),
                    Err(e) => {
                        tracing::error!(route = %route.def.route_key(), error = %e, "integration failed");
                        message(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "Internal Server Error",
                            &request_id,
                        )
                    }
                }
            }
        };
        resp.headers_mut()
            .insert("apigw-requestid", header_value(&request_id));
        tracing::debug!(method, path = %raw_path, status = resp.status().as_u16(), "http request");
        with_cors(self.cors.as_ref(), origin.as_deref(), resp)
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// API Gateway's own error bodies: `{"message":"Not Found"}`.
fn message(status: StatusCode, msg: &str, request_id: &str) -> Response {
    let mut r = hyper::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            json!({ "message": msg }).to_string(),
        )))
        .expect("static response");
    r.headers_mut()
        .insert("apigw-requestid", header_value(request_id));
    r
}

fn with_cors(cors: Option<&CorsDef>, origin: Option<&str>, mut resp: Response) -> Response {
    if let Some(c) = cors {
        cors_headers(c, origin, false, resp.headers_mut());
    }
    resp
}

fn cors_headers(cors: &CorsDef, origin: Option<&str>, preflight: bool, h: &mut HeaderMap) {
    let Some(origin) = origin else { return };
    let allowed = cors.allow_origins.iter().any(|o| o == "*" || o == origin);
    if !allowed {
        return;
    }
    let allow_origin = if cors.allow_origins.iter().any(|o| o == "*") && !cors.allow_credentials {
        "*"
    } else {
        origin
    };
    h.insert("access-control-allow-origin", header_value(allow_origin));
    if cors.allow_credentials {
        h.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
    if preflight {
        if !cors.allow_methods.is_empty() {
            h.insert(
                "access-control-allow-methods",
                header_value(&cors.allow_methods.join(",")),
            );
        }
        if !cors.allow_headers.is_empty() {
            h.insert(
                "access-control-allow-headers",
                header_value(&cors.allow_headers.join(",").to_ascii_lowercase()),
            );
        }
        if let Some(age) = cors.max_age {
            h.insert("access-control-max-age", header_value(&age.to_string()));
        }
    } else if !cors.expose_headers.is_empty() {
        h.insert(
            "access-control-expose-headers",
            header_value(&cors.expose_headers.join(",")),
        );
    }
}

/// Verifies `Authorization` (with or without the `Bearer ` prefix, as the JWT
/// authorizer accepts both); the claims on success.
fn authorize(headers: &HeaderMap) -> Option<Map<String, Value>> {
    let raw = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        Some(_) => return None,
        None => raw,
    };
    match tokens::verify(token) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(error = %e, "JWT rejected");
            None
        }
    }
}

struct V2Request<'a> {
    route: &'a Route,
    params: Map<String, Value>,
    parts: &'a http::request::Parts,
    body: &'a Bytes,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    authorizer: Option<Map<String, Value>>,
    request_id: &'a str,
    account_id: &'a str,
    api_id: &'a str,
}

/// The API Gateway HTTP API payload v2 event for a request.
fn v2_event(r: V2Request<'_>) -> Value {
    let parts = r.parts;
    // Headers: lower-cased, repeats comma-joined; cookies go to `cookies`.
    let mut headers = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == http::header::COOKIE {
            for v in &values {
                cookies.extend(
                    v.split(';')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(|c| Value::String(c.to_owned())),
                );
            }
            continue;
        }
        headers.insert(name.as_str().to_owned(), Value::String(values.join(",")));
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| r.local.map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_owned());
    let user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    headers
        .entry("x-forwarded-for")
        .or_insert_with(|| Value::String(r.peer.ip().to_string()));
    headers
        .entry("x-forwarded-proto")
        .or_insert_with(|| Value::String("http".into()));
    if let Some(l) = r.local {
        headers
            .entry("x-forwarded-port")
            .or_insert_with(|| Value::String(l.port().to_string()));
    }

    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let mut query: Map<String, Value> = Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        match query.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k, Value::String(v));
            }
        }
    }

    let now = chrono::Utc::now();
    let (body, is_b64) = if r.body.is_empty() {
        (Value::Null, false)
    } else {
        match std::str::from_utf8(r.body) {
            Ok(s) => (Value::String(s.to_owned()), false),
            Err(_) => (
                Value::String(base64::engine::general_purpose::STANDARD.encode(r.body)),
                true,
            ),
        }
    };
    let route_key = r.route.def.route_key();
    let protocol = match parts.version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };
    let domain_prefix = host.split(['.', ':']).next().unwrap_or_default().to_owned();
    let mut request_context = json!({
        "accountId": r.account_id,
        "apiId": r.api_id,
        "domainName": host,
        "domainPrefix": domain_prefix,
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": protocol,
            "sourceIp": r.peer.ip().to_string(),
            "userAgent": user_agent,
        },
        "requestId": r.request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(claims) = &r.authorizer {
        request_context["authorizer"] = json!({
            "jwt": {
                "claims": tokens::claims_as_strings(claims),
                "scopes": Value::Null,
            }
        });
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": is_b64,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !r.params.is_empty() {
        event["pathParameters"] = Value::Object(r.params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// The function's response (payload v2) as HTTP. A response without `statusCode` is
/// taken as a JSON body with status 200, as API Gateway does.
fn from_v2_response(v: &Value, request_id: &str) -> Response {
    let Some(obj) = v.as_object().filter(|o| o.contains_key("statusCode")) else {
        return hyper::Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(v.to_string())))
            .expect("static response");
    };
    let status = obj
        .get("statusCode")
        .and_then(|s| {
            s.as_u64()
                .or_else(|| s.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|s| StatusCode::from_u16(s as u16).ok());
    let Some(status) = status else {
        tracing::error!(response = %v, "invalid statusCode in the function response");
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            request_id,
        );
    };
    let mut builder = hyper::Response::builder().status(status);
    let h = builder.headers_mut().expect("builder ok");
    let mut add = |name: &str, value: &Value| {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => return,
            other => other.to_string(),
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&text),
        ) {
            h.append(n, v);
        }
    };
    for (name, value) in obj
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        match value {
            Value::Array(vs) => vs.iter().for_each(|v| add(name, v)),
            v => add(name, v),
        }
    }
    for (name, values) in obj
        .get("multiValueHeaders")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for v in values.as_array().into_iter().flatten() {
            add(name, v);
        }
    }
    for c in obj
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add("set-cookie", c);
    }
    let body = match obj.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s))
            if obj.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) =>
        {
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(b) => Bytes::from(b),
                Err(_) => {
                    tracing::error!("function returned invalid base64 body");
                    return message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                        request_id,
                    );
                }
            }
        }
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    builder.body(Full::new(body)).unwrap_or_else(|_| {
        message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            request_id,
        )
    })
}

/// `%XX` decoding (invalid sequences kept as is; `+` is not a space, as in paths).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::RouteAuth;
    use dishpatch::runtime::Function;

    struct Nop;
    impl Function for Nop {}

    fn route(method: &str, path: &str) -> Route {
        Route::new(
            HttpRouteDef {
                name: path.into(),
                method: method.into(),
                path: path.into(),
                auth: RouteAuth::Default,
            },
            true,
            LocalFunction::standalone("nop", Arc::new(Nop)),
        )
    }

    #[test]
    fn routes_match_most_specific_first() {
        let gw = Gateway::new(
            vec![
                route("GET", "/v1/orders/{orderId}"),
                route("GET", "/v1/orders/{orderId}/timeline"),
                route("GET", "/v1/orders/special"),
                route("ANY", "/v1/files/{proxy+}"),
                route("POST", "/v1/orders"),
            ],
            None,
            "1",
        );
        let (r, p) = gw.find("GET", "/v1/orders/o%2D1").unwrap();
        assert_eq!(r.def.path, "/v1/orders/{orderId}");
        assert_eq!(p["orderId"], "o-1");
        let (r, _) = gw.find("GET", "/v1/orders/special").unwrap();
        assert_eq!(r.def.path, "/v1/orders/special");
        let (r, p) = gw.find("GET", "/v1/orders/o1/timeline").unwrap();
        assert_eq!(r.def.path, "/v1/orders/{orderId}/timeline");
        assert_eq!(p["orderId"], "o1");
        let (_, p) = gw.find("DELETE", "/v1/files/a/b").unwrap();
        assert_eq!(p["proxy"], "a/b");
        assert!(gw.find("GET", "/v1/orders").is_none(), "method must match");
        assert!(gw.find("GET", "/v1/orders/").is_none());
        assert!(gw.find("GET", "/v2/x").is_none());
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("a+b"), "a+b");
    }

    #[test]
    fn responses_translate() {
        let r = from_v2_response(
            &json!({"statusCode": 201, "headers": {"content-type": "application/json"}, "body": "{}",
                    "cookies": ["a=1", "b=2"], "isBase64Encoded": false}),
            "r",
        );
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        let r = from_v2_response(
            &json!({"statusCode": 200, "body": "aGk=", "isBase64Encoded": true}),
            "r",
        );
        assert_eq!(r.status(), 200);
        let r = from_v2_response(&json!({"hello": "world"}), "r");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
    }
}
