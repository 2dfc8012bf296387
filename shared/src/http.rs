//! HTTP conventions: caller identity from the JWT authorizer, JSON and problem responses.

use crate::error::{Problem, ProblemCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Courier,
    Manager,
    Admin,
}

/// Who is calling, as the HttpApi JWT authorizer verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub roles: Vec<Role>,
    /// The restaurants this caller manages as a MANAGER (see [`RESTAURANTS_CLAIMS`]).
    pub restaurants: Vec<String>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }

    pub fn require(&self, any_of: &[Role]) -> Result<(), Problem> {
        if any_of.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            Err(Problem::forbidden("your role does not allow this"))
        }
    }

    /// Whether the caller may manage `restaurant_id`: a MANAGER assigned to it, or ADMIN.
    pub fn manages(&self, restaurant_id: &str) -> bool {
        self.roles.contains(&Role::Admin)
            || (self.roles.contains(&Role::Manager)
                && self.restaurants.iter().any(|r| r == restaurant_id))
    }

    /// 403 unless the caller [`manages`](Self::manages) `restaurant_id`.
    pub fn require_manager_of(&self, restaurant_id: &str) -> Result<(), Problem> {
        self.require(&[Role::Manager])?;
        if self.manages(restaurant_id) {
            Ok(())
        } else {
            Err(Problem::forbidden("you do not manage this restaurant"))
        }
    }
}

/// Claims naming the restaurants a manager manages, in order of precedence: the Cognito
/// custom attribute, then the local issuer's claim. Either holds comma-separated ids.
pub const RESTAURANTS_CLAIMS: [&str; 2] = ["custom:restaurants", "restaurants"];

/// Reads `sub`, the roles (`roles` or `cognito:groups`, see [`parse_roles`]) and the
/// managed restaurants ([`RESTAURANTS_CLAIMS`], see [`parse_restaurants`]) from the
/// authorizer claims, which API Gateway passes as strings.
pub fn caller(req: &Request) -> Result<Caller, Problem> {
    let ctx = req.request_context_ref();
    let claims = match ctx {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|j| j.claims.clone()),
        _ => None,
    }
    .ok_or_else(Problem::unauthorized)?;
    let sub = claims
        .get("sub")
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(Problem::unauthorized)?;
    let raw = claims
        .get("roles")
        .or_else(|| claims.get("cognito:groups"))
        .map(String::as_str)
        .unwrap_or("");
    let restaurants = RESTAURANTS_CLAIMS
        .iter()
        .find_map(|name| claims.get(*name))
        .map(|raw| parse_restaurants(raw))
        .unwrap_or_default();
    Ok(Caller {
        sub,
        roles: parse_roles(raw),
        restaurants,
    })
}

/// The roles in a claim as API Gateway passes it: an array claim arrives as `[A B]`, its
/// entries joined by single spaces; a string claim arrives as is, one entry. Only an entry
/// that is exactly a role name counts, and an entry is never split again, so a group
/// named `x,ADMIN` or `"ADMIN"` is no role at all. An entry with a space would be
/// ambiguous in that rendering: Cognito group names cannot contain whitespace, and the
/// local gateway refuses such a token.
pub fn parse_roles(raw: &str) -> Vec<Role> {
    let entries: Vec<&str> = match raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Some(inner) => inner.split(' ').collect(),
        None => vec![raw],
    };
    let mut roles = Vec::new();
    for role in entries.into_iter().filter_map(|r| match r {
        "CUSTOMER" => Some(Role::Customer),
        "COURIER" => Some(Role::Courier),
        "MANAGER" => Some(Role::Manager),
        "ADMIN" => Some(Role::Admin),
        _ => None,
    }) {
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    roles
}

/// Restaurant ids from a comma-separated claim (`r-1,r-2`; a Cognito custom attribute is
/// one string). An entry that is not a valid id is ignored, never split further.
pub fn parse_restaurants(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in raw.split(',').map(str::trim) {
        if crate::validation::is_valid_id(id) && !out.iter().any(|r| r == id) {
            out.push(id.to_owned());
        }
    }
    out
}

pub fn request_id(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    }
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(
            serde_json::to_string(value).expect("response bodies serialize"),
        ))
        .expect("static response parts are valid")
}

pub fn problem(req: &Request, mut p: Problem) -> Response<Body> {
    p.request_id = request_id(req);
    let mut resp = Response::builder()
        .status(p.status)
        .header("content-type", "application/problem+json");
    if let Some(secs) = p.retry_after {
        resp = resp.header("retry-after", secs);
    }
    resp.body(Body::Text(
        serde_json::to_string(&p).expect("problems serialize"),
    ))
    .expect("static response parts are valid")
}

/// Runs a route and renders its error, so handlers can use `?` on [`Problem`].
pub fn respond(req: &Request, result: Result<Response<Body>, Problem>) -> Response<Body> {
    result.unwrap_or_else(|p| problem(req, p))
}

/// A query parameter by name.
pub fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name).map(str::to_owned))
}

/// The `page_size` query parameter: `default` when absent, else 1..=`max`.
pub fn page_size(req: &Request, default: u32, max: u32) -> Result<u32, Problem> {
    match query(req, "page_size") {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Problem::bad_request("page_size", format!("must be 1..={max}"))),
    }
}

/// The `page_token` query parameter, if given: a token `issued` says this list could have
/// issued, else a `400` naming the field.
pub fn page_token(req: &Request, issued: impl Fn(&str) -> bool) -> Result<Option<String>, Problem> {
    match query(req, "page_token") {
        Some(t) if !issued(&t) => Err(Problem::bad_request(
            "page_token",
            "not a page token this API issued",
        )),
        token => Ok(token),
    }
}

pub fn path_param(req: &Request, name: &str) -> Result<String, Problem> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name).map(str::to_owned))
        .filter(|v| crate::validation::is_valid_id(v))
        .ok_or_else(|| Problem::not_found(name))
}

/// The largest request body any route reads (the biggest valid order is a few KB):
/// anything larger is refused before a handler parses it.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

pub fn too_large(n: usize) -> Problem {
    Problem::new(
        413,
        ProblemCode::PayloadTooLarge,
        format!("the body is {n} bytes; at most {MAX_BODY_BYTES} are accepted"),
    )
    .with_field("body")
}

pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses a JSON body into `T`, as a 400 naming the body on failure.
pub fn parse_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, Problem> {
    serde_json::from_slice(body_bytes(req))
        .map_err(|e| Problem::bad_request("body", format!("invalid JSON body: {e}")))
}

/// A body that must be a JSON object, for handlers that check each field themselves
/// (bounds, types) rather than through serde: a 400 naming the body otherwise.
pub fn json_object(body: &[u8]) -> Result<serde_json::Value, Problem> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request("body", format!("invalid JSON body: {e}")))?;
    if !v.is_object() {
        return Err(Problem::bad_request(
            "body",
            "the body must be a JSON object",
        ));
    }
    Ok(v)
}

/// The matched route, `"METHOD /path/{param}"`, as API Gateway reports it.
pub fn route_key(req: &Request) -> String {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => {
            c.route_key.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_is_one_the_list_could_have_issued() {
        let req =
            |q: &str| crate::testing::http_request("GET", "/v1/x", "/v1/x", &[], q, None, None);
        let issued = |t: &str| t.starts_with("ok");
        assert_eq!(page_token(&req(""), issued).unwrap(), None);
        assert_eq!(
            page_token(&req("page_token=ok-1"), issued)
                .unwrap()
                .as_deref(),
            Some("ok-1")
        );
        let refused = page_token(&req("page_token=nope"), issued).unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("page_token"));
    }

    #[test]
    fn roles_as_api_gateway_renders_them() {
        assert_eq!(
            parse_roles("[CUSTOMER MANAGER]"),
            vec![Role::Customer, Role::Manager]
        );
        assert_eq!(parse_roles("[COURIER]"), vec![Role::Courier]);
        assert_eq!(parse_roles("MANAGER"), vec![Role::Manager]);
        assert_eq!(parse_roles("[guest CUSTOMER]"), vec![Role::Customer]);
        assert_eq!(parse_roles("[CUSTOMER CUSTOMER]"), vec![Role::Customer]);
        assert_eq!(parse_roles("[guest]"), vec![]);
        assert_eq!(parse_roles("[]"), vec![]);
        assert_eq!(parse_roles(""), vec![]);
    }

    #[test]
    fn a_group_name_with_separators_is_no_role() {
        // Each is how API Gateway renders one group (or a string claim) named so.
        for raw in [
            "[x,ADMIN]",
            "[CUSTOMER,ADMIN]",
            "[\"ADMIN\"]",
            "[\"COURIER\",\"ADMIN\"]",
            "[[ADMIN]]",
            "[ADMIN]]",
            "[ ADMIN,]",
            "[admin]",
            "[ADMIN\t]",
            "x,ADMIN",
            "CUSTOMER ADMIN",
            "CUSTOMER,ADMIN",
            "ADMIN ",
            "[ADMIN",
        ] {
            assert!(
                !parse_roles(raw).contains(&Role::Admin),
                "{raw:?} gave {:?}",
                parse_roles(raw)
            );
        }
        // Two groups, one of them oddly named: only the real one counts.
        assert_eq!(parse_roles("[x,ADMIN CUSTOMER]"), vec![Role::Customer]);
    }

    #[test]
    fn restaurants_are_comma_separated_valid_ids() {
        assert_eq!(parse_restaurants("r-1"), vec!["r-1"]);
        assert_eq!(
            parse_restaurants("r-1,r-2, r-3,r-1"),
            vec!["r-1", "r-2", "r-3"]
        );
        assert_eq!(parse_restaurants("[r-1 r-2]"), Vec::<String>::new());
        assert_eq!(parse_restaurants("r 1,,*,r-2"), vec!["r-2"]);
        assert_eq!(parse_restaurants(""), Vec::<String>::new());
    }

    fn who(roles: &[Role], restaurants: &[&str]) -> Caller {
        Caller {
            sub: "u".into(),
            roles: roles.to_vec(),
            restaurants: restaurants.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn admin_has_every_role() {
        let admin = who(&[Role::Admin], &[]);
        assert!(admin.require(&[Role::Manager]).is_ok());
        let cust = who(&[Role::Customer], &[]);
        assert_eq!(cust.require(&[Role::Manager]).unwrap_err().status, 403);
    }

    #[test]
    fn a_manager_manages_only_their_restaurants() {
        let m = who(&[Role::Manager], &["r-1", "r-3"]);
        assert!(m.require_manager_of("r-1").is_ok());
        assert!(m.require_manager_of("r-3").is_ok());
        let e = m.require_manager_of("r-2").unwrap_err();
        assert_eq!((e.status, e.code), (403, ProblemCode::Forbidden));
        assert!(who(&[Role::Admin], &[]).require_manager_of("r-2").is_ok());
        // The claim alone grants nothing without the role.
        let c = who(&[Role::Customer], &["r-1"]);
        assert_eq!(c.require_manager_of("r-1").unwrap_err().status, 403);
        assert!(!c.manages("r-1"));
        assert_eq!(
            who(&[Role::Manager], &[])
                .require_manager_of("r-1")
                .unwrap_err()
                .status,
            403
        );
    }

    fn request_with(claims: serde_json::Value) -> Request {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /x", "rawPath": "/x", "rawQueryString": "",
            "headers": {},
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "d",
                "http": {"method": "GET", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                "requestId": "r", "routeKey": "GET /x", "stage": "$default", "time": "", "timeEpoch": 0,
                "authorizer": {"jwt": {"claims": claims, "scopes": null}}
            },
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[test]
    fn caller_reads_cognito_and_local_claims() {
        let c = caller(&request_with(serde_json::json!({
            "sub": "m", "cognito:groups": "[MANAGER]", "custom:restaurants": "r-1,r-2"
        })))
        .unwrap();
        assert_eq!(c.roles, vec![Role::Manager]);
        assert_eq!(c.restaurants, vec!["r-1", "r-2"]);
        let c = caller(&request_with(serde_json::json!({
            "sub": "m", "roles": "[MANAGER]", "restaurants": "r-9"
        })))
        .unwrap();
        assert_eq!(c.restaurants, vec!["r-9"]);
        let c = caller(&request_with(
            serde_json::json!({"sub": "c", "roles": "[CUSTOMER]"}),
        ))
        .unwrap();
        assert!(c.restaurants.is_empty());
        assert_eq!(
            caller(&request_with(serde_json::json!({"roles": "[ADMIN]"})))
                .unwrap_err()
                .status,
            401
        );
    }
}
