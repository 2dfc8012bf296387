//! Couriers' shifts and orders waiting for a courier, on the local stack over HTTP: an
//! order with no free courier waits (the customer told once), and is dispatched the
//! moment a courier comes on shift or is freed, long before its next retry; a cancel
//! while it waits claims no courier; a courier reads their own deliveries.

use dishpatch_e2e::{Reply, System};
use dishpatch_local::testing::unique_prefix;
use dishpatch_local::LocalStackOptions;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const COURIERS: [&str; 2] = ["courier-1", "courier-2"];

async fn shift(sys: &System, courier: &str, on: bool) -> Reply {
    sys.call(
        "PUT",
        "/v1/couriers/me/shift",
        Some((courier, &["COURIER"])),
        Some(json!({"onShift": on})),
    )
    .await
}

async fn deliveries(sys: &System, courier: &str, named: &str) -> Reply {
    let path = format!("/v1/couriers/{named}/deliveries");
    sys.call("GET", &path, Some((courier, &["COURIER"])), None)
        .await
}

fn one_pastel() -> Value {
    json!([{"menuItemId": "m-3", "quantity": 1}])
}

/// Waits (polling, 30 s at most) until the order's timeline has an entry of `kind`
/// whose `field` is `value`; how many there are then.
async fn until_in_timeline(sys: &System, id: &str, kind: &str, field: &str, value: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = sys.timeline("alice", id, kind, field).await;
        let n = seen.iter().filter(|v| *v == value).count();
        if n > 0 {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "order {id}: no {kind} {value} in {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ids(page: &Value) -> Vec<(String, String)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["orderId"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_waiting_order_is_dispatched_as_soon_as_a_courier_comes_on_shift_or_is_freed() {
    // Retries 5 minutes apart: a dispatch within the test's deadline is the hand-off.
    let opts = LocalStackOptions::new(unique_prefix("couriers")).function_env(
        "DeliveryFunction",
        "DISPATCH_RETRY_SECONDS",
        "300",
    );
    let sys = System::start_with(opts).await;
    for c in COURIERS {
        let r = shift(&sys, c, false).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["status"], "OFF_SHIFT");
        // Again: the same answer, nothing changes.
        assert_eq!(shift(&sys, c, false).await.body, r.body);
    }

    let first = sys.place("alice", one_pastel()).await;
    until_in_timeline(&sys, &first, "STATUS", "cause", "DeliveryWaiting").await;
    let told = until_in_timeline(
        &sys,
        &first,
        "NOTIFICATION",
        "eventType",
        "OrderAwaitingCourier",
    )
    .await;
    assert_eq!(told, 1);
    let second = sys.place("alice", one_pastel()).await;
    until_in_timeline(&sys, &second, "STATUS", "cause", "DeliveryWaiting").await;
    assert_eq!(sys.order("alice", &first).await["status"], "PAID");

    // courier-1 comes on shift: handed the order that waited longest, at once.
    let started = Instant::now();
    let r = shift(&sys, "courier-1", true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"courierId": "courier-1", "onShift": true, "status": "BUSY", "activeOrderId": first})
    );
    let o = sys.wait_for("alice", &first, "DISPATCHED").await;
    assert_eq!(o["courierId"], "courier-1");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "well before the 300 s retry"
    );
    assert_eq!(sys.order("alice", &second).await["status"], "PAID");

    // On a delivery: no going off shift.
    let r = shift(&sys, "courier-1", false).await;
    assert_eq!(
        (r.status, &r.body["code"]),
        (409, &json!("COURIER_ON_DELIVERY"))
    );

    // Delivered: courier-1 is freed and takes the next waiting order at once.
    assert_eq!(sys.complete("courier-1", &first).await.status, 200);
    sys.wait_for("alice", &first, "DELIVERED").await;
    let o = sys.wait_for("alice", &second, "DISPATCHED").await;
    assert_eq!(o["courierId"], "courier-1");

    // Their list: the active delivery first, then the rest, newest first.
    let r = deliveries(&sys, "courier-1", "me").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        ids(&r.body),
        vec![
            (second.clone(), "DISPATCHED".to_owned()),
            (first.clone(), "DELIVERED".to_owned())
        ]
    );
    let r = deliveries(&sys, "courier-1", "me").await;
    let page = sys
        .call(
            "GET",
            "/v1/couriers/me/deliveries?page_size=1",
            Some(("courier-1", &["COURIER"])),
            None,
        )
        .await;
    assert_eq!(ids(&page.body), ids(&r.body)[..1].to_vec());
    let token = page.body["nextPageToken"].as_str().unwrap();
    let next = sys
        .call(
            "GET",
            &format!("/v1/couriers/me/deliveries?page_size=1&page_token={token}"),
            Some(("courier-1", &["COURIER"])),
            None,
        )
        .await;
    assert_eq!(ids(&next.body), ids(&r.body)[1..].to_vec());
    // Only their own.
    assert_eq!(deliveries(&sys, "courier-2", "courier-1").await.status, 404);
    assert_eq!(
        deliveries(&sys, "courier-2", "me").await.body["items"],
        json!([])
    );

    assert_eq!(sys.complete("courier-1", &second).await.status, 200);
    sys.wait_for("alice", &second, "DELIVERED").await;
    // Each order was told once that a courier was being found.
    for id in [&first, &second] {
        let told = sys.timeline("alice", id, "NOTIFICATION", "eventType").await;
        let n = told.iter().filter(|t| *t == "OrderAwaitingCourier").count();
        assert_eq!(n, 1, "{id}: {told:?}");
    }
    let report = sys.report_at_rest().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.couriers["courier-1"].status, "AVAILABLE");
    assert_eq!(report.couriers["courier-2"].status, "OFF_SHIFT");
}

#[tokio::test]
async fn a_cancel_while_waiting_claims_no_courier() {
    let sys = System::start("wait-cancel").await;
    for c in COURIERS {
        assert_eq!(shift(&sys, c, false).await.status, 200);
    }
    let before = sys.holdings("alice", "m-3").await;
    let id = sys.place("alice", one_pastel()).await;
    until_in_timeline(&sys, &id, "STATUS", "cause", "DeliveryWaiting").await;
    let r = sys.cancel("alice", &id).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let o = sys.wait_for("alice", &id, "CANCELLED").await;
    assert_eq!(o["cancelReason"], "CUSTOMER_CANCELLED");
    assert_eq!(sys.holdings("alice", "m-3").await, before);
    // A courier on shift now finds nothing waiting.
    let r = shift(&sys, "courier-1", true).await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("AVAILABLE")));
    let report = sys.report_at_rest().await;
    assert!(report.is_clean(), "{report}");
}
