//! Handler CPU per event, without I/O: what each function does between its reads and
//! writes. Batches of 1 and 10, as SQS delivers them (and for the API, 1 and 10
//! requests in a row). Run with `cargo bench -p dishpatch-shared --bench handlers`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::menu::MenuItem;
use dishpatch::money::Money;
use dishpatch::orchestration::{advance, Timings};
use dishpatch::order::Order;
use dishpatch::runtime::{invoke, Function, MessageError};
use dishpatch::saga::{self, Outcome, SagaEvent};
use dishpatch::{pricing, validation};
use serde_json::json;

const BATCHES: [usize; 2] = [1, 10];

fn menu() -> Vec<MenuItem> {
    (1..=20)
        .map(|i| MenuItem {
            restaurant_id: "r-1".into(),
            menu_item_id: format!("m-{i}"),
            name: format!("Dish {i}"),
            price: Money::new(450 + 25 * i, "EUR"),
            available: 100,
            reserved: 0,
            sold: 0,
            stocked: 100,
        })
        .collect()
}

fn place_order_body(i: usize) -> Vec<u8> {
    json!({
        "restaurantId": "r-1",
        "items": [
            {"menuItemId": format!("m-{}", 1 + i % 20), "quantity": 2},
            {"menuItemId": format!("m-{}", 1 + (i + 7) % 20), "quantity": 1},
            {"menuItemId": "m-3", "quantity": 1}
        ],
        "deliveryAddress": {"line1": "1 Main St", "city": "Lisbon", "postcode": "1000-001", "country": "PT"},
        "paymentMethod": "WALLET"
    })
    .to_string()
    .into_bytes()
}

fn order() -> Order {
    let menu = menu();
    let req = validation::parse_place_order(&place_order_body(0)).unwrap();
    let priced = pricing::price(&req.items, &menu).unwrap();
    Order {
        order_id: "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d".into(),
        restaurant_id: req.restaurant_id,
        items: priced.lines,
        total: priced.total,
        created_at: "2026-11-22T12:00:00.000Z".into(),
        updated_at: "2026-11-22T12:00:00.000Z".into(),
        version: 1,
        ..dishpatch_core::fixtures::sample_order()
    }
}

/// order-api: parse and validate the body, then price it from the menu.
fn place_order(c: &mut Criterion) {
    let menu = menu();
    let mut g = c.benchmark_group("validate_and_price");
    for n in BATCHES {
        let bodies: Vec<Vec<u8>> = (0..n).map(place_order_body).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &bodies, |b, bodies| {
            b.iter(|| {
                for body in bodies {
                    let req = validation::parse_place_order(black_box(body)).unwrap();
                    black_box(pricing::price(&req.items, &menu).unwrap());
                }
            })
        });
    }
    g.finish();
}

/// order-saga: the transition for a step result, the next order and its outbox.
fn saga_transition(c: &mut Criterion) {
    let order = order();
    let timings = Timings::default();
    let cause = Envelope::new(MessageType::InventoryReserved, &order.order_id, json!({}));
    let mut g = c.benchmark_group("saga_transition");
    for n in BATCHES {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                for _ in 0..n {
                    let Outcome::Apply(t) =
                        saga::transition(&order.saga, black_box(&SagaEvent::InventoryReserved))
                            .unwrap()
                    else {
                        unreachable!("a reservation moves a new order on")
                    };
                    black_box(advance(
                        &order,
                        &t,
                        "InventoryReserved",
                        Some(&cause),
                        "2026-11-22T12:00:01.000Z",
                        &timings,
                    ));
                }
            })
        });
    }
    g.finish();
}

/// Every worker: decode the envelope of each message, encode the one it sends.
fn envelope(c: &mut Criterion) {
    let order = order();
    let sent = Envelope::new(
        MessageType::CapturePayment,
        &order.order_id,
        json!({"customerId": "alice", "amount": order.total, "method": "WALLET"}),
    );
    let body = sent.to_json();
    let mut g = c.benchmark_group("envelope_decode_encode");
    for n in BATCHES {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                for _ in 0..n {
                    let (env, _) = Envelope::decode(black_box(&body)).unwrap();
                    black_box(
                        env.follow(MessageType::PaymentCaptured, &env.data)
                            .to_json(),
                    );
                }
            })
        });
    }
    g.finish();
}

/// A handler that does nothing: what the shared runtime costs per SQS message (the
/// Lambda event's JSON, the envelope, the batch response).
struct Noop;

#[async_trait::async_trait]
impl Function for Noop {
    async fn message(&self, envelope: Envelope, _: MessageType) -> Result<(), MessageError> {
        black_box(envelope);
        Ok(())
    }
}

fn sqs_event(n: usize, body: &str) -> serde_json::Value {
    let records: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "messageId": format!("059f36b4-87a3-44ab-83d2-66197{i:07}"),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183"},
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:PaymentQueue",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn sqs_dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = Envelope::new(
        MessageType::CapturePayment,
        "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
        json!({"customerId": "alice", "amount": {"amount": 1900, "currency": "EUR"}, "method": "WALLET"}),
    )
    .to_json();
    let mut g = c.benchmark_group("sqs_dispatch");
    for n in BATCHES {
        let event = sqs_event(n, &body);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &event, |b, event| {
            b.iter(|| {
                let ctx = lambda_runtime::Context::default();
                black_box(rt.block_on(invoke(&Noop, event.clone(), ctx)).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    place_order,
    saga_transition,
    envelope,
    sqs_dispatch
);
criterion_main!(benches);
