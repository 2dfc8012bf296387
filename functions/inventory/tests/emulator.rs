//! The DynamoDB adapters (and the wired function) against the AWS emulator: the
//! conditional semantics that keep stock conserved and reservations idempotent.

use dishpatch::aws::dynamo::{from_item, n, to_attr, Item};
use dishpatch::config::Env;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::menu::MenuItem;
use dishpatch::money::Money;
use dishpatch::order::ItemQuantity;
use dishpatch::testing::{
    call, create_table, deliver, deliver_racing, emulator, http_event, sqs_event,
    topic_with_subscription, with_claim, Subscription,
};
use inventory::menu::Created;
use inventory::{
    DynamoMenuStore, DynamoReservationStore, MenuStore, Reservation, ReservationStatus,
    ReservationStore, Reserve,
};
use serde_json::json;
use std::collections::HashMap;

const R: &str = "r-1";

struct Table {
    ddb: aws_sdk_dynamodb::Client,
    name: String,
    reservations: DynamoReservationStore,
    menu: DynamoMenuStore,
}

/// A fresh table on the emulator, which applies each transaction atomically as DynamoDB
/// does (see `dishpatch::testing::emulator`): the races below are faithful.
async fn table() -> Table {
    let sdk = emulator().await;
    let name = create_table(&sdk, "inventory", &[]).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    Table {
        reservations: DynamoReservationStore::new(ddb.clone(), &name),
        menu: DynamoMenuStore::new(ddb.clone(), &name),
        ddb,
        name,
    }
}

/// Writes a menu item the way the local seed does (`MenuItem` plus its keys).
async fn seed(t: &Table, id: &str, available: i64) {
    let item = MenuItem {
        restaurant_id: R.into(),
        menu_item_id: id.into(),
        name: format!("dish {id}"),
        price: Money::new(950, "EUR"),
        available,
        reserved: 0,
        sold: 0,
        stocked: available,
    };
    let mut attrs: Item = serde_dynamo::to_item(&item).unwrap();
    attrs.extend(inventory::menu::key(R, id));
    t.ddb
        .put_item()
        .table_name(&t.name)
        .set_item(Some(attrs))
        .send()
        .await
        .unwrap();
}

async fn counters(t: &Table, id: &str) -> (i64, i64, i64, i64) {
    let i = t.menu.get(R, id).await.unwrap().unwrap();
    assert!(i.conserves_stock(), "{i:?}");
    (i.available, i.reserved, i.sold, i.stocked)
}

fn reservation(order_id: &str, lines: &[(&str, u32)]) -> Reservation {
    Reservation {
        order_id: order_id.into(),
        restaurant_id: R.into(),
        items: lines
            .iter()
            .map(|(id, q)| ItemQuantity {
                menu_item_id: id.to_string(),
                quantity: *q,
            })
            .collect(),
        status: ReservationStatus::Sold,
        reason: None,
        detail: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

#[tokio::test]
async fn two_concurrent_reserves_for_the_last_unit_one_wins() {
    let t = table().await;
    for round in 0..5 {
        let id = format!("m-last-{round}");
        seed(&t, &id, 1).await;
        let (a, b) = (
            reservation(&format!("o-a{round}"), &[(&id, 1)]),
            reservation(&format!("o-b{round}"), &[(&id, 1)]),
        );
        let (ra, rb) = tokio::join!(t.reservations.reserve(&a), t.reservations.reserve(&b));
        let results = [ra.unwrap(), rb.unwrap()];
        let wins = results.iter().filter(|r| **r == Reserve::Reserved).count();
        let refusals = results
            .iter()
            .filter(|r| matches!(r, Reserve::OutOfStock { menu_item_id } if *menu_item_id == id))
            .count();
        assert_eq!((wins, refusals), (1, 1), "round {round}: {results:?}");
        assert_eq!(counters(&t, &id).await, (0, 0, 1, 1));
        let stored = [
            t.reservations.get(&a.order_id).await.unwrap(),
            t.reservations.get(&b.order_id).await.unwrap(),
        ];
        assert_eq!(
            stored
                .iter()
                .flatten()
                .filter(|r| r.status == ReservationStatus::Sold)
                .count(),
            1
        );
        // The loser wrote nothing.
        assert_eq!(stored.iter().flatten().count(), 1);
    }
}

#[tokio::test]
async fn a_duplicate_reserve_finds_the_record_and_holds_nothing_more() {
    let t = table().await;
    seed(&t, "m-1", 5).await;
    let r = reservation("o-1", &[("m-1", 2)]);
    assert_eq!(t.reservations.reserve(&r).await.unwrap(), Reserve::Reserved);
    assert_eq!(t.reservations.reserve(&r).await.unwrap(), Reserve::Exists);
    assert_eq!(counters(&t, "m-1").await, (3, 0, 2, 5));
    assert_eq!(t.reservations.get("o-1").await.unwrap().unwrap(), r);
    // A refusal for an order that has a record is not written either.
    let mut rejected = r.clone();
    rejected.status = ReservationStatus::Rejected;
    assert!(!t.reservations.record(&rejected).await.unwrap());
    assert_eq!(
        t.reservations.get("o-1").await.unwrap().unwrap().status,
        ReservationStatus::Sold
    );
}

#[tokio::test]
async fn a_short_or_unknown_line_reserves_nothing() {
    let t = table().await;
    seed(&t, "m-1", 5).await;
    seed(&t, "m-2", 1).await;
    let r = reservation("o-1", &[("m-1", 2), ("m-2", 2)]);
    assert_eq!(
        t.reservations.reserve(&r).await.unwrap(),
        Reserve::OutOfStock {
            menu_item_id: "m-2".into()
        }
    );
    let r = reservation("o-2", &[("m-1", 1), ("m-404", 1)]);
    assert_eq!(
        t.reservations.reserve(&r).await.unwrap(),
        Reserve::OutOfStock {
            menu_item_id: "m-404".into()
        }
    );
    assert_eq!(counters(&t, "m-1").await, (5, 0, 0, 5));
    assert_eq!(counters(&t, "m-2").await, (1, 0, 0, 1));
    assert!(
        t.menu.get(R, "m-404").await.unwrap().is_none(),
        "the update must not create an item"
    );
    assert!(t.reservations.get("o-1").await.unwrap().is_none());
    let mut rejected = reservation("o-1", &[("m-1", 2), ("m-2", 2)]);
    rejected.status = ReservationStatus::Rejected;
    rejected.reason = Some("OUT_OF_STOCK".into());
    assert!(t.reservations.record(&rejected).await.unwrap());
    assert!(!t.reservations.record(&rejected).await.unwrap());
    assert_eq!(t.reservations.get("o-1").await.unwrap().unwrap(), rejected);
}

#[tokio::test]
async fn stock_is_conserved_through_reserve_release_and_commit() {
    let t = table().await;
    seed(&t, "m-1", 10).await;
    seed(&t, "m-2", 4).await;
    // o-1 and o-2 sold at reservation; o-3 held RESERVED, as written before.
    let (r1, r2, mut r3) = (
        reservation("o-1", &[("m-1", 3), ("m-2", 1)]),
        reservation("o-2", &[("m-1", 2)]),
        reservation("o-3", &[("m-1", 1), ("m-2", 3)]),
    );
    r3.status = ReservationStatus::Reserved;
    for r in [&r1, &r2, &r3] {
        assert_eq!(t.reservations.reserve(r).await.unwrap(), Reserve::Reserved);
    }
    assert_eq!(counters(&t, "m-1").await, (4, 1, 5, 10));
    assert_eq!(counters(&t, "m-2").await, (0, 3, 1, 4));

    // Release o-2 (concurrent duplicates: exactly one gives the units back).
    let (a, b) = tokio::join!(
        t.reservations.settle(&r2, ReservationStatus::Released),
        t.reservations.settle(&r2, ReservationStatus::Released)
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);
    // In turn: o-2 again; commit o-3, twice; a reservation moves only from the status
    // it was read in (o-3 read RESERVED is SOLD by now).
    for (r, to, applied) in [
        (&r2, ReservationStatus::Released, false),
        (&r3, ReservationStatus::Sold, true),
        (&r3, ReservationStatus::Sold, false),
        (&r3, ReservationStatus::Released, false),
    ] {
        let settled = t.reservations.settle(r, to).await.unwrap();
        assert_eq!(settled, applied, "{} -> {to:?}", r.order_id);
    }
    // What is sold is not sold again.
    assert!(t
        .reservations
        .settle(&r1, ReservationStatus::Sold)
        .await
        .is_err());

    assert_eq!(counters(&t, "m-1").await, (6, 0, 4, 10));
    assert_eq!(counters(&t, "m-2").await, (0, 0, 4, 4));
    assert_eq!(
        t.reservations.get("o-2").await.unwrap().unwrap().status,
        ReservationStatus::Released
    );
    assert_eq!(
        t.reservations.get("o-3").await.unwrap().unwrap().status,
        ReservationStatus::Sold
    );
    // o-1 still holds its units (sold); releasing it brings them back.
    assert!(t
        .reservations
        .settle(&r1, ReservationStatus::Released)
        .await
        .unwrap());
    assert_eq!(counters(&t, "m-1").await, (9, 0, 1, 10));
    assert_eq!(counters(&t, "m-2").await, (1, 0, 3, 4));
}

#[tokio::test]
async fn menu_edits_are_conditional_on_what_was_read() {
    let t = table().await;
    let mut item = MenuItem {
        restaurant_id: R.into(),
        menu_item_id: "m-1".into(),
        name: "Bifana".into(),
        price: Money::new(450, "EUR"),
        available: 5,
        reserved: 0,
        sold: 0,
        stocked: 5,
    };
    assert_eq!(t.menu.create(&item, 10).await.unwrap(), Created::Created);
    assert!(matches!(
        t.menu.create(&item, 10).await,
        Err(StoreError::Conflict(_))
    ));
    let read = t.menu.get(R, "m-1").await.unwrap().unwrap();
    assert_eq!(read, item);
    // A reservation lands between the read and the write: the write is refused.
    t.reservations
        .reserve(&reservation("o-1", &[("m-1", 2)]))
        .await
        .unwrap();
    item.available = 9;
    item.stocked = 9;
    assert!(matches!(
        t.menu.save(&item, &read).await,
        Err(StoreError::Conflict(_))
    ));
    let fresh = t.menu.get(R, "m-1").await.unwrap().unwrap();
    let next = MenuItem {
        available: 9,
        stocked: fresh.stocked + (9 - fresh.available),
        ..fresh.clone()
    };
    t.menu.save(&next, &fresh).await.unwrap();
    assert_eq!(counters(&t, "m-1").await, (9, 0, 2, 11));
    // Reservations live in their own partitions: the menu lists items only.
    seed(&t, "m-0", 1).await;
    let mut ids: Vec<String> = t
        .menu
        .list(R)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.menu_item_id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["m-0", "m-1"]);
    // The stored shape is the one order-api prices from (`MenuItem` with a price map).
    let raw = t
        .ddb
        .get_item()
        .table_name(&t.name)
        .set_key(Some(inventory::menu::key(R, "m-1")))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(raw["price"], to_attr(&Money::new(450, "EUR")).unwrap());
    assert_eq!(raw["available"], n(9));
    assert_eq!(from_item::<MenuItem>(raw).unwrap().stocked, 11);
}

#[tokio::test]
async fn concurrent_creates_stop_at_the_item_cap() {
    let t = table().await;
    let item = |id: String| MenuItem {
        restaurant_id: R.into(),
        menu_item_id: id,
        name: "Bifana".into(),
        price: Money::new(450, "EUR"),
        available: 1,
        reserved: 0,
        sold: 0,
        stocked: 1,
    };
    let results = futures_join_all(
        (0..8)
            .map(|i| {
                let menu = t.menu.clone();
                let it = item(format!("m-{i}"));
                tokio::spawn(async move { menu.create(&it, 5).await })
            })
            .collect(),
    )
    .await;
    let created = results
        .iter()
        .filter(|r| matches!(r, Ok(Created::Created)))
        .count();
    // The emulator serves one request at a time, so no create is lost to a conflict.
    assert_eq!(created, 5, "{results:?}");
    assert_eq!(
        t.menu.create(&item("m-over".into()), 5).await.unwrap(),
        Created::MenuFull
    );
    assert_eq!(t.menu.list(R).await.unwrap().len(), 5);
    // Another restaurant counts on its own.
    let mut other = item("m-1".into());
    other.restaurant_id = "r-other".into();
    assert_eq!(t.menu.create(&other, 5).await.unwrap(), Created::Created);
}

async fn futures_join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_wired_function_reserves_publishes_and_serves_the_menu() {
    let sdk = emulator().await;
    let name = create_table(&sdk, "inventory", &[]).await;
    let (topic, events) = topic_with_subscription(&sdk, None).await;
    let env = Env::from_map(HashMap::from([
        ("INVENTORY_TABLE".to_owned(), name.clone()),
        ("ORDER_EVENTS_TOPIC_ARN".to_owned(), topic),
    ]));
    let app = inventory::build(&sdk, &env).await.unwrap();
    let invoke = |event| dishpatch::runtime::invoke(&app, event, Default::default());

    // A manager stocks two items over HTTP.
    let route = "/v1/restaurants/{restaurantId}/menu/items/{menuItemId}";
    for (id, stock) in [("m-2", 1), ("m-1", 3)] {
        let path = format!("/v1/restaurants/{R}/menu/items/{id}");
        let body = json!({"name": format!("dish {id}"), "price": {"amount": 800, "currency": "EUR"}, "stock": stock}).to_string();
        let params = [("restaurantId", R), ("menuItemId", id)];
        let claims = Some(("u-m", "[MANAGER]"));
        let event = http_event("PUT", route, &path, &params, "", Some(&body), claims);
        let event = with_claim(event, "restaurants", R);
        assert_eq!(call(&app, event).await.0, 201);
    }

    // Reserve (twice: a duplicate), then one that cannot be served.
    let reserve = |order: &str, lines: serde_json::Value| {
        Envelope::new(
            MessageType::ReserveInventory,
            order,
            json!({"restaurantId": R, "items": lines}),
        )
    };
    let ok = reserve(
        "o-1",
        json!([{"menuItemId": "m-1", "quantity": 2}, {"menuItemId": "m-2", "quantity": 1}]),
    );
    let short = reserve("o-2", json!([{"menuItemId": "m-2", "quantity": 1}]));
    for cmd in [&ok, &ok, &short] {
        let resp = invoke(sqs_event(cmd)).await.unwrap();
        assert_eq!(resp, json!({"batchItemFailures": []}));
    }
    let release = Envelope::new(MessageType::ReleaseInventory, "o-1", json!({}));
    invoke(sqs_event(&release)).await.unwrap();

    let mut got = events.received_facts(4).await;
    got.sort_by_key(|f| f.envelope.causation_id.clone());
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|f| (f.event_type.as_str(), f.envelope.order_id.as_str()))
        .collect();
    let mut expected = vec![
        ("InventoryReserved", "o-1"),
        ("InventoryReserved", "o-1"),
        ("InventoryRejected", "o-2"),
        ("InventoryReleased", "o-1"),
    ];
    let mut sorted = kinds.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    let rejected = got
        .iter()
        .find(|f| f.event_type == "InventoryRejected")
        .unwrap();
    assert_eq!(rejected.envelope.data, json!({"reason": "OUT_OF_STOCK"}));
    assert_eq!(rejected.envelope.causation_id, Some(short.id.clone()));

    // The public menu shows everything back in stock, sorted.
    let path = format!("/v1/restaurants/{R}/menu");
    let route = "/v1/restaurants/{restaurantId}/menu";
    let event = http_event("GET", route, &path, &[("restaurantId", R)], "", None, None);
    let (status, body) = call(&app, event).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"restaurantId": R, "items": [
            {"menuItemId": "m-1", "name": "dish m-1", "price": {"amount": 800, "currency": "EUR"}, "available": 3},
            {"menuItemId": "m-2", "name": "dish m-2", "price": {"amount": 800, "currency": "EUR"}, "available": 1}
        ]})
    );
}

// ---- Cancel wins: a release that overtakes its reserve (the saga's step deadline)

/// The function as it deploys, on `t`'s table, publishing to a topic read back here.
async fn wired(t: &Table) -> (inventory::App, Subscription) {
    let sdk = emulator().await;
    let (topic, events) = topic_with_subscription(&sdk, None).await;
    let env = Env::from_map(HashMap::from([
        ("INVENTORY_TABLE".to_owned(), t.name.clone()),
        ("ORDER_EVENTS_TOPIC_ARN".to_owned(), topic),
    ]));
    (inventory::build(&sdk, &env).await.unwrap(), events)
}

fn command(kind: MessageType, order_id: &str, item: &str) -> Envelope {
    let data = match kind {
        MessageType::ReserveInventory => {
            json!({"restaurantId": R, "items": [{"menuItemId": item, "quantity": 2}]})
        }
        _ => json!({}),
    };
    Envelope::new(kind, order_id, data)
}

#[tokio::test]
async fn a_reserve_after_its_release_takes_no_stock() {
    let t = table().await;
    let (app, events) = wired(&t).await;
    seed(&t, "m-1", 5).await;
    deliver(&app, &command(MessageType::ReleaseInventory, "o-1", "m-1")).await;
    let tombstone = t.reservations.get("o-1").await.unwrap().unwrap();
    assert_eq!(
        (tombstone.status, tombstone.items.len()),
        (ReservationStatus::Released, 0)
    );
    // The late reserve (and a duplicate of it) finds the tombstone: no stock moves.
    for _ in 0..2 {
        deliver(&app, &command(MessageType::ReserveInventory, "o-1", "m-1")).await;
    }
    assert_eq!(counters(&t, "m-1").await, (5, 0, 0, 5));
    assert_eq!(t.reservations.get("o-1").await.unwrap().unwrap(), tombstone);
    // The saga's second release only confirms.
    deliver(&app, &command(MessageType::ReleaseInventory, "o-1", "m-1")).await;
    assert_eq!(counters(&t, "m-1").await, (5, 0, 0, 5));
    let kinds: Vec<String> = events
        .received_facts(4)
        .await
        .into_iter()
        .map(|f| f.event_type)
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "InventoryReleased",
            "InventoryReleased",
            "InventoryReserved",
            "InventoryReserved"
        ]
    );
    assert!(events.drain().await.is_empty());
}

#[tokio::test]
async fn a_reserve_racing_its_release_ends_holding_nothing() {
    let t = table().await;
    let (app, _events) = wired(&t).await;
    seed(&t, "m-1", 5).await;
    for round in 0..12 {
        let order = format!("o-race-{round}");
        let reserve = command(MessageType::ReserveInventory, &order, "m-1");
        let release = command(MessageType::ReleaseInventory, &order, "m-1");
        deliver_racing(&app, &reserve, &release, round).await;
        assert_eq!(counters(&t, "m-1").await, (5, 0, 0, 5), "round {round}");
        assert_eq!(
            t.reservations.get(&order).await.unwrap().unwrap().status,
            ReservationStatus::Released,
            "round {round}"
        );
        // Whatever arrives later changes nothing either.
        deliver(&app, &reserve).await;
        assert_eq!(counters(&t, "m-1").await, (5, 0, 0, 5), "round {round}");
    }
}
