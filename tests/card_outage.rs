//! The card provider goes down for a while: payments wait (the breaker opens and the SQS
//! messages come back later), nothing is cancelled, and once it is back every order is
//! charged exactly once.

use dishpatch_e2e::{card_order_body, System};
use dishpatch_local::testing::{self, unique_prefix};
use dishpatch_local::LocalStackOptions;
use dishpatch_ops::{breaker, Target};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn an_outage_delays_card_orders_and_loses_or_double_charges_none() {
    // The breaker stays open 5 s (30 in production), and failed messages come back after
    // 8 s, as a slow SQS visibility timeout would: a message that failed before the
    // breaker opened comes back while it is open, and its third receive is past the
    // open period, so no message runs out of receives (3) before the provider is back.
    // Orders that find no courier wait 5 s for one.
    let opts = LocalStackOptions::new(unique_prefix("card-outage"))
        .retry_delay(Duration::from_secs(8))
        .function_env("PaymentFunction", "PSP_BREAKER_OPEN_SECONDS", "5")
        .function_env("*", "DISPATCH_DEADLINE_SECONDS", "5");
    let sys = System::start_exactly(opts).await;
    // Metrics have one-second periods, stamped with their start.
    let started = epoch_ms() - 1_000;
    let psp = sys.stack.psp.as_ref().unwrap().handle();
    let mut config = psp.config();
    config.down = true;
    psp.set_config(config).unwrap();

    let mut ids = vec![];
    // Each capture makes 4 attempts (3 retries, within the invocation's deadline): four
    // orders are 16 failed calls in about 14 s, at least 10 of them within the breaker's
    // 10 s window, so it opens.
    for _ in 0..4 {
        let items = json!([{"menuItemId": "m-3", "quantity": 1}]);
        ids.push(
            sys.place_body("alice", card_order_body(items, "tok_visa"))
                .await,
        );
    }
    // The breaker opens: seen in the CloudWatch metrics, as an operator would see it.
    let target = Target::new(
        sys.stack.sdk.clone(),
        sys.stack.stack.template.clone(),
        sys.stack.stack.prefix.as_str(),
    );
    let opened = transition_since(&target, started, "OPEN").await;
    assert!(opened.is_some(), "the breaker opened during the outage");
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
    // Two couriers: two orders are dispatched, the others are refunded for want of one
    // at their dispatch deadline.
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
    // A trial call after the open period found the provider back and closed it.
    let opened = opened.unwrap();
    let closed = transition_since(&target, opened, "CLOSED").await;
    let closed = closed.expect("the breaker closed once the provider was back");
    // Open its 5 s at least (metrics stamp whole seconds), and not the default 30 s.
    let open_ms = closed - opened;
    assert!(
        (4_000..30_000).contains(&open_ms),
        "open {open_ms} ms: PSP_BREAKER_OPEN_SECONDS is 5"
    );
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Polls the payment breaker's metrics for a transition into `state` at or after
/// `since_ms`; its time.
async fn transition_since(target: &Target, since_ms: i64, state: &str) -> Option<i64> {
    testing::eventually(Duration::from_secs(90), || async {
        let history = breaker::history(target, Duration::from_secs(900))
            .await
            .unwrap();
        // The payment function's provider name (`payment::psp::PROVIDER`).
        history
            .get("psp")?
            .iter()
            .find(|s| s.state == state && s.at_ms >= since_ms)
            .map(|s| s.at_ms)
    })
    .await
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

/// A top-up during an outage answers 503 and credits nothing; its settlement is queued,
/// and once the provider is back the payment queue charges and credits it, once, though
/// the customer never retried.
#[tokio::test]
async fn a_top_up_during_an_outage_is_settled_from_the_queue() {
    let opts =
        LocalStackOptions::new(unique_prefix("topup-outage")).retry_delay(Duration::from_secs(2));
    let sys = System::start_exactly(opts).await;
    let psp = sys.stack.psp.as_ref().unwrap().handle();
    let mut config = psp.config();
    config.down = true;
    psp.set_config(config).unwrap();
    let r = sys.top_up("dora", 2500, "tok_visa").await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (503, json!("PAYMENT_PROVIDER_UNAVAILABLE")),
        "{}",
        r.body
    );
    assert_eq!(sys.wallet("dora").await, 0);
    config.down = false;
    psp.set_config(config).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sys.wallet("dora").await != 2500 {
        assert!(
            std::time::Instant::now() < deadline,
            "the queued top-up was never credited"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let top_ups: Vec<_> = psp
        .charges()
        .into_iter()
        .filter(|c| c.reference.starts_with("topup:") && c.amount == 2500)
        .collect();
    assert_eq!(top_ups.len(), 1, "{top_ups:?}");
    let charges = sys.stack.provider_charges().unwrap();
    let report = sys
        .stack
        .checker()
        .check_at_quiescence(
            &dishpatch_local::invariants::CheckOptions::quiescent().provider_charges(charges),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(report.is_clean(), "{report}");
}
