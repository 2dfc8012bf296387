//! The checker of one stack: its tables and its queues, so it also reports dead
//! letters and can wait until nothing moves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use dishpatch_template::names::{physical_name, StackNames, QUEUE_NAME_MAX};
use dishpatch_template::Template;

use crate::messages::{order_id_of, peek, queue_depth};
use crate::{check, AlertTap, CheckOptions, Error, Invariant, Report, Result, Tables};

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
    pub fn for_stack(sdk: &SdkConfig, stack: &impl StackNames) -> Checker {
        let dlqs: BTreeSet<String> = dead_letter_ids(stack.template());
        let mut queues = BTreeMap::new();
        let mut dead_letter_queues = BTreeMap::new();
        for (id, url) in stack.queue_urls() {
            if dlqs.contains(&id) {
                dead_letter_queues.insert(id, url);
            } else {
                queues.insert(id, url);
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
            let name = physical_name(prefix, &q.logical_id, QUEUE_NAME_MAX, suffix);
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
            out.insert(id.clone(), queue_depth(&self.sqs, url, id).await?);
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

pub(crate) fn dead_letter_ids(template: &Template) -> BTreeSet<String> {
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

pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut cut = n;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}
