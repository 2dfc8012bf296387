//! The checks on hand-made states: clean when consistent, each break named.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::*;
use crate::state::State;
use crate::{Item, ProviderCharge};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn item(v: Value) -> Item {
    serde_dynamo::to_item(v).unwrap()
}

fn order(id: &str, status: &str, qty: i64) -> Item {
    item(serde_json::json!({
        "pk": format!("ORDER#{id}"), "sk": "ORDER", "status": status,
        "orderId": id, "customerId": "alice", "restaurantId": "r-1",
        "items": [{"menuItemId": "m-1", "quantity": qty, "name": "x",
                   "unitPrice": {"amount": 100, "currency": "EUR"}}],
        "total": {"amount": 100 * qty, "currency": "EUR"}, "paymentMethod": "WALLET",
        "saga": {"status": status}, "version": 3, "extra": {"ignored": true},
    }))
}

fn base() -> State {
    let mut st = State::default();
    st.add_inventory(item(serde_json::json!({
        "pk": "RESTAURANT#r-1", "sk": "ITEM#m-1", "available": 7, "reserved": 0,
        "sold": 3, "stocked": 10, "price": {"amount": 100, "currency": "EUR"},
    })));
    st.add_inventory(item(serde_json::json!({
        "pk": "RESERVATION#o-1", "sk": "RESERVATION", "orderId": "o-1",
        "restaurantId": "r-1", "items": [{"menuItemId": "m-1", "quantity": 3}],
        "status": "SOLD",
    })));
    st.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "WALLET", "balance": 700, "currency": "EUR",
    })));
    st.add_payments(item(serde_json::json!({
        "pk": "PAYMENT#o-1", "sk": "PAYMENT", "customerId": "alice", "amount": 300,
        "currency": "EUR", "status": "CAPTURED", "method": "WALLET",
    })));
    st.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "TX#2026-01-01T00:00:00.000Z#credit:open",
        "entryId": "credit:open", "kind": "ADMIN_CREDIT", "amount": 1000,
        "currency": "EUR", "reason": "opening balance", "actor": "seed",
    })));
    st.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "TX#2026-01-02T00:00:00.000Z#capture:o-1",
        "entryId": "capture:o-1", "kind": "CAPTURE", "amount": -300,
        "currency": "EUR", "orderId": "o-1",
    })));
    st.add_delivery(item(serde_json::json!({
        "pk": "COURIER#c-1", "sk": "COURIER", "status": "AVAILABLE",
        "gsi1pk": "COURIER#AVAILABLE", "gsi1sk": "c-1",
    })));
    st.add_delivery(item(serde_json::json!({
        "pk": "DELIVERY#o-1", "sk": "DELIVERY", "courierId": "c-1", "status": "DELIVERED",
    })));
    st.add_order(order("o-1", "DELIVERED", 3));
    st
}

#[test]
fn a_consistent_state_is_clean() {
    let r = evaluate(
        base(),
        &CheckOptions::quiescent().initial_balances([("alice", 1000)]),
    );
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.orders_by_status["DELIVERED"], 1);
    assert_eq!(r.customers["alice"].captured, 300);
    assert_eq!(r.stock["r-1/m-1"].sold, 3);
}

/// A paid top-up of 500 by alice: its record, its entry, the wallet's new balance.
fn with_top_up(mut st: State, charge: &str) -> State {
    st.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "TOPUP#t-1", "topUpId": "t-1", "amount": 500,
        "currency": "EUR", "status": "CREDITED", "chargeId": charge,
    })));
    st.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "TX#2026-01-03T00:00:00.000Z#topup:t-1",
        "entryId": "topup:t-1", "kind": "TOP_UP", "amount": 500, "currency": "EUR",
        "topUpId": "t-1", "chargeId": charge,
    })));
    st.wallets.get_mut("alice").unwrap().balance += 500;
    st
}

fn charge(id: &str, reference: &str, amount: i64) -> ProviderCharge {
    ProviderCharge {
        charge_id: id.into(),
        reference: reference.into(),
        amount,
        refunded_amount: 0,
    }
}

#[test]
fn money_enters_a_wallet_only_by_a_charge_or_a_reason() {
    let st = with_top_up(base(), "ch_1");
    let known = CheckOptions::default().provider_charges(vec![charge("ch_1", "topup:t-1", 500)]);
    let r = evaluate(st.clone(), &known);
    assert!(r.is_clean(), "{r}");
    // The provider never took that money.
    for charges in [
        vec![],
        vec![charge("ch_1", "topup:t-9", 500)],
        vec![charge("ch_1", "topup:t-1", 50)],
    ] {
        let r = evaluate(
            st.clone(),
            &CheckOptions::default().provider_charges(charges),
        );
        assert!(
            r.has(Invariant::MoneyEntersOnlyByChargeOrReason, "wallet alice"),
            "{r}"
        );
    }
    // A balance the entries do not explain.
    let mut printed = st.clone();
    printed.wallets.get_mut("alice").unwrap().balance += 1_000_000;
    let r = evaluate(printed, &CheckOptions::default());
    assert!(r.has(Invariant::WalletMatchesLedger, "wallet alice"), "{r}");
    // An entry with no top-up behind it, or a credit without a reason.
    let mut forged = base();
    forged.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "TX#2026-01-04T00:00:00.000Z#topup:t-2",
        "entryId": "topup:t-2", "kind": "TOP_UP", "amount": 100, "topUpId": "t-2", "chargeId": "ch_9",
    })));
    forged.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "TX#2026-01-04T00:00:00.000Z#credit:x",
        "entryId": "credit:x", "kind": "ADMIN_CREDIT", "amount": 100, "reason": " ",
    })));
    forged.wallets.get_mut("alice").unwrap().balance += 200;
    let r = evaluate(forged, &CheckOptions::default());
    assert_eq!(
        r.of(Invariant::MoneyEntersOnlyByChargeOrReason).len(),
        2,
        "{r}"
    );
    assert!(
        !r.has(Invariant::WalletMatchesLedger, "wallet alice"),
        "{r}"
    );
    // One charge credited twice.
    let mut twice = with_top_up(base(), "ch_1");
    twice.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "TOPUP#t-2", "topUpId": "t-2", "amount": 500,
        "currency": "EUR", "status": "CREDITED", "chargeId": "ch_1",
    })));
    twice.add_payments(item(serde_json::json!({
        "pk": "WALLET#alice", "sk": "TX#2026-01-05T00:00:00.000Z#topup:t-2",
        "entryId": "topup:t-2", "kind": "TOP_UP", "amount": 500, "topUpId": "t-2", "chargeId": "ch_1",
    })));
    twice.wallets.get_mut("alice").unwrap().balance += 500;
    let r = evaluate(twice, &CheckOptions::default());
    assert!(
        r.has(Invariant::MoneyEntersOnlyByChargeOrReason, "charge ch_1"),
        "{r}"
    );
}

#[test]
fn a_wallet_payment_without_its_entry_is_named() {
    let mut st = base();
    st.ledger.retain(|e| e.kind != "CAPTURE");
    st.wallets.get_mut("alice").unwrap().balance = 1000;
    let r = evaluate(st, &CheckOptions::default());
    assert!(r.has(Invariant::LedgerMatchesPayments, "order o-1"), "{r}");
}

#[test]
fn card_payments_leave_the_wallet_alone() {
    let mut st = base();
    st.add_order(order("o-2", "DELIVERED", 1));
    st.add_inventory(item(serde_json::json!({
        "pk": "RESERVATION#o-2", "sk": "RESERVATION", "orderId": "o-2",
        "restaurantId": "r-1", "items": [{"menuItemId": "m-1", "quantity": 1}],
        "status": "SOLD",
    })));
    st.add_payments(item(serde_json::json!({
        "pk": "PAYMENT#o-2", "sk": "PAYMENT", "customerId": "alice", "amount": 100,
        "currency": "EUR", "status": "CAPTURED", "method": "CARD",
    })));
    let opts = CheckOptions::quiescent().initial_balances([("alice", 1000)]);
    let r = evaluate(st.clone(), &opts);
    assert!(!r.has(Invariant::WalletConservation, "wallet alice"), "{r}");
    assert_eq!(r.customers["alice"].captured, 400);
    assert_eq!(r.customers["alice"].wallet_captured, 300);
    // The same payment from the wallet would be 100 missing from it.
    st.payments.get_mut("o-2").unwrap().method = Some("WALLET".into());
    let r = evaluate(st, &opts);
    assert!(r.has(Invariant::WalletConservation, "wallet alice"), "{r}");
}

#[test]
fn a_delivered_order_that_was_refunded_is_a_violation() {
    let mut st = base();
    // The courier completed while the order was being cancelled, and it was refunded.
    st.add_order(order("o-2", "CANCELLED", 1));
    st.add_delivery(item(serde_json::json!({
        "pk": "DELIVERY#o-2", "sk": "DELIVERY", "courierId": "c-1", "status": "DELIVERED",
    })));
    st.add_payments(item(serde_json::json!({
        "pk": "PAYMENT#o-2", "sk": "PAYMENT", "customerId": "alice", "amount": 100,
        "currency": "EUR", "status": "REFUNDED", "method": "WALLET",
    })));
    let r = evaluate(st, &CheckOptions::default());
    assert!(r.has(Invariant::DeliveredNotRefunded, "order o-2"), "{r}");
    assert_eq!(r.of(Invariant::DeliveredNotRefunded).len(), 1, "{r}");
    assert_eq!(
        Invariant::DeliveredNotRefunded.name(),
        "money.delivered-not-refunded"
    );
}

#[test]
fn broken_states_are_named() {
    let mut st = base();
    st.items
        .get_mut(&("r-1".into(), "m-1".into()))
        .unwrap()
        .available = 8;
    st.add_delivery(item(serde_json::json!({
        "pk": "COURIER#c-2", "sk": "COURIER", "status": "BUSY", "activeOrderId": "o-9",
    })));
    st.add_order(order("o-2", "PAID", 1));
    st.add_order(order("o-3", "CANCELLED", 1));
    st.add_payments(item(serde_json::json!({
        "pk": "PAYMENT#o-3", "sk": "PAYMENT", "customerId": "alice", "amount": 100,
        "currency": "EUR", "status": "CAPTURED",
    })));
    st.add_payments(item(serde_json::json!({
        "pk": "PAYMENT#o-404", "sk": "PAYMENT", "amount": 1, "status": "DECLINED",
    })));
    st.add_order(order("o-4", "COMPENSATION_FAILED", 1));
    let mut bad = Item::new();
    bad.insert("pk".into(), s("ORDER#o-5"));
    bad.insert("sk".into(), s("ORDER"));
    bad.insert("items".into(), s("not a list"));
    st.add_order(bad);

    let in_flight = evaluate(st.clone(), &CheckOptions::default());
    assert!(
        in_flight.has(Invariant::StockConservation, "r-1/m-1"),
        "{in_flight}"
    );
    assert!(in_flight.has(Invariant::RecordHasOrder, "payment o-404"));
    assert!(in_flight.has(Invariant::RecordReadable, "orders ORDER#o-5/ORDER"));
    assert!(!in_flight.has(Invariant::OrderTerminal, "order o-2"));
    assert!(!in_flight.has(Invariant::ChargedOnlyIfNotCancelled, "order o-3"));
    assert_eq!(in_flight.unverified_alerts, ["o-4"]);

    let r = evaluate(
        st,
        &CheckOptions::quiescent()
            .alerted_orders([])
            .initial_balances([("alice", 1000)]),
    );
    for (inv, subject) in [
        (Invariant::StockConservation, "r-1/m-1"),
        (Invariant::CourierBusyMatchesDelivery, "courier c-2"),
        (Invariant::OrderTerminal, "order o-2"),
        (Invariant::ChargedOnlyIfNotCancelled, "order o-3"),
        (Invariant::CompensationFailedAlerted, "order o-4"),
        (Invariant::WalletConservation, "wallet alice"),
    ] {
        assert!(r.has(inv, subject), "{inv} {subject} missing from\n{r}");
    }
    assert!(r.to_string().contains("courier.busy-matches-delivery"));
}

#[test]
fn shifts_and_waiting_deliveries_are_understood() {
    let mut st = base();
    st.add_delivery(item(serde_json::json!({
        "pk": "COURIER#c-3", "sk": "COURIER", "status": "OFF_SHIFT",
    })));
    st.add_order(order("o-6", "PAID", 1));
    st.add_delivery(item(serde_json::json!({
        "pk": "DELIVERY#o-6", "sk": "DELIVERY", "orderId": "o-6", "status": "WAITING",
        "gsi1pk": "DELIVERY#WAITING", "gsi1sk": "2026-01-01T00:00:00.000Z#o-6",
    })));
    let r = evaluate(st.clone(), &CheckOptions::default());
    assert!(r.is_clean(), "{r}");

    st.add_delivery(item(serde_json::json!({
        "pk": "COURIER#c-4", "sk": "COURIER", "status": "OFF_SHIFT",
        "gsi1pk": "COURIER#AVAILABLE", "gsi1sk": "c-4",
    })));
    st.add_order(order("o-7", "CANCELLED", 1));
    st.add_delivery(item(serde_json::json!({
        "pk": "DELIVERY#o-7", "sk": "DELIVERY", "orderId": "o-7", "status": "WAITING",
        "gsi1pk": "DELIVERY#WAITING", "gsi1sk": "2026-01-01T00:00:00.000Z#o-7",
    })));
    st.add_delivery(item(serde_json::json!({
        "pk": "DELIVERY#o-8", "sk": "DELIVERY", "orderId": "o-8", "status": "CANCELLED",
        "gsi1pk": "DELIVERY#WAITING", "gsi1sk": "2026-01-01T00:00:00.000Z#o-8",
    })));
    st.add_order(order("o-8", "CANCELLED", 1));
    let r = evaluate(st, &CheckOptions::quiescent());
    for (inv, subject) in [
        (Invariant::CourierStateConsistent, "courier c-4"),
        (Invariant::CancelledCourierReleased, "order o-7"),
        (Invariant::CourierStateConsistent, "delivery o-8"),
    ] {
        assert!(r.has(inv, subject), "{inv} {subject} missing from\n{r}");
    }
}

/// Stock is sold at reservation (SOLD, in `sold`); a reservation written RESERVED before
/// (in `reserved`) is still understood. Each way stock can go wrong is named.
#[test]
fn sold_at_reservation_and_held_before_are_understood_and_their_violations_named() {
    let with = |available, reserved, sold| {
        let mut st = base();
        let reservation = |order: &str, status: &str| {
            item(serde_json::json!({
                "pk": format!("RESERVATION#{order}"), "sk": "RESERVATION", "orderId": order,
                "restaurantId": "r-1", "items": [{"menuItemId": "m-1", "quantity": 1}],
                "status": status,
            }))
        };
        // Sold at reservation, on its way; held as before, on its way; a cancelled order
        // whose stock was never given back; a delivered order whose held stock was never
        // sold.
        for (order, status, res) in [
            ("o-7", "PAID", "SOLD"),
            ("o-8", "PAID", "RESERVED"),
            ("o-9", "CANCELLED", "SOLD"),
            ("o-10", "DELIVERED", "RESERVED"),
        ] {
            st.add_order(order_of(order, status));
            st.add_inventory(reservation(order, res));
        }
        let i = st.items.get_mut(&("r-1".into(), "m-1".into())).unwrap();
        (i.available, i.reserved, i.sold) = (available, reserved, sold);
        evaluate(st, &CheckOptions::quiescent())
    };
    fn order_of(id: &str, status: &str) -> Item {
        order(id, status, 1)
    }
    // The counters hold what the reservations say: 5 sold (o-1's 3, o-7, o-9), 2 held.
    let r = with(3, 2, 5);
    for (inv, subject) in [
        (Invariant::CancelledStockReleased, "order o-9"),
        (Invariant::DeliveredStockSold, "order o-10"),
    ] {
        assert!(r.has(inv, subject), "{inv} {subject} missing from\n{r}");
    }
    for (inv, subject) in [
        (Invariant::CancelledStockReleased, "order o-7"),
        (Invariant::DeliveredStockSold, "order o-7"),
        (Invariant::CancelledStockReleased, "order o-8"),
        (Invariant::StockConservation, "r-1/m-1"),
        (Invariant::StockSoldMatchesReservations, "r-1/m-1"),
        (Invariant::StockReservedMatchesReservations, "r-1/m-1"),
    ] {
        assert!(!r.has(inv, subject), "{inv} {subject} in\n{r}");
    }
    // A sale the counters lost, a hold they lost: named, conserved or not.
    let r = with(4, 2, 4);
    assert!(
        r.has(Invariant::StockSoldMatchesReservations, "r-1/m-1"),
        "{r}"
    );
    let r = with(4, 1, 5);
    assert!(
        r.has(Invariant::StockReservedMatchesReservations, "r-1/m-1"),
        "{r}"
    );
}
