//! The saga's payment commands: CapturePayment and RefundPayment.
//!
//! Idempotency: the payment record (one per order) is the guard. A duplicate command
//! finds it and re-publishes the recorded outcome, so a crash between the write and the
//! publish heals when the command is retried; the wallet moves only with the record.

use crate::payments::{Capture, Payment, PaymentStatus};
use crate::App;
use dishpatch::envelope::{data, now, DecodeError, Envelope, MessageType};
use dishpatch::money::{is_currency_code, Money};
use dishpatch::order::PaymentMethod;
use dishpatch::runtime::MessageError;

pub const INSUFFICIENT_FUNDS: &str = "INSUFFICIENT_FUNDS";
pub const CARD_NOT_SUPPORTED: &str = "CARD_NOT_SUPPORTED";
/// Re-reads of a record whose state changed under us, before giving up for a retry.
const ATTEMPTS: usize = 3;

pub async fn capture(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    let req: data::CapturePayment = cmd.data_as()?;
    if req.amount.amount < 0 || !is_currency_code(&req.amount.currency) {
        // A negative debit would credit the wallet: never act on such a command.
        return Err(DecodeError::Malformed(format!("invalid amount {:?}", req.amount)).into());
    }
    let payment = Payment::captured(order_id, &req.customer_id, req.amount, req.method, now());
    match req.method {
        PaymentMethod::Wallet => match app.payments.capture_from_wallet(&payment).await? {
            Capture::Captured => {
                tracing::info!(order_id, amount = payment.amount, currency = %payment.currency, "payment captured");
                republish(app, cmd, &payment).await
            }
            Capture::Exists => {
                tracing::info!(
                    order_id,
                    "duplicate capture; re-publishing the recorded outcome"
                );
                republish_stored(app, cmd).await
            }
            Capture::Refused => decline(app, cmd, payment, INSUFFICIENT_FUNDS).await,
        },
        // Card payments go through an external provider behind a `PaymentProvider` port
        // (charge/refund keyed by the order id, with the timeout, retry and circuit breaker
        // of the design) in a later change. Until then they are declined, on record, so
        // duplicates answer the same.
        PaymentMethod::Card => decline(app, cmd, payment, CARD_NOT_SUPPORTED).await,
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
        tracing::info!(order_id = %declined.order_id, reason, "payment declined");
        republish(app, cmd, &declined).await
    } else {
        republish_stored(app, cmd).await
    }
}

pub async fn refund(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    for _ in 0..ATTEMPTS {
        let refunded = match app.payments.get(order_id).await? {
            Some(p) if p.status == PaymentStatus::Captured => {
                if p.method != Some(PaymentMethod::Wallet) {
                    // Nothing captures by card yet; when the provider comes, so does this path.
                    tracing::error!(order_id, "card refund without a payment provider");
                    return Err(MessageError::Transient(
                        "card refunds need the payment provider".into(),
                    ));
                }
                if !app.payments.refund_to_wallet(&p).await? {
                    // A duplicate refunded it meanwhile: decide again on the fresh record.
                    continue;
                }
                tracing::info!(order_id, amount = p.amount, currency = %p.currency, "payment refunded");
                p.money()
            }
            Some(p) if p.status == PaymentStatus::Refunded => {
                tracing::info!(order_id, "duplicate refund; already refunded");
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
                tracing::info!(order_id, "refund before any capture; tombstone left");
                tombstone.money()
            }
        };
        let fact = cmd.follow(
            MessageType::PaymentRefunded,
            data::Amount { amount: refunded },
        );
        app.publisher.publish(&fact).await?;
        return Ok(());
    }
    Err(MessageError::Transient(
        "payment kept changing; retrying".into(),
    ))
}

/// Reads the record a duplicate (or a concurrent one) wrote and re-publishes its outcome.
async fn republish_stored(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    match app.payments.get(&cmd.order_id).await? {
        Some(p) => republish(app, cmd, &p).await,
        None => Err(MessageError::Transient(
            "payment record vanished; retrying".into(),
        )),
    }
}

/// Publishes the capture outcome a record stands for. A refunded payment was, as a
/// capture step, a success: repeating that is what the saga expects. A tombstone answers
/// the same, of 0; the saga's second refund then finds it and only confirms.
async fn republish(app: &App, cmd: &Envelope, p: &Payment) -> Result<(), MessageError> {
    let fact = match p.status {
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
    app.publisher.publish(&fact).await?;
    Ok(())
}
