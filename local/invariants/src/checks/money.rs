//! Invariant 2: a customer is charged at most once and refunded at most once per
//! order, and only for an order that ends delivered or refunded.

use std::collections::BTreeSet;

use super::ledger::check_ledger;
use crate::state::State;
use crate::{CheckOptions, Invariant, Report};

pub(crate) fn check_money(st: &State, opts: &CheckOptions, r: &mut Report) {
    let q = opts.expect_quiescent;
    for (c, w) in &st.wallets {
        r.customers.entry(c.clone()).or_default().balance = Some(w.balance);
        if w.balance < 0 {
            r.violate(
                Invariant::WalletNonNegative,
                format!("wallet {c}"),
                format!("balance {} {}", w.balance, w.currency),
            );
        }
    }
    for (id, p) in &st.payments {
        let order = st.orders.get(id);
        let customer = if p.customer_id.is_empty() {
            order.map(|o| o.customer_id.clone()).unwrap_or_default()
        } else {
            p.customer_id.clone()
        };
        let m = r.customers.entry(customer).or_default();
        match p.status.as_str() {
            "CAPTURED" => {
                m.captured += p.amount;
                if !p
                    .method
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case("CARD"))
                {
                    m.wallet_captured += p.amount;
                }
            }
            "REFUNDED" => m.refunded += p.amount,
            "DECLINED" => m.declined += 1,
            other => *m.other.entry(other.to_owned()).or_insert(0) += 1,
        }
        let Some(o) = order else {
            r.violate(
                Invariant::RecordHasOrder,
                format!("payment {id}"),
                format!("{} payment for an order that does not exist", p.status),
            );
            continue;
        };
        // Money moved: it must be the order's, from its customer. (A refund tombstone
        // may carry no amount.)
        let moved = p.status == "CAPTURED" || (p.status == "REFUNDED" && p.amount != 0);
        if moved && (p.amount != o.total.amount || p.currency != o.total.currency) {
            r.violate(
                Invariant::PaymentMatchesOrder,
                format!("order {id}"),
                format!(
                    "{} {} {} but the order total is {} {}",
                    p.status, p.amount, p.currency, o.total.amount, o.total.currency
                ),
            );
        }
        if !p.customer_id.is_empty() && p.customer_id != o.customer_id {
            r.violate(
                Invariant::PaymentMatchesOrder,
                format!("order {id}"),
                format!("paid by {} but ordered by {}", p.customer_id, o.customer_id),
            );
        }
        if p.status == "CAPTURED" {
            let status = o.status();
            // Capture follows RESERVED (the command leaves with that write), so a
            // PENDING order never has money taken; at rest a CANCELLED one must not.
            if status == "PENDING" || (q && status == "CANCELLED") {
                r.violate(
                    Invariant::ChargedOnlyIfNotCancelled,
                    format!("order {id}"),
                    format!(
                        "{} {} {} CAPTURED while the order is {status}{}",
                        o.customer_id,
                        p.amount,
                        p.currency,
                        o.saga
                            .cancel_reason
                            .as_deref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default()
                    ),
                );
            }
        }
    }
    check_ledger(st, opts, r);
    check_delivered_not_refunded(st, r);
    if !q {
        return;
    }
    for (id, o) in &st.orders {
        if o.status() == "DELIVERED" && o.payment_method.eq_ignore_ascii_case("WALLET") {
            let p = st.payments.get(id).map(|p| p.status.as_str());
            if p != Some("CAPTURED") {
                r.violate(
                    Invariant::DeliveredCharged,
                    format!("order {id}"),
                    format!("DELIVERED but its payment is {}", p.unwrap_or("missing")),
                );
            }
        }
    }
    if let Some(initial) = &opts.initial_balances {
        for (c, start) in initial {
            let m = r.customers.get(c).cloned().unwrap_or_default();
            let expected = start - m.wallet_captured;
            match m.balance {
                Some(b) if b == expected => {}
                b => r.violate(
                    Invariant::WalletConservation,
                    format!("wallet {c}"),
                    format!(
                        "balance {} but initial {start} − captured from the wallet {} = {expected}",
                        b.map_or("missing".to_owned(), |b| b.to_string()),
                        m.wallet_captured
                    ),
                ),
            }
        }
    }
}

/// Once both hold they hold for good: no need to wait for quiescence.
pub(crate) fn check_delivered_not_refunded(st: &State, r: &mut Report) {
    let delivered: BTreeSet<&String> = st
        .orders
        .iter()
        .filter(|(_, o)| o.status() == "DELIVERED")
        .map(|(id, _)| id)
        .chain(
            st.deliveries
                .iter()
                .filter(|(_, d)| d.status == "DELIVERED")
                .map(|(id, _)| id),
        )
        .collect();
    for id in delivered {
        let payment = st.payments.get(id).map(|p| p.status.as_str());
        let order = st.orders.get(id).map(|o| o.status());
        if payment == Some("REFUNDED") || order == Some("CANCELLED") {
            r.violate(
                Invariant::DeliveredNotRefunded,
                format!("order {id}"),
                format!(
                    "delivered (order {}, delivery {}) but its payment is {}",
                    order.unwrap_or("missing"),
                    st.deliveries
                        .get(id)
                        .map_or("missing", |d| d.status.as_str()),
                    payment.unwrap_or("missing")
                ),
            );
        }
    }
}
