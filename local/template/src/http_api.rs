//! The HTTP API: routes, who may call them, CORS.

use serde_json::Value;

use crate::props::*;

/// Who may call an HTTP route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAuth {
    /// No `Auth` on the event: the API's `DefaultAuthorizer` applies (if any).
    Default,
    /// `Auth: {Authorizer: NONE}`.
    None,
    /// `Auth: {Authorizer: Name}`.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRouteDef {
    /// The event's name in the function's `Events`.
    pub name: String,
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// Path template, e.g. `/v1/orders/{orderId}`.
    pub path: String,
    pub auth: RouteAuth,
}

impl HttpRouteDef {
    /// API Gateway's route key: `GET /v1/orders/{orderId}`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsDef {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<i64>,
    pub allow_credentials: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpApiDef {
    /// `Auth.DefaultAuthorizer` of the HttpApi, if any.
    pub default_authorizer: Option<String>,
    /// Names of the declared authorizers.
    pub authorizers: Vec<String>,
    pub cors: Option<CorsDef>,
}

impl HttpApiDef {
    /// Whether a route needs a valid JWT (the local gateway emulates every JWT
    /// authorizer with the dev key).
    pub fn requires_auth(&self, route: &HttpRouteDef) -> bool {
        match &route.auth {
            RouteAuth::None => false,
            RouteAuth::Named(_) => true,
            RouteAuth::Default => self.default_authorizer.is_some(),
        }
    }
}

pub(crate) fn parse_http_api(p: &Value) -> HttpApiDef {
    let auth = p.get("Auth");
    let cors = p.get("CorsConfiguration").and_then(|c| match c {
        Value::Bool(true) => Some(CorsDef {
            allow_origins: vec!["*".into()],
            ..Default::default()
        }),
        Value::Object(_) => Some(CorsDef {
            allow_origins: string_list(c.get("AllowOrigins")),
            allow_methods: string_list(c.get("AllowMethods")),
            allow_headers: string_list(c.get("AllowHeaders")),
            expose_headers: string_list(c.get("ExposeHeaders")),
            max_age: c.get("MaxAge").and_then(Value::as_i64),
            allow_credentials: bool_prop(c, "AllowCredentials").unwrap_or(false),
        }),
        _ => None,
    });
    HttpApiDef {
        default_authorizer: auth
            .and_then(|a| str_prop(a, "DefaultAuthorizer"))
            .filter(|a| a != "NONE"),
        authorizers: auth
            .and_then(|a| a.get("Authorizers"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        cors,
    }
}
