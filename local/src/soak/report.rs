//! The soak's verdict and its summary table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::chaos::Outages;
use super::counting::Counts;
use super::driver::Outcome;
use super::ledger::{LedgerViolation, OrderRow};
use super::{SoakConfig, Tally};
use crate::awsproxy::{CallCounts, Caller, FaultKind};
use crate::invariants::{Invariant, Report};

const TERMINAL: &[&str] = &["DELIVERED", "CANCELLED", "COMPENSATION_FAILED"];

/// What [`super::run`] gathered.
pub struct Inputs {
    pub config: SoakConfig,
    pub outcomes: Vec<Outcome>,
    pub orders: BTreeMap<String, OrderRow>,
    pub checked: Report,
    pub ledger: Vec<LedgerViolation>,
    pub crashes: u64,
    pub counts: BTreeMap<String, Counts>,
    /// The AWS proxy's call and fault counts.
    pub aws: Option<CallCounts>,
    pub outages: Outages,
    pub placing: Duration,
    pub duration: Duration,
    pub couriers: usize,
    pub shuffle_seed: Option<u64>,
}

/// The soak's result: [`SoakReport::is_clean`] and a printable summary.
pub struct SoakReport {
    pub inputs: Inputs,
    /// Every violation, one line each (`[name (inv. n)] subject: detail`).
    pub violations: Vec<String>,
    /// Dead letters by queue: (order id, the order's final status or `missing`).
    pub dead_letters: BTreeMap<String, Vec<(String, String)>>,
}

impl SoakReport {
    pub fn new(inputs: Inputs) -> SoakReport {
        let strict = inputs.config.strict_dead_letters;
        let mut violations: Vec<String> = inputs
            .checked
            .violations
            .iter()
            // The checker counts every dead letter; here one is a violation only when
            // its order never ended (a lost order), unless asked to be strict.
            .filter(|v| strict || v.invariant != Invariant::NoDeadLetters)
            .map(|v| v.to_string())
            .collect();
        let mut dead_letters: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (q, ids) in &inputs.checked.dead_letters {
            for id in ids {
                let status = inputs
                    .orders
                    .get(id)
                    .map(|o| o.status.clone())
                    .unwrap_or_else(|| "missing".to_owned());
                if !strict && !TERMINAL.contains(&status.as_str()) {
                    violations.push(format!(
                        "[messages.no-lost-orders (inv. 1)] queue {q}: a message of order {id} \
                         is dead-lettered and the order is {status}"
                    ));
                }
                dead_letters
                    .entry(q.clone())
                    .or_default()
                    .push((id.clone(), status));
            }
        }
        violations.extend(inputs.ledger.iter().map(|v| v.to_string()));
        let accepted: BTreeSet<&str> = inputs
            .outcomes
            .iter()
            .filter_map(|o| o.order_id.as_deref())
            .collect();
        for id in &accepted {
            if !inputs.orders.contains_key(*id) {
                violations.push(format!(
                    "[order.accepted-recorded (inv. 1)] order {id}: answered 201 but not in the orders table"
                ));
            }
        }
        // Every order the soak placed was answered; one no customer was told about
        // (a request that failed yet placed it) is charged and shipped behind their back.
        for (id, o) in &inputs.orders {
            if !accepted.contains(id.as_str()) {
                violations.push(format!(
                    "[order.acknowledged (inv. 5)] order {id}: in the orders table ({}) but its \
                     request was never answered 201",
                    o.status
                ));
            }
        }
        violations.sort();
        violations.dedup();
        SoakReport {
            inputs,
            violations,
            dead_letters,
        }
    }

    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// Orders answered `201`.
    pub fn accepted(&self) -> usize {
        self.inputs
            .outcomes
            .iter()
            .filter(|o| o.order_id.is_some())
            .count()
    }

    /// Final status of every accepted order (from the orders table).
    pub fn by_status(&self) -> Tally {
        let mut t = Tally::new();
        for o in &self.inputs.outcomes {
            if let Some(id) = &o.order_id {
                let s = self
                    .inputs
                    .orders
                    .get(id)
                    .map(|r| r.status.clone())
                    .unwrap_or_else(|| "missing".into());
                *t.entry(s).or_default() += 1;
            }
        }
        t
    }

    /// Cancel reasons of the CANCELLED orders.
    pub fn cancel_reasons(&self) -> Tally {
        let mut t = Tally::new();
        for r in self.inputs.orders.values() {
            if r.status == "CANCELLED" {
                let reason = r.reason.clone().unwrap_or_else(|| "none".into());
                *t.entry(reason).or_default() += 1;
            }
        }
        t
    }

    pub fn orders_per_second(&self) -> f64 {
        self.accepted() as f64 / self.inputs.duration.as_secs_f64().max(0.001)
    }
}

fn tally(t: &Tally) -> String {
    t.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inputs;
        let c = &i.config;
        let reasons = self.cancel_reasons();
        let reason = |k: &str| reasons.get(k).copied().unwrap_or(0);
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "| {k:<34} | {v} |");

        writeln!(
            f,
            "soak: {} orders, seed {}{}, {:.1} s ({:.2} orders/s; placing and following {:.1} s)",
            c.orders,
            c.seed,
            i.shuffle_seed
                .map(|s| format!(" (shuffle seed {s})"))
                .unwrap_or_default(),
            i.duration.as_secs_f64(),
            self.orders_per_second(),
            i.placing.as_secs_f64()
        )?;
        writeln!(f)?;
        writeln!(f, "| fault class | injected |")?;
        writeln!(f, "|---|---|")?;
        let tokens: Tally = i
            .outcomes
            .iter()
            .filter(|o| o.order_id.is_some())
            .filter_map(|o| o.plan.card)
            .fold(Tally::new(), |mut t, k| {
                *t.entry(k.to_owned()).or_default() += 1;
                t
            });
        row(
            f,
            "handler crashes mid-batch",
            format!(
                "rate {} per message (after the first of a batch): {} crashes",
                c.crash_rate, i.crashes
            ),
        )?;
        row(
            f,
            "duplicate deliveries",
            format!(
                "{} ({} of SQS messages delivered twice)",
                on(c.duplicate_deliveries),
                c.duplicate_share
            ),
        )?;
        row(
            f,
            "delayed / reordered deliveries",
            format!(
                "{} (1 in 3 held back up to {} ms; batches scrambled); retry delay {} ms; \
                 {} batches per queue at once",
                on(c.shuffle_deliveries),
                c.max_hold.as_millis(),
                c.retry_delay.as_millis(),
                c.pollers
            ),
        )?;
        row(f, "card orders by token", tally(&tokens))?;
        row(
            f,
            "card provider faults",
            format!(
                "failure rate {}, latency {} ms, {} outages ({:.1} s down in all)",
                c.psp_failure_rate,
                c.psp_latency.as_millis(),
                i.outages.count,
                i.outages.total.as_secs_f64()
            ),
        )?;
        row(
            f,
            "courier shortage",
            format!(
                "{} couriers for {} orders in flight: {} NO_COURIER",
                i.couriers,
                c.concurrency,
                reason("NO_COURIER")
            ),
        )?;
        let asked = i.outcomes.iter().filter(|o| o.cancel.is_some()).count();
        let cancel_status: Tally =
            i.outcomes
                .iter()
                .filter_map(|o| o.cancel)
                .fold(Tally::new(), |mut t, s| {
                    *t.entry(s.to_string()).or_default() += 1;
                    t
                });
        row(
            f,
            "customer cancels",
            format!("{asked} asked ({})", tally(&cancel_status)),
        )?;
        row(
            f,
            "out of stock / insufficient funds",
            format!(
                "{} OUT_OF_STOCK (scarce item, {} units), {} INSUFFICIENT_FUNDS ({} customers)",
                reason("OUT_OF_STOCK"),
                c.scarce_stock,
                reason("INSUFFICIENT_FUNDS"),
                c.customers
            ),
        )?;
        let aws = match &i.aws {
            Some(a) => format!(
                "error rate {}, throttle rate {}, lost-response rate {}: {} errors, {} throttles, \
                 {} lost responses in {} function calls",
                c.aws_error_rate,
                c.aws_throttle_rate,
                c.aws_lost_response_rate,
                a.faults_of(FaultKind::Error),
                a.faults_of(FaultKind::Throttle),
                a.faults_of(FaultKind::LostResponse),
                a.total(Caller::Function)
            ),
            None => "no AWS proxy".to_owned(),
        };
        row(f, "AWS API errors / throttling", aws)?;
        writeln!(f)?;

        writeln!(f, "| orders | |")?;
        writeln!(f, "|---|---|")?;
        let placed: Tally = i.outcomes.iter().fold(Tally::new(), |mut t, o| {
            *t.entry(o.placed.to_string()).or_default() += 1;
            t
        });
        row(f, "placed (HTTP status)", tally(&placed))?;
        row(
            f,
            "final status of accepted orders",
            tally(&self.by_status()),
        )?;
        row(f, "cancel reasons", tally(&reasons))?;
        let failed = &i.checked.compensation_failed;
        let unalerted = i.checked.of(Invariant::CompensationFailedAlerted).len();
        row(
            f,
            "COMPENSATION_FAILED",
            format!(
                "{} ({} alerted on the ops topic)",
                failed.len(),
                failed.len().saturating_sub(unalerted)
            ),
        )?;
        let delivered_by_courier = i.outcomes.iter().filter(|o| o.completed).count();
        row(
            f,
            "completed by a courier",
            delivered_by_courier.to_string(),
        )?;
        // Orders the driver stopped following before they ended (past its deadline):
        // one left DISPATCHED then is the soak's doing, not the stack's.
        let unfollowed: Tally = i
            .outcomes
            .iter()
            .filter(|o| o.order_id.is_some() && !TERMINAL.contains(&o.last_status.as_str()))
            .fold(Tally::new(), |mut t, o| {
                *t.entry(o.last_status.clone()).or_default() += 1;
                t
            });
        if !unfollowed.is_empty() {
            row(
                f,
                "left unfinished by the driver",
                format!(
                    "{} (last seen {})",
                    unfollowed.values().sum::<usize>(),
                    tally(&unfollowed)
                ),
            )?;
        }
        let mut took: Vec<f64> = i
            .outcomes
            .iter()
            .filter(|o| o.order_id.is_some())
            .map(|o| o.took.as_secs_f64())
            .collect();
        took.sort_by(|a, b| a.total_cmp(b));
        if !took.is_empty() {
            let q = |p: f64| took[((took.len() - 1) as f64 * p) as usize];
            row(
                f,
                "placed to terminal (s)",
                format!("p50 {:.1}, p90 {:.1}, max {:.1}", q(0.5), q(0.9), q(1.0)),
            )?;
        }
        writeln!(f)?;

        writeln!(
            f,
            "| function | messages handled | redelivered | failed (retried) |"
        )?;
        writeln!(f, "|---|---|---|---|")?;
        for (name, n) in &i.counts {
            writeln!(
                f,
                "| {name} | {} | {} | {} |",
                n.handled, n.redelivered, n.failed
            )?;
        }
        writeln!(f)?;
        let parked: usize = self.dead_letters.values().map(Vec::len).sum();
        let lost: BTreeSet<&str> = self
            .dead_letters
            .values()
            .flatten()
            .filter(|(_, s)| !TERMINAL.contains(&s.as_str()))
            .map(|(id, _)| id.as_str())
            .collect();
        writeln!(
            f,
            "dead letters: {parked} ({} of orders that never ended)",
            lost.len()
        )?;
        for (q, ids) in &self.dead_letters {
            let by: Tally = ids.iter().fold(Tally::new(), |mut t, (_, s)| {
                *t.entry(s.clone()).or_default() += 1;
                t
            });
            writeln!(f, "  {q}: {} ({})", ids.len(), tally(&by))?;
        }
        writeln!(f)?;
        writeln!(f, "violations: {}", self.violations.len())?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}
