//! The sandbox PSP's HTTP contract, exercised over real HTTP on loopback.

use std::time::{Duration, Instant};

use dishpatch_psp_sandbox::{start, Charge, Sandbox, SandboxConfig, SandboxOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const KEY: &str = "test-psp-key";
const TIMEOUT_DELAY: Duration = Duration::from_millis(200);

async fn sandbox() -> Sandbox {
    sandbox_with_seed(42).await
}

async fn sandbox_with_seed(seed: u64) -> Sandbox {
    start(SandboxOptions {
        api_key: KEY.into(),
        timeout_delay: TIMEOUT_DELAY,
        seed: Some(seed),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(10))
}

fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client")
}

/// The sandbox's URL of `path`.
fn url(sb: &Sandbox, path: &str) -> String {
    format!("{}{path}", sb.url())
}

fn charge_body(token: &str, reference: &str, amount: i64) -> Value {
    json!({ "amount": amount, "currency": "EUR", "cardToken": token, "reference": reference })
}

struct Answer {
    status: StatusCode,
    body: Value,
    replayed: bool,
}

async fn send(
    http: &reqwest::Client,
    url: String,
    auth: Option<&str>,
    idempotency_key: Option<&str>,
    body: &Value,
) -> reqwest::Result<Answer> {
    let mut req = http.post(url).json(body);
    if let Some(k) = auth {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let bytes = resp.bytes().await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Ok(Answer {
        status,
        body,
        replayed,
    })
}

async fn charge(sb: &Sandbox, key: &str, body: &Value) -> Answer {
    send(
        &client(),
        url(sb, "/v1/charges"),
        Some(KEY),
        Some(key),
        body,
    )
    .await
    .expect("charge answered")
}

async fn refund(sb: &Sandbox, charge_id: &str, key: &str, amount: i64) -> Answer {
    let refunds = url(sb, &format!("/v1/charges/{charge_id}/refunds"));
    send(
        &client(),
        refunds,
        Some(KEY),
        Some(key),
        &json!({ "amount": amount }),
    )
    .await
    .expect("refund answered")
}

async fn sandbox_charges(sb: &Sandbox) -> Vec<Charge> {
    let v: Value = client()
        .get(url(sb, "/_sandbox/charges"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(v["charges"].clone()).expect("charges list")
}

async fn put_config(sb: &Sandbox, patch: Value) -> (StatusCode, Value) {
    let resp = client()
        .put(url(sb, "/_sandbox/config"))
        .json(&patch)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn tok_visa_captures_a_charge() {
    let sb = sandbox().await;
    let a = charge(&sb, "k-1", &charge_body("tok_visa", "order-1", 1950)).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(!a.replayed);
    let id = a.body["chargeId"].as_str().unwrap();
    assert!(id.starts_with("ch_"), "{id}");
    assert_eq!(
        a.body,
        json!({ "chargeId": id, "status": "CAPTURED", "amount": 1950, "currency": "EUR", "reference": "order-1" })
    );

    let charges = sandbox_charges(&sb).await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].charge_id, id);
    assert_eq!(charges[0].idempotency_key, "k-1");
    assert_eq!(charges[0].reference, "order-1");
    assert_eq!(charges[0].amount, 1950);
    assert_eq!(charges[0].card_token, "tok_visa");
    assert!(charges[0].refunds.is_empty());
    // The Rust handle sees the same.
    assert_eq!(sb.charges(), charges);
    assert_eq!(sb.handle().charges_for("order-1").len(), 1);
    assert!(sb.handle().charges_for("order-2").is_empty());
}

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_401() {
    let sb = sandbox().await;
    let http = client();
    let charges = url(&sb, "/v1/charges");
    let body = charge_body("tok_visa", "order-1", 100);
    for auth in [None, Some("wrong-key"), Some("")] {
        let a = send(&http, charges.clone(), auth, Some("k-1"), &body)
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(a.body["code"], "unauthorized");
    }
    // Not a bearer token.
    let resp = http
        .post(&charges)
        .header("Authorization", KEY)
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Refunds need it too.
    let refunds = url(&sb, "/v1/charges/ch_x/refunds");
    let a = send(
        &http,
        refunds,
        Some("wrong-key"),
        Some("k-2"),
        &json!({ "amount": 1 }),
    )
    .await
    .unwrap();
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(sb.charges().is_empty());
    // The 401s stored nothing: the same key now charges.
    assert_eq!(charge(&sb, "k-1", &body).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_missing_idempotency_key_is_400() {
    let sb = sandbox().await;
    for (path, body) in [
        ("/v1/charges", charge_body("tok_visa", "order-1", 100)),
        ("/v1/charges/ch_x/refunds", json!({ "amount": 1 })),
    ] {
        let a = send(&client(), url(&sb, path), Some(KEY), None, &body)
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(a.body["code"], "idempotency_key_missing", "{path}");
    }
    assert!(sb.charges().is_empty());
}

#[tokio::test]
async fn bad_charge_bodies_are_400_and_charge_nothing() {
    let sb = sandbox().await;
    let bad = [
        json!({ "amount": 0, "currency": "EUR", "cardToken": "tok_visa", "reference": "o" }),
        json!({ "amount": -1, "currency": "EUR", "cardToken": "tok_visa", "reference": "o" }),
        json!({ "amount": "100", "currency": "EUR", "cardToken": "tok_visa", "reference": "o" }),
        json!({ "amount": 1.5, "currency": "EUR", "cardToken": "tok_visa", "reference": "o" }),
        json!({ "currency": "EUR", "cardToken": "tok_visa", "reference": "o" }),
        json!({ "amount": 100, "currency": "eur", "cardToken": "tok_visa", "reference": "o" }),
        json!({ "amount": 100, "cardToken": "tok_visa", "reference": "o" }),
        json!({ "amount": 100, "currency": "EUR", "reference": "o" }),
        json!({ "amount": 100, "currency": "EUR", "cardToken": "tok_visa" }),
        json!({ "amount": 100, "currency": "EUR", "cardToken": "tok_visa", "reference": "" }),
        json!({ "amount": 100, "currency": "EUR", "cardToken": "tok_nope", "reference": "o" }),
        json!([1, 2]),
    ];
    for (i, body) in bad.iter().enumerate() {
        let a = charge(&sb, &format!("k-{i}"), body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(a.body["code"].is_string(), "{}", a.body);
    }
    // Not JSON at all.
    let resp = client()
        .post(url(&sb, "/v1/charges"))
        .bearer_auth(KEY)
        .header("Idempotency-Key", "k-raw")
        .body("amount=100")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(sb.charges().is_empty());
}

#[tokio::test]
async fn a_replay_returns_the_stored_response_and_charges_once() {
    let sb = sandbox().await;
    let body = charge_body("tok_visa", "order-7", 1200);
    let first = charge(&sb, "k-7", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    for _ in 0..3 {
        let again = charge(&sb, "k-7", &body).await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body);
        assert!(again.replayed);
    }
    // The same body with its keys in another order is the same body.
    let reordered: Value = serde_json::from_str(
        r#"{"reference":"order-7","cardToken":"tok_visa","currency":"EUR","amount":1200}"#,
    )
    .unwrap();
    assert_eq!(charge(&sb, "k-7", &reordered).await.body, first.body);
    assert_eq!(sb.handle().charges_for("order-7").len(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let sb = sandbox().await;
    let first = charge(&sb, "k-1", &charge_body("tok_visa", "order-1", 100)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = charge(&sb, "k-1", &charge_body("tok_visa", "order-1", 101)).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.body["code"], "idempotency_key_reused");
    // A new key with the first body is a new charge.
    let second = charge(&sb, "k-2", &charge_body("tok_visa", "order-1", 100)).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_ne!(second.body["chargeId"], first.body["chargeId"]);
    assert_eq!(sb.charges().len(), 2);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_charge_once() {
    let sb = sandbox().await;
    let body = charge_body("tok_visa", "order-c", 500);
    let answers = futures_join(
        (0..16)
            .map(|_| {
                let (charges, body) = (url(&sb, "/v1/charges"), body.clone());
                tokio::spawn(async move {
                    send(&client(), charges, Some(KEY), Some("k-c"), &body)
                        .await
                        .unwrap()
                })
            })
            .collect(),
    )
    .await;
    assert!(answers.iter().all(|a| a.status == StatusCode::CREATED));
    assert!(answers.iter().all(|a| a.body == answers[0].body));
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    assert_eq!(sb.charges().len(), 1);
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<Answer>>) -> Vec<Answer> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn decline_tokens_are_402_and_stored_for_replays() {
    let sb = sandbox().await;
    for (token, code) in [
        ("tok_decline_funds", "insufficient_funds"),
        ("tok_decline_stolen", "card_stolen"),
    ] {
        let body = charge_body(token, "order-d", 900);
        let a = charge(&sb, token, &body).await;
        assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED, "{token}");
        assert_eq!(a.body, json!({ "status": "DECLINED", "code": code }));
        assert!(!a.replayed);
        let again = charge(&sb, token, &body).await;
        assert_eq!(again.status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(again.body, a.body);
        assert!(again.replayed);
    }
    assert!(sb.charges().is_empty());
}

#[tokio::test]
async fn tok_error_is_500_charges_nothing_and_is_not_stored() {
    let sb = sandbox().await;
    let body = charge_body("tok_error", "order-e", 100);
    for _ in 0..2 {
        let a = charge(&sb, "k-e", &body).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!a.replayed);
    }
    assert!(sb.charges().is_empty());
}

#[tokio::test]
async fn tok_timeout_waits_then_504_and_charges_nothing() {
    let sb = sandbox().await;
    let body = charge_body("tok_timeout", "order-t", 100);
    // A patient client sees the 504 after the delay.
    let started = Instant::now();
    let a = charge(&sb, "k-t", &body).await;
    assert!(
        started.elapsed() >= TIMEOUT_DELAY,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT);
    // An impatient one times out.
    let impatient = client_with_timeout(Duration::from_millis(100));
    let err = send(
        &impatient,
        url(&sb, "/v1/charges"),
        Some(KEY),
        Some("k-t"),
        &body,
    )
    .await
    .err()
    .expect("client timeout");
    assert!(err.is_timeout(), "{err}");
    assert!(sb.charges().is_empty());
}

#[tokio::test]
async fn a_charge_whose_answer_is_lost_is_replayed_on_retry_not_charged_twice() {
    let sb = sandbox().await;
    let http = client_with_timeout(Duration::from_millis(100));
    let charges_url = url(&sb, "/v1/charges");
    let body = charge_body("tok_charge_then_timeout", "order-lost", 2500);

    let err = send(&http, charges_url.clone(), Some(KEY), Some("k-lost"), &body)
        .await
        .err()
        .expect("the first answer is lost");
    assert!(err.is_timeout(), "{err}");
    let charges = sb.handle().charges_for("order-lost");
    assert_eq!(charges.len(), 1, "the charge happened");

    // The retry, still with a 100 ms timeout, gets the stored 201 at once.
    let retry = send(&http, charges_url, Some(KEY), Some("k-lost"), &body)
        .await
        .expect("the retry is answered immediately");
    assert_eq!(retry.status, StatusCode::CREATED);
    assert!(retry.replayed);
    assert_eq!(retry.body["chargeId"], charges[0].charge_id.as_str());
    assert_eq!(retry.body["status"], "CAPTURED");
    assert_eq!(retry.body["amount"], 2500);
    assert_eq!(sandbox_charges(&sb).await.len(), 1);
}

#[tokio::test]
async fn a_patient_client_gets_the_201_after_the_delay() {
    let sb = sandbox().await;
    let started = Instant::now();
    let a = charge(
        &sb,
        "k-slow",
        &charge_body("tok_charge_then_timeout", "order-slow", 10),
    )
    .await;
    assert!(started.elapsed() >= TIMEOUT_DELAY);
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(sb.charges().len(), 1);
}

#[tokio::test]
async fn down_answers_503_at_once_until_it_is_back() {
    let sb = sandbox().await;
    let paid = charge(&sb, "k-0", &charge_body("tok_visa", "order-0", 100)).await;
    let charge_id = paid.body["chargeId"].as_str().unwrap().to_owned();
    sb.set_config(SandboxConfig {
        down: true,
        latency_ms: 5_000,
        ..SandboxConfig::default()
    })
    .unwrap();

    let started = Instant::now();
    let a = charge(&sb, "k-1", &charge_body("tok_visa", "order-1", 100)).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.body["code"], "provider_unavailable");
    // Replays are down too, and so are refunds; none waits for the latency.
    assert_eq!(
        charge(&sb, "k-0", &charge_body("tok_visa", "order-0", 100))
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        refund(&sb, &charge_id, "r-1", 10).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let (status, config) = put_config(&sb, json!({ "down": false, "latencyMs": 0 })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["down"], false);
    let a = charge(&sb, "k-1", &charge_body("tok_visa", "order-1", 100)).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(sb.charges().len(), 2);
}

#[tokio::test]
async fn failure_rate_one_is_always_503_and_zero_never() {
    let sb = sandbox().await;
    let (status, _) = put_config(&sb, json!({ "failureRate": 1.0 })).await;
    assert_eq!(status, StatusCode::OK);
    for i in 0..10 {
        let a = charge(
            &sb,
            &format!("k-{i}"),
            &charge_body("tok_visa", "order-f", 100),
        )
        .await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(sb.charges().is_empty());

    put_config(&sb, json!({ "failureRate": 0.0 })).await;
    for i in 0..10 {
        let a = charge(
            &sb,
            &format!("k-{i}"),
            &charge_body("tok_visa", "order-f", 100),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED);
    }
    assert_eq!(sb.charges().len(), 10);
}

async fn failure_pattern(seed: u64) -> Vec<bool> {
    let sb = sandbox_with_seed(seed).await;
    sb.set_config(SandboxConfig {
        failure_rate: 0.5,
        ..SandboxConfig::default()
    })
    .unwrap();
    let mut pattern = Vec::new();
    for i in 0..40 {
        let a = charge(
            &sb,
            &format!("k-{i}"),
            &charge_body("tok_visa", "order-s", 100),
        )
        .await;
        assert!(
            a.status == StatusCode::CREATED || a.status == StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            a.status
        );
        pattern.push(a.status == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(
        sb.charges().len(),
        pattern.iter().filter(|failed| !**failed).count()
    );
    pattern
}

#[tokio::test]
async fn injected_failures_follow_the_seed() {
    let a = failure_pattern(7).await;
    let b = failure_pattern(7).await;
    assert_eq!(a, b);
    let failures = a.iter().filter(|f| **f).count();
    assert!((5..=35).contains(&failures), "{failures} of 40 failed");
}

#[tokio::test]
async fn latency_is_added_to_charges_and_refunds() {
    let sb = sandbox().await;
    sb.set_config(SandboxConfig {
        latency_ms: 150,
        ..SandboxConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let a = charge(&sb, "k-1", &charge_body("tok_visa", "order-l", 100)).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let started = Instant::now();
    let r = refund(&sb, a.body["chargeId"].as_str().unwrap(), "r-1", 10).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn refunds_dedup_and_stop_at_the_charged_amount() {
    let sb = sandbox().await;
    let paid = charge(&sb, "order-r", &charge_body("tok_visa", "order-r", 1000)).await;
    let charge_id = paid.body["chargeId"].as_str().unwrap().to_owned();

    // The charge's idempotency key may be reused for its refund: keys are per route.
    let r1 = refund(&sb, &charge_id, "order-r", 600).await;
    assert_eq!(r1.status, StatusCode::CREATED);
    let refund_id = r1.body["refundId"].as_str().unwrap();
    assert!(refund_id.starts_with("re_"), "{refund_id}");
    assert_eq!(
        r1.body,
        json!({ "refundId": refund_id, "status": "REFUNDED", "chargeId": charge_id, "amount": 600 })
    );
    let again = refund(&sb, &charge_id, "order-r", 600).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, r1.body);
    assert!(again.replayed);
    // Same key, other amount.
    assert_eq!(
        refund(&sb, &charge_id, "order-r", 100).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // 400 left: 401 is too much, and not stored.
    let over = refund(&sb, &charge_id, "r-2", 401).await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(over.body["code"], "refund_exceeds_charge");
    assert_eq!(
        refund(&sb, &charge_id, "r-3", 400).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        refund(&sb, &charge_id, "r-4", 1).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let charges = sandbox_charges(&sb).await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].refunded_amount, 1000);
    let refunds: Vec<(i64, &str)> = charges[0]
        .refunds
        .iter()
        .map(|r| (r.amount, r.idempotency_key.as_str()))
        .collect();
    assert_eq!(refunds, [(600, "order-r"), (400, "r-3")]);
    assert!(charges[0]
        .refunds
        .iter()
        .all(|r| r.charge_id == charge_id && r.status == "REFUNDED"));
}

#[tokio::test]
async fn refunding_an_unknown_charge_is_404_and_bad_amounts_400() {
    let sb = sandbox().await;
    let r = refund(&sb, "ch_nope", "r-1", 10).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "charge_not_found");
    let paid = charge(&sb, "k-1", &charge_body("tok_visa", "order-1", 100)).await;
    let id = paid.body["chargeId"].as_str().unwrap();
    for amount in [0, -5] {
        assert_eq!(
            refund(&sb, id, &format!("r-{amount}"), amount).await.status,
            StatusCode::BAD_REQUEST
        );
    }
    let refunds = url(&sb, &format!("/v1/charges/{id}/refunds"));
    let a = send(
        &client(),
        refunds,
        Some(KEY),
        Some("r-x"),
        &json!({ "amount": "10" }),
    )
    .await
    .unwrap();
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(sb.charges()[0].refunds.is_empty());
}

#[tokio::test]
async fn the_control_api_reads_and_patches_config_and_resets() {
    let sb = sandbox().await;
    let http = client();
    let get = |http: &reqwest::Client| {
        let config = url(&sb, "/_sandbox/config");
        let http = http.clone();
        async move {
            http.get(config)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        get(&http).await,
        json!({ "failureRate": 0.0, "latencyMs": 0, "down": false })
    );
    let (status, config) = put_config(&sb, json!({ "failureRate": 0.25, "latencyMs": 5 })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        config,
        json!({ "failureRate": 0.25, "latencyMs": 5, "down": false })
    );
    assert_eq!(get(&http).await, config);
    assert_eq!(
        sb.config(),
        SandboxConfig {
            failure_rate: 0.25,
            latency_ms: 5,
            down: false
        }
    );
    for bad in [
        json!({ "failureRate": 1.5 }),
        json!({ "failureRate": -0.1 }),
        json!({ "latencyMs": -1 }),
        json!({ "down": "yes" }),
        json!({ "failurerate": 0.5 }),
    ] {
        let (status, body) = put_config(&sb, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["code"], "bad_request");
    }
    assert_eq!(get(&http).await, config, "refused patches change nothing");
    assert!(sb
        .set_config(SandboxConfig {
            failure_rate: 2.0,
            ..SandboxConfig::default()
        })
        .is_err());

    put_config(&sb, json!({ "failureRate": 0.0, "latencyMs": 0 })).await;
    let first = charge(&sb, "k-1", &charge_body("tok_visa", "order-1", 100)).await;
    put_config(&sb, json!({ "down": true })).await;
    let resp = http.post(url(&sb, "/_sandbox/reset")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(sb.charges().is_empty());
    assert_eq!(sb.config(), SandboxConfig::default());
    // The key is forgotten: the same request charges anew.
    let second = charge(&sb, "k-1", &charge_body("tok_visa", "order-1", 100)).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert!(!second.replayed);
    assert_ne!(second.body["chargeId"], first.body["chargeId"]);

    sb.reset();
    assert!(sb.charges().is_empty());
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let sb = sandbox().await;
    let http = client();
    for (method, path, want) in [
        (Method::GET, "/v1/nothing", StatusCode::NOT_FOUND),
        (Method::GET, "/v1/charges", StatusCode::METHOD_NOT_ALLOWED),
        (
            Method::DELETE,
            "/_sandbox/config",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let resp = http.request(method.clone(), url(&sb, path)).send().await;
        assert_eq!(resp.unwrap().status(), want, "{method} {path}");
    }
}

#[tokio::test]
async fn dropping_the_sandbox_stops_it() {
    let sb = sandbox().await;
    let config = url(&sb, "/_sandbox/config");
    let http = client_with_timeout(Duration::from_millis(500));
    assert!(http.get(&config).send().await.is_ok());
    drop(sb);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // A fresh client: no pooled connection to an aborted task.
        let fresh = client_with_timeout(Duration::from_millis(500));
        if fresh.get(&config).send().await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "still serving after drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shutdown_stops_it_too() {
    let sb = sandbox().await;
    let config = url(&sb, "/_sandbox/config");
    sb.shutdown().await;
    assert!(client_with_timeout(Duration::from_millis(500))
        .get(&config)
        .send()
        .await
        .is_err());
}
