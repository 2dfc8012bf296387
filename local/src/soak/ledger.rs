//! The card side of invariant 2, which the tables cannot show: the sandbox provider's
//! own ledger. Each order is charged at most once and refunded at most once; a
//! DELIVERED card order keeps exactly one charge; a CANCELLED one keeps no money.
//! (Wallet money is the [`crate::invariants`] checker's: one payment record per order
//! and `balance == initial − captured`.)

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use dishpatch_psp_sandbox::Charge;

use crate::{Error, LocalStack, Result};

/// An order as the orders table holds it at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderRow {
    pub status: String,
    pub payment_method: String,
    /// The saga's cancel reason, up to its first `:` (`CARD_DECLINED`, `NO_COURIER`...).
    pub reason: Option<String>,
}

/// A broken card-money rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LedgerViolation {
    /// Stable name, e.g. `psp.charged-at-most-once`.
    pub check: &'static str,
    pub subject: String,
    pub detail: String,
}

impl fmt::Display for LedgerViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} (inv. 2)] {}: {}",
            self.check, self.subject, self.detail
        )
    }
}

/// Every order's status, payment method and cancel reason (order id -> row).
pub async fn scan_orders(local: &LocalStack) -> Result<BTreeMap<String, OrderRow>> {
    let db = aws_sdk_dynamodb::Client::new(&local.sdk);
    let table = local.stack.table_name("OrdersTable").to_owned();
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = db
            .scan()
            .table_name(&table)
            .consistent_read(true)
            .projection_expression("pk, sk, #s, paymentMethod, saga")
            .expression_attribute_names("#s", "status")
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| Error::aws(format!("scan {table}"), e))?;
        for item in page.items.unwrap_or_default() {
            let s = |k: &str| match item.get(k) {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            let (Some(id), "ORDER") = (
                s("pk").strip_prefix("ORDER#").map(str::to_owned),
                s("sk").as_str(),
            ) else {
                continue;
            };
            let reason = match item.get("saga") {
                Some(AttributeValue::M(m)) => match m.get("cancelReason") {
                    Some(AttributeValue::S(r)) => {
                        Some(r.split(':').next().unwrap_or_default().trim().to_owned())
                    }
                    _ => None,
                },
                _ => None,
            };
            out.insert(
                id,
                OrderRow {
                    status: s("status"),
                    payment_method: s("paymentMethod"),
                    reason,
                },
            );
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

/// Checks the provider's charges against the orders' final states.
pub fn check(charges: &[Charge], orders: &BTreeMap<String, OrderRow>) -> Vec<LedgerViolation> {
    let mut out = Vec::new();
    let mut v = |check: &'static str, subject: String, detail: String| {
        out.push(LedgerViolation {
            check,
            subject,
            detail,
        })
    };
    let mut by_order: BTreeMap<&str, Vec<&Charge>> = BTreeMap::new();
    for c in charges {
        by_order.entry(c.reference.as_str()).or_default().push(c);
        if c.refunds.len() > 1 || c.refunded_amount > c.amount {
            v(
                "psp.refunded-at-most-once",
                format!("charge {} (order {})", c.charge_id, c.reference),
                format!(
                    "{} refunds totalling {} of a {} charge",
                    c.refunds.len(),
                    c.refunded_amount,
                    c.amount
                ),
            );
        }
    }
    for (order, cs) in &by_order {
        let subject = format!("order {order}");
        if cs.len() > 1 {
            v(
                "psp.charged-at-most-once",
                subject.clone(),
                format!(
                    "{} charges: {}",
                    cs.len(),
                    cs.iter()
                        .map(|c| format!("{} ({})", c.charge_id, c.idempotency_key))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let kept: i64 = cs.iter().map(|c| c.amount - c.refunded_amount).sum();
        match orders.get(*order).map(|o| o.status.as_str()) {
            None => v(
                "psp.charge-has-order",
                subject,
                "charged for an order that does not exist".into(),
            ),
            Some("CANCELLED") if kept != 0 => v(
                "psp.cancelled-not-charged",
                subject,
                format!("CANCELLED but {kept} is still charged"),
            ),
            _ => {}
        }
    }
    for (id, o) in orders {
        if o.status != "DELIVERED" || !o.payment_method.eq_ignore_ascii_case("CARD") {
            continue;
        }
        let cs = by_order.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let kept: i64 = cs.iter().map(|c| c.amount - c.refunded_amount).sum();
        if cs.len() != 1 || kept != cs[0].amount {
            v(
                "psp.delivered-charged",
                format!("order {id}"),
                format!("DELIVERED with {} charge(s) keeping {kept}", cs.len()),
            );
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(id: &str, order: &str, amount: i64, refunded: i64, refunds: usize) -> Charge {
        let refund = |i: usize| dishpatch_psp_sandbox::Refund {
            refund_id: format!("re-{id}-{i}"),
            status: "REFUNDED".into(),
            charge_id: id.into(),
            amount: refunded / refunds.max(1) as i64,
            idempotency_key: format!("{order}:refund"),
            created_at: String::new(),
        };
        Charge {
            charge_id: id.into(),
            status: "CAPTURED".into(),
            amount,
            currency: "EUR".into(),
            card_token: "tok_visa".into(),
            reference: order.into(),
            idempotency_key: format!("{order}:capture"),
            created_at: String::new(),
            refunded_amount: refunded,
            refunds: (0..refunds).map(refund).collect(),
        }
    }

    fn row(status: &str) -> OrderRow {
        OrderRow {
            status: status.into(),
            payment_method: "CARD".into(),
            reason: None,
        }
    }

    #[test]
    fn a_clean_ledger_passes_and_each_break_is_named() {
        let orders: BTreeMap<String, OrderRow> = [
            ("o-1", row("DELIVERED")),
            ("o-2", row("CANCELLED")),
            ("o-3", row("CANCELLED")),
            ("o-4", row("COMPENSATION_FAILED")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let clean = [
            charge("ch1", "o-1", 500, 0, 0),
            charge("ch2", "o-2", 300, 300, 1),
            charge("ch4", "o-4", 300, 0, 0),
        ];
        assert_eq!(check(&clean, &orders), vec![]);

        let broken = [
            charge("ch1", "o-1", 500, 0, 0),
            charge("ch1b", "o-1", 500, 0, 0),
            charge("ch2", "o-2", 300, 600, 2),
            charge("ch3", "o-3", 300, 0, 0),
            charge("ch9", "o-9", 100, 0, 0),
        ];
        let names: Vec<(&str, String)> = check(&broken, &orders)
            .into_iter()
            .map(|v| (v.check, v.subject))
            .collect();
        for want in [
            ("psp.charged-at-most-once", "order o-1"),
            ("psp.delivered-charged", "order o-1"),
            ("psp.refunded-at-most-once", "charge ch2 (order o-2)"),
            ("psp.cancelled-not-charged", "order o-2"),
            ("psp.cancelled-not-charged", "order o-3"),
            ("psp.charge-has-order", "order o-9"),
        ] {
            assert!(
                names.contains(&(want.0, want.1.to_owned())),
                "{want:?} missing from {names:?}"
            );
        }
        // A delivered card order with no charge at all is reported too.
        let none = check(&[], &orders);
        assert_eq!(none.len(), 1, "{none:?}");
        assert_eq!(none[0].check, "psp.delivered-charged");
    }
}
