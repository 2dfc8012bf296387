//! What a check found: violations, the counts it read, and the summary it prints.

use std::collections::BTreeMap;
use std::fmt;

use crate::views::is_terminal;
use crate::Invariant;

/// One broken invariant: what, about which record (e.g. `r-1/m-1`, `order o-123`,
/// `courier courier-1`, `wallet alice`), and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub invariant: Invariant,
    pub subject: String,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} (inv. {})] {}: {}",
            self.invariant,
            self.invariant.design(),
            self.subject,
            self.detail
        )
    }
}

/// A menu item's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stock {
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    pub stocked: i64,
}

/// A customer's money as the payments table shows it (minor units).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerMoney {
    /// The wallet balance; `None` without a wallet.
    pub balance: Option<i64>,
    /// Sum of CAPTURED payments: charged and not refunded.
    pub captured: i64,
    /// The part of `captured` taken from the wallet (card payments never touch it).
    pub wallet_captured: i64,
    /// Sum of REFUNDED payments.
    pub refunded: i64,
    /// Number of DECLINED payments.
    pub declined: usize,
    /// Payments in any other status (e.g. tombstones), by status.
    pub other: BTreeMap<String, usize>,
}

/// A courier as the delivery table shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CourierState {
    pub status: String,
    pub active_order_id: Option<String>,
    /// Orders of the DISPATCHED deliveries naming it.
    pub dispatched: Vec<String>,
}

/// What the records of an order say (`None`: no record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderRecords {
    pub reservation: Option<String>,
    pub payment: Option<String>,
    pub delivery: Option<String>,
}

impl fmt::Display for OrderRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_owned());
        write!(
            f,
            "reservation {}, payment {}, delivery {}",
            s(&self.reservation),
            s(&self.payment),
            s(&self.delivery)
        )
    }
}

/// How many items of each kind were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    pub orders: usize,
    pub menu_items: usize,
    pub reservations: usize,
    pub wallets: usize,
    pub payments: usize,
    pub couriers: usize,
    pub deliveries: usize,
    /// Items of kinds the checker does not know (left alone).
    pub other: usize,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Order count per status (`DELIVERED`, `CANCELLED`, ...).
    pub orders_by_status: BTreeMap<String, usize>,
    /// Every broken invariant, sorted.
    pub violations: Vec<Violation>,
    /// Whether the quiescent-only checks ran.
    pub quiescent: bool,
    /// Stock per `restaurantId/menuItemId`.
    pub stock: BTreeMap<String, Stock>,
    /// Money per customer.
    pub customers: BTreeMap<String, CustomerMoney>,
    /// Couriers by id.
    pub couriers: BTreeMap<String, CourierState>,
    /// COMPENSATION_FAILED orders.
    pub compensation_failed: Vec<String>,
    /// What is left behind by each COMPENSATION_FAILED order: the state of its
    /// reservation, payment and delivery, for whoever handles the alert (an undo may
    /// still have landed after the saga gave up).
    pub left_behind: BTreeMap<String, OrderRecords>,
    /// COMPENSATION_FAILED orders whose alert could not be verified (no alert list).
    pub unverified_alerts: Vec<String>,
    /// Messages waiting in each dead-letter queue (logical id -> order ids, `?` when a
    /// message names none). Only filled by a [`Checker`].
    pub dead_letters: BTreeMap<String, Vec<String>>,
    pub scanned: Scanned,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violations of one invariant.
    pub fn of(&self, invariant: Invariant) -> Vec<&Violation> {
        self.violations
            .iter()
            .filter(|v| v.invariant == invariant)
            .collect()
    }

    /// Whether `invariant` is broken for `subject` (exact match).
    pub fn has(&self, invariant: Invariant, subject: &str) -> bool {
        self.violations
            .iter()
            .any(|v| v.invariant == invariant && v.subject == subject)
    }

    /// Orders not in a terminal state.
    pub fn in_flight(&self) -> usize {
        self.orders_by_status
            .iter()
            .filter(|(s, _)| !is_terminal(s))
            .map(|(_, n)| n)
            .sum()
    }

    pub(crate) fn violate(
        &mut self,
        invariant: Invariant,
        subject: impl Into<String>,
        detail: String,
    ) {
        self.violations.push(Violation {
            invariant,
            subject: subject.into(),
            detail,
        });
    }
}

/// A summary table: orders, stock, wallets, couriers, dead letters, violations.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: usize = self.orders_by_status.values().sum();
        let by: Vec<String> = self
            .orders_by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        writeln!(
            f,
            "orders: {total}{}{}",
            if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            },
            if self.quiescent {
                "   [checked at quiescence]"
            } else {
                "   [checked in flight]"
            }
        )?;
        if !self.stock.is_empty() {
            writeln!(
                f,
                "{:<24} {:>10} {:>10} {:>10} {:>10}",
                "stock", "available", "reserved", "sold", "stocked"
            )?;
            for (k, s) in &self.stock {
                writeln!(
                    f,
                    "  {:<22} {:>10} {:>10} {:>10} {:>10}",
                    k, s.available, s.reserved, s.sold, s.stocked
                )?;
            }
        }
        if !self.customers.is_empty() {
            writeln!(
                f,
                "{:<24} {:>10} {:>10} {:>10} {:>10}",
                "wallets", "balance", "captured", "refunded", "declined"
            )?;
            for (c, m) in &self.customers {
                let balance = m.balance.map_or("-".to_owned(), |b| b.to_string());
                writeln!(
                    f,
                    "  {:<22} {:>10} {:>10} {:>10} {:>10}{}",
                    c,
                    balance,
                    m.captured,
                    m.refunded,
                    m.declined,
                    if m.other.is_empty() {
                        String::new()
                    } else {
                        format!("   other: {:?}", m.other)
                    }
                )?;
            }
        }
        if !self.couriers.is_empty() {
            writeln!(
                f,
                "{:<24} {:<10} {:<38} dispatched",
                "couriers", "status", "activeOrderId"
            )?;
            for (c, s) in &self.couriers {
                writeln!(
                    f,
                    "  {:<22} {:<10} {:<38} {}",
                    c,
                    s.status,
                    s.active_order_id.as_deref().unwrap_or("-"),
                    s.dispatched.join(",")
                )?;
            }
        }
        for (q, ids) in &self.dead_letters {
            if !ids.is_empty() {
                writeln!(f, "dead letters in {q}: {}", ids.join(", "))?;
            }
        }
        for (id, left) in &self.left_behind {
            writeln!(f, "COMPENSATION_FAILED {id}: {left}")?;
        }
        if !self.unverified_alerts.is_empty() {
            writeln!(
                f,
                "COMPENSATION_FAILED without an alert list to verify: {}",
                self.unverified_alerts.join(", ")
            )?;
        }
        writeln!(f, "violations: {}", self.violations.len())?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}
