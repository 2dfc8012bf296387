//! `POST /v1/orders` with `Idempotency-Key`, over the in-memory idempotency store.

use super::{app, order_body, AppliedThenFailed, ALICE, BOB};
use crate::App;
use dishpatch::idempotency::{
    Clock, Idempotency, IdempotencyConfig, IdempotencyRecord, IdempotencyStore,
    InMemoryIdempotencyStore, ManualClock, Status, DEFAULT_EXPIRES_AFTER,
};
use dishpatch::runtime::Function;
use dishpatch::testing::{http_request, parts, InMemoryOrderStore};
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Setup {
    app: App,
    orders: Arc<InMemoryOrderStore>,
    records: Arc<InMemoryIdempotencyStore>,
    clock: Arc<ManualClock>,
}

fn setup() -> Setup {
    let (mut app, orders) = app();
    let records = Arc::new(InMemoryIdempotencyStore::default());
    let clock = Arc::new(ManualClock::now_from_system());
    app.idempotency = Idempotency::new(
        records.clone(),
        IdempotencyConfig::new(crate::IDEMPOTENCY_KEY_PREFIX),
    )
    .with_clock(clock.clone());
    Setup {
        app,
        orders,
        records,
        clock,
    }
}

/// A POST with `key` as `Idempotency-Key` and, if given, a Lambda context whose
/// deadline is that far away.
async fn post(
    app: &App,
    body: &str,
    who: Option<(&str, &str)>,
    key: Option<&[u8]>,
    deadline_in: Option<Duration>,
) -> Response<Body> {
    let mut req = http_request("POST", "/v1/orders", "/v1/orders", &[], "", Some(body), who);
    if let Some(k) = key {
        req.headers_mut().insert(
            "idempotency-key",
            lambda_http::http::HeaderValue::from_bytes(k).unwrap(),
        );
    }
    if let Some(d) = deadline_in {
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = (SystemTime::now() + d)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        req = lambda_http::RequestExt::with_lambda_context(req, ctx);
    }
    app.http(req).await
}

fn text(resp: &Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        other => panic!("not a text body: {other:?}"),
    }
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn record_id(s: &Setup, sub: &str, key: &str) -> String {
    s.app
        .idempotency
        .for_operation(crate::routes::PLACE_ORDER_OPERATION)
        .record_id(&[sub, key])
}

#[tokio::test]
async fn same_key_and_body_replay_the_first_response_without_another_order() {
    let s = setup();
    let body = order_body().to_string();
    let first = post(
        &s.app,
        &body,
        ALICE,
        Some(b"k-1"),
        Some(Duration::from_secs(8)),
    )
    .await;
    assert_eq!(first.status(), 201, "{}", text(&first));
    let location = header(&first, "location").unwrap();
    assert_eq!(header(&first, "idempotent-replayed"), None);
    assert_eq!(s.records.writes(), 2, "claim + result");
    let outbox = s.orders.outbox.lock().unwrap().len();

    // The record: completed, kept 1 h, in progress until the Lambda deadline.
    let record = s.records.get(&record_id(&s, "alice", "k-1")).unwrap();
    assert!(record.id.starts_with("order-api.place_order#"));
    assert_eq!(record.status, Status::Completed);
    assert_eq!(
        record.expiration,
        s.clock.now().plus(DEFAULT_EXPIRES_AFTER).secs()
    );
    let to_deadline = record.in_progress_expiration.unwrap() - s.clock.now().millis();
    assert!((7_000..=8_000).contains(&to_deadline), "{to_deadline}");

    // Same key, same body (keys in another order, other whitespace): the same answer.
    let reordered: Value = serde_json::from_str(&body).unwrap();
    let reordered = serde_json::to_string_pretty(&json!({
        "paymentMethod": reordered["paymentMethod"],
        "items": reordered["items"],
        "deliveryAddress": reordered["deliveryAddress"],
        "restaurantId": reordered["restaurantId"],
    }))
    .unwrap();
    for again in [&body, &reordered] {
        let replay = post(&s.app, again, ALICE, Some(b"k-1"), None).await;
        assert_eq!(replay.status(), 201);
        assert_eq!(
            header(&replay, "location").as_deref(),
            Some(location.as_str())
        );
        assert_eq!(
            header(&replay, "idempotent-replayed").as_deref(),
            Some("true")
        );
        assert_eq!(
            header(&replay, "content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(text(&replay), text(&first), "byte for byte");
    }
    assert_eq!(s.orders.orders.lock().unwrap().len(), 1);
    assert_eq!(
        s.orders.outbox.lock().unwrap().len(),
        outbox,
        "no second outbox"
    );
    assert_eq!(
        s.records.writes(),
        4,
        "a replay is one failed conditional write"
    );

    // Another customer's key is another key.
    let bobs = post(&s.app, &body, BOB, Some(b"k-1"), None).await;
    assert_eq!(bobs.status(), 201);
    assert_ne!(header(&bobs, "location"), Some(location.clone()));
    assert_eq!(s.orders.orders.lock().unwrap().len(), 2);

    // Once the record has expired the handler runs again, but the key still names the
    // same order: it is answered, not placed twice; another body is still a reuse.
    s.clock
        .advance(DEFAULT_EXPIRES_AFTER + Duration::from_secs(1));
    let later = post(&s.app, &body, ALICE, Some(b"k-1"), None).await;
    assert_eq!(later.status(), 201);
    assert_eq!(header(&later, "idempotent-replayed"), None);
    assert_eq!(header(&later, "location"), Some(location));
    assert_eq!(s.orders.orders.lock().unwrap().len(), 2);
    let mut other: Value = serde_json::from_str(&body).unwrap();
    other["items"][0]["quantity"] = json!(5);
    s.clock
        .advance(DEFAULT_EXPIRES_AFTER + Duration::from_secs(1));
    let (status, problem) =
        parts(post(&s.app, &other.to_string(), ALICE, Some(b"k-1"), None).await);
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"))
    );
    assert_eq!(s.orders.orders.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_retry_after_a_run_cut_off_past_its_write_answers_that_order() {
    let mut s = setup();
    // The first run's write is applied, then the invocation is cut off.
    s.app.orders = Arc::new(AppliedThenFailed::new(s.orders.clone(), false, false));
    let body = order_body().to_string();
    let first = post(&s.app, &body, ALICE, Some(b"k-cut"), None).await;
    assert_eq!(first.status(), 503, "{}", text(&first));
    assert_eq!(
        s.orders.orders.lock().unwrap().len(),
        1,
        "the write was applied"
    );
    let outbox = s.orders.outbox.lock().unwrap().len();

    let retry = post(&s.app, &body, ALICE, Some(b"k-cut"), None).await;
    assert_eq!(retry.status(), 201, "{}", text(&retry));
    let (_, view) = parts(retry);
    let stored: Vec<String> = s
        .orders
        .orders
        .lock()
        .unwrap()
        .iter()
        .map(|o| o.order_id.clone())
        .collect();
    assert_eq!(stored, vec![view["orderId"].as_str().unwrap().to_owned()]);
    assert_eq!(view["status"], "PENDING");
    assert_eq!(
        s.orders.outbox.lock().unwrap().len(),
        outbox,
        "the saga was started once"
    );
    // The retry's answer is now the key's stored result.
    let replay = post(&s.app, &body, ALICE, Some(b"k-cut"), None).await;
    assert_eq!(
        header(&replay, "idempotent-replayed").as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn a_placed_order_answers_its_key_even_after_the_menu_changed() {
    let mut s = setup();
    let body = order_body().to_string();
    let first = post(&s.app, &body, ALICE, Some(b"k-menu"), None).await;
    assert_eq!(first.status(), 201);
    // m-2 leaves the menu and the key's record expires: the handler runs again.
    s.app.menu = Arc::new(super::Menu(vec![]));
    s.clock
        .advance(DEFAULT_EXPIRES_AFTER + Duration::from_secs(1));
    let again = post(&s.app, &body, ALICE, Some(b"k-menu"), None).await;
    assert_eq!(again.status(), 201, "{}", text(&again));
    assert_eq!(header(&again, "location"), header(&first, "location"));
    // A new request cannot be priced: the menu decides.
    let (status, problem) = parts(post(&s.app, &body, ALICE, Some(b"k-new"), None).await);
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("UNKNOWN_MENU_ITEM"))
    );
    assert_eq!(s.orders.orders.lock().unwrap().len(), 1);
}

#[test]
fn order_ids_from_a_key_are_stable_and_scoped_to_the_caller() {
    use crate::routes::order_id_for;
    let a = order_id_for("alice", Some("k-1"));
    assert_eq!(a, order_id_for("alice", Some("k-1")));
    assert_ne!(a, order_id_for("bob", Some("k-1")));
    assert_ne!(a, order_id_for("alice", Some("k-2")));
    // The parts cannot run into each other.
    assert_ne!(
        order_id_for("a", Some("b-c")),
        order_id_for("a-b", Some("c"))
    );
    assert_ne!(order_id_for("alice", None), order_id_for("alice", None));
    assert!(uuid::Uuid::parse_str(&a).is_ok());
}

#[tokio::test]
async fn same_key_with_another_body_is_422() {
    let s = setup();
    let first = post(&s.app, &order_body().to_string(), ALICE, Some(b"k-2"), None).await;
    assert_eq!(first.status(), 201);
    let mut other = order_body();
    other["items"][0]["quantity"] = json!(3);
    let (status, problem) =
        parts(post(&s.app, &other.to_string(), ALICE, Some(b"k-2"), None).await);
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"), Some("Idempotency-Key"))
    );
    assert_eq!(problem["requestId"], "req-1");
    assert_eq!(s.orders.orders.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_duplicate_in_flight_is_409_with_retry_after_until_the_first_deadline() {
    let s = setup();
    let body = order_body();
    // Another invocation with 5 s left holds the key (running, or crashed mid-way).
    let now = s.clock.now();
    let claim = IdempotencyRecord::in_progress(
        record_id(&s, "alice", "k-3"),
        s.app.idempotency.validation(&body).unwrap(),
        now,
        Duration::from_secs(5),
        DEFAULT_EXPIRES_AFTER,
    );
    s.records.claim(&claim, now).await.unwrap();
    let resp = post(&s.app, &body.to_string(), ALICE, Some(b"k-3"), None).await;
    assert_eq!(header(&resp, "retry-after").as_deref(), Some("1"));
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some("application/problem+json")
    );
    let (status, problem) = parts(resp);
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("REQUEST_IN_PROGRESS"))
    );
    // A different body is still a reuse, even while the first runs.
    let mut other = order_body();
    other["paymentMethod"] = json!("CARD");
    other["cardToken"] = json!("tok_visa");
    let (status, _) = parts(post(&s.app, &other.to_string(), ALICE, Some(b"k-3"), None).await);
    assert_eq!(status, 422);
    assert!(s.orders.orders.lock().unwrap().is_empty());
    // Past its deadline the crashed claim is taken over.
    s.clock.advance(Duration::from_millis(5_001));
    let resp = post(&s.app, &body.to_string(), ALICE, Some(b"k-3"), None).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(s.orders.orders.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_order_is_not_stored_and_frees_the_key() {
    let s = setup();
    let mut unknown = order_body();
    unknown["items"][1]["menuItemId"] = json!("m-404");
    let (status, problem) =
        parts(post(&s.app, &unknown.to_string(), ALICE, Some(b"k-4"), None).await);
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("UNKNOWN_MENU_ITEM"))
    );
    assert!(s.records.get(&record_id(&s, "alice", "k-4")).is_none());
    assert_eq!(s.records.writes(), 2, "claim + release");
    // An invalid body is refused before the key is claimed: no write at all.
    let mut invalid = order_body();
    invalid["items"][0]["quantity"] = json!(0);
    let (status, problem) =
        parts(post(&s.app, &invalid.to_string(), ALICE, Some(b"k-4"), None).await);
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("items[0].quantity"))
    );
    assert_eq!(s.records.writes(), 2);
    // The corrected request may use the key.
    let resp = post(&s.app, &order_body().to_string(), ALICE, Some(b"k-4"), None).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(s.orders.orders.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_keys_are_400_naming_the_header() {
    let s = setup();
    let body = order_body().to_string();
    let long = "k".repeat(129);
    for bad in [&b""[..], long.as_bytes(), "clé".as_bytes(), b"tab\there"] {
        let (status, problem) = parts(post(&s.app, &body, ALICE, Some(bad), None).await);
        assert_eq!(
            (status, problem["code"].as_str(), problem["field"].as_str()),
            (400, Some("VALIDATION_FAILED"), Some("Idempotency-Key")),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(s.records.writes(), 0);
    let max = "k".repeat(128);
    let resp = post(&s.app, &body, ALICE, Some(max.as_bytes()), None).await;
    assert_eq!(resp.status(), 201);
    // Authentication and roles still come first.
    assert_eq!(
        post(&s.app, &body, None, Some(b""), None).await.status(),
        401
    );
}

#[tokio::test]
async fn without_the_header_nothing_changes() {
    let s = setup();
    let body = order_body().to_string();
    let a = post(&s.app, &body, ALICE, None, None).await;
    let b = post(&s.app, &body, ALICE, None, None).await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    assert_ne!(header(&a, "location"), header(&b, "location"));
    assert_eq!(s.orders.orders.lock().unwrap().len(), 2);
    assert_eq!(
        s.records.writes(),
        0,
        "no idempotency write without the header"
    );
    assert!(s.records.records.lock().unwrap().is_empty());
}
