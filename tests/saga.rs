//! The saga end to end on the local stack: HTTP in, SNS/SQS/stream through the
//! emulator, state read back over HTTP.

use dishpatch::envelope::MessageType;
use dishpatch_e2e::System;
use dishpatch_local::invariants::CheckOptions;
use dishpatch_local::testing::unique_prefix;
use dishpatch_local::LocalStackOptions;
use serde_json::json;

#[tokio::test]
async fn an_order_travels_the_whole_way_to_delivered() {
    let sys = System::start("happy").await;
    let before = sys.holdings("alice", "m-1").await;

    let id = sys
        .place("alice", json!([{"menuItemId": "m-1", "quantity": 2}]))
        .await;
    let dispatched = sys.wait_for("alice", &id, "DISPATCHED").await;
    let courier = dispatched["courierId"]
        .as_str()
        .expect("a courier is assigned")
        .to_owned();
    assert_eq!(
        dispatched["total"],
        json!({"amount": 1900, "currency": "EUR"})
    );
    assert_eq!(
        sys.wallet("alice").await,
        before.wallet - 1900,
        "charged once, from the menu price"
    );
    assert_eq!(sys.available("m-1").await, before.stock - 2);

    // Only the assigned courier may complete it.
    let other = if courier == "courier-1" {
        "courier-2"
    } else {
        "courier-1"
    };
    assert_eq!(sys.complete(other, &id).await.status, 404);
    let done = sys.complete(&courier, &id).await;
    assert_eq!(done.status, 200, "{}", done.body);
    sys.wait_for("alice", &id, "DELIVERED").await;

    // The timeline shows every step and the customer messages.
    let statuses = sys.timeline("alice", &id, "STATUS", "status").await;
    assert_eq!(
        statuses,
        ["PENDING", "RESERVED", "PAID", "DISPATCHED", "DELIVERED"]
    );
    let notified = dishpatch_local::testing::eventually(dishpatch_e2e::SAGA_DEADLINE, || async {
        let kinds = sys
            .timeline("alice", &id, "NOTIFICATION", "eventType")
            .await;
        kinds
            .contains(&"OrderDelivered".to_owned())
            .then_some(kinds)
    })
    .await
    .expect("the customer is told the order was delivered");
    assert!(
        notified.contains(&"OrderConfirmed".to_owned()),
        "{notified:?}"
    );
    // The courier is free again for the next order.
    let next = sys
        .place("alice", json!([{"menuItemId": "m-3", "quantity": 1}]))
        .await;
    sys.wait_for("alice", &next, "DISPATCHED").await;
}

#[tokio::test]
async fn out_of_stock_cancels_and_charges_nothing() {
    let sys = System::start("stock").await;
    assert_eq!(sys.set_stock("m-2", "Bifana", 650, 1).await.status, 200);
    let wallet_before = sys.wallet("alice").await;
    let id = sys
        .place(
            "alice",
            json!([{"menuItemId": "m-1", "quantity": 1}, {"menuItemId": "m-2", "quantity": 2}]),
        )
        .await;
    let o = sys.wait_for("alice", &id, "CANCELLED").await;
    assert!(
        o["cancelReason"]
            .as_str()
            .unwrap()
            .starts_with("OUT_OF_STOCK"),
        "{o}"
    );
    assert_eq!(sys.wallet("alice").await, wallet_before);
    assert_eq!(
        sys.available("m-2").await,
        1,
        "a rejected reservation holds nothing"
    );
}

#[tokio::test]
async fn insufficient_funds_cancels_and_releases_the_stock() {
    let sys = System::start("funds").await;
    let before = sys.holdings("bob", "m-1").await;
    // 6 x 9.50 = 57.00 EUR is more than bob's wallet holds.
    let id = sys
        .place("bob", json!([{"menuItemId": "m-1", "quantity": 6}]))
        .await;
    let o = sys.wait_for("bob", &id, "CANCELLED").await;
    assert_eq!(o["cancelReason"], "INSUFFICIENT_FUNDS");
    assert_eq!(
        sys.holdings("bob", "m-1").await,
        before,
        "nothing charged, the reservation released"
    );
}

#[tokio::test]
async fn no_courier_until_the_dispatch_deadline_refunds_and_releases_in_reverse_order() {
    // The order waits for a courier 3 s, then its dispatch step fails.
    let opts = LocalStackOptions::new(unique_prefix("courier")).function_env(
        "*",
        "DISPATCH_DEADLINE_SECONDS",
        "3",
    );
    let sys = System::start_with(opts).await;
    let before = sys.holdings("alice", "m-3").await;
    // Two couriers: two orders take them, the third finds none and waits.
    for _ in 0..2 {
        let id = sys
            .place("alice", json!([{"menuItemId": "m-3", "quantity": 1}]))
            .await;
        sys.wait_for("alice", &id, "DISPATCHED").await;
    }
    let id = sys
        .place("alice", json!([{"menuItemId": "m-3", "quantity": 1}]))
        .await;
    let o = sys.wait_for("alice", &id, "CANCELLED").await;
    assert_eq!(o["cancelReason"], "NO_COURIER");
    assert_eq!(
        sys.wallet("alice").await,
        before.wallet - 2 * 150,
        "the third order was refunded"
    );
    assert_eq!(sys.available("m-3").await, before.stock - 2);
    let causes = sys.timeline("alice", &id, "STATUS", "cause").await;
    assert_eq!(
        causes,
        [
            "PlaceOrder",
            "InventoryReserved",
            "PaymentCaptured",
            "DeliveryWaiting",
            "StepTimeout",
            "DeliveryCancelled",
            "PaymentRefunded",
            "InventoryReleased"
        ],
        "the waiting delivery is cancelled, then the refund, then the release"
    );
    // Both couriers still have their own orders: none was claimed for this one.
    assert_invariants_hold(&sys, &CheckOptions::default()).await;
}

/// The invariant checker, reading the stack now with `options`, finds nothing broken.
async fn assert_invariants_hold(sys: &System, options: &CheckOptions) {
    let report = sys.stack.checker().check(options).await.unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[tokio::test]
async fn customer_cancel_before_dispatch_refunds_and_releases() {
    use dishpatch_local::faults;
    // The dispatch is lost: the order waits in PAID. The cancel of the dispatch, sent
    // before the refund, leaves a tombstone.
    let opts = LocalStackOptions::new(unique_prefix("cancel")).wrap_function("delivery", |inner| {
        faults::drop_messages(inner, |_, kind| kind == MessageType::DispatchDelivery)
    });
    let sys = System::start_with(opts).await;
    let before = sys.holdings("alice", "m-1").await;
    let id = sys
        .place("alice", json!([{"menuItemId": "m-1", "quantity": 1}]))
        .await;
    sys.wait_for("alice", &id, "PAID").await;
    assert_eq!(sys.wallet("alice").await, before.wallet - 950);

    let r = sys.cancel("alice", &id).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["status"], "CANCELLING");
    let o = sys.wait_for("alice", &id, "CANCELLED").await;
    assert_eq!(o["cancelReason"], "CUSTOMER_CANCELLED");
    assert_eq!(sys.holdings("alice", "m-1").await, before);
    let causes = sys.timeline("alice", &id, "STATUS", "cause").await;
    assert_eq!(
        &causes[3..],
        [
            "CancelRequested",
            "DeliveryCancelled",
            "PaymentRefunded",
            "InventoryReleased"
        ],
        "the dispatch is undone before the refund"
    );
    // Another customer cannot cancel it, and a cancelled order stays cancelled.
    assert_eq!(sys.cancel("bob", &id).await.status, 404);
}

#[tokio::test]
async fn cancel_after_dispatch_is_refused() {
    let sys = System::start("late-cancel").await;
    let id = sys
        .place("alice", json!([{"menuItemId": "m-3", "quantity": 1}]))
        .await;
    sys.wait_for("alice", &id, "DISPATCHED").await;
    let r = sys.cancel("alice", &id).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.body["code"], "ORDER_NOT_CANCELLABLE");
}

#[tokio::test]
async fn a_step_that_never_answers_times_out_and_is_compensated() {
    use dishpatch_local::faults;
    // The courier service loses every dispatch: the delivery step's deadline fires.
    let opts = LocalStackOptions::new(unique_prefix("deadline"))
        .function_env("*", "STEP_TIMEOUT_SECONDS", "2")
        .function_env("*", "DISPATCH_DEADLINE_SECONDS", "2")
        .wrap_function("delivery", |inner| {
            faults::drop_messages(inner, |_, kind| kind == MessageType::DispatchDelivery)
        });
    let sys = System::start_with(opts).await;
    place_until_the_dispatch_times_out(&sys, "StepTimeout").await;
}

/// Places an order of one m-1 as alice, which must end CANCELLED for its delivery
/// deadline, the timeout recorded as `cause`: refunded and released, the timed-out
/// dispatch undone first (tombstone), then the rest in reverse.
async fn place_until_the_dispatch_times_out(sys: &System, cause: &str) {
    let before = sys.holdings("alice", "m-1").await;
    let id = sys
        .place("alice", json!([{"menuItemId": "m-1", "quantity": 1}]))
        .await;
    let o = sys.wait_for("alice", &id, "CANCELLED").await;
    assert_eq!(o["cancelReason"], "DELIVERY_TIMEOUT");
    assert_eq!(sys.wallet("alice").await, before.wallet, "refunded");
    assert_eq!(sys.available("m-1").await, before.stock, "released");
    let causes = sys.timeline("alice", &id, "STATUS", "cause").await;
    assert_eq!(
        causes,
        [
            "PlaceOrder",
            "InventoryReserved",
            "PaymentCaptured",
            cause,
            "DeliveryCancelled",
            "PaymentRefunded",
            "InventoryReleased"
        ],
        "the timed-out dispatch is undone first (tombstone), then the rest in reverse"
    );
}

/// A stack whose sweeper runs every 200 ms and takes orders 1 s past a 2 s deadline.
fn swept(name: &str) -> LocalStackOptions {
    LocalStackOptions::new(unique_prefix(name))
        .function_env("*", "STEP_TIMEOUT_SECONDS", "2")
        .function_env("*", "DISPATCH_DEADLINE_SECONDS", "2")
        .function_env("OrderSagaFunction", "SWEEP_MARGIN_SECONDS", "1")
        .schedule_interval(std::time::Duration::from_millis(200))
}

/// An order the sweeper must drive to rest, after which every invariant holds.
async fn place_until_swept_to_cancelled(sys: &System) {
    place_until_the_dispatch_times_out(sys, "SweepOverdue").await;
    assert_invariants_hold(sys, &CheckOptions::quiescent()).await;
}

#[tokio::test]
async fn an_order_whose_stream_record_is_lost_is_swept_to_rest() {
    use dishpatch_local::faults;
    // The write into PAID is never relayed: its DispatchDelivery and its StepTimeout are
    // lost with it, and nothing but the sweeper would ever look at the order again.
    let opts = swept("sweep-stream").wrap_function("OrderSagaFunction", |inner| {
        faults::drop_stream_records(inner, |outbox| {
            outbox
                .iter()
                .any(|m| m.kind == MessageType::DispatchDelivery)
        })
    });
    place_until_swept_to_cancelled(&System::start_with(opts).await).await;
}

#[tokio::test]
async fn an_order_whose_timeout_message_is_lost_is_swept_to_rest() {
    use dishpatch_local::faults;
    // The dispatch is lost, and so is the delayed StepTimeout that would catch it.
    let opts = swept("sweep-queue")
        .wrap_function("delivery", |inner| {
            faults::drop_messages(inner, |_, kind| kind == MessageType::DispatchDelivery)
        })
        .wrap_function("OrderSagaFunction", |inner| {
            faults::drop_messages(inner, |env, kind| {
                kind == MessageType::StepTimeout && env.data["step"] == "Delivery"
            })
        });
    place_until_swept_to_cancelled(&System::start_with(opts).await).await;
}

/// The saga's metrics reach CloudWatch (the emulator's, through the local stack's EMF
/// forwarding, as CloudWatch Logs would put them): a started saga, its transitions and
/// its end. Other tests share the namespace, so each series is read from this test's
/// start on.
#[tokio::test]
async fn a_delivered_order_shows_in_the_saga_metrics() {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    use dishpatch::emf::metrics::{
        METRICS_NAMESPACE, SAGA_EXECUTIONS, SAGA_STARTED, SAGA_TRANSITIONS,
    };
    use std::time::{Duration, SystemTime};

    let sys = System::start("metrics").await;
    let since = SystemTime::now() - Duration::from_secs(60);
    let id = sys
        .place("alice", json!([{"menuItemId": "m-1", "quantity": 1}]))
        .await;
    let dispatched = sys.wait_for("alice", &id, "DISPATCHED").await;
    let courier = dispatched["courierId"].as_str().unwrap().to_owned();
    assert_eq!(sys.complete(&courier, &id).await.status, 200);
    sys.wait_for("alice", &id, "DELIVERED").await;

    let cw = aws_sdk_cloudwatch::Client::new(&sys.stack.sdk);
    let series = [
        (SAGA_STARTED.name, None),
        (SAGA_TRANSITIONS.name, Some(("Status", "DELIVERED"))),
        (SAGA_EXECUTIONS.name, Some(("Outcome", "DELIVERED"))),
    ];
    let sums = dishpatch_local::testing::eventually(dishpatch_e2e::SAGA_DEADLINE, || async {
        let mut query = cw
            .get_metric_data()
            .start_time(DateTime::from(since))
            .end_time(DateTime::from(SystemTime::now() + Duration::from_secs(60)));
        for (i, (name, dimension)) in series.iter().enumerate() {
            let metric = Metric::builder()
                .namespace(METRICS_NAMESPACE)
                .metric_name(*name)
                .set_dimensions(
                    dimension.map(|(k, v)| vec![Dimension::builder().name(k).value(v).build()]),
                )
                .build();
            let stat = MetricStat::builder().metric(metric).period(60).stat("Sum");
            query = query.metric_data_queries(
                MetricDataQuery::builder()
                    .id(format!("m{i}"))
                    .metric_stat(stat.build())
                    .build(),
            );
        }
        let data = query.send().await.expect("GetMetricData");
        let sums: Vec<f64> = (0..series.len())
            .map(|i| {
                data.metric_data_results()
                    .iter()
                    .find(|r| r.id() == Some(&format!("m{i}")))
                    .map(|r| r.values().iter().sum())
                    .unwrap_or_default()
            })
            .collect();
        sums.iter().all(|s| *s >= 1.0).then_some(sums)
    })
    .await;
    assert!(
        sums.is_some(),
        "no SagaStarted, SagaTransitions DELIVERED and SagaExecutions DELIVERED data"
    );
}
