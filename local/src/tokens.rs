//! Dev JWTs: ES256, issuer `dishpatch-local`, audience `dishpatch`, signed with the dev
//! key pair in `local/dev-keys/` (embedded, so the binary works from any directory).
//! The gateway verifies them like the HttpApi JWT authorizer verifies Cognito's.
//!
//! A manager's restaurants travel in the `restaurants` claim, comma-separated ids (in
//! Cognito: the `custom:restaurants` attribute); a demo manager of the seed gets theirs
//! by default.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

pub const ISSUER: &str = "dishpatch-local";
pub const AUDIENCE: &str = "dishpatch";
/// Key id in the token header: the authorizer picks the JWKS key by it, and refuses a
/// token whose `kid` names no key it knows.
pub const KEY_ID: &str = "dishpatch-local-dev";
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. API Gateway documents none:
/// `exp` must be after the current time, `nbf` and `iat` before it.
pub const LEEWAY_SECS: i64 = 0;

const PRIVATE_KEY_PEM: &str = include_str!("../dev-keys/jwt-private.pem");
const PUBLIC_KEY_PEM: &str = include_str!("../dev-keys/jwt-public.pem");
/// The issuer's key set (its JWKS): `kid` -> public key.
const KEYS: &[(&str, &str)] = &[(KEY_ID, PUBLIC_KEY_PEM)];

#[derive(Debug, thiserror::Error)]
#[error("token: {0}")]
pub struct TokenError(String);

/// What to put in a token. `extra` claims are merged last (they may override).
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub sub: String,
    pub roles: Vec<String>,
    /// The restaurants a manager manages: the `restaurants` claim when not empty.
    pub restaurants: Vec<String>,
    pub ttl: Duration,
    pub extra: Map<String, Value>,
}

impl TokenRequest {
    /// A token for `sub`; a demo manager of the seed ([`crate::seed::MANAGERS`]) with the
    /// MANAGER role manages their restaurants.
    pub fn new(sub: impl Into<String>, roles: &[&str]) -> TokenRequest {
        let sub = sub.into();
        let restaurants = if roles.contains(&"MANAGER") {
            crate::seed::restaurants_of(&sub)
        } else {
            Vec::new()
        };
        TokenRequest {
            sub,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            restaurants,
            ttl: DEFAULT_TTL,
            extra: Map::new(),
        }
    }

    /// The restaurants the token's manager manages, instead of the default.
    pub fn restaurants(mut self, ids: &[&str]) -> Self {
        self.restaurants = ids.iter().map(|r| r.to_string()).collect();
        self
    }

    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    pub fn mint(&self) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": self.sub,
            "roles": self.roles,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + self.ttl.as_secs() as i64,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(o) = claims.as_object_mut() {
            if !self.restaurants.is_empty() {
                o.insert("restaurants".into(), json!(self.restaurants.join(",")));
            }
            o.extend(self.extra.clone());
        }
        sign(&claims)
    }
}

/// A token for `sub` with `roles`, valid for 24 h.
pub fn mint(sub: &str, roles: &[&str]) -> Result<String, TokenError> {
    TokenRequest::new(sub, roles).mint()
}

/// Signs arbitrary claims with the dev key (tests: expired or wrong-audience tokens).
pub fn sign(claims: &Value) -> Result<String, TokenError> {
    sign_with_kid(claims, Some(KEY_ID))
}

/// [`sign`] with another `kid` in the header, or none (tests: tokens the authorizer
/// cannot match to a key).
pub fn sign_with_kid(claims: &Value, kid: Option<&str>) -> Result<String, TokenError> {
    let key = EncodingKey::from_ec_pem(PRIVATE_KEY_PEM.as_bytes())
        .map_err(|e| TokenError(e.to_string()))?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| TokenError(e.to_string()))
}

/// Verifies a token like the JWT authorizer: the header's `kid` names a key of the
/// issuer ([`KEYS`]), the ES256 signature verifies with it, `iss` = [`ISSUER`], `aud` (or
/// `client_id` without `aud`) = [`AUDIENCE`], `exp` after now, `nbf` and `iat` (if any)
/// not after now, each within [`LEEWAY_SECS`]. Also refuses a token with a list claim
/// that API Gateway's `[A B]` rendering would pass on ambiguously (see
/// [`ambiguous_list_claim`]). Returns the claims.
pub fn verify(token: &str) -> Result<Map<String, Value>, TokenError> {
    verify_at(token, chrono::Utc::now().timestamp())
}

/// [`verify`] at the time `now` (seconds since the epoch).
pub fn verify_at(token: &str, now: i64) -> Result<Map<String, Value>, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError(e.to_string()))?;
    let kid = header
        .kid
        .ok_or_else(|| TokenError("the header has no kid".into()))?;
    let pem = KEYS
        .iter()
        .find(|(id, _)| *id == kid)
        .map(|(_, pem)| *pem)
        .ok_or_else(|| TokenError(format!("no key with kid {kid:?}")))?;
    let key = DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| TokenError(e.to_string()))?;
    let mut v = Validation::new(Algorithm::ES256);
    v.set_issuer(&[ISSUER]);
    // Checked below: API Gateway accepts `aud` or `client_id`, and its time rules are
    // checked against `now`.
    v.validate_aud = false;
    v.validate_exp = false;
    v.validate_nbf = false;
    v.set_required_spec_claims(&["iss"]);
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
        .map_err(|e| TokenError(e.to_string()))?
        .claims;
    let time = |name: &str| -> Result<Option<i64>, TokenError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| TokenError(format!("{name} is not a number"))),
        }
    };
    match time("exp")? {
        None => return Err(TokenError("exp is missing".into())),
        Some(exp) if exp + LEEWAY_SECS <= now => return Err(TokenError("expired".into())),
        Some(_) => {}
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(TokenError("not valid yet (nbf)".into()));
    }
    if time("iat")?.is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err(TokenError("issued in the future (iat)".into()));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == AUDIENCE,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(AUDIENCE)),
        _ => claims.get("client_id").and_then(Value::as_str) == Some(AUDIENCE),
    };
    if !aud_ok {
        return Err(TokenError("audience mismatch".into()));
    }
    if let Some(name) = ambiguous_list_claim(&claims) {
        return Err(TokenError(format!(
            "claim {name:?} has an entry with whitespace or brackets"
        )));
    }
    Ok(claims)
}

/// The first list claim with an entry that API Gateway's rendering (`[A B]`, entries
/// joined by spaces) would not pass on unambiguously: one with whitespace (a group
/// `CUSTOMER ADMIN` would read as two) or a bracket. Cognito group names cannot contain
/// whitespace; the local issuer could, so the local gateway refuses such a token.
pub fn ambiguous_list_claim(claims: &Map<String, Value>) -> Option<&str> {
    claims.iter().find_map(|(name, v)| {
        let entries = v.as_array()?;
        entries
            .iter()
            .any(|e| match e {
                Value::String(s) => {
                    s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '[' || c == ']')
                }
                Value::Array(_) | Value::Object(_) => true,
                _ => false,
            })
            .then_some(name.as_str())
    })
}

/// Claims as API Gateway hands them to the function
/// (`requestContext.authorizer.jwt.claims`): every value a string, arrays as
/// `[A B]`, numbers and booleans as their text, objects as JSON.
pub fn claims_as_strings(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(claim_string(v))))
        .collect()
}

fn claim_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(claim_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Object(_) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify() {
        let t = mint("alice", &["CUSTOMER", "MANAGER"]).unwrap();
        let c = verify(&t).unwrap();
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["iss"], ISSUER);
        let s = claims_as_strings(&c);
        assert_eq!(s["roles"], "[CUSTOMER MANAGER]");
        assert!(s["exp"].as_str().unwrap().parse::<i64>().is_ok());
    }

    #[test]
    fn bad_tokens_are_rejected() {
        let now = chrono::Utc::now().timestamp();
        let expired =
            sign(&json!({"sub": "a", "iss": ISSUER, "aud": AUDIENCE, "exp": now - 10})).unwrap();
        assert!(verify(&expired).is_err());
        let wrong_aud =
            sign(&json!({"sub": "a", "iss": ISSUER, "aud": "other", "exp": now + 60})).unwrap();
        assert!(verify(&wrong_aud).is_err());
        let wrong_iss =
            sign(&json!({"sub": "a", "iss": "x", "aud": AUDIENCE, "exp": now + 60})).unwrap();
        assert!(verify(&wrong_iss).is_err());
        let list_aud =
            sign(&json!({"sub": "a", "iss": ISSUER, "aud": ["x", AUDIENCE], "exp": now + 60}))
                .unwrap();
        assert!(verify(&list_aud).is_ok());
        // Tampered payload: signature no longer matches.
        let good = mint("alice", &["CUSTOMER"]).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let forged_payload = {
            use base64::Engine;
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let mut c: Value = serde_json::from_slice(&e.decode(parts[1]).unwrap()).unwrap();
            c["roles"] = json!(["ADMIN"]);
            e.encode(c.to_string())
        };
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(verify(&forged).is_err());
        assert!(verify("not-a-jwt").is_err());
    }

    fn claims_at(now: i64) -> Value {
        json!({"sub": "a", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60})
    }

    #[test]
    fn the_kid_must_name_a_known_key() {
        let now = chrono::Utc::now().timestamp();
        assert!(verify(&sign_with_kid(&claims_at(now), Some(KEY_ID)).unwrap()).is_ok());
        for kid in [
            None,
            Some("other-key"),
            Some(""),
            Some("dishpatch-local-dev "),
        ] {
            let t = sign_with_kid(&claims_at(now), kid).unwrap();
            assert!(verify(&t).is_err(), "kid {kid:?}");
        }
    }

    #[test]
    fn times_are_checked_like_api_gateway() {
        let now = 1_900_000_000;
        let at = |changes: Value| {
            let mut c = claims_at(now);
            for (k, v) in changes.as_object().unwrap() {
                c[k] = v.clone();
            }
            verify_at(&sign(&c).unwrap(), now)
        };
        assert!(at(json!({})).is_ok());
        // exp must be after now.
        assert!(at(json!({"exp": now + LEEWAY_SECS})).is_err());
        assert!(at(json!({"exp": now + LEEWAY_SECS + 1})).is_ok());
        assert!(at(json!({"exp": now - 3600})).is_err());
        assert!(at(json!({"exp": "never"})).is_err());
        // nbf and iat must not be after now.
        assert!(at(json!({"nbf": now + LEEWAY_SECS})).is_ok());
        assert!(at(json!({"nbf": now + LEEWAY_SECS + 1})).is_err());
        assert!(at(json!({"iat": now + LEEWAY_SECS})).is_ok());
        assert!(at(json!({"iat": now + LEEWAY_SECS + 1})).is_err());
        assert!(at(json!({"iat": now + 86_400})).is_err());
        assert!(at(json!({"iat": "1900000000"})).is_err());
        let mut no_exp = claims_at(now);
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(verify_at(&sign(&no_exp).unwrap(), now).is_err());
    }

    #[test]
    fn list_claims_that_would_render_ambiguously_are_refused() {
        let now = chrono::Utc::now().timestamp();
        for (claim, groups) in [
            ("cognito:groups", json!(["CUSTOMER ADMIN"])),
            ("roles", json!(["CUSTOMER ADMIN"])),
            ("roles", json!(["CUSTOMER", "x\tADMIN"])),
            ("roles", json!(["[ADMIN]"])),
            ("roles", json!([["ADMIN"]])),
            ("roles", json!([""])),
        ] {
            let mut c = claims_at(now);
            c[claim] = groups.clone();
            assert!(verify(&sign(&c).unwrap()).is_err(), "{claim}: {groups}");
        }
        // Other punctuation renders unambiguously and is simply no role downstream.
        let mut c = claims_at(now);
        c["cognito:groups"] = json!(["x,ADMIN", "CUSTOMER"]);
        let s = claims_as_strings(&verify(&sign(&c).unwrap()).unwrap());
        assert_eq!(s["cognito:groups"], "[x,ADMIN CUSTOMER]");
        assert_eq!(
            dishpatch::http::parse_roles(s["cognito:groups"].as_str().unwrap()),
            vec![dishpatch::http::Role::Customer]
        );
    }

    #[test]
    fn a_managers_token_names_their_restaurants() {
        let c = verify(&mint("manager-1", &["MANAGER"]).unwrap()).unwrap();
        assert_eq!(c["restaurants"], "r-1");
        let c = verify(&mint("manager-2", &["MANAGER"]).unwrap()).unwrap();
        assert_eq!(c["restaurants"], "r-2");
        let t = TokenRequest::new("m-x", &["MANAGER"])
            .restaurants(&["r-1", "r-2"])
            .mint()
            .unwrap();
        assert_eq!(verify(&t).unwrap()["restaurants"], "r-1,r-2");
        // Not a manager, or an unknown one: no claim.
        assert!(!verify(&mint("manager-1", &["CUSTOMER"]).unwrap())
            .unwrap()
            .contains_key("restaurants"));
        assert!(!verify(&mint("someone", &["MANAGER"]).unwrap())
            .unwrap()
            .contains_key("restaurants"));
    }
}
