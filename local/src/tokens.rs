//! Dev JWTs: ES256, issuer `dishpatch-local`, audience `dishpatch`, signed with the dev
//! key pair in `local/dev-keys/` (embedded, so the binary works from any directory).
//! The gateway verifies them like the HttpApi JWT authorizer verifies Cognito's.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

pub const ISSUER: &str = "dishpatch-local";
pub const AUDIENCE: &str = "dishpatch";
/// Key id in the token header (the authorizer would pick the JWKS key by it).
pub const KEY_ID: &str = "dishpatch-local-dev";
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

const PRIVATE_KEY_PEM: &str = include_str!("../dev-keys/jwt-private.pem");
const PUBLIC_KEY_PEM: &str = include_str!("../dev-keys/jwt-public.pem");

#[derive(Debug, thiserror::Error)]
#[error("token: {0}")]
pub struct TokenError(String);

/// What to put in a token. `extra` claims are merged last (they may override).
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub sub: String,
    pub roles: Vec<String>,
    pub ttl: Duration,
    pub extra: Map<String, Value>,
}

impl TokenRequest {
    pub fn new(sub: impl Into<String>, roles: &[&str]) -> TokenRequest {
        TokenRequest {
            sub: sub.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ttl: DEFAULT_TTL,
            extra: Map::new(),
        }
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
    let key = EncodingKey::from_ec_pem(PRIVATE_KEY_PEM.as_bytes())
        .map_err(|e| TokenError(e.to_string()))?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(KEY_ID.to_owned());
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| TokenError(e.to_string()))
}

/// Verifies a token like the JWT authorizer: ES256 signature with the dev public key,
/// `iss` = [`ISSUER`], `aud` (or `client_id`) = [`AUDIENCE`], `exp` in the future,
/// `nbf` (if any) in the past. Returns the claims.
pub fn verify(token: &str) -> Result<Map<String, Value>, TokenError> {
    let key = DecodingKey::from_ec_pem(PUBLIC_KEY_PEM.as_bytes())
        .map_err(|e| TokenError(e.to_string()))?;
    let mut v = Validation::new(Algorithm::ES256);
    v.set_issuer(&[ISSUER]);
    // The audience check is done below: API Gateway accepts `aud` or `client_id`.
    v.validate_aud = false;
    v.validate_nbf = true;
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "iss"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
        .map_err(|e| TokenError(e.to_string()))?;
    let claims = data.claims;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == AUDIENCE,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(AUDIENCE)),
        _ => claims.get("client_id").and_then(Value::as_str) == Some(AUDIENCE),
    };
    if !aud_ok {
        return Err(TokenError("audience mismatch".into()));
    }
    Ok(claims)
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
}
