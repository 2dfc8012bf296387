//! The DynamoDB order store against the emulator: conditional writes and pagination.

use crate::aws::dynamo::{from_item, s, to_item, Item};
use crate::envelope::{Envelope, MessageType};
use crate::error::StoreError;
use crate::order::Order;
use crate::orders::{DynamoOrderStore, OrderStore, OutboxImage};
use crate::outbox::Outgoing;
use crate::testing::{create_table_with, emulator, Index};

async fn table() -> DynamoOrderStore {
    let sdk = emulator().await;
    // The template's indexes: keys only, so an order's updates never write them.
    let indexes = [
        Index::keys_only("gsi1", "gsi1pk", "gsi1sk"),
        Index::keys_only(crate::orders::OVERDUE_INDEX, "sweepShard", "deadline"),
    ];
    let name = create_table_with(&sdk, "orders", &indexes).await;
    DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), name)
}

fn order(id: &str, customer: &str, created: &str) -> Order {
    Order {
        order_id: id.into(),
        customer_id: customer.into(),
        created_at: created.into(),
        updated_at: created.into(),
        version: 1,
        ..crate::testing::sample_order()
    }
}

#[tokio::test]
async fn writes_are_conditional_on_the_version() {
    let store = table().await;
    let o = order("o-1", "alice", "2026-11-22T10:00:00.000Z");
    let outbox = vec![Outgoing::plain(Envelope::new(
        MessageType::OrderPlaced,
        "o-1",
        serde_json::json!({"n": 1}),
    ))];
    store.save(&o, None, &outbox).await.unwrap();
    assert!(
        matches!(
            store.save(&o, None, &[]).await,
            Err(StoreError::Conflict(_))
        ),
        "create twice"
    );
    let mut next = o.clone();
    next.version = 2;
    store.save(&next, Some(1), &[]).await.unwrap();
    // A writer that read version 1 loses.
    assert!(matches!(
        store.save(&next, Some(1), &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), next);
    assert_eq!(store.get("nope").await.unwrap(), None);
}

#[tokio::test]
async fn lists_own_orders_newest_first_across_pages() {
    let store = table().await;
    for i in 0..5 {
        store
            .save(
                &order(
                    &format!("a-{i}"),
                    "alice",
                    &format!("2026-11-22T10:00:0{i}.000Z"),
                ),
                None,
                &[],
            )
            .await
            .unwrap();
    }
    store
        .save(&order("b-1", "bob", "2026-11-22T10:00:09.000Z"), None, &[])
        .await
        .unwrap();
    let mut seen = vec![];
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list_for_customer("alice", 2, token.as_deref())
            .await
            .unwrap();
        assert!(page.orders.len() <= 2);
        seen.extend(page.orders.into_iter().map(|o| o.order_id));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
        assert!(seen.len() <= 5, "pagination does not end");
    }
    assert_eq!(seen, ["a-4", "a-3", "a-2", "a-1", "a-0"]);
    // The index holds keys only: a listed order is the whole item, as it is now.
    let mut newest = store.get("a-4").await.unwrap().unwrap();
    newest.version += 1;
    newest.updated_at = "2026-11-22T10:05:00.000Z".into();
    store.save(&newest, Some(1), &[]).await.unwrap();
    let first = store.list_for_customer("alice", 2, None).await.unwrap();
    assert_eq!(first.orders[0], newest);
    assert_eq!(first.orders[1], store.get("a-3").await.unwrap().unwrap());
    // Bob cannot continue from Alice's cursor.
    let alice_page = store.list_for_customer("alice", 2, None).await.unwrap();
    let stolen = alice_page.next_token.unwrap();
    assert!(store
        .list_for_customer("bob", 2, Some(&stolen))
        .await
        .is_err());
}

#[tokio::test]
async fn overdue_finds_only_orders_past_their_deadline() {
    let store = table().await;
    let at = |id: &str, deadline: Option<&str>| Order {
        deadline: deadline.map(str::to_owned),
        ..order(id, "alice", "2026-11-22T10:00:00.000Z")
    };
    for i in 0..6 {
        let o = at(&format!("late-{i}"), Some("2026-11-22T10:05:00.000Z"));
        store.save(&o, None, &[]).await.unwrap();
    }
    store
        .save(&at("later", Some("2026-11-22T11:00:00.000Z")), None, &[])
        .await
        .unwrap();
    store.save(&at("at-rest", None), None, &[]).await.unwrap();
    let mut ids = store
        .overdue("2026-11-22T10:10:00.000Z", 100)
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, (0..6).map(|i| format!("late-{i}")).collect::<Vec<_>>());
    assert_eq!(
        store
            .overdue("2026-11-22T10:10:00.000Z", 4)
            .await
            .unwrap()
            .len(),
        4
    );
    // Brought to rest: the order leaves the index.
    let mut o = store.get("late-0").await.unwrap().unwrap();
    o.deadline = None;
    o.version += 1;
    store.save(&o, Some(1), &[]).await.unwrap();
    let ids = store
        .overdue("2026-11-22T10:10:00.000Z", 100)
        .await
        .unwrap();
    assert!(
        !ids.contains(&"late-0".to_owned()) && ids.len() == 5,
        "{ids:?}"
    );
}

/// The order's item as stored, read strongly consistent.
async fn stored_item(store: &DynamoOrderStore, id: &str) -> Item {
    store
        .client
        .get_item()
        .table_name(&store.table)
        .key("pk", s(crate::orders::order_pk(id)))
        .key("sk", s("ORDER"))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

/// Writes `order` as an item of the shape the store wrote before (`shape` sets what
/// differs), bypassing the store.
async fn put_older_shape(
    store: &DynamoOrderStore,
    order: &Order,
    shape: impl FnOnce(&mut serde_json::Value),
) {
    let mut v = serde_json::to_value(order).unwrap();
    v["pk"] = crate::orders::order_pk(&order.order_id).into();
    v["sk"] = "ORDER".into();
    v["gsi1pk"] = format!("CUSTOMER#{}", order.customer_id).into();
    v["gsi1sk"] = format!("{}#{}", order.created_at, order.order_id).into();
    v["status"] = "PENDING".into();
    shape(&mut v);
    store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(to_item(&v).unwrap()))
        .send()
        .await
        .unwrap();
}

/// The outbox as the stream's image of the stored item carries it to the relay.
async fn stored_outbox(store: &DynamoOrderStore, id: &str) -> (Vec<Outgoing>, serde_json::Value) {
    let item = stored_item(store, id).await;
    let raw: serde_json::Value = from_item(item.clone()).unwrap();
    (
        from_item::<OutboxImage>(item).unwrap().outbox,
        raw["outbox"].clone(),
    )
}

/// Order o-1 as placed (version bumped, timeline started) and the outbox its placing
/// writes with it.
fn placed() -> (Order, Vec<Outgoing>) {
    use crate::orchestration::{advance, Timings};
    let o = order("o-1", "alice", "2026-11-22T10:00:00.000Z");
    advance(
        &o,
        &crate::saga::start(),
        "PlaceOrder",
        None,
        &o.created_at,
        &Timings::default(),
    )
}

#[tokio::test]
async fn the_outbox_is_stored_with_each_delivery_and_read_back_by_the_relay() {
    let store = table().await;
    let (placed, outbox) = placed();
    store.save(&placed, None, &outbox).await.unwrap();
    let (read, raw) = stored_outbox(&store, "o-1").await;
    assert_eq!(read, outbox);
    let delays: Vec<_> = read.iter().map(|m| m.delivery.delay_seconds).collect();
    assert_eq!(delays, [None, None, Some(300)]);
    // Compact: a command or fact made from the order stores its type alone (its id and
    // time are the write's); the deadline its payload, whose delay is its delivery.
    let m = raw["m"].as_array().unwrap();
    assert_eq!(m[0], serde_json::json!({"t": "ReserveInventory"}), "{raw}");
    assert_eq!(m[1], serde_json::json!({"t": "OrderPlaced"}), "{raw}");
    assert_eq!(m[2]["data"]["delaySeconds"], 300, "{raw}");
    assert!(m[2].get("delivery").is_none(), "{raw}");
    assert!(raw.get("at").is_none(), "{raw}");
    // The order reads back whole, its timeline included.
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), placed);
}

#[tokio::test]
async fn an_order_item_in_the_shape_written_before_still_reads_and_relays() {
    let store = table().await;
    let (placed, outbox) = placed();
    // Timeline entries as maps and the outbox as a list of entries, as written before.
    put_older_shape(&store, &placed, |v| {
        v["outbox"] = serde_json::to_value(&outbox).unwrap();
        assert!(v["timeline"][0].is_object());
    })
    .await;
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), placed);
    let (read, raw) = stored_outbox(&store, "o-1").await;
    assert!(raw.is_array());
    assert_eq!(read, outbox);
    // Its next write stores the compact shape, conditional on the version read.
    let mut next = placed.clone();
    next.version += 1;
    store.save(&next, Some(placed.version), &[]).await.unwrap();
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), next);
}

#[tokio::test]
async fn an_outbox_stored_as_bare_envelopes_still_relays() {
    let store = table().await;
    let timeout = Envelope::new(
        MessageType::StepTimeout,
        "o-1",
        serde_json::json!({"step": "Payment", "attempt": 1, "delaySeconds": 31}),
    );
    let fact = Envelope::new(MessageType::OrderPlaced, "o-1", serde_json::json!({}));
    // As the store wrote an order's outbox before its entries carried a delivery.
    let item = to_item(&serde_json::json!({
        "pk": crate::orders::order_pk("o-1"),
        "sk": "ORDER",
        "outbox": [fact, timeout],
    }))
    .unwrap();
    store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let (read, _) = stored_outbox(&store, "o-1").await;
    assert_eq!(read[0], Outgoing::plain(fact));
    assert_eq!(read[1].envelope, timeout);
    assert_eq!(read[1].delivery.delay_seconds, Some(31));
}

#[tokio::test]
async fn the_overdue_index_key_stays_put_while_the_deadline_moves() {
    let store = table().await;
    let raw = |id: &'static str| {
        let store = store.clone();
        async move { from_item::<serde_json::Value>(stored_item(&store, id).await).unwrap() }
    };
    let mut o = Order {
        deadline: Some("2026-11-22T10:05:00.000Z".into()),
        ..order("o-1", "alice", "2026-11-22T10:00:00.000Z")
    };
    store.save(&o, None, &[]).await.unwrap();
    let first = raw("o-1").await;
    assert_eq!(first["deadline"], "2026-11-22T10:00:00.000Z");
    // The deadline itself, as milliseconds after the placing time.
    assert_eq!(first["due"], 300_000);
    // The next step's deadline: the index key (and so the index entry) does not move.
    o.deadline = Some("2026-11-22T10:06:00.000Z".into());
    o.version += 1;
    store.save(&o, Some(1), &[]).await.unwrap();
    let next = raw("o-1").await;
    assert_eq!(next["deadline"], first["deadline"]);
    assert_eq!(next["due"], 360_000);
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), o);
    // Listed by the index from its placing time on, overdue only once it is due.
    assert!(store
        .overdue("2026-11-22T10:05:30.000Z", 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .overdue("2026-11-22T10:06:30.000Z", 100)
            .await
            .unwrap(),
        ["o-1"]
    );
    // An item written before, its deadline the index key itself, is found and read.
    let old = Order {
        deadline: Some("2026-11-22T10:07:00.000Z".into()),
        ..order("o-old", "alice", "2026-11-22T10:00:00.000Z")
    };
    put_older_shape(&store, &old, |v| {
        v["sweepShard"] = crate::orders::sweep_shard("o-old").into();
    })
    .await;
    assert_eq!(store.get("o-old").await.unwrap().unwrap(), old);
    let mut ids = store
        .overdue("2026-11-22T10:08:00.000Z", 100)
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, ["o-1", "o-old"]);
    // At rest: no key, no due.
    o.deadline = None;
    o.version += 1;
    store.save(&o, Some(2), &[]).await.unwrap();
    let rest = raw("o-1").await;
    assert!(
        rest.get("deadline").is_none() && rest.get("due").is_none(),
        "{rest}"
    );
}
