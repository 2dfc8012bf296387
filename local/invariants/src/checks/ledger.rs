//! Invariant 6: the wallet ledger.

use std::collections::BTreeMap;

use crate::state::State;
use crate::views::*;
use crate::{CheckOptions, Invariant, ProviderCharge, Report};

/// Invariant 6: every wallet movement is an entry, the balance is their sum, and money
/// enters only by a provider charge, an ADMIN's recorded reason or a capture's refund.
/// Entries are written in the transaction that moves the money, so these hold in flight.
pub(crate) fn check_ledger(st: &State, opts: &CheckOptions, r: &mut Report) {
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    let mut ids: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for e in &st.ledger {
        *sums.entry(e.customer_id.as_str()).or_default() += e.amount;
        *ids.entry((e.customer_id.as_str(), e.entry_id.as_str()))
            .or_default() += 1;
    }
    for (c, w) in &st.wallets {
        let sum = sums.get(c.as_str()).copied().unwrap_or(0);
        if sum != w.balance {
            r.violate(
                Invariant::WalletMatchesLedger,
                format!("wallet {c}"),
                format!("balance {} but its ledger entries sum to {sum}", w.balance),
            );
        }
    }
    for ((c, id), n) in ids.iter().filter(|(_, n)| **n > 1) {
        r.violate(
            Invariant::LedgerMatchesPayments,
            format!("wallet {c}"),
            format!("entry {id} recorded {n} times"),
        );
    }
    let wallet_paid = |p: &PaymentView| {
        !p.method
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("CARD"))
            && p.amount != 0
    };
    // Each wallet payment's movements, and each movement's payment.
    for (o, p) in st.payments.iter().filter(|(_, p)| wallet_paid(p)) {
        let wants: &[(&str, i64)] = match p.status.as_str() {
            "CAPTURED" => &[("capture", -1)],
            "REFUNDED" => &[("capture", -1), ("refund", 1)],
            _ => &[],
        };
        for (prefix, sign) in wants {
            let id = format!("{prefix}:{o}");
            match st.ledger.iter().find(|e| e.entry_id == id) {
                Some(e) if e.amount == sign * p.amount && e.customer_id == p.customer_id => {}
                Some(e) => r.violate(
                    Invariant::LedgerMatchesPayments,
                    format!("order {o}"),
                    format!(
                        "entry {id} moves {} for {} but the payment is {} {}",
                        e.amount, e.customer_id, p.status, p.amount
                    ),
                ),
                None => r.violate(
                    Invariant::LedgerMatchesPayments,
                    format!("order {o}"),
                    format!(
                        "{} wallet payment of {} without its entry {id}",
                        p.status, p.amount
                    ),
                ),
            }
        }
    }
    let charges: Option<BTreeMap<&str, &ProviderCharge>> = opts
        .provider_charges
        .as_ref()
        .map(|cs| cs.iter().map(|c| (c.charge_id.as_str(), c)).collect());
    let mut charge_uses: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &st.ledger {
        let subject = format!("wallet {}", e.customer_id);
        match e.kind.as_str() {
            "CAPTURE" | "REFUND" => {
                let paid = e.order_id.as_deref().and_then(|o| st.payments.get(o));
                let ok = paid.is_some_and(|p| match e.kind.as_str() {
                    "CAPTURE" => {
                        matches!(p.status.as_str(), "CAPTURED" | "REFUNDED")
                            && -e.amount == p.amount
                    }
                    _ => p.status == "REFUNDED" && e.amount == p.amount,
                });
                if !ok {
                    r.violate(
                        Invariant::LedgerMatchesPayments,
                        subject,
                        format!(
                            "{} entry {} of {} without a matching wallet payment",
                            e.kind, e.entry_id, e.amount
                        ),
                    );
                }
            }
            "TOP_UP" => {
                let top_up = e.top_up_id.as_deref().and_then(|t| st.top_ups.get(t));
                let charge = e.charge_id.as_deref().unwrap_or("");
                *charge_uses.entry(charge).or_default() += 1;
                let recorded = top_up.is_some_and(|t| {
                    t.status == "CREDITED"
                        && t.amount == e.amount
                        && t.customer_id == e.customer_id
                        && t.charge_id.as_deref() == Some(charge)
                });
                let at_provider = match (&charges, top_up) {
                    (None, _) => true,
                    (Some(cs), Some(t)) => cs.get(charge).is_some_and(|c| {
                        c.reference == format!("topup:{}", t.top_up_id)
                            && c.amount == e.amount
                            && c.refunded_amount == 0
                    }),
                    (Some(_), None) => false,
                };
                if e.amount <= 0 || charge.is_empty() || !recorded || !at_provider {
                    r.violate(
                        Invariant::MoneyEntersOnlyByChargeOrReason,
                        subject,
                        format!("top-up entry {} of {} (charge {charge:?}) matches no credited top-up{}", e.entry_id, e.amount,
                            if at_provider { "" } else { " or no provider charge" }),
                    );
                }
            }
            "ADMIN_CREDIT" => {
                if e.amount <= 0 || e.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    r.violate(
                        Invariant::MoneyEntersOnlyByChargeOrReason,
                        subject,
                        format!(
                            "admin credit {} of {} without a reason",
                            e.entry_id, e.amount
                        ),
                    );
                }
            }
            other => r.violate(
                Invariant::MoneyEntersOnlyByChargeOrReason,
                subject,
                format!("entry {} of an unknown kind {other:?}", e.entry_id),
            ),
        }
    }
    for (charge, n) in charge_uses.iter().filter(|(_, n)| **n > 1) {
        r.violate(
            Invariant::MoneyEntersOnlyByChargeOrReason,
            format!("charge {charge}"),
            format!("credited {n} times"),
        );
    }
    if opts.expect_quiescent {
        for t in st.top_ups.values().filter(|t| t.status == "PENDING") {
            r.violate(
                Invariant::TopUpSettled,
                format!("top-up {}", t.top_up_id),
                format!("{} of {} still PENDING at rest", t.amount, t.customer_id),
            );
        }
    }
    for t in st.top_ups.values().filter(|t| t.status == "CREDITED") {
        let entries = st
            .ledger
            .iter()
            .filter(|e| e.top_up_id.as_deref() == Some(t.top_up_id.as_str()))
            .count();
        if entries != 1 {
            r.violate(
                Invariant::MoneyEntersOnlyByChargeOrReason,
                format!("top-up {}", t.top_up_id),
                format!("CREDITED with {entries} ledger entries"),
            );
        }
    }
}
