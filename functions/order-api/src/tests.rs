//! Handler tests over in-memory ports: routing, validation, pricing, ownership, cancel.

use crate::timeline::NotificationRecord;
use crate::{App, MenuReader, NotificationReader};
use dishpatch::envelope::MessageType;
use dishpatch::error::StoreError;
use dishpatch::menu::MenuItem;
use dishpatch::money::Money;
use dishpatch::runtime::Function;
use dishpatch::testing::{http_request, parts, InMemoryOrderStore, RacingOrderStore};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

struct Menu(Vec<MenuItem>);

#[async_trait::async_trait]
impl MenuReader for Menu {
    async fn items(
        &self,
        restaurant_id: &str,
        ids: &[String],
    ) -> Result<Vec<MenuItem>, StoreError> {
        Ok(self
            .0
            .iter()
            .filter(|m| m.restaurant_id == restaurant_id && ids.contains(&m.menu_item_id))
            .cloned()
            .collect())
    }
}

struct NoNotifications;

#[async_trait::async_trait]
impl NotificationReader for NoNotifications {
    async fn for_order(&self, order_id: &str) -> Result<Vec<NotificationRecord>, StoreError> {
        Ok(vec![NotificationRecord {
            order_id: order_id.into(),
            event_type: "OrderPlaced".into(),
            channel: "PUSH".into(),
            message: "placed".into(),
            sent_at: "2999-01-01T00:00:00.000Z".into(),
        }])
    }
}

fn app() -> (App, Arc<InMemoryOrderStore>) {
    let store = Arc::new(InMemoryOrderStore::default());
    let item = |id: &str, price: i64| MenuItem {
        restaurant_id: "r-1".into(),
        menu_item_id: id.into(),
        name: format!("dish {id}"),
        price: Money::new(price, "EUR"),
        available: 5,
        reserved: 0,
        sold: 0,
        stocked: 5,
    };
    let app = App {
        timings: Default::default(),
        orders: store.clone(),
        restaurant_orders: Arc::new(restaurant_orders::MemoryIndex::new(store.clone())),
        menu: Arc::new(Menu(vec![item("m-1", 950), item("m-2", 650)])),
        notifications: Arc::new(NoNotifications),
        idempotency: dishpatch::idempotency::Idempotency::new(
            Arc::new(dishpatch::idempotency::InMemoryIdempotencyStore::default()),
            dishpatch::idempotency::IdempotencyConfig::new(crate::IDEMPOTENCY_KEY_PREFIX),
        ),
    };
    (app, store)
}

fn order_body() -> Value {
    json!({
        "restaurantId": "r-1",
        "items": [{"menuItemId": "m-1", "quantity": 2}, {"menuItemId": "m-2", "quantity": 1, "unitPrice": 1}],
        "deliveryAddress": {"line1": "1 Main St", "city": "Lisbon", "postcode": "1000-001", "country": "PT"},
        "paymentMethod": "WALLET"
    })
}

/// Size bounds on every field, and what the biggest order costs to store.
mod bounds;
/// `Idempotency-Key` on `POST /v1/orders`.
mod idempotency;
/// `GET /v1/restaurants/{restaurantId}/orders`.
mod restaurant_orders;

const ALICE: Option<(&str, &str)> = Some(("alice", "[CUSTOMER]"));
const BOB: Option<(&str, &str)> = Some(("bob", "[CUSTOMER]"));

async fn place(app: &App, body: &Value, who: Option<(&str, &str)>) -> (u16, Value) {
    let req = http_request(
        "POST",
        "/v1/orders",
        "/v1/orders",
        &[],
        "",
        Some(&body.to_string()),
        who,
    );
    parts(app.http(req).await)
}

async fn get(app: &App, route: &str, id: &str, who: Option<(&str, &str)>) -> (u16, Value) {
    let path = route.replace("{orderId}", id);
    let req = http_request("GET", route, &path, &[("orderId", id)], "", None, who);
    parts(app.http(req).await)
}

async fn cancel(app: &App, id: &str, who: Option<(&str, &str)>) -> (u16, Value) {
    let path = format!("/v1/orders/{id}");
    let req = http_request(
        "DELETE",
        "/v1/orders/{orderId}",
        &path,
        &[("orderId", id)],
        "",
        None,
        who,
    );
    parts(app.http(req).await)
}

#[tokio::test]
async fn place_prices_from_the_menu_and_writes_the_outbox() {
    let (app, store) = app();
    let (status, body) = place(&app, &order_body(), ALICE).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["total"], json!({"amount": 2550, "currency": "EUR"}));
    assert_eq!(body["customerId"], "alice");
    assert_eq!(
        store.kinds(),
        [
            MessageType::ReserveInventory,
            MessageType::OrderPlaced,
            MessageType::StepTimeout
        ]
    );
}

#[tokio::test]
async fn location_header_points_at_the_order() {
    let (app, _) = app();
    let req = http_request(
        "POST",
        "/v1/orders",
        "/v1/orders",
        &[],
        "",
        Some(&order_body().to_string()),
        ALICE,
    );
    let resp = app.http(req).await;
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let (_, body) = parts(resp);
    assert_eq!(
        location,
        format!("/v1/orders/{}", body["orderId"].as_str().unwrap())
    );
}

#[tokio::test]
async fn bad_bodies_are_400_problems_naming_the_field() {
    let (app, store) = app();
    let mut body = order_body();
    body["items"][0]["quantity"] = json!(0);
    let (status, problem) = place(&app, &body, ALICE).await;
    assert_eq!(status, 400);
    assert_eq!(problem["code"], "VALIDATION_FAILED");
    assert_eq!(problem["field"], "items[0].quantity");
    assert_eq!(problem["requestId"], "req-1");
    let req = http_request(
        "POST",
        "/v1/orders",
        "/v1/orders",
        &[],
        "",
        Some("{nope"),
        ALICE,
    );
    let (status, problem) = parts(app.http(req).await);
    assert_eq!((status, problem["field"].as_str()), (400, Some("body")));
    assert!(
        store.orders.lock().unwrap().is_empty(),
        "no half-done write"
    );
}

#[tokio::test]
async fn a_card_order_keeps_its_token_on_the_order_but_never_shows_it() {
    let (app, store) = app();
    let mut body = order_body();
    body["paymentMethod"] = json!("CARD");
    body["cardToken"] = json!("tok_visa");
    let (status, view) = place(&app, &body, ALICE).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["paymentMethod"], "CARD");
    assert!(
        !view.to_string().contains("tok_visa"),
        "the token is not echoed: {view}"
    );
    let order = store.orders.lock().unwrap()[0].clone();
    assert_eq!(order.card_token.as_deref(), Some("tok_visa"));
    // The token travels only to the payment step (CapturePayment), which comes later.
    let (_, fetched) = get(&app, "/v1/orders/{orderId}", &order.order_id, ALICE).await;
    assert!(!fetched.to_string().contains("tok_visa"), "{fetched}");
}

#[tokio::test]
async fn a_card_order_without_a_good_token_or_a_wallet_order_with_one_is_400() {
    let (app, store) = app();
    let mut card = order_body();
    card["paymentMethod"] = json!("CARD");
    let mut bad = card.clone();
    bad["cardToken"] = json!("tok visa!");
    let mut wallet = order_body();
    wallet["cardToken"] = json!("tok_visa");
    for body in [card, bad, wallet] {
        let (status, problem) = place(&app, &body, ALICE).await;
        assert_eq!(
            (status, problem["field"].as_str()),
            (400, Some("cardToken")),
            "{body}"
        );
    }
    assert!(store.orders.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_menu_item_is_422() {
    let (app, store) = app();
    let mut body = order_body();
    body["items"][1]["menuItemId"] = json!("m-404");
    let (status, problem) = place(&app, &body, ALICE).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("UNKNOWN_MENU_ITEM"))
    );
    assert!(store.orders.lock().unwrap().is_empty());
}

#[tokio::test]
async fn no_token_is_401_and_a_courier_cannot_order() {
    let (app, _) = app();
    assert_eq!(place(&app, &order_body(), None).await.0, 401);
    assert_eq!(
        place(&app, &order_body(), Some(("c-1", "[COURIER]")))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn another_customers_order_is_404_but_admin_sees_it() {
    let (app, _) = app();
    let (_, order) = place(&app, &order_body(), ALICE).await;
    let id = order["orderId"].as_str().unwrap();
    assert_eq!(get(&app, "/v1/orders/{orderId}", id, ALICE).await.0, 200);
    let (status, problem) = get(&app, "/v1/orders/{orderId}", id, BOB).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(
        get(&app, "/v1/orders/{orderId}/timeline", id, BOB).await.0,
        404
    );
    assert_eq!(cancel(&app, id, BOB).await.0, 404);
    assert_eq!(
        get(&app, "/v1/orders/{orderId}", id, Some(("root", "[ADMIN]")))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn list_is_own_orders_newest_first_with_a_cursor() {
    let (app, _) = app();
    for _ in 0..3 {
        place(&app, &order_body(), ALICE).await;
    }
    place(&app, &order_body(), BOB).await;
    let list = |q: String| {
        let req = http_request("GET", "/v1/orders", "/v1/orders", &[], &q, None, ALICE);
        app.http(req)
    };
    let (status, page1) = parts(list("page_size=2".into()).await);
    assert_eq!(status, 200);
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let token = page1["nextPageToken"].as_str().unwrap().to_owned();
    let (_, page2) = parts(list(format!("page_size=2&page_token={token}")).await);
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2.get("nextPageToken").is_none());
    let all: Vec<&Value> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .collect();
    assert!(all.iter().all(|o| o["customerId"] == "alice"));
    assert!(all
        .windows(2)
        .all(|w| w[0]["createdAt"].as_str() >= w[1]["createdAt"].as_str()));
    let (status, problem) = parts(list("page_size=0".into()).await);
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("page_size"))
    );
}

#[tokio::test]
async fn cancel_before_dispatch_then_refuse_after_terminal() {
    let (app, store) = app();
    let (_, order) = place(&app, &order_body(), ALICE).await;
    let id = order["orderId"].as_str().unwrap();
    let (status, body) = cancel(&app, id, ALICE).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("CANCELLED")));
    assert_eq!(body["cancelReason"], "CUSTOMER_CANCELLED");
    let (status, body) = cancel(&app, id, ALICE).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("CANCELLED")),
        "idempotent"
    );
    let kinds = store.kinds();
    let cancelled = kinds.iter().filter(|k| **k == MessageType::OrderCancelled);
    assert_eq!(cancelled.count(), 1);
    // A delivered order cannot be cancelled.
    let mut delivered = store.orders.lock().unwrap()[0].clone();
    delivered.saga.status = dishpatch::order::OrderStatus::Delivered;
    store.orders.lock().unwrap()[0] = delivered;
    let (status, problem) = cancel(&app, id, ALICE).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("ORDER_NOT_CANCELLABLE"))
    );
}

#[tokio::test]
async fn a_cancel_that_keeps_losing_the_write_is_409_after_three_tries() {
    let (mut app, store) = app();
    let contended = Arc::new(RacingOrderStore::contended(store.clone()));
    app.orders = contended.clone();
    let (_, order) = place(&app, &order_body(), ALICE).await;
    let id = order["orderId"].as_str().unwrap();
    let (status, problem) = cancel(&app, id, ALICE).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("CONCURRENT_UPDATE"))
    );
    assert_eq!(contended.updates.load(SeqCst), 3);
    assert_eq!(
        get(&app, "/v1/orders/{orderId}", id, ALICE).await.1["status"],
        "PENDING"
    );
}

#[tokio::test]
async fn timeline_merges_transitions_and_notifications_in_time_order() {
    let (app, _) = app();
    let (_, order) = place(&app, &order_body(), ALICE).await;
    let id = order["orderId"].as_str().unwrap();
    cancel(&app, id, ALICE).await;
    let (status, tl) = get(&app, "/v1/orders/{orderId}/timeline", id, ALICE).await;
    assert_eq!(status, 200);
    let kinds: Vec<(&str, &str)> = tl["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["status"].as_str().or(e["eventType"].as_str()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("STATUS", "PENDING"),
            ("STATUS", "CANCELLED"),
            ("NOTIFICATION", "OrderPlaced")
        ]
    );
}

#[tokio::test]
async fn health_is_public_and_unknown_routes_are_404() {
    let (app, _) = app();
    let req = http_request("GET", "/v1/health", "/v1/health", &[], "", None, None);
    assert_eq!(parts(app.http(req).await), (200, json!({"status": "ok"})));
    let req = http_request("GET", "/v1/nothing", "/v1/nothing", &[], "", None, ALICE);
    assert_eq!(parts(app.http(req).await).0, 404);
}

/// Applies the first write, then fails it: with a conflict, what the caller sees when
/// DynamoDB applied a PutItem, its response was lost and the SDK's retry failed the
/// `attribute_not_exists` condition; with an AWS error, an invocation cut off by its
/// timeout after the write.
struct AppliedThenFailed {
    inner: Arc<InMemoryOrderStore>,
    failed: std::sync::atomic::AtomicBool,
    conflict: bool,
    /// Someone else's order is already there instead (a real conflict).
    foreign: bool,
}

impl AppliedThenFailed {
    fn new(inner: Arc<InMemoryOrderStore>, conflict: bool, foreign: bool) -> Self {
        AppliedThenFailed {
            inner,
            failed: Default::default(),
            conflict,
            foreign,
        }
    }
}

#[async_trait::async_trait]
impl dishpatch::orders::OrderStore for AppliedThenFailed {
    async fn get(&self, id: &str) -> Result<Option<dishpatch::order::Order>, StoreError> {
        let mut o = self.inner.get(id).await?;
        if self.foreign {
            if let Some(o) = o.as_mut() {
                o.customer_id = "mallory".into();
            }
        }
        Ok(o)
    }
    async fn save(
        &self,
        order: &dishpatch::order::Order,
        expected: Option<u64>,
        outbox: &[dishpatch::outbox::Outgoing],
    ) -> Result<(), StoreError> {
        self.inner.save(order, expected, outbox).await?;
        if self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        Err(match self.conflict {
            true => StoreError::Conflict("attribute_not_exists(pk)".into()),
            false => StoreError::Aws("task timed out".into()),
        })
    }
    async fn list_for_customer(
        &self,
        customer: &str,
        size: u32,
        token: Option<&str>,
    ) -> Result<dishpatch::orders::Page, StoreError> {
        self.inner.list_for_customer(customer, size, token).await
    }
}

#[tokio::test]
async fn an_order_whose_write_was_applied_before_a_conflicting_retry_is_placed() {
    for foreign in [false, true] {
        let (mut app, store) = app();
        app.orders = Arc::new(AppliedThenFailed::new(store.clone(), true, foreign));
        let (status, body) = place(&app, &order_body(), ALICE).await;
        if foreign {
            // Not our write after all: the conflict stands.
            assert_eq!(status, 409, "{body}");
            continue;
        }
        assert_eq!(status, 201, "{body}");
        let id = body["orderId"].as_str().unwrap();
        let (status, stored) = get(&app, "/v1/orders/{orderId}", id, ALICE).await;
        assert_eq!(status, 200);
        assert_eq!(stored["status"], "PENDING");
        assert_eq!(store.orders.lock().unwrap().len(), 1, "one order, not two");
    }
}

/// Generated requests on every route: no panic, no 5xx, every 4xx a problem with a code.
#[test]
fn any_request_gets_a_clean_answer() {
    use dishpatch::http_fuzz::{run, Route};
    let (app, _) = app();
    run(
        &app,
        vec![
            Route::new("GET", "/v1/health", None),
            Route::new("POST", "/v1/orders", Some(order_body())),
            Route::new("GET", "/v1/orders", None),
            Route::new("GET", "/v1/orders/{orderId}", None),
            Route::new("DELETE", "/v1/orders/{orderId}", None),
            Route::new("GET", "/v1/orders/{orderId}/timeline", None),
            Route::new("GET", "/v1/restaurants/{restaurantId}/orders", None),
        ],
    );
}

/// A placement starts a saga; a cancellation ends it, counted once however often it is
/// asked for.
#[tokio::test]
async fn placing_and_cancelling_emit_the_saga_start_and_end_once() {
    use dishpatch::emf::metrics::{SAGA_DURATION, SAGA_EXECUTIONS, SAGA_STARTED};
    use dishpatch::emf::{assert_valid, Capture};

    let (app, _) = app();
    let capture = Capture::start();
    let (_, order) = place(&app, &order_body(), ALICE).await;
    let id = order["orderId"].as_str().unwrap();
    let started = capture.points(&SAGA_STARTED);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].2["orderId"], id);
    assert_eq!(cancel(&app, id, ALICE).await.0, 202);
    assert_eq!(cancel(&app, id, ALICE).await.0, 202);
    capture.lines().iter().for_each(assert_valid);
    let ended: Vec<_> = capture
        .points(&SAGA_EXECUTIONS)
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(ended, [vec!["CANCELLED".to_owned()]]);
    assert_eq!(capture.points(&SAGA_DURATION).len(), 1);
}
