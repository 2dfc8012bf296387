//! Every field bounded: the biggest valid order still fits DynamoDB's item many times
//! over, and what is past a bound is refused before anything is written.

use super::*;
use dishpatch::testing::{call, http_event};
use dishpatch::validation::{
    MAX_ADDRESS_LINE, MAX_CARD_TOKEN_LEN, MAX_CITY, MAX_LINES, MAX_POSTCODE, MAX_QUANTITY,
};

/// DynamoDB's item size limit.
const ITEM_LIMIT: usize = 400 * 1024;

/// The size DynamoDB charges for an attribute value (names and values in UTF-8 bytes,
/// numbers up to 21 bytes, 3 bytes per list or map plus 1 per element).
fn value_size(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => s.len(),
        A::N(n) => n.len().div_ceil(2) + 1,
        A::Bool(_) | A::Null(_) => 1,
        A::L(l) => 3 + l.iter().map(|e| value_size(e) + 1).sum::<usize>(),
        A::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| k.len() + value_size(e) + 1)
                .sum::<usize>()
        }
        other => format!("{other:?}").len(),
    }
}

fn item_size(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// `n` characters of four bytes each: the most bytes a bounded field can hold.
fn widest(n: usize) -> String {
    "😀".repeat(n)
}

fn long_id(i: usize) -> String {
    format!("{i:02}-{}", "x".repeat(61))
}

#[tokio::test]
async fn the_largest_valid_order_with_its_outbox_stays_far_below_the_item_limit() {
    let store = Arc::new(InMemoryOrderStore::default());
    let menu: Vec<MenuItem> = (0..MAX_LINES)
        .map(|i| MenuItem {
            restaurant_id: "r-1".into(),
            menu_item_id: long_id(i),
            name: widest(100),
            price: Money::new(10_000_000, "EUR"),
            available: 100_000,
            reserved: 0,
            sold: 0,
            stocked: 100_000,
        })
        .collect();
    let (mut app, _) = app();
    app.orders = store.clone();
    app.menu = Arc::new(Menu(menu));
    let body = json!({
        "restaurantId": "r-1",
        "items": (0..MAX_LINES).map(|i| json!({"menuItemId": long_id(i), "quantity": MAX_QUANTITY})).collect::<Vec<_>>(),
        "deliveryAddress": {
            "line1": widest(MAX_ADDRESS_LINE), "line2": widest(MAX_ADDRESS_LINE),
            "city": widest(MAX_CITY), "postcode": widest(MAX_POSTCODE), "country": "PT"
        },
        "paymentMethod": "CARD",
        "cardToken": "t".repeat(MAX_CARD_TOKEN_LEN),
    });
    assert!(
        body.to_string().len() <= dishpatch::http::MAX_BODY_BYTES,
        "the largest valid body is accepted"
    );
    let (status, placed) = place(&app, &body, ALICE).await;
    assert_eq!(status, 201, "{placed}");
    let order = store.orders.lock().unwrap()[0].clone();
    let outbox = store.outbox.lock().unwrap().clone();
    // The item as the order store writes it: the order's attributes and its outbox.
    let mut record = serde_json::to_value(&order).unwrap();
    record["pk"] = json!(dishpatch::keys::order_pk(&order.order_id));
    record["sk"] = json!(dishpatch::keys::ORDER_SK);
    record["gsi1pk"] = json!(dishpatch::keys::customer_pk("alice"));
    record["gsi1sk"] = json!(order.created_at);
    record["outbox"] = serde_json::to_value(&outbox).unwrap();
    let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo::to_item(record).unwrap();
    let size = item_size(&item);
    eprintln!("largest valid order + outbox: {size} bytes");
    // A tenth of the limit: the timeline's few dozen entries and the biggest later
    // outbox (the same lines again) fit many times over.
    assert!(size < ITEM_LIMIT / 10, "{size} bytes");
}

#[tokio::test]
async fn past_a_bound_is_refused_and_nothing_is_written() {
    let (app, store) = app();
    // The reproduction: a 300,000-character second address line.
    let mut b = order_body();
    b["deliveryAddress"]["line2"] = json!("x".repeat(300_000));
    let req = http_event(
        "POST",
        "/v1/orders",
        "/v1/orders",
        &[],
        "",
        Some(&b.to_string()),
        ALICE,
    );
    let (status, p) = call(&app, req).await;
    assert_eq!(
        (status, p["code"].clone()),
        (413, json!("PAYLOAD_TOO_LARGE")),
        "{p}"
    );
    // Under the body cap, each field is still bounded by itself.
    for (field, value) in [
        ("line2", json!("x".repeat(MAX_ADDRESS_LINE + 1))),
        ("line1", json!("1 Main St\r\nBcc: x")),
        ("city", json!(widest(MAX_CITY + 1))),
        ("postcode", json!("   ")),
    ] {
        let mut b = order_body();
        b["deliveryAddress"][field] = value;
        let (status, p) = place(&app, &b, ALICE).await;
        assert_eq!(
            (status, p["field"].clone()),
            (400, json!(format!("deliveryAddress.{field}"))),
            "{p}"
        );
    }
    assert!(store.orders.lock().unwrap().is_empty());
    assert!(store.outbox.lock().unwrap().is_empty());
}
