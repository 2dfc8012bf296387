//! The DynamoDB adapter and the whole function against the AWS emulator (moto): the
//! conditional semantics that keep a courier on at most one delivery.

use aws_sdk_dynamodb::types::AttributeValue;
use delivery::{Claim, Delivery, DeliveryStatus, DeliveryStore, DynamoDeliveryStore};
use dishpatch::aws::dynamo::{key, s};
use dishpatch::config::Env;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::keys::{courier_pk, AVAILABLE_COURIERS, COURIER_SK};
use dishpatch::runtime::Function;
use dishpatch::testing::{
    call, create_table_with, deliver, deliver_racing, emulator, http_event,
    topic_with_subscription, unique, Index, Subscription,
};
use serde_json::{json, Value};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// The delivery table as the template defines it: `gsi1` (free couriers and waiting
/// deliveries, all attributes) and `gsi2` (a courier's deliveries, keys only, on the
/// delivery's own `courierId` and `createdAt`).
async fn delivery_table(sdk: &aws_config::SdkConfig) -> String {
    let indexes = [
        Index::all("gsi1", "gsi1pk", "gsi1sk"),
        Index::keys_only("gsi2", "courierId", "createdAt"),
    ];
    create_table_with(sdk, "delivery", &indexes).await
}

/// A courier as the local seed writes it: AVAILABLE and listed in the sparse index.
async fn seed_courier(ddb: &aws_sdk_dynamodb::Client, table: &str, id: &str) {
    ddb.put_item()
        .table_name(table)
        .item("pk", s(courier_pk(id)))
        .item("sk", s(COURIER_SK))
        .item("courierId", s(id))
        .item("name", s(format!("Courier {id}")))
        .item("status", s("AVAILABLE"))
        .item("gsi1pk", s(AVAILABLE_COURIERS))
        .item("gsi1sk", s(id))
        .send()
        .await
        .unwrap();
}

/// The stored courier item, as it is.
async fn courier(ddb: &aws_sdk_dynamodb::Client, table: &str, id: &str) -> Item {
    ddb.get_item()
        .table_name(table)
        .set_key(Some(key(courier_pk(id), COURIER_SK)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("item exists")
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// The courier is free: AVAILABLE, in the free index, on no order (after `round`).
fn assert_free(courier: &Item, round: u64) {
    assert_eq!(
        (text(courier, "status"), text(courier, "gsi1pk")),
        (Some("AVAILABLE"), Some("COURIER#AVAILABLE")),
        "round {round}"
    );
    assert!(!courier.contains_key("activeOrderId"), "round {round}");
}

fn delivery(order_id: &str, courier_id: Option<&str>, status: DeliveryStatus) -> Delivery {
    Delivery {
        order_id: order_id.into(),
        courier_id: courier_id.map(str::to_owned),
        status,
        restaurant_id: "r-1".into(),
        delivery_address: serde_json::from_value(address()).unwrap(),
        reason: None,
        created_at: dishpatch::envelope::now(),
        updated_at: dishpatch::envelope::now(),
        dispatched_at: None,
        dispatch_by: None,
        attempt: 0,
        traceparent: None,
    }
}

fn address() -> Value {
    json!({"line1": "1 Main St", "city": "Lisbon", "postcode": "1000-001", "country": "PT"})
}

#[tokio::test]
async fn the_sparse_index_lists_only_free_couriers_and_claims_are_conditional() {
    let sdk = emulator().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = delivery_table(&sdk).await;
    seed_courier(&ddb, &table, "c-1").await;
    seed_courier(&ddb, &table, "c-2").await;
    let store = DynamoDeliveryStore::new(ddb.clone(), &table);
    assert_eq!(
        store.available_couriers(5).await.unwrap(),
        vec!["c-1", "c-2"]
    );

    let o1 = delivery("o-1", Some("c-1"), DeliveryStatus::Dispatched);
    assert_eq!(store.claim("c-1", &o1).await.unwrap(), Claim::Claimed);
    // The busy courier really left the index.
    assert_eq!(store.available_couriers(5).await.unwrap(), vec!["c-2"]);
    let c1 = courier(&ddb, &table, "c-1").await;
    assert_eq!(
        (text(&c1, "status"), text(&c1, "activeOrderId")),
        (Some("BUSY"), Some("o-1"))
    );
    assert!(!c1.contains_key("gsi1pk") && !c1.contains_key("gsi1sk"));
    assert_eq!(store.get("o-1").await.unwrap(), Some(o1.clone()));

    // A busy courier cannot be claimed again; a second delivery for o-1 cannot be written,
    // and that failed transaction leaves the courier it named untouched.
    let o2 = delivery("o-2", Some("c-1"), DeliveryStatus::Dispatched);
    assert_eq!(store.claim("c-1", &o2).await.unwrap(), Claim::CourierTaken);
    assert_eq!(store.get("o-2").await.unwrap(), None);
    let dup = delivery("o-1", Some("c-2"), DeliveryStatus::Dispatched);
    assert_eq!(
        store.claim("c-2", &dup).await.unwrap(),
        Claim::DeliveryExists
    );
    assert_eq!(
        text(&courier(&ddb, &table, "c-2").await, "status"),
        Some("AVAILABLE")
    );
    assert_eq!(
        store
            .get("o-1")
            .await
            .unwrap()
            .unwrap()
            .courier_id
            .as_deref(),
        Some("c-1")
    );

    // Only its courier finishes the delivery, once: that frees the courier and puts it
    // back in the index.
    for (courier_id, applied) in [("c-2", false), ("c-1", true), ("c-1", false)] {
        let finished = store
            .finish("o-1", courier_id, DeliveryStatus::Cancelled)
            .await
            .unwrap();
        assert_eq!(finished, applied, "finished by {courier_id}");
    }
    assert_eq!(
        store.get("o-1").await.unwrap().unwrap().status,
        DeliveryStatus::Cancelled
    );
    let c1 = courier(&ddb, &table, "c-1").await;
    assert_eq!(
        (
            text(&c1, "status"),
            text(&c1, "gsi1pk"),
            text(&c1, "gsi1sk")
        ),
        (Some("AVAILABLE"), Some("COURIER#AVAILABLE"), Some("c-1"))
    );
    assert!(!c1.contains_key("activeOrderId"));
    assert_eq!(
        store.available_couriers(5).await.unwrap(),
        vec!["c-1", "c-2"]
    );

    // The courier-less record is written once.
    let none = delivery("o-3", None, DeliveryStatus::Unavailable);
    assert!(store.record(&none).await.unwrap());
    assert!(!store
        .record(&delivery("o-3", None, DeliveryStatus::Unavailable))
        .await
        .unwrap());
    assert_eq!(store.get("o-3").await.unwrap(), Some(none));
}

#[tokio::test]
async fn finishing_when_the_courier_moved_on_finishes_the_delivery_alone() {
    let sdk = emulator().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = delivery_table(&sdk).await;
    seed_courier(&ddb, &table, "c-1").await;
    let store = DynamoDeliveryStore::new(ddb.clone(), &table);
    assert_eq!(
        store
            .claim(
                "c-1",
                &delivery("o-1", Some("c-1"), DeliveryStatus::Dispatched)
            )
            .await
            .unwrap(),
        Claim::Claimed
    );
    // Someone reassigned the courier by hand.
    ddb.update_item()
        .table_name(&table)
        .set_key(Some(key(courier_pk("c-1"), COURIER_SK)))
        .update_expression("SET activeOrderId = :o")
        .expression_attribute_values(":o", s("o-other"))
        .send()
        .await
        .unwrap();
    assert!(store
        .finish("o-1", "c-1", DeliveryStatus::Delivered)
        .await
        .unwrap());
    assert_eq!(
        store.get("o-1").await.unwrap().unwrap().status,
        DeliveryStatus::Delivered
    );
    let c1 = courier(&ddb, &table, "c-1").await;
    assert_eq!(
        (text(&c1, "status"), text(&c1, "activeOrderId")),
        (Some("BUSY"), Some("o-other"))
    );
}

struct Stack {
    sdk: aws_config::SdkConfig,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    events: Subscription,
    /// The function's own queue, where its delayed retries go.
    queue: String,
    app: delivery::App,
}

/// The function built as it deploys, on a fresh table and a topic read back through a queue.
async fn stack() -> Stack {
    let sdk = emulator().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = delivery_table(&sdk).await;
    let (topic, events) = topic_with_subscription(&sdk, None).await;
    let queue = aws_sdk_sqs::Client::new(&sdk)
        .create_queue()
        .queue_name(unique("delivery-queue"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let env = Env::from_map(HashMap::from([
        ("DELIVERY_TABLE".to_owned(), table.clone()),
        ("ORDER_EVENTS_TOPIC_ARN".to_owned(), topic),
        ("DELIVERY_QUEUE_URL".to_owned(), queue.clone()),
        ("DISPATCH_RETRY_SECONDS".to_owned(), "1".to_owned()),
    ]));
    let app = delivery::build(&sdk, &env).await.unwrap();
    Stack {
        sdk,
        ddb,
        table,
        events,
        queue,
        app,
    }
}

impl Stack {
    /// `(orderId, type, data)` of the next `want` facts published.
    async fn facts(&self, want: usize) -> Vec<(String, String, Value)> {
        self.events
            .received_facts(want)
            .await
            .into_iter()
            .map(|f| {
                (
                    f.envelope.order_id,
                    f.envelope.kind.to_string(),
                    f.envelope.data,
                )
            })
            .collect()
    }

    async fn courier(&self, id: &str) -> Item {
        courier(&self.ddb, &self.table, id).await
    }

    /// The next message the function queued for itself (waiting up to 10 s: retries are
    /// delayed), deleted once read.
    async fn queued(&self) -> Envelope {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue)
                .send()
                .await
                .unwrap();
            if let Some(m) = out.messages.unwrap_or_default().into_iter().next() {
                sqs.delete_message()
                    .queue_url(&self.queue)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
                return Envelope::decode(&m.body.unwrap()).unwrap().0;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("nothing queued within 10 s");
    }

    async fn item(&self, order_id: &str) -> Item {
        self.ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                dishpatch::keys::delivery_pk(order_id),
                "DELIVERY",
            )))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    }

    /// `(status, body)` of `PUT /v1/couriers/me/shift` as `sub`, as the gateway passes it.
    async fn shift(&self, sub: &str, on: bool) -> (u16, Value) {
        let body = json!({"onShift": on}).to_string();
        let event = courier_request(
            "PUT",
            "/v1/couriers/{courierId}/shift",
            "/v1/couriers/me/shift",
            "",
            Some(&body),
            sub,
        );
        call(&self.app, event).await
    }
}

/// A courier's request on their own record (`{courierId}` is `me`), as the gateway
/// passes it.
fn courier_request(
    method: &str,
    route: &str,
    path: &str,
    query: &str,
    body: Option<&str>,
    sub: &str,
) -> Value {
    let claims = Some((sub, "[COURIER]"));
    http_event(
        method,
        route,
        path,
        &[("courierId", "me")],
        query,
        body,
        claims,
    )
}

fn dispatch(order_id: &str) -> Envelope {
    Envelope::new(
        MessageType::DispatchDelivery,
        order_id,
        json!({"restaurantId": "r-1", "deliveryAddress": address()}),
    )
}

#[tokio::test]
async fn two_concurrent_dispatches_share_one_free_courier_exactly_once() {
    // Both commands are in flight at once; the emulator applies each transaction
    // atomically, as DynamoDB does (see `dishpatch::testing::emulator`).
    let st = stack().await;
    seed_courier(&st.ddb, &st.table, "c-1").await;
    let store = DynamoDeliveryStore::new(st.ddb.clone(), &st.table);
    // Several rounds: each races two new orders for the one courier, then frees it.
    for round in 0..4 {
        let (a, b) = (format!("o-{round}-a"), format!("o-{round}-b"));
        let (ra, rb) = tokio::join!(
            st.app.message(dispatch(&a), MessageType::DispatchDelivery),
            st.app.message(dispatch(&b), MessageType::DispatchDelivery),
        );
        ra.unwrap();
        rb.unwrap();
        let mut facts = st.facts(2).await;
        facts.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(facts.len(), 2, "{facts:?}");
        assert_eq!(
            (facts[0].1.as_str(), &facts[0].2),
            ("DeliveryDispatched", &json!({"courierId": "c-1"}))
        );
        assert_eq!(
            (facts[1].1.as_str(), &facts[1].2),
            ("DeliveryWaiting", &json!({}))
        );
        let (winner, loser) = (facts[0].0.clone(), facts[1].0.clone());
        assert_eq!(
            store.get(&winner).await.unwrap().unwrap().status,
            DeliveryStatus::Dispatched
        );
        assert_eq!(
            store.get(&loser).await.unwrap().unwrap().status,
            DeliveryStatus::Waiting
        );
        let c1 = courier(&st.ddb, &st.table, "c-1").await;
        assert_eq!(text(&c1, "activeOrderId"), Some(winner.as_str()));

        // Replays of both commands re-publish the same outcomes and change nothing.
        st.app
            .message(dispatch(&a), MessageType::DispatchDelivery)
            .await
            .unwrap();
        st.app
            .message(dispatch(&b), MessageType::DispatchDelivery)
            .await
            .unwrap();
        let mut again = st.facts(2).await;
        again.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(again, facts);
        assert_eq!(courier(&st.ddb, &st.table, "c-1").await, c1);

        // Cancel the winner: the courier is handed the waiting loser at once.
        let cancel = Envelope::new(MessageType::CancelDelivery, &winner, json!({}));
        st.app
            .message(cancel, MessageType::CancelDelivery)
            .await
            .unwrap();
        assert_eq!(
            st.facts(2).await,
            vec![
                (
                    loser.clone(),
                    "DeliveryDispatched".into(),
                    json!({"courierId": "c-1"})
                ),
                (winner.clone(), "DeliveryCancelled".into(), json!({}))
            ]
        );
        assert_eq!(
            text(&courier(&st.ddb, &st.table, "c-1").await, "activeOrderId"),
            Some(loser.as_str())
        );
        // Cancel that one too: the courier is free for the next round.
        let cancel = Envelope::new(MessageType::CancelDelivery, &loser, json!({}));
        st.app
            .message(cancel, MessageType::CancelDelivery)
            .await
            .unwrap();
        assert_eq!(
            st.facts(1).await,
            vec![(loser.clone(), "DeliveryCancelled".into(), json!({}))]
        );
        assert_eq!(store.available_couriers(5).await.unwrap(), vec!["c-1"]);
    }
    assert!(st.events.drain().await.is_empty());
}

fn complete_request(order_id: &str, sub: &str) -> Value {
    let path = format!("/v1/deliveries/{order_id}/complete");
    let claims = Some((sub, "[COURIER]"));
    let route = "/v1/deliveries/{orderId}/complete";
    http_event(
        "POST",
        route,
        &path,
        &[("orderId", order_id)],
        "",
        None,
        claims,
    )
}

#[tokio::test]
async fn the_courier_completes_over_http_and_is_free_again() {
    let st = stack().await;
    seed_courier(&st.ddb, &st.table, "c-1").await;
    st.app
        .message(dispatch("o-1"), MessageType::DispatchDelivery)
        .await
        .unwrap();
    assert_eq!(st.facts(1).await[0].1, "DeliveryDispatched");

    let invoke = |sub: &'static str| {
        dishpatch::runtime::invoke(&st.app, complete_request("o-1", sub), Default::default())
    };
    let wrong = invoke("c-2").await.unwrap();
    assert_eq!(wrong["statusCode"], 404);
    for _ in 0..2 {
        let resp = invoke("c-1").await.unwrap();
        assert_eq!(resp["statusCode"], 200, "{resp}");
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"orderId": "o-1", "courierId": "c-1", "status": "DELIVERED"})
        );
        assert_eq!(
            st.facts(1).await,
            vec![(
                "o-1".into(),
                "DeliveryCompleted".into(),
                json!({"courierId": "c-1"})
            )]
        );
    }
    let c1 = courier(&st.ddb, &st.table, "c-1").await;
    assert_eq!(
        (text(&c1, "status"), text(&c1, "gsi1pk")),
        (Some("AVAILABLE"), Some("COURIER#AVAILABLE"))
    );
    // A late cancel of a delivered order changes nothing.
    st.app
        .message(
            Envelope::new(MessageType::CancelDelivery, "o-1", json!({})),
            MessageType::CancelDelivery,
        )
        .await
        .unwrap();
    let store = DynamoDeliveryStore::new(st.ddb.clone(), &st.table);
    assert_eq!(
        store.get("o-1").await.unwrap().unwrap().status,
        DeliveryStatus::Delivered
    );
}

// ---- Cancel wins: a cancel that overtakes its dispatch (the saga's step deadline)

fn cancel(order_id: &str) -> Envelope {
    Envelope::new(MessageType::CancelDelivery, order_id, json!({}))
}

#[tokio::test]
async fn a_dispatch_after_its_cancel_claims_no_courier() {
    let st = stack().await;
    seed_courier(&st.ddb, &st.table, "c-1").await;
    let free = st.courier("c-1").await;
    let store = DynamoDeliveryStore::new(st.ddb.clone(), &st.table);
    deliver(&st.app, &cancel("o-1")).await;
    let tombstone = store.get("o-1").await.unwrap().unwrap();
    assert_eq!(
        (tombstone.status, tombstone.courier_id.as_deref()),
        (DeliveryStatus::Cancelled, None)
    );
    // The late dispatch (and a duplicate of it) finds the tombstone: the courier stays free.
    for _ in 0..2 {
        deliver(&st.app, &dispatch("o-1")).await;
    }
    assert_eq!(st.courier("c-1").await, free);
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), tombstone);
    // The saga's second cancel only confirms.
    deliver(&st.app, &cancel("o-1")).await;
    assert_eq!(st.courier("c-1").await, free);
    let mut facts = st.facts(4).await;
    facts.sort_by_key(|f| format!("{f:?}"));
    let o1 = || "o-1".to_owned();
    assert_eq!(
        facts,
        vec![
            (o1(), "DeliveryCancelled".into(), json!({})),
            (o1(), "DeliveryCancelled".into(), json!({})),
            (
                o1(),
                "DeliveryUnavailable".into(),
                json!({"reason": "CANCELLED"})
            ),
            (
                o1(),
                "DeliveryUnavailable".into(),
                json!({"reason": "CANCELLED"})
            ),
        ]
    );
    assert!(st.events.drain().await.is_empty());
    assert_eq!(store.available_couriers(5).await.unwrap(), vec!["c-1"]);
}

#[tokio::test]
async fn a_dispatch_racing_its_cancel_ends_with_the_courier_free() {
    let st = stack().await;
    seed_courier(&st.ddb, &st.table, "c-1").await;
    let store = DynamoDeliveryStore::new(st.ddb.clone(), &st.table);
    for round in 0..12 {
        let order = format!("o-race-{round}");
        let (go, stop) = (dispatch(&order), cancel(&order));
        deliver_racing(&st.app, &go, &stop, round).await;
        let c1 = st.courier("c-1").await;
        assert_free(&c1, round);
        assert_eq!(
            store.get(&order).await.unwrap().unwrap().status,
            DeliveryStatus::Cancelled,
            "round {round}"
        );
        // Whatever arrives later changes nothing either.
        deliver(&st.app, &go).await;
        assert_eq!(st.courier("c-1").await, c1, "round {round}");
    }
}

// ---- Shifts and waiting for a courier

#[tokio::test]
async fn a_waiting_order_is_dispatched_when_a_courier_comes_on_shift() {
    let st = stack().await;
    let store = DynamoDeliveryStore::new(st.ddb.clone(), &st.table);
    // c-1 is seeded on shift and goes off: it is never dispatched.
    seed_courier(&st.ddb, &st.table, "c-1").await;
    let (status, body) = st.shift("c-1", false).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("OFF_SHIFT")),
        "{body}"
    );
    assert_eq!(st.shift("c-1", false).await.0, 200);
    let c1 = st.courier("c-1").await;
    assert!(!c1.contains_key("gsi1pk"), "{c1:?}");
    assert!(store.available_couriers(5).await.unwrap().is_empty());

    deliver(&st.app, &dispatch("o-1")).await;
    assert_eq!(
        st.facts(1).await,
        vec![("o-1".into(), "DeliveryWaiting".into(), json!({}))]
    );
    let waiting = st.item("o-1").await;
    assert_eq!(text(&waiting, "status"), Some("WAITING"));
    assert_eq!(text(&waiting, "gsi1pk"), Some("DELIVERY#WAITING"));
    assert_eq!(store.waiting(5).await.unwrap(), vec!["o-1"]);
    // Its first retry is queued, delayed.
    let retry = st.queued().await;
    assert_eq!(
        (retry.kind, &retry.data),
        (MessageType::RetryDispatch, &json!({"attempt": 1}))
    );

    // A courier with no record yet comes on shift: created, and handed the order at once.
    let (status, body) = st.shift("c-new", true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"courierId": "c-new", "onShift": true, "status": "BUSY", "activeOrderId": "o-1"})
    );
    assert_eq!(
        st.facts(1).await,
        vec![(
            "o-1".into(),
            "DeliveryDispatched".into(),
            json!({"courierId": "c-new"})
        )]
    );
    let dispatched = st.item("o-1").await;
    assert_eq!(
        (text(&dispatched, "status"), text(&dispatched, "courierId")),
        (Some("DISPATCHED"), Some("c-new"))
    );
    assert!(!dispatched.contains_key("gsi1pk"));
    assert!(store.waiting(5).await.unwrap().is_empty());
    // The retry, when it lands, re-publishes the dispatch and claims nothing more.
    deliver(&st.app, &retry).await;
    assert_eq!(st.facts(1).await[0].1, "DeliveryDispatched");
    assert_eq!(text(&st.courier("c-1").await, "status"), Some("OFF_SHIFT"));

    // On a delivery: cannot go off shift.
    let (status, body) = st.shift("c-new", false).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("COURIER_ON_DELIVERY"))
    );
    // Its list: the active delivery first, read through the keys-only index.
    let (status, body) = assignments(&st, "c-new", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["orderId"], "o-1");
    assert_eq!(body["items"][0]["status"], "DISPATCHED");
    assert_eq!(assignments(&st, "c-1", "").await.1["items"], json!([]));
}

async fn assignments(st: &Stack, sub: &str, query: &str) -> (u16, Value) {
    let route = "/v1/couriers/{courierId}/deliveries";
    let event = courier_request("GET", route, "/v1/couriers/me/deliveries", query, None, sub);
    call(&st.app, event).await
}

#[tokio::test]
async fn a_couriers_deliveries_page_newest_first() {
    let st = stack().await;
    seed_courier(&st.ddb, &st.table, "c-1").await;
    seed_courier(&st.ddb, &st.table, "c-2").await;
    let store = DynamoDeliveryStore::new(st.ddb.clone(), &st.table);
    for (i, o) in ["o-1", "o-2", "o-3"].into_iter().enumerate() {
        let mut d = delivery(o, Some("c-1"), DeliveryStatus::Delivered);
        d.created_at = format!("2026-01-0{}T00:00:00.000Z", i + 1);
        assert!(store.record(&d).await.unwrap());
    }
    assert!(store
        .record(&delivery("o-9", Some("c-2"), DeliveryStatus::Delivered))
        .await
        .unwrap());
    let first = store.for_courier("c-1", 2, None).await.unwrap();
    let ids = |p: &delivery::DeliveryPage| {
        p.deliveries
            .iter()
            .map(|d| d.order_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), vec!["o-3", "o-2"]);
    let token = first.next_token.clone().expect("a next page");
    let second = store.for_courier("c-1", 2, Some(&token)).await.unwrap();
    assert_eq!(ids(&second), vec!["o-1"]);
    // The courier items (with a courierId, without a createdAt) are not in the index.
    let (status, body) = assignments(&st, "c-1", "page_size=2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let token = body["nextPageToken"].as_str().unwrap().to_owned();
    let (status, body) = assignments(&st, "c-1", &format!("page_size=2&page_token={token}")).await;
    assert_eq!(
        (status, body["items"][0]["orderId"].as_str()),
        (200, Some("o-1"))
    );
    assert!(body.get("nextPageToken").is_none() || body["items"].as_array().unwrap().len() == 1);
}

#[tokio::test]
async fn a_waiting_order_cancelled_takes_no_courier_even_racing_one() {
    let st = stack().await;
    let store = DynamoDeliveryStore::new(st.ddb.clone(), &st.table);
    for round in 0..6 {
        let order = format!("o-wait-{round}");
        deliver(&st.app, &dispatch(&order)).await;
        assert_eq!(
            store.get(&order).await.unwrap().unwrap().status,
            DeliveryStatus::Waiting
        );
        // The cancel and a courier coming on shift, at once.
        let stop = cancel(&order);
        let (_, (status, _)) = tokio::join!(deliver(&st.app, &stop), st.shift("c-1", true));
        assert_eq!(status, 200);
        let d = st.item(&order).await;
        assert_eq!(text(&d, "status"), Some("CANCELLED"), "round {round}");
        assert!(!d.contains_key("gsi1pk"), "round {round}");
        assert_free(&st.courier("c-1").await, round);
        // Off shift again for the next round; its retry, when it lands, does nothing.
        assert_eq!(st.shift("c-1", false).await.0, 200);
        let retry = st.queued().await;
        deliver(&st.app, &retry).await;
        assert_eq!(text(&st.item(&order).await, "status"), Some("CANCELLED"));
        st.events.drain().await;
    }
}
