//! The saga's payment commands: CapturePayment and RefundPayment.
//!
//! Idempotency: the payment record (one per order) is the guard. A duplicate command
//! finds it and re-publishes the recorded outcome, so a crash between the write and the
//! publish heals when the command is retried; the wallet moves only with the record.
//!
//! # Cards
//!
//! A card is charged through the [`PaymentProvider`], every call keyed by the order
//! (`{orderId}:capture`, `{orderId}:refund`) so the provider acts at most once per key.
//!
//! * **Capture**: write the record `PENDING` first (conditional put: only if the order
//!   has no payment), then charge. Captured → `CAPTURED` with the charge id, declined →
//!   `DECLINED` with `CARD_DECLINED: <code>`, each a write conditional on still being
//!   `PENDING`, then the fact. No answer (provider down, breaker open, out of time) →
//!   the message fails transiently and SQS brings it back later, the record stays
//!   `PENDING`, and the order waits (the saga's step deadline bounds the wait). A
//!   command that finds `PENDING` (redelivery, or a crash after the charge) charges again
//!   with the same key: the provider returns the first charge if there was one, so a
//!   lost answer never charges twice. A command that finds any other record (a settled
//!   payment, or a refund's tombstone) only re-publishes its outcome.
//! * **Refund** of a `CAPTURED` card: refund through the provider, then `REFUNDED`
//!   (conditional on `CAPTURED`), then `PaymentRefunded`.
//! * **Refund that finds `PENDING`** (the capture's outcome is unknown: its answer was
//!   lost, or it is still running): the rule is *settle first, then refund*. The refund
//!   repeats the capture's exact keyed request (the record keeps the card token while
//!   `PENDING` for this), which either returns the charge that happened or charges now;
//!   records that outcome like the capture would; and starts over on the settled record:
//!   a `CAPTURED` one is refunded, a `DECLINED` one confirms a refund of 0. So no refund
//!   is confirmed while money may still be taken, and none is left taken. If the
//!   provider cannot answer, the refund fails transiently and is retried (the saga's
//!   undo deadline and `COMPENSATION_FAILED` alert bound that).

use crate::payments::{Capture, Payment, PaymentStatus};
use crate::provider::{refund_key, Charge, ChargeOutcome, ProviderError, RefundOutcome};
use crate::wallet_metrics::{self, Operation};
use crate::App;
use dishpatch::envelope::{data, now, Envelope, MessageType};
use dishpatch::money::{is_currency_code, Money};
use dishpatch::order::PaymentMethod;
use dishpatch::runtime::MessageError;
use dishpatch::validation::is_valid_card_token;
use dishpatch::worker::{kept_changing, stored};

pub const INSUFFICIENT_FUNDS: &str = "INSUFFICIENT_FUNDS";
/// The stable prefix of every card decline reason: `CARD_DECLINED: <provider code>`.
pub const CARD_DECLINED: &str = "CARD_DECLINED";
/// The code of a card command that came without a usable token.
pub const MISSING_CARD_TOKEN: &str = "missing_card_token";
/// Re-reads of a record whose state changed under us, before giving up for a retry.
const ATTEMPTS: usize = 3;

/// `CARD_DECLINED: insufficient_funds`.
pub fn card_declined(code: &str) -> String {
    format!("{CARD_DECLINED}: {code}")
}

pub async fn capture(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    let req: data::CapturePayment = cmd.data_as()?;
    if req.amount.amount < 0 || !is_currency_code(&req.amount.currency) {
        // A negative debit would credit the wallet: never act on such a command.
        return Err(MessageError::invalid_content(format!(
            "invalid amount {:?}",
            req.amount
        )));
    }
    if req.method == PaymentMethod::Card {
        return capture_card(app, cmd, req).await;
    }
    let payment = Payment::captured(order_id, &req.customer_id, req.amount, req.method, now());
    match app.payments.capture_from_wallet(&payment).await? {
        Capture::Captured => {
            wallet_metrics::record(Operation::Capture, true, &payment.customer_id);
            tracing::info!(amount = payment.amount, currency = %payment.currency, "payment captured");
            republish(app, cmd, &payment).await
        }
        Capture::Exists => {
            tracing::info!("duplicate capture; re-publishing the recorded outcome");
            republish_stored(app, cmd).await
        }
        Capture::Refused => {
            wallet_metrics::record(Operation::Capture, false, &payment.customer_id);
            decline(app, cmd, payment, INSUFFICIENT_FUNDS).await
        }
    }
}

async fn capture_card(
    app: &App,
    cmd: &Envelope,
    req: data::CapturePayment,
) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    let amount = req.amount;
    let Some(token) = req.card_token.as_deref().filter(|t| is_valid_card_token(t)) else {
        // The API refuses such orders; an order from before cards existed may still send
        // one. Declined on record: it can never be charged.
        let payment = Payment::captured(
            order_id,
            &req.customer_id,
            amount,
            PaymentMethod::Card,
            now(),
        );
        return decline(app, cmd, payment, &card_declined(MISSING_CARD_TOKEN)).await;
    };
    let pending = Payment::pending_card(order_id, &req.customer_id, amount, token, now());
    let current = if app.payments.record(&pending).await? {
        tracing::debug!(amount = pending.amount, currency = %pending.currency, "card payment pending; charging");
        pending
    } else {
        match stored(app.payments.get(order_id).await?, "payment")? {
            p if p.status == PaymentStatus::Pending => {
                tracing::info!(
                    "card payment still PENDING (an earlier try got no answer); charging again with the same key"
                );
                p
            }
            p => {
                tracing::info!(
                    status = p.status.as_str(),
                    "duplicate capture; re-publishing the recorded outcome"
                );
                return republish(app, cmd, &p).await;
            }
        }
    };
    let settled = settle_pending(app, current).await?;
    republish(app, cmd, &settled).await
}

/// Asks the provider for the outcome of a PENDING card payment (by repeating its keyed
/// charge) and records it, conditional on the record still being PENDING. Returns the
/// settled record: this one, or the one a concurrent command settled first.
async fn settle_pending(app: &App, pending: Payment) -> Result<Payment, MessageError> {
    let order_id = pending.order_id.clone();
    let order_id = order_id.as_str();
    let Some(token) = pending.card_token.as_deref() else {
        tracing::error!("PENDING card payment without its card token");
        return Err(MessageError::Transient(
            "PENDING card payment without its card token".into(),
        ));
    };
    let charge = Charge::for_order(order_id, pending.money(), token);
    let outcome = app
        .provider
        .authorize_capture(&charge)
        .await
        .map_err(|e| provider_failed(order_id, "capture", e))?;
    let settled = match outcome {
        ChargeOutcome::Captured { charge_id } => Payment {
            status: PaymentStatus::Captured,
            charge_id: Some(charge_id),
            card_token: None,
            updated_at: now(),
            ..pending
        },
        ChargeOutcome::Declined { code } => Payment {
            status: PaymentStatus::Declined,
            reason: Some(card_declined(&code)),
            card_token: None,
            updated_at: now(),
            ..pending
        },
    };
    if app
        .payments
        .replace(&settled, PaymentStatus::Pending)
        .await?
    {
        match settled.status {
            PaymentStatus::Captured => tracing::info!(
                charge_id = settled.charge_id.as_deref(),
                amount = settled.amount,
                currency = %settled.currency,
                "card payment captured"
            ),
            _ => tracing::info!(reason = settled.reason.as_deref(), "card payment declined"),
        }
        return Ok(settled);
    }
    // Settled meanwhile by a concurrent duplicate or a refund (the same keyed charge, so
    // the same outcome): theirs is the record.
    match app.payments.get(order_id).await? {
        Some(p) if p.status != PaymentStatus::Pending => Ok(p),
        _ => Err(kept_changing("payment")),
    }
}

/// No decision from the provider: the message is retried later, the record left as is.
fn provider_failed(order_id: &str, operation: &str, e: ProviderError) -> MessageError {
    if e.needs_operator() {
        tracing::error!(order_id, operation, error = %e, "payment provider refused the call; retrying later, operators must look");
    } else {
        tracing::warn!(order_id, operation, error = %e, "payment provider unavailable; retrying later");
    }
    MessageError::Transient(format!("card {operation}: {e}"))
}

/// Refunds a CAPTURED card payment through the provider and records it (conditional on
/// CAPTURED). False if the record changed meanwhile (a concurrent refund won).
async fn refund_card(app: &App, p: &Payment) -> Result<bool, MessageError> {
    let order_id = p.order_id.as_str();
    let Some(charge_id) = p.charge_id.as_deref() else {
        tracing::error!("CAPTURED card payment without a charge id");
        return Err(MessageError::Transient(
            "captured card payment without a charge id".into(),
        ));
    };
    let outcome = app
        .provider
        .refund(charge_id, &p.money(), &refund_key(order_id))
        .await
        .map_err(|e| provider_failed(order_id, "refund", e))?;
    match outcome {
        RefundOutcome::Refunded { refund_id } => {
            let refunded = Payment {
                status: PaymentStatus::Refunded,
                refund_id: Some(refund_id),
                updated_at: now(),
                ..p.clone()
            };
            Ok(app
                .payments
                .replace(&refunded, PaymentStatus::Captured)
                .await?)
        }
        RefundOutcome::UnknownCharge => {
            tracing::error!(
                charge_id,
                "payment provider knows no such charge; cannot refund, operators must look"
            );
            Err(MessageError::Transient(format!(
                "card refund: the provider knows no charge {charge_id}"
            )))
        }
    }
}

/// Records the refusal (conditional: a concurrent duplicate may have captured meanwhile,
/// and its outcome is the one to repeat) and publishes it.
async fn decline(
    app: &App,
    cmd: &Envelope,
    payment: Payment,
    reason: &str,
) -> Result<(), MessageError> {
    let declined = Payment {
        status: PaymentStatus::Declined,
        reason: Some(reason.to_owned()),
        ..payment
    };
    if app.payments.record(&declined).await? {
        tracing::info!(reason, "payment declined");
        republish(app, cmd, &declined).await
    } else {
        republish_stored(app, cmd).await
    }
}

pub async fn refund(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    for _ in 0..ATTEMPTS {
        let refunded = match app.payments.get(order_id).await? {
            Some(p) if p.status == PaymentStatus::Pending => {
                // The card capture's outcome is unknown: settle it first (see the module
                // docs), then decide again on the settled record.
                tracing::info!(
                    "refund finds the card payment PENDING; learning the capture's outcome first"
                );
                settle_pending(app, p).await?;
                continue;
            }
            Some(p) if p.status == PaymentStatus::Captured => {
                let done = match p.method {
                    Some(PaymentMethod::Card) => refund_card(app, &p).await?,
                    _ => {
                        let done = app.payments.refund_to_wallet(&p).await?;
                        if done {
                            wallet_metrics::record(Operation::Refund, true, &p.customer_id);
                        }
                        done
                    }
                };
                if !done {
                    // A duplicate refunded it meanwhile: decide again on the fresh record.
                    continue;
                }
                tracing::info!(amount = p.amount, currency = %p.currency, "payment refunded");
                p.money()
            }
            Some(p) if p.status == PaymentStatus::Refunded => {
                tracing::info!("duplicate refund; already refunded");
                p.money()
            }
            // Declined: nothing was taken, so nothing goes back; the fact still confirms the
            // step to the saga, as zero in the payment's currency.
            Some(p) => Money::new(0, &*p.currency),
            // No capture yet, or ever: it may still be in flight (the saga refunds a capture
            // that missed its deadline). Cancel wins: leave a tombstone so that capture,
            // when it lands, finds a record and takes nothing.
            None => {
                let tombstone = Payment::tombstone(order_id, now());
                if !app.payments.record(&tombstone).await? {
                    // The capture landed meanwhile: refund it on the fresh record.
                    continue;
                }
                tracing::info!("refund before any capture; tombstone left");
                tombstone.money()
            }
        };
        let fact = cmd.follow(
            MessageType::PaymentRefunded,
            data::Amount { amount: refunded },
        );
        app.outlets.publisher.publish(&fact).await?;
        return Ok(());
    }
    Err(kept_changing("payment"))
}

/// Reads the record a duplicate (or a concurrent one) wrote and re-publishes its outcome.
async fn republish_stored(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let p = stored(app.payments.get(&cmd.order_id).await?, "payment")?;
    republish(app, cmd, &p).await
}

/// Publishes the capture outcome a record stands for. A refunded payment was, as a
/// capture step, a success: repeating that is what the saga expects. A tombstone answers
/// the same, of 0; the saga's second refund then finds it and only confirms.
async fn republish(app: &App, cmd: &Envelope, p: &Payment) -> Result<(), MessageError> {
    let fact = match p.status {
        PaymentStatus::Pending => {
            return Err(MessageError::Transient(
                "the card payment's outcome is not known yet; retrying".into(),
            ))
        }
        PaymentStatus::Declined => cmd.follow(
            MessageType::PaymentDeclined,
            data::Rejected {
                reason: p
                    .reason
                    .clone()
                    .unwrap_or_else(|| INSUFFICIENT_FUNDS.into()),
            },
        ),
        PaymentStatus::Captured | PaymentStatus::Refunded => cmd.follow(
            MessageType::PaymentCaptured,
            data::Amount { amount: p.money() },
        ),
    };
    app.outlets.publisher.publish(&fact).await?;
    Ok(())
}
