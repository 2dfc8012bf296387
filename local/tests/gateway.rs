//! The local HTTP API over real HTTP: JWT authorizer behaviour, payload v2 events,
//! routing, response translation. The API function is replaced by an echo.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dishpatch::runtime::Function;
use dishpatch_local::{testing, tokens, LocalStack, LocalStackOptions};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};

/// Answers with what it was given.
#[derive(Default, Clone)]
struct Echo {
    calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Function for Echo {
    async fn http(&self, req: Request) -> Response<Body> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ctx = serde_json::to_value(req.request_context_ref()).unwrap_or(Value::Null);
        let body = match req.body() {
            Body::Text(s) => json!({"text": s}),
            Body::Binary(b) => json!({"binary": b.len()}),
            Body::Empty => Value::Null,
            _ => Value::Null,
        };
        let out = json!({
            "path": req.uri().path(),
            "pathParameters": req.path_parameters().iter().map(|(k, v)| (k.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "query": req.query_string_parameters().iter().map(|(k, v)| (k.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "context": ctx,
            "body": body,
        });
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("set-cookie", "a=1")
            .body(Body::Text(out.to_string()))
            .unwrap()
    }
}

async fn start() -> (LocalStack, Echo) {
    let echo = Echo::default();
    let local = LocalStack::start(
        LocalStackOptions::new(testing::unique_prefix("gw"))
            .endpoint(testing::moto())
            .seed(false)
            .pollers(false)
            .override_function("OrderApiFunction", Arc::new(echo.clone())),
    )
    .await
    .expect("local stack starts");
    (local, echo)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn rejects_missing_and_bad_tokens_without_invoking() {
    let (local, echo) = start().await;
    let url = format!("{}/v1/orders/o-1", local.url());
    let http = client();

    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Unauthorized"})
    );

    let now = chrono::Utc::now().timestamp();
    let good = tokens::mint("alice", &["CUSTOMER"]).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let bad = [
        "Bearer not-a-jwt".to_owned(),
        // Signature of another payload.
        format!("Bearer {}.{}.{}", parts[0], tokens::mint("mallory", &["ADMIN"]).unwrap().split('.').nth(1).unwrap(), parts[2]),
        format!(
            "Bearer {}",
            tokens::sign(&json!({"sub": "a", "iss": tokens::ISSUER, "aud": tokens::AUDIENCE, "exp": now - 5})).unwrap()
        ),
        format!(
            "Bearer {}",
            tokens::sign(&json!({"sub": "a", "iss": "someone-else", "aud": tokens::AUDIENCE, "exp": now + 60})).unwrap()
        ),
        format!(
            "Bearer {}",
            tokens::sign(&json!({"sub": "a", "iss": tokens::ISSUER, "aud": "other", "exp": now + 60})).unwrap()
        ),
        format!("Basic {good}"),
        // No key with that kid, or no kid at all.
        format!(
            "Bearer {}",
            tokens::sign_with_kid(&json!({"sub": "a", "iss": tokens::ISSUER, "aud": tokens::AUDIENCE, "exp": now + 60}), Some("another-key")).unwrap()
        ),
        format!(
            "Bearer {}",
            tokens::sign_with_kid(&json!({"sub": "a", "iss": tokens::ISSUER, "aud": tokens::AUDIENCE, "exp": now + 60}), None).unwrap()
        ),
        // Issued, or valid from, beyond the allowed skew in the future.
        format!(
            "Bearer {}",
            tokens::sign(&json!({"sub": "a", "iss": tokens::ISSUER, "aud": tokens::AUDIENCE, "exp": now + 600, "iat": now + 120})).unwrap()
        ),
        format!(
            "Bearer {}",
            tokens::sign(&json!({"sub": "a", "iss": tokens::ISSUER, "aud": tokens::AUDIENCE, "exp": now + 600, "nbf": now + 120})).unwrap()
        ),
        // A group whose name would read as two roles once rendered `[CUSTOMER ADMIN]`.
        format!(
            "Bearer {}",
            tokens::sign(&json!({"sub": "a", "iss": tokens::ISSUER, "aud": tokens::AUDIENCE, "exp": now + 60, "cognito:groups": ["CUSTOMER ADMIN"]})).unwrap()
        ),
        format!(
            "Bearer {}",
            tokens::sign(&json!({"sub": "a", "iss": tokens::ISSUER, "aud": tokens::AUDIENCE, "exp": now + 60, "roles": ["CUSTOMER ADMIN"]})).unwrap()
        ),
    ];
    for auth in &bad {
        let r = http
            .get(&url)
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{auth}");
    }
    assert_eq!(
        echo.calls.load(Ordering::SeqCst),
        0,
        "the function is never invoked"
    );

    // Public routes need no token; unknown routes are API Gateway's 404.
    let r = http
        .get(format!("{}/v1/health", local.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(echo.calls.load(Ordering::SeqCst), 1);
    let r = http
        .get(format!("{}/v1/nothing", local.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Not Found"})
    );
    let r = http
        .patch(format!("{}/v1/orders", local.url()))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "method not routed");
    local.shutdown();
}

#[tokio::test]
async fn passes_claims_params_and_body_like_api_gateway() {
    let (local, echo) = start().await;
    let http = client();
    let token = tokens::mint("alice", &["CUSTOMER", "MANAGER"]).unwrap();
    let r = http
        .get(format!(
            "{}/v1/orders/o%2D42/timeline?page_size=5&tag=a&tag=b",
            local.url()
        ))
        .bearer_auth(&token)
        .header("cookie", "c1=x; c2=y")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["set-cookie"], "a=1");
    assert!(r.headers().contains_key("apigw-requestid"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["pathParameters"]["orderId"], "o-42");
    assert_eq!(v["query"]["page_size"], "5");
    let ctx = &v["context"];
    assert_eq!(ctx["routeKey"], "GET /v1/orders/{orderId}/timeline");
    assert_eq!(ctx["stage"], "$default");
    assert_eq!(ctx["http"]["method"], "GET");
    let claims = &ctx["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["roles"], "[CUSTOMER MANAGER]");
    assert_eq!(claims["iss"], tokens::ISSUER);
    assert!(
        claims["exp"].is_string(),
        "claims are strings, as API Gateway passes them"
    );

    // A manager's restaurants arrive as the comma-separated string; a group named with
    // a comma arrives as one entry, which the functions read as no role.
    let now = chrono::Utc::now().timestamp();
    let odd = tokens::sign(&json!({"sub": "m", "iss": tokens::ISSUER, "aud": tokens::AUDIENCE,
        "iat": now, "exp": now + 60, "cognito:groups": ["x,ADMIN", "MANAGER"], "restaurants": "r-1,r-2"}))
    .unwrap();
    let r = http
        .get(format!("{}/v1/orders/o-1", local.url()))
        .bearer_auth(&odd)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let claims = &v["context"]["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["cognito:groups"], "[x,ADMIN MANAGER]");
    assert_eq!(claims["restaurants"], "r-1,r-2");
    assert_eq!(
        dishpatch::http::parse_roles(claims["cognito:groups"].as_str().unwrap()),
        vec![dishpatch::http::Role::Manager]
    );

    // Bodies arrive intact; non-UTF-8 bodies base64-encoded and decoded by the runtime.
    let r = http
        .post(format!("{}/v1/orders", local.url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"restaurantId":"r-1"}"#)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["body"]["text"], r#"{"restaurantId":"r-1"}"#);
    assert_eq!(v["context"]["routeKey"], "POST /v1/orders");
    let r = http
        .post(format!("{}/v1/orders", local.url()))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(vec![0xff_u8, 0xfe, 0x00, 0x01])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["body"]["binary"], 4);
    assert_eq!(echo.calls.load(Ordering::SeqCst), 4);
    local.shutdown();
}

#[tokio::test]
async fn real_functions_answer_through_the_gateway() {
    // The real order-api behind the gateway: health is public.
    let local = LocalStack::start(
        LocalStackOptions::new(testing::unique_prefix("gw-real"))
            .endpoint(testing::moto())
            .pollers(false),
    )
    .await
    .expect("local stack starts");
    let r = client()
        .get(format!("{}/v1/health", local.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{}/v1/restaurants/r-1/menu", local.url()))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status() == 404,
        "menu answered: {}",
        r.status()
    );
    local.shutdown();
}
