//! HTTP conventions: caller identity from the JWT authorizer, JSON and problem responses.

use crate::error::Problem;
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
}

/// Reads `sub` and the roles (`roles` or `cognito:groups`) from the authorizer claims.
/// API Gateway renders array claims as `[A B]`; plain JSON arrays and commas are accepted too.
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
    Ok(Caller {
        sub,
        roles: parse_roles(raw),
    })
}

pub fn parse_roles(raw: &str) -> Vec<Role> {
    raw.trim_matches(|c| c == '[' || c == ']')
        .split([' ', ','])
        .map(|r| r.trim_matches(|c: char| c == '"' || c.is_whitespace()))
        .filter_map(|r| match r {
            "CUSTOMER" => Some(Role::Customer),
            "COURIER" => Some(Role::Courier),
            "MANAGER" => Some(Role::Manager),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        })
        .collect()
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
    Response::builder()
        .status(p.status)
        .header("content-type", "application/problem+json")
        .body(Body::Text(
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

pub fn path_param(req: &Request, name: &str) -> Result<String, Problem> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name).map(str::to_owned))
        .filter(|v| crate::validation::is_valid_id(v))
        .ok_or_else(|| Problem::not_found(name))
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
    fn roles_in_every_rendering() {
        assert_eq!(
            parse_roles("[CUSTOMER MANAGER]"),
            vec![Role::Customer, Role::Manager]
        );
        assert_eq!(
            parse_roles("[\"COURIER\",\"ADMIN\"]"),
            vec![Role::Courier, Role::Admin]
        );
        assert_eq!(parse_roles("MANAGER"), vec![Role::Manager]);
        assert_eq!(parse_roles("[guest]"), vec![]);
        assert_eq!(parse_roles(""), vec![]);
    }

    #[test]
    fn admin_has_every_role() {
        let admin = Caller {
            sub: "a".into(),
            roles: vec![Role::Admin],
        };
        assert!(admin.require(&[Role::Manager]).is_ok());
        let cust = Caller {
            sub: "c".into(),
            roles: vec![Role::Customer],
        };
        assert_eq!(cust.require(&[Role::Manager]).unwrap_err().status, 403);
    }
}
