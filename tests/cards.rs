//! Card payments end to end: the local stack's sandbox provider behind the payment
//! function, over real HTTP.

use dishpatch_e2e::{card_order_body, System};
use serde_json::{json, Value};

async fn place_card(sys: &System, token: &str, items: Value) -> String {
    sys.place_body("alice", card_order_body(items, token)).await
}

#[tokio::test]
async fn an_approved_card_is_charged_once_and_the_order_is_delivered() {
    let sys = System::start("card-ok").await;
    let psp = sys
        .stack
        .psp
        .as_ref()
        .expect("the local stack runs the sandbox provider")
        .handle();
    let wallet_before = sys.wallet("alice").await;
    let id = place_card(
        &sys,
        "tok_visa",
        json!([{"menuItemId": "m-1", "quantity": 2}]),
    )
    .await;
    let o = sys.wait_for("alice", &id, "DISPATCHED").await;
    let courier = o["courierId"].as_str().unwrap().to_owned();
    let charges = psp.charges_for(&id);
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].amount, 1900);
    assert_eq!(
        sys.wallet("alice").await,
        wallet_before,
        "cards do not touch the wallet"
    );
    let done = sys.complete(&courier, &id).await;
    assert_eq!(done.status, 200, "{}", done.body);
    sys.wait_for("alice", &id, "DELIVERED").await;
}

#[tokio::test]
async fn a_declined_card_cancels_the_order_and_releases_the_stock() {
    let sys = System::start("card-declined").await;
    let psp = sys.stack.psp.as_ref().unwrap().handle();
    let stock_before = sys.available("m-1").await;
    let id = place_card(
        &sys,
        "tok_decline_funds",
        json!([{"menuItemId": "m-1", "quantity": 1}]),
    )
    .await;
    let o = sys.wait_for("alice", &id, "CANCELLED").await;
    assert_eq!(o["cancelReason"], "CARD_DECLINED: insufficient_funds");
    assert_eq!(sys.available("m-1").await, stock_before);
    assert!(psp.charges_for(&id).is_empty());
}

#[tokio::test]
async fn a_charge_whose_answer_was_lost_is_not_taken_twice() {
    let sys = System::start("card-lost").await;
    let psp = sys.stack.psp.as_ref().unwrap().handle();
    // The provider charges, then answers after the client has given up; the retry with
    // the same idempotency key gets the stored answer.
    let id = place_card(
        &sys,
        "tok_charge_then_timeout",
        json!([{"menuItemId": "m-3", "quantity": 1}]),
    )
    .await;
    sys.wait_for("alice", &id, "DISPATCHED").await;
    assert_eq!(psp.charges_for(&id).len(), 1);
}
