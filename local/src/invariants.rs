//! The invariant checker: scans a stack's tables and reports every state that breaks
//! one of the invariants (1–8) of `docs/architecture.md`, as far as stored state can show them.
//!
//! ```no_run
//! # async fn t(local: &dishpatch_local::LocalStack) -> dishpatch_local::Result<()> {
//! use dishpatch_local::invariants::CheckOptions;
//! // Or Checker::for_stack / Checker::for_prefix / the table-only `check`.
//! let checker = local.checker();
//! // Mid-flight: only what holds at every instant.
//! let report = checker.check(&CheckOptions::default()).await?;
//! // After the traffic stopped: wait until nothing moves, then check everything.
//! let report = checker
//!     .check_at_quiescence(&CheckOptions::quiescent(), std::time::Duration::from_secs(30))
//!     .await?;
//! assert!(report.is_clean(), "{report}");
//! # Ok(()) }
//! ```
//!
//! It reads every item with a paginated, strongly consistent `Scan` into small local
//! structs (`#[serde(default)]`, so extra attributes and new record kinds are tolerated)
//! and never writes anything. Items it cannot read are reported (`records.readable`).
//! "At most one reservation, payment and delivery per order" needs no check: the keys
//! (`PAYMENT#{orderId}`, ...) make a second one impossible; what is checked is that the
//! one record moved the right amount and is in a state its order allows.
//!
//! **Two kinds of check.** A `Scan` is not a snapshot and the saga moves one record after
//! another, so a check that compares two records can only be trusted when nothing moves:
//!
//! * *always*: what one item shows on its own — stock counters conserved and never
//!   negative, wallets never negative, a courier's status agrees with its own
//!   `activeOrderId`/`gsi1pk` — and comparisons with facts that never change once
//!   written: a payment's amount and customer against its order, a reservation's lines
//!   against its order's lines, every record belongs to an existing order (orders are
//!   scanned last, and never deleted), no order is still PENDING with a captured payment;
//! * *at quiescence* ([`CheckOptions::expect_quiescent`]): additionally every order is
//!   terminal, the reservation lines add up to each item's `reserved` and `sold`
//!   counters, a CANCELLED order holds no stock, no captured money and no courier, a
//!   DELIVERED order has a SOLD reservation, a captured wallet payment and a DELIVERED
//!   delivery, a BUSY courier has exactly the one DISPATCHED delivery its
//!   `activeOrderId` names (and no courier has two), wallets equal their initial
//!   balance minus what is captured (when [`CheckOptions::initial_balances`] is given),
//!   every COMPENSATION_FAILED order was alerted, and — with a [`Checker`], which also
//!   knows the queues — no message sits in a DLQ except for a COMPENSATION_FAILED order
//!   (the DLQs are read and their messages made visible again: see [`peek`]).
//!
//! **Ops alerts.** The `CompensationFailed` alerts go to the `OpsAlertsTopic` SNS topic,
//! whose history cannot be read back. The caller supplies the alerted order ids
//! ([`CheckOptions::alerted_orders`]); on the local stack an [`AlertTap`] (a queue
//! subscribed to the topic, created by [`crate::LocalStack::start`] by default) collects
//! them. Without that list, COMPENSATION_FAILED orders are listed in
//! [`Report::unverified_alerts`] rather than reported as violations.
//!
//! **Money.** A wallet's initial balance is not stored, so without
//! [`CheckOptions::initial_balances`] the checker reports, per customer, the balance
//! and what is currently captured (charged and not refunded), refunded and declined;
//! with it, `balance == initial − captured` (this assumes no top-ups since the initial
//! balances were taken).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, QueueAttributeName};
use serde::Deserialize;
use serde_json::Value;

use crate::provision::{physical_name, Stack};
use crate::template::Template;
use crate::{Error, Result};

type Item = std::collections::HashMap<String, AttributeValue>;

// ------------------------------------------------------------------ the report

/// Which invariant a [`Violation`] breaks. [`Invariant::name`] is stable (tests and
/// dashboards match on it); [`Invariant::design`] is the invariant (1–8) of `docs/architecture.md` it proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    /// `available + reserved + sold == stocked` for a menu item.
    StockConservation,
    /// A stock counter is negative.
    StockNonNegative,
    /// The RESERVED reservations' lines add up to the item's `reserved` (quiescent).
    StockReservedMatchesReservations,
    /// The SOLD reservations' lines add up to the item's `sold` (quiescent).
    StockSoldMatchesReservations,
    /// A reservation holds other lines than its order.
    ReservationMatchesOrder,
    /// A DELIVERED order's reservation is SOLD (quiescent).
    DeliveredStockSold,
    /// A CANCELLED order's reservation is not RESERVED (nor SOLD) (quiescent).
    CancelledStockReleased,
    /// Every order is terminal (quiescent).
    OrderTerminal,
    /// Every COMPENSATION_FAILED order was alerted on the ops topic (quiescent).
    CompensationFailedAlerted,
    /// No message waits in a dead-letter queue, except one of a COMPENSATION_FAILED
    /// order (quiescent, [`Checker`] only).
    NoDeadLetters,
    /// Nothing moves any more (no message visible or in flight) within the deadline of
    /// [`Checker::check_at_quiescence`].
    StackQuiescent,
    /// A payment's amount, currency and customer are its order's.
    PaymentMatchesOrder,
    /// Money is captured only for an order that is past RESERVED and not CANCELLED
    /// (the CANCELLED half at quiescence: a late capture is refunded in flight).
    ChargedOnlyIfNotCancelled,
    /// A DELIVERED order paid by wallet has a CAPTURED payment (quiescent).
    DeliveredCharged,
    /// A delivered order (the order or its delivery record DELIVERED) is neither
    /// refunded nor CANCELLED: a courier never completes a cancelled order.
    DeliveredNotRefunded,
    /// A wallet balance is never negative.
    WalletNonNegative,
    /// `balance == initial − captured` per customer (quiescent, with initial balances).
    WalletConservation,
    /// A wallet's balance equals the sum of its ledger entries.
    WalletMatchesLedger,
    /// Every wallet capture and refund has its one ledger entry, and every entry of that
    /// kind its payment, of the same amount.
    LedgerMatchesPayments,
    /// Money enters a wallet only by a paid top-up (one entry per CREDITED top-up, each
    /// against its own provider charge, matching the provider's record when it is
    /// known), an ADMIN credit with a reason, or the refund of a capture.
    MoneyEntersOnlyByChargeOrReason,
    /// No top-up is left PENDING at rest: a charge during an outage is settled from the
    /// payment queue or by the customer's retry (quiescent).
    TopUpSettled,
    /// A courier's own item is consistent: AVAILABLE has `gsi1pk` and no
    /// `activeOrderId`; BUSY has an `activeOrderId` and no `gsi1pk`.
    CourierStateConsistent,
    /// No courier is on two DISPATCHED deliveries (quiescent).
    CourierSingleDelivery,
    /// A courier is BUSY iff exactly one DISPATCHED delivery names it, and its
    /// `activeOrderId` is that order (quiescent).
    CourierBusyMatchesDelivery,
    /// A CANCELLED order's delivery is not DISPATCHED (quiescent).
    CancelledCourierReleased,
    /// A DELIVERED order's delivery record is DELIVERED (quiescent).
    DeliveredRecorded,
    /// A reservation, payment or delivery belongs to an existing order.
    RecordHasOrder,
    /// An item the checker could not read.
    RecordReadable,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        use Invariant::*;
        match self {
            StockConservation => "stock.conservation",
            StockNonNegative => "stock.non-negative",
            StockReservedMatchesReservations => "stock.reserved-matches-reservations",
            StockSoldMatchesReservations => "stock.sold-matches-reservations",
            ReservationMatchesOrder => "stock.reservation-matches-order",
            DeliveredStockSold => "stock.delivered-sold",
            CancelledStockReleased => "stock.cancelled-released",
            OrderTerminal => "order.terminal",
            CompensationFailedAlerted => "order.compensation-failed-alerted",
            NoDeadLetters => "messages.no-dead-letters",
            StackQuiescent => "messages.quiescent",
            PaymentMatchesOrder => "money.payment-matches-order",
            ChargedOnlyIfNotCancelled => "money.charged-only-if-not-cancelled",
            DeliveredCharged => "money.delivered-charged",
            DeliveredNotRefunded => "money.delivered-not-refunded",
            WalletNonNegative => "money.wallet-non-negative",
            WalletConservation => "money.wallet-conservation",
            WalletMatchesLedger => "money.wallet-matches-ledger",
            LedgerMatchesPayments => "money.ledger-matches-payments",
            MoneyEntersOnlyByChargeOrReason => "money.enters-only-by-charge-or-reason",
            TopUpSettled => "money.top-up-settled",
            CourierStateConsistent => "courier.state-consistent",
            CourierSingleDelivery => "courier.single-delivery",
            CourierBusyMatchesDelivery => "courier.busy-matches-delivery",
            CancelledCourierReleased => "courier.cancelled-released",
            DeliveredRecorded => "courier.delivered-recorded",
            RecordHasOrder => "records.have-order",
            RecordReadable => "records.readable",
        }
    }

    /// The invariant (1–8) of `docs/architecture.md` this check proves.
    pub fn design(self) -> u8 {
        use Invariant::*;
        match self {
            OrderTerminal | CompensationFailedAlerted | NoDeadLetters | StackQuiescent => 1,
            PaymentMatchesOrder
            | ChargedOnlyIfNotCancelled
            | DeliveredCharged
            | DeliveredNotRefunded
            | WalletNonNegative
            | WalletConservation => 2,
            WalletMatchesLedger
            | LedgerMatchesPayments
            | MoneyEntersOnlyByChargeOrReason
            | TopUpSettled => 6,
            StockConservation
            | StockNonNegative
            | StockReservedMatchesReservations
            | StockSoldMatchesReservations
            | ReservationMatchesOrder
            | DeliveredStockSold
            | CancelledStockReleased => 3,
            CourierStateConsistent
            | CourierSingleDelivery
            | CourierBusyMatchesDelivery
            | CancelledCourierReleased
            | DeliveredRecorded => 4,
            RecordHasOrder | RecordReadable => 5,
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

    fn violate(&mut self, invariant: Invariant, subject: impl Into<String>, detail: String) {
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

// ----------------------------------------------------------------- the options

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Nothing moves (the traffic stopped and every queue drained): run the cross-record
    /// checks too, and require every order to be terminal.
    pub expect_quiescent: bool,
    /// Orders that were alerted on `OpsAlertsTopic` (from an [`AlertTap`]). `None`: the
    /// alert check is skipped and COMPENSATION_FAILED orders are listed as unverified.
    pub alerted_orders: Option<BTreeSet<String>>,
    /// Initial wallet balances by customer: adds `balance == initial − captured`
    /// (assumes no top-ups since).
    pub initial_balances: Option<BTreeMap<String, i64>>,
    /// The card provider's charges (e.g. the sandbox's `GET /_sandbox/charges`): each
    /// credited top-up must match one of them exactly. `None`: checked within the
    /// tables only.
    pub provider_charges: Option<Vec<ProviderCharge>>,
}

/// A charge as the card provider records it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderCharge {
    pub charge_id: String,
    pub reference: String,
    pub amount: i64,
    #[serde(default)]
    pub refunded_amount: i64,
}

impl CheckOptions {
    /// Everything, for a stack at rest.
    pub fn quiescent() -> Self {
        CheckOptions {
            expect_quiescent: true,
            ..Default::default()
        }
    }
    pub fn expect_quiescent(mut self, on: bool) -> Self {
        self.expect_quiescent = on;
        self
    }
    pub fn alerted_orders(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.alerted_orders = Some(ids.into_iter().collect());
        self
    }
    pub fn initial_balances<S: Into<String>>(
        mut self,
        balances: impl IntoIterator<Item = (S, i64)>,
    ) -> Self {
        self.initial_balances = Some(balances.into_iter().map(|(c, b)| (c.into(), b)).collect());
        self
    }
    pub fn provider_charges(mut self, charges: Vec<ProviderCharge>) -> Self {
        self.provider_charges = Some(charges);
        self
    }
}

// --------------------------------------------------------------- the item views

const TERMINAL: &[&str] = &["DELIVERED", "CANCELLED", "COMPENSATION_FAILED"];

fn is_terminal(status: &str) -> bool {
    TERMINAL.contains(&status)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MoneyView {
    amount: i64,
    currency: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LineView {
    menu_item_id: String,
    quantity: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SagaView {
    status: String,
    cancel_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OrderView {
    order_id: String,
    customer_id: String,
    restaurant_id: String,
    status: String,
    items: Vec<LineView>,
    total: MoneyView,
    payment_method: String,
    saga: SagaView,
    updated_at: String,
}

impl OrderView {
    fn status(&self) -> &str {
        if self.status.is_empty() {
            &self.saga.status
        } else {
            &self.status
        }
    }
    fn quantities(&self) -> BTreeMap<String, i64> {
        quantities(&self.items)
    }
}

fn quantities(lines: &[LineView]) -> BTreeMap<String, i64> {
    let mut q = BTreeMap::new();
    for l in lines {
        *q.entry(l.menu_item_id.clone()).or_insert(0) += l.quantity;
    }
    q
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MenuItemView {
    restaurant_id: String,
    menu_item_id: String,
    available: i64,
    reserved: i64,
    sold: i64,
    stocked: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ReservationView {
    order_id: String,
    restaurant_id: String,
    items: Vec<LineView>,
    status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WalletView {
    customer_id: String,
    balance: i64,
    currency: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LedgerView {
    entry_id: String,
    customer_id: String,
    kind: String,
    amount: i64,
    order_id: Option<String>,
    top_up_id: Option<String>,
    charge_id: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TopUpView {
    top_up_id: String,
    customer_id: String,
    amount: i64,
    status: String,
    charge_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PaymentView {
    order_id: String,
    customer_id: String,
    amount: i64,
    currency: String,
    status: String,
    method: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CourierView {
    courier_id: String,
    status: String,
    active_order_id: Option<String>,
    gsi1pk: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DeliveryView {
    order_id: String,
    courier_id: Option<String>,
    status: String,
}

/// Everything read from the tables.
#[derive(Clone, Default)]
struct State {
    orders: BTreeMap<String, OrderView>,
    items: BTreeMap<(String, String), MenuItemView>,
    reservations: BTreeMap<String, ReservationView>,
    wallets: BTreeMap<String, WalletView>,
    payments: BTreeMap<String, PaymentView>,
    ledger: Vec<LedgerView>,
    top_ups: BTreeMap<String, TopUpView>,
    couriers: BTreeMap<String, CourierView>,
    deliveries: BTreeMap<String, DeliveryView>,
    other: usize,
    unreadable: Vec<Violation>,
}

fn key_of(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The id after `PREFIX#` in the partition key, used when the body lacks it.
fn id_after<'a>(pk: &'a str, prefix: &str) -> Option<&'a str> {
    pk.strip_prefix(prefix)
}

impl State {
    fn read<T: for<'de> Deserialize<'de>>(&mut self, table: &str, item: Item) -> Option<T> {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        match serde_dynamo::from_item::<_, T>(item) {
            Ok(v) => Some(v),
            Err(e) => {
                self.unreadable.push(Violation {
                    invariant: Invariant::RecordReadable,
                    subject: format!("{table} {pk}/{sk}"),
                    detail: e.to_string(),
                });
                None
            }
        }
    }

    fn add_inventory(&mut self, item: Item) {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        if let (Some(r), Some(m)) = (id_after(&pk, "RESTAURANT#"), id_after(&sk, "ITEM#")) {
            let (r, m) = (r.to_owned(), m.to_owned());
            if let Some(mut v) = self.read::<MenuItemView>("inventory", item) {
                v.restaurant_id = r.clone();
                v.menu_item_id = m.clone();
                self.items.insert((r, m), v);
            }
        } else if let Some(o) = id_after(&pk, "RESERVATION#").filter(|_| sk == "RESERVATION") {
            let o = o.to_owned();
            if let Some(mut v) = self.read::<ReservationView>("inventory", item) {
                v.order_id = o.clone();
                self.reservations.insert(o, v);
            }
        } else {
            self.other += 1;
        }
    }

    fn add_payments(&mut self, item: Item) {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        if let Some(c) = id_after(&pk, "WALLET#").filter(|_| sk == "WALLET") {
            let c = c.to_owned();
            if let Some(mut v) = self.read::<WalletView>("payments", item) {
                v.customer_id = c.clone();
                self.wallets.insert(c, v);
            }
        } else if let Some(o) = id_after(&pk, "PAYMENT#").filter(|_| sk == "PAYMENT") {
            let o = o.to_owned();
            if let Some(mut v) = self.read::<PaymentView>("payments", item) {
                v.order_id = o.clone();
                self.payments.insert(o, v);
            }
        } else if let Some(c) = id_after(&pk, "WALLET#").filter(|_| sk.starts_with("TX#")) {
            let c = c.to_owned();
            if let Some(mut v) = self.read::<LedgerView>("payments", item) {
                v.customer_id = c;
                self.ledger.push(v);
            }
        } else if let Some(c) = id_after(&pk, "WALLET#").filter(|_| sk.starts_with("TOPUP#")) {
            let c = c.to_owned();
            if let Some(mut v) = self.read::<TopUpView>("payments", item) {
                v.customer_id = c;
                self.top_ups.insert(v.top_up_id.clone(), v);
            }
        } else {
            self.other += 1;
        }
    }

    fn add_delivery(&mut self, item: Item) {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        if let Some(c) = id_after(&pk, "COURIER#").filter(|_| sk == "COURIER") {
            let c = c.to_owned();
            if let Some(mut v) = self.read::<CourierView>("delivery", item) {
                v.courier_id = c.clone();
                self.couriers.insert(c, v);
            }
        } else if let Some(o) = id_after(&pk, "DELIVERY#").filter(|_| sk == "DELIVERY") {
            let o = o.to_owned();
            if let Some(mut v) = self.read::<DeliveryView>("delivery", item) {
                v.order_id = o.clone();
                self.deliveries.insert(o, v);
            }
        } else {
            self.other += 1;
        }
    }

    fn add_order(&mut self, item: Item) {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        if let Some(o) = id_after(&pk, "ORDER#").filter(|_| sk == "ORDER") {
            let o = o.to_owned();
            if let Some(mut v) = self.read::<OrderView>("orders", item) {
                v.order_id = o.clone();
                self.orders.insert(o, v);
            }
        } else {
            self.other += 1;
        }
    }
}

// ------------------------------------------------------------------ the tables

/// Physical names of the tables the checker reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub orders: String,
    pub inventory: String,
    pub payments: String,
    pub delivery: String,
}

/// The template's logical ids of those tables.
pub const TABLE_IDS: [&str; 4] = [
    "OrdersTable",
    "InventoryTable",
    "PaymentsTable",
    "DeliveryTable",
];

impl Tables {
    /// The tables of a provisioned stack.
    pub fn of(stack: &Stack) -> Tables {
        let name = |id: &str| {
            stack
                .tables
                .get(id)
                .map(|t| t.name.clone())
                .unwrap_or_else(|| {
                    physical_name(&stack.prefix, id, crate::provision::TABLE_NAME_MAX, "")
                })
        };
        Tables {
            orders: name(TABLE_IDS[0]),
            inventory: name(TABLE_IDS[1]),
            payments: name(TABLE_IDS[2]),
            delivery: name(TABLE_IDS[3]),
        }
    }

    /// The names provisioning gives them under `prefix` (nothing is looked up).
    pub fn for_prefix(prefix: &str) -> Tables {
        let name = |id: &str| physical_name(prefix, id, crate::provision::TABLE_NAME_MAX, "");
        Tables {
            orders: name(TABLE_IDS[0]),
            inventory: name(TABLE_IDS[1]),
            payments: name(TABLE_IDS[2]),
            delivery: name(TABLE_IDS[3]),
        }
    }
}

async fn scan_all(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| Error::aws(format!("scan {table}"), e))?;
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

/// Scans the tables and checks the invariants (see the module docs for which run
/// when). Tables are read inventory, payments, delivery, then orders: a record read
/// earlier always belongs to an order that exists by the time orders are read.
pub async fn check(
    client: &aws_sdk_dynamodb::Client,
    tables: &Tables,
    opts: &CheckOptions,
) -> Result<Report> {
    let mut state = State::default();
    for item in scan_all(client, &tables.inventory).await? {
        state.add_inventory(item);
    }
    for item in scan_all(client, &tables.payments).await? {
        state.add_payments(item);
    }
    for item in scan_all(client, &tables.delivery).await? {
        state.add_delivery(item);
    }
    for item in scan_all(client, &tables.orders).await? {
        state.add_order(item);
    }
    Ok(evaluate(state, opts))
}

fn evaluate(mut st: State, opts: &CheckOptions) -> Report {
    let q = opts.expect_quiescent;
    let mut r = Report {
        quiescent: q,
        scanned: Scanned {
            orders: st.orders.len(),
            menu_items: st.items.len(),
            reservations: st.reservations.len(),
            wallets: st.wallets.len(),
            payments: st.payments.len(),
            couriers: st.couriers.len(),
            deliveries: st.deliveries.len(),
            other: st.other,
        },
        ..Default::default()
    };
    r.violations.append(&mut st.unreadable);

    // Orders (invariant 1).
    for (id, o) in &st.orders {
        *r.orders_by_status.entry(o.status().to_owned()).or_insert(0) += 1;
        if q && !is_terminal(o.status()) {
            r.violate(
                Invariant::OrderTerminal,
                format!("order {id}"),
                format!(
                    "still {} (last change {}{})",
                    o.status(),
                    o.updated_at,
                    o.saga
                        .cancel_reason
                        .as_deref()
                        .map(|c| format!(", reason {c}"))
                        .unwrap_or_default()
                ),
            );
        }
        if o.status() == "COMPENSATION_FAILED" {
            r.compensation_failed.push(id.clone());
            r.left_behind.insert(
                id.clone(),
                OrderRecords {
                    reservation: st.reservations.get(id).map(|x| x.status.clone()),
                    payment: st.payments.get(id).map(|x| x.status.clone()),
                    delivery: st.deliveries.get(id).map(|x| x.status.clone()),
                },
            );
            match &opts.alerted_orders {
                None => r.unverified_alerts.push(id.clone()),
                Some(alerted) if q && !alerted.contains(id) => r.violate(
                    Invariant::CompensationFailedAlerted,
                    format!("order {id}"),
                    "COMPENSATION_FAILED but no CompensationFailed alert was seen on the ops topic"
                        .into(),
                ),
                Some(_) => {}
            }
        }
    }

    check_stock(&st, q, &mut r);
    check_money(&st, opts, &mut r);
    check_couriers(&st, q, &mut r);

    r.violations.sort();
    r
}

fn check_stock(st: &State, q: bool, r: &mut Report) {
    // Per item, always (invariant 3).
    for ((rest, m), i) in &st.items {
        let subject = format!("{rest}/{m}");
        r.stock.insert(
            subject.clone(),
            Stock {
                available: i.available,
                reserved: i.reserved,
                sold: i.sold,
                stocked: i.stocked,
            },
        );
        let negative: Vec<String> = [
            ("available", i.available),
            ("reserved", i.reserved),
            ("sold", i.sold),
            ("stocked", i.stocked),
        ]
        .iter()
        .filter(|(_, v)| *v < 0)
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
        if !negative.is_empty() {
            r.violate(Invariant::StockNonNegative, &subject, negative.join(", "));
        }
        if i.available + i.reserved + i.sold != i.stocked {
            r.violate(
                Invariant::StockConservation,
                &subject,
                format!(
                    "available {} + reserved {} + sold {} = {} but stocked = {}",
                    i.available,
                    i.reserved,
                    i.sold,
                    i.available + i.reserved + i.sold,
                    i.stocked
                ),
            );
        }
    }

    // Reservations against their orders (immutable lines), always.
    for (id, res) in &st.reservations {
        let Some(o) = st.orders.get(id) else {
            r.violate(
                Invariant::RecordHasOrder,
                format!("reservation {id}"),
                format!(
                    "{} reservation for an order that does not exist",
                    res.status
                ),
            );
            continue;
        };
        if !res.items.is_empty() && quantities(&res.items) != o.quantities() {
            r.violate(
                Invariant::ReservationMatchesOrder,
                format!("reservation {id}"),
                format!(
                    "holds {:?}, the order has {:?}",
                    quantities(&res.items),
                    o.quantities()
                ),
            );
        }
    }

    if !q {
        return;
    }
    // Reservation lines add up to the counters.
    let mut held: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for res in st.reservations.values() {
        let (reserved, sold) = match res.status.as_str() {
            "RESERVED" => (true, false),
            "SOLD" => (false, true),
            _ => continue,
        };
        let restaurant = if res.restaurant_id.is_empty() {
            st.orders
                .get(&res.order_id)
                .map(|o| o.restaurant_id.clone())
                .unwrap_or_default()
        } else {
            res.restaurant_id.clone()
        };
        for l in &res.items {
            let e = held
                .entry((restaurant.clone(), l.menu_item_id.clone()))
                .or_insert((0, 0));
            if reserved {
                e.0 += l.quantity;
            }
            if sold {
                e.1 += l.quantity;
            }
        }
    }
    for (k, (reserved, sold)) in &held {
        if !st.items.contains_key(k) {
            r.violate(
                Invariant::StockReservedMatchesReservations,
                format!("{}/{}", k.0, k.1),
                format!("reservations hold {reserved} reserved and {sold} sold of a menu item that does not exist"),
            );
        }
    }
    for (k, i) in &st.items {
        let (reserved, sold) = held.get(k).copied().unwrap_or((0, 0));
        let subject = format!("{}/{}", k.0, k.1);
        if i.reserved != reserved {
            r.violate(
                Invariant::StockReservedMatchesReservations,
                &subject,
                format!(
                    "reserved = {} but RESERVED reservations hold {reserved}",
                    i.reserved
                ),
            );
        }
        if i.sold != sold {
            r.violate(
                Invariant::StockSoldMatchesReservations,
                &subject,
                format!("sold = {} but SOLD reservations hold {sold}", i.sold),
            );
        }
    }
    // Terminal orders and their reservation.
    for (id, o) in &st.orders {
        let res = st.reservations.get(id).map(|r| r.status.as_str());
        match o.status() {
            "DELIVERED" if res != Some("SOLD") => r.violate(
                Invariant::DeliveredStockSold,
                format!("order {id}"),
                format!(
                    "DELIVERED but its reservation is {}",
                    res.unwrap_or("missing")
                ),
            ),
            "CANCELLED" if matches!(res, Some("RESERVED" | "SOLD")) => r.violate(
                Invariant::CancelledStockReleased,
                format!("order {id}"),
                format!(
                    "CANCELLED ({}) but its reservation is still {}",
                    o.saga.cancel_reason.as_deref().unwrap_or("no reason"),
                    res.unwrap_or_default()
                ),
            ),
            _ => {}
        }
    }
}

fn check_money(st: &State, opts: &CheckOptions, r: &mut Report) {
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
fn check_delivered_not_refunded(st: &State, r: &mut Report) {
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

/// Invariant 6: every wallet movement is an entry, the balance is their sum, and money
/// enters only by a provider charge, an ADMIN's recorded reason or a capture's refund.
/// Entries are written in the transaction that moves the money, so these hold in flight.
fn check_ledger(st: &State, opts: &CheckOptions, r: &mut Report) {
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

fn check_couriers(st: &State, q: bool, r: &mut Report) {
    for (c, v) in &st.couriers {
        r.couriers.insert(
            c.clone(),
            CourierState {
                status: v.status.clone(),
                active_order_id: v.active_order_id.clone(),
                dispatched: Vec::new(),
            },
        );
        let problem = match v.status.as_str() {
            "AVAILABLE" if v.active_order_id.is_some() => Some(format!(
                "AVAILABLE but activeOrderId = {}",
                v.active_order_id.as_deref().unwrap_or_default()
            )),
            "AVAILABLE" if v.gsi1pk.is_none() => {
                Some("AVAILABLE but not in the free-courier index (no gsi1pk)".to_owned())
            }
            "BUSY" if v.active_order_id.is_none() => {
                Some("BUSY without an activeOrderId".to_owned())
            }
            "BUSY" if v.gsi1pk.is_some() => {
                Some("BUSY but still in the free-courier index (gsi1pk set)".to_owned())
            }
            "AVAILABLE" | "BUSY" => None,
            other => Some(format!("unknown status {other:?}")),
        };
        if let Some(p) = problem {
            r.violate(Invariant::CourierStateConsistent, format!("courier {c}"), p);
        }
    }
    for (id, d) in &st.deliveries {
        if !st.orders.contains_key(id) {
            r.violate(
                Invariant::RecordHasOrder,
                format!("delivery {id}"),
                format!("{} delivery for an order that does not exist", d.status),
            );
        }
        if d.status == "DISPATCHED" {
            let c = d.courier_id.clone().unwrap_or_default();
            r.couriers.entry(c).or_default().dispatched.push(id.clone());
        }
    }
    if !q {
        return;
    }
    for (c, s) in &r.couriers.clone() {
        let subject = format!("courier {c}");
        if s.dispatched.len() > 1 {
            r.violate(
                Invariant::CourierSingleDelivery,
                &subject,
                format!(
                    "on {} DISPATCHED deliveries: {}",
                    s.dispatched.len(),
                    s.dispatched.join(", ")
                ),
            );
        }
        if !st.couriers.contains_key(c) {
            r.violate(
                Invariant::CourierBusyMatchesDelivery,
                &subject,
                format!(
                    "named by DISPATCHED deliveries {} but no such courier",
                    s.dispatched.join(", ")
                ),
            );
            continue;
        }
        match (s.status.as_str(), s.dispatched.as_slice()) {
            ("BUSY", [one]) if s.active_order_id.as_deref() == Some(one.as_str()) => {}
            ("BUSY", [one]) => r.violate(
                Invariant::CourierBusyMatchesDelivery,
                &subject,
                format!(
                    "BUSY with activeOrderId {} but its DISPATCHED delivery is {one}",
                    s.active_order_id.as_deref().unwrap_or("-")
                ),
            ),
            ("BUSY", []) => r.violate(
                Invariant::CourierBusyMatchesDelivery,
                &subject,
                format!(
                    "BUSY (activeOrderId {}) but no DISPATCHED delivery names it",
                    s.active_order_id.as_deref().unwrap_or("-")
                ),
            ),
            ("BUSY", _) => {} // reported as CourierSingleDelivery
            (status, d) if !d.is_empty() => r.violate(
                Invariant::CourierBusyMatchesDelivery,
                &subject,
                format!(
                    "{status} but DISPATCHED deliveries name it: {}",
                    d.join(", ")
                ),
            ),
            _ => {}
        }
    }
    for (id, o) in &st.orders {
        let d = st.deliveries.get(id).map(|d| d.status.as_str());
        match o.status() {
            "CANCELLED" if d == Some("DISPATCHED") => r.violate(
                Invariant::CancelledCourierReleased,
                format!("order {id}"),
                format!(
                    "CANCELLED but its delivery is still DISPATCHED to {}",
                    st.deliveries[id].courier_id.as_deref().unwrap_or("-")
                ),
            ),
            "DELIVERED" if d != Some("DELIVERED") => r.violate(
                Invariant::DeliveredRecorded,
                format!("order {id}"),
                format!("DELIVERED but its delivery is {}", d.unwrap_or("missing")),
            ),
            _ => {}
        }
    }
}

// ------------------------------------------------------------------- a checker

/// Queue depth as SQS reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    pub visible: i64,
    pub in_flight: i64,
    pub delayed: i64,
}

impl Depth {
    pub fn total(&self) -> i64 {
        self.visible + self.in_flight + self.delayed
    }
    /// Messages being worked on or waiting to be: visible or in flight (delayed ones
    /// are scheduled, not pending).
    pub fn busy(&self) -> i64 {
        self.visible + self.in_flight
    }
}

/// The checker for one stack: its tables and queues. Beyond [`check`] it knows the
/// queues, so it reports dead letters and can wait for quiescence.
#[derive(Debug, Clone)]
pub struct Checker {
    dynamo: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    pub tables: Tables,
    /// Work queues (logical id -> URL): drained means nothing moves.
    pub queues: BTreeMap<String, String>,
    /// Dead-letter queues (logical id -> URL).
    pub dead_letter_queues: BTreeMap<String, String>,
    /// Where alerts are read from when [`CheckOptions::alerted_orders`] is `None`.
    pub alert_tap: Option<AlertTap>,
}

impl Checker {
    /// The checker of a provisioned stack.
    pub fn for_stack(sdk: &SdkConfig, stack: &Stack) -> Checker {
        let dlqs: BTreeSet<String> = dead_letter_ids(&stack.template);
        let mut queues = BTreeMap::new();
        let mut dead_letter_queues = BTreeMap::new();
        for (id, q) in &stack.queues {
            if dlqs.contains(id) {
                dead_letter_queues.insert(id.clone(), q.url.clone());
            } else {
                queues.insert(id.clone(), q.url.clone());
            }
        }
        Checker {
            dynamo: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            tables: Tables::of(stack),
            queues,
            dead_letter_queues,
            alert_tap: None,
        }
    }

    /// Reads the alerted orders from `tap` at each check (unless the options list them).
    pub fn with_alert_tap(mut self, tap: Option<AlertTap>) -> Self {
        self.alert_tap = tap;
        self
    }

    /// The checker of the stack under `prefix`, found by name: provisions nothing.
    /// Fails when the orders table does not exist. Uses the stack's alert tap if `up`
    /// created one.
    /// The checker of a stack whose resources are named explicitly (a deployed one:
    /// no alert tap, so alerts are reported unverified unless given in the options).
    pub fn with_names(
        sdk: &SdkConfig,
        tables: Tables,
        queues: BTreeMap<String, String>,
        dead_letter_queues: BTreeMap<String, String>,
    ) -> Checker {
        Checker {
            dynamo: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            tables,
            queues,
            dead_letter_queues,
            alert_tap: None,
        }
    }

    pub async fn for_prefix(sdk: &SdkConfig, template: &Template, prefix: &str) -> Result<Checker> {
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let tables = Tables::for_prefix(prefix);
        dynamo
            .describe_table()
            .table_name(&tables.orders)
            .send()
            .await
            .map_err(|e| {
                Error::aws(
                    format!("no stack with prefix {prefix:?} (table {})", tables.orders),
                    e,
                )
            })?;
        let dlqs = dead_letter_ids(template);
        let mut queues = BTreeMap::new();
        let mut dead_letter_queues = BTreeMap::new();
        for q in &template.queues {
            let suffix = if q.fifo { ".fifo" } else { "" };
            let name = physical_name(
                prefix,
                &q.logical_id,
                crate::provision::QUEUE_NAME_MAX,
                suffix,
            );
            let Ok(out) = sqs.get_queue_url().queue_name(&name).send().await else {
                continue;
            };
            let url = out.queue_url.unwrap_or_default();
            if dlqs.contains(&q.logical_id) {
                dead_letter_queues.insert(q.logical_id.clone(), url);
            } else {
                queues.insert(q.logical_id.clone(), url);
            }
        }
        let alert_tap = AlertTap::find(sdk, prefix).await;
        Ok(Checker {
            dynamo,
            sqs,
            tables,
            queues,
            dead_letter_queues,
            alert_tap,
        })
    }

    /// Scans and checks; also lists the dead letters (a violation at quiescence unless
    /// the message is a COMPENSATION_FAILED order's, which stays there for redrive).
    pub async fn check(&self, opts: &CheckOptions) -> Result<Report> {
        let tapped;
        let opts = match (&opts.alerted_orders, &self.alert_tap) {
            (None, Some(tap)) => {
                tapped = CheckOptions {
                    alerted_orders: Some(tap.alerted_orders().await?),
                    ..opts.clone()
                };
                &tapped
            }
            _ => opts,
        };
        let mut report = check(&self.dynamo, &self.tables, opts).await?;
        let failed: BTreeSet<String> = report.compensation_failed.iter().cloned().collect();
        for (id, url) in &self.dead_letter_queues {
            let bodies = peek(&self.sqs, url).await?;
            let ids: Vec<String> = bodies
                .iter()
                .map(|b| order_id_of(b).unwrap_or_else(|| "?".to_owned()))
                .collect();
            if opts.expect_quiescent {
                for (order, body) in ids.iter().zip(&bodies) {
                    if !failed.contains(order) {
                        report.violate(
                            Invariant::NoDeadLetters,
                            format!("queue {id}"),
                            format!(
                                "message for order {order} dead-lettered: {}",
                                clip(body, 300)
                            ),
                        );
                    }
                }
            }
            if !ids.is_empty() {
                report.dead_letters.insert(id.clone(), ids);
            }
        }
        report.violations.sort();
        Ok(report)
    }

    /// Depth of every work queue (not the DLQs).
    pub async fn backlog(&self) -> Result<BTreeMap<String, Depth>> {
        let mut out = BTreeMap::new();
        for (id, url) in &self.queues {
            let attrs = self
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .map_err(|e| Error::aws(format!("attributes of queue {id}"), e))?
                .attributes
                .unwrap_or_default();
            let n = |a: QueueAttributeName| {
                attrs
                    .get(&a)
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            out.insert(
                id.clone(),
                Depth {
                    visible: n(QueueAttributeName::ApproximateNumberOfMessages),
                    in_flight: n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                    delayed: n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
                },
            );
        }
        Ok(out)
    }

    async fn drained(&self) -> Result<Option<String>> {
        let busy: Vec<String> = self
            .backlog()
            .await?
            .into_iter()
            .filter(|(_, d)| d.busy() > 0)
            .map(|(q, d)| format!("{q}: {} visible, {} in flight", d.visible, d.in_flight))
            .collect();
        Ok((!busy.is_empty()).then(|| busy.join("; ")))
    }

    /// Waits until the stack is at rest, then checks everything (`expect_quiescent` is
    /// forced on). At rest means: nothing is visible or in flight in any work queue
    /// (in flight includes messages an event-source mapping holds back or will retry),
    /// every order is terminal and the checks pass; then, a moment later, the queues
    /// are confirmed still empty. A transient failure (the stream relay lags a write)
    /// is polled past; whatever persists until `timeout` is reported, plus
    /// [`Invariant::StackQuiescent`] if the queues never drained.
    ///
    /// Delayed messages are not waited for: they are the saga's `StepTimeout`s,
    /// scheduled minutes ahead, which find their orders terminal and do nothing.
    pub async fn check_at_quiescence(
        &self,
        opts: &CheckOptions,
        timeout: Duration,
    ) -> Result<Report> {
        let opts = CheckOptions {
            expect_quiescent: true,
            ..opts.clone()
        };
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(50);
        let mut last: Option<Report> = None;
        let mut busy: Option<String>;
        loop {
            busy = self.drained().await?;
            if busy.is_none() {
                let report = self.check(&opts).await?;
                if report.is_clean() {
                    // Nothing arrived meanwhile (a held-back duplicate, a stream lag)?
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    busy = self.drained().await?;
                    if busy.is_none() {
                        return Ok(report);
                    }
                }
                last = Some(report);
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            pause = (pause * 2).min(Duration::from_millis(400));
        }
        let mut report = match last {
            Some(r) if busy.is_none() => r,
            _ => self.check(&opts).await?,
        };
        if let Some(b) = busy {
            report.violate(
                Invariant::StackQuiescent,
                "queues",
                format!("still busy after {timeout:?}: {b}"),
            );
            report.violations.sort();
        }
        Ok(report)
    }
}

fn dead_letter_ids(template: &Template) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = template
        .queues
        .iter()
        .filter_map(|q| q.redrive.as_ref().map(|r| r.dead_letter_queue.clone()))
        .collect();
    // Stream failure destinations are dead-letter queues too.
    for f in &template.functions {
        for e in f.stream_events() {
            if let Some(q) = &e.on_failure_queue {
                out.insert(q.clone());
            }
        }
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut cut = n;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// Reads every message of a queue without consuming it: receives until empty (each
/// received message stays invisible meanwhile, so none is read twice), then makes them
/// all visible again. Meant for DLQs and taps, which nothing else consumes. At most
/// 1,000 messages.
pub async fn peek(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<String>> {
    let mut bodies = Vec::new();
    let mut handles = Vec::new();
    while bodies.len() < 1000 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(30)
            .send()
            .await
            .map_err(|e| Error::aws(format!("receive from {url}"), e))?;
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            bodies.push(m.body.unwrap_or_default());
            handles.extend(m.receipt_handle);
        }
    }
    for chunk in handles.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        sqs.change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::aws(format!("restore visibility in {url}"), e))?;
    }
    Ok(bodies)
}

/// The order a message is about: the envelope's `orderId` (or `data.orderId`), also
/// inside an SNS notification's `Message`.
pub fn order_id_of(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let v = match v.get("Message").and_then(Value::as_str) {
        Some(inner) => serde_json::from_str(inner).unwrap_or(v),
        None => v,
    };
    v.get("orderId")
        .or_else(|| v.pointer("/data/orderId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

// --------------------------------------------------------------- the alert tap

/// A queue subscribed to `OpsAlertsTopic` so the alerts can be read back:
/// `{prefix}-OpsAlertsTap`. [`AlertTap::alerted_orders`] reads it without consuming it.
#[derive(Debug, Clone)]
pub struct AlertTap {
    sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// Logical ids of the topic and of the tap queue.
pub const OPS_ALERTS_TOPIC: &str = "OpsAlertsTopic";
pub const ALERT_TAP_QUEUE: &str = "OpsAlertsTap";

impl AlertTap {
    /// Creates (if missing) the tap queue and subscribes it to the stack's
    /// `OpsAlertsTopic`. `None` when the template has no such topic.
    pub async fn subscribe(sdk: &SdkConfig, stack: &Stack) -> Result<Option<AlertTap>> {
        let Some(topic) = stack.topics.get(OPS_ALERTS_TOPIC) else {
            return Ok(None);
        };
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let sns = aws_sdk_sns::Client::new(sdk);
        let name = physical_name(
            &stack.prefix,
            ALERT_TAP_QUEUE,
            crate::provision::QUEUE_NAME_MAX,
            "",
        );
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| Error::aws(format!("create queue {name}"), e))?
            .queue_url
            .unwrap_or_default();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| Error::aws(format!("attributes of {name}"), e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_default();
        sns.subscribe()
            .topic_arn(&topic.arn)
            .protocol("sqs")
            .endpoint(arn)
            .send()
            .await
            .map_err(|e| Error::aws(format!("subscribe {name} to {}", topic.name), e))?;
        Ok(Some(AlertTap {
            sqs,
            queue_url: url,
        }))
    }

    /// The tap of the stack under `prefix`, if `up` (or a test) created one.
    pub async fn find(sdk: &SdkConfig, prefix: &str) -> Option<AlertTap> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let name = physical_name(
            prefix,
            ALERT_TAP_QUEUE,
            crate::provision::QUEUE_NAME_MAX,
            "",
        );
        let url = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .ok()?
            .queue_url?;
        Some(AlertTap {
            sqs,
            queue_url: url,
        })
    }

    /// Every alert body received so far.
    pub async fn alerts(&self) -> Result<Vec<String>> {
        peek(&self.sqs, &self.queue_url).await
    }

    /// The order ids of every alert received so far.
    pub async fn alerted_orders(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .alerts()
            .await?
            .iter()
            .filter_map(|b| order_id_of(b))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let known =
            CheckOptions::default().provider_charges(vec![charge("ch_1", "topup:t-1", 500)]);
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
    fn order_ids_come_out_of_envelopes_and_sns_notifications() {
        let env = r#"{"id":"e","type":"CompensationFailed","orderId":"o-7","data":{}}"#;
        assert_eq!(order_id_of(env).as_deref(), Some("o-7"));
        let sns = serde_json::json!({"Type": "Notification", "Message": env}).to_string();
        assert_eq!(order_id_of(&sns).as_deref(), Some("o-7"));
        assert_eq!(
            order_id_of(r#"{"data":{"orderId":"o-8"}}"#).as_deref(),
            Some("o-8")
        );
        assert_eq!(order_id_of("garbage"), None);
    }
}
