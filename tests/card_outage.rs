//! The card provider goes down for a while: payments wait (the breaker opens and the SQS
//! messages come back later), nothing is cancelled, and once it is back every order is
//! charged exactly once.

use dishpatch_e2e::{order_body, System};
use dishpatch_local::testing::unique_prefix;
use dishpatch_local::LocalStackOptions;
use serde_json::json;
use std::time::Duration;

/// How long the provider is down: long enough for every capture's first delivery to
/// exhaust its retries and open the breaker (≥ 10 failed calls in 10 s).
const OUTAGE: Duration = Duration::from_secs(12);

#[tokio::test]
async fn an_outage_delays_card_orders_and_loses_or_double_charges_none() {
    // Failed messages come back after 20 s, as a slow SQS visibility timeout would: three
    // receives then outlast the breaker's 30 s open period.
    let opts =
        LocalStackOptions::new(unique_prefix("card-outage")).retry_delay(Duration::from_secs(20));
    let sys = System::start_exactly(opts).await;
    let psp = sys.stack.psp.as_ref().unwrap().handle();
    let mut config = psp.config();
    config.down = true;
    psp.set_config(config).unwrap();

    let mut ids = vec![];
    for _ in 0..3 {
        let mut body = order_body(json!([{"menuItemId": "m-3", "quantity": 1}]));
        body["paymentMethod"] = json!("CARD");
        body["cardToken"] = json!("tok_visa");
        let r = sys
            .call(
                "POST",
                "/v1/orders",
                Some(("alice", &["CUSTOMER"])),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["orderId"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(OUTAGE).await;
    for id in &ids {
        let o = sys.order("alice", id).await;
        assert_eq!(
            o["status"], "RESERVED",
            "waiting for payment, not cancelled: {o}"
        );
        assert!(psp.charges_for(id).is_empty());
    }

    config.down = false;
    psp.set_config(config).unwrap();
    // Two couriers: two orders are dispatched, the third is refunded for want of one.
    let mut dispatched = 0;
    for id in &ids {
        let o = settled(&sys, id).await;
        let charges = psp.charges_for(id);
        assert_eq!(
            charges.len(),
            1,
            "order {id} charged exactly once: {charges:?}"
        );
        if o["status"] == "DISPATCHED" {
            dispatched += 1;
            assert_eq!(charges[0].refunded_amount, 0);
        } else {
            assert_eq!(o["cancelReason"], "NO_COURIER", "{o}");
            assert_eq!(
                charges[0].refunded_amount, charges[0].amount,
                "refunded in full"
            );
        }
    }
    assert_eq!(dispatched, 2);
}

/// Polls until the order is past its payment: dispatched, or cancelled after it.
async fn settled(sys: &System, id: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let o = sys.order("alice", id).await;
        if o["status"] == "DISPATCHED" || o["status"] == "CANCELLED" {
            return o;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "order {id} never settled: {o}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
