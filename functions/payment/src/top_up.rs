//! `POST /v1/wallet/top-ups`: a paid top-up, charged to a card inside the request.
//!
//! Synchronous on purpose: the customer is at the screen waiting for the money, card
//! calls are bounded (5 s a try, retries within the invocation), and the request either
//! credits the wallet or says plainly why not. A provider outage answers `503` with
//! `Retry-After` and leaves the top-up PENDING; nothing is credited.
//!
//! Exactly once: the top-up id comes from the caller and the `Idempotency-Key`, its
//! record is written PENDING before the charge, the charge is keyed by the top-up at the
//! provider (which answers a repeat with the first charge), and the credit is one
//! transaction conditional on the record still being PENDING. So a retry — after a lost
//! answer, a timeout or an outage — repeats the same charge and credits at most once; a
//! settled top-up answers its recorded outcome (`Idempotent-Replayed: true`), and the
//! key with another request is `422 IDEMPOTENCY_KEY_REUSED`.

use crate::ledger::LedgerEntry;
use crate::provider::{Charge, ChargeOutcome, ProviderError, RefundOutcome};
use crate::requests::{parse_top_up, TopUpRequest};
use crate::routes::TopUpView;
use crate::topups::{TopUp, TopUpStatus};
use crate::wallet_metrics::{self, Operation};
use crate::wallets::{Credit, MAX_BALANCE};
use crate::App;
use dishpatch::envelope::{data, now, Envelope, MessageType};
use dishpatch::error::{Problem, ProblemCode, StoreError};
use dishpatch::http::{body_bytes, caller, json, Role};
use dishpatch::idempotency::http::{idempotency_key, key_reused_problem, replayed};
use dishpatch::runtime::MessageError;
use dishpatch::validation::is_valid_id;
use lambda_http::{Body, Request, Response};

/// What a client is told to wait after an outage when the breaker gives no better figure.
const RETRY_AFTER_SECS: u64 = 5;

/// Names top-up ids made from an `Idempotency-Key` (a fixed, random namespace).
const TOP_UP_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x8c2e_41d7_5a90_4b3f_9e16_d4a7_02c5_b819);

/// The id of the top-up a request makes: derived from the caller and the key, so every
/// retry names the same top-up; random without a key.
pub fn top_up_id_for(customer_id: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => dishpatch::keys::derived_id(TOP_UP_NAMESPACE, &[customer_id, k]),
        None => uuid::Uuid::new_v4().to_string(),
    }
}

pub async fn top_up(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    who.require(&[Role::Customer])?;
    let key = idempotency_key(req)?;
    let request = parse_top_up(body_bytes(req))?;
    let id = top_up_id_for(&who.sub, key.as_deref());
    let record = match app.top_ups.get(&who.sub, &id).await? {
        Some(earlier) => {
            if earlier.fingerprint != request.fingerprint() {
                return Err(key_reused_problem());
            }
            if earlier.status != TopUpStatus::Pending {
                return answer(&earlier).map(replayed);
            }
            earlier
        }
        None => {
            admissible(app, &who.sub, &request).await?;
            let at = now();
            let fresh = TopUp {
                top_up_id: id.clone(),
                customer_id: who.sub.clone(),
                amount: request.amount.amount,
                currency: request.amount.currency.clone(),
                status: TopUpStatus::Pending,
                fingerprint: request.fingerprint(),
                card_token: Some(request.card_token.clone()),
                charge_id: None,
                reason: None,
                created_at: at.clone(),
                updated_at: at,
            };
            if !app.top_ups.begin(&fresh).await? {
                // A concurrent run of this request wrote it first: carry on with its record.
                match app.top_ups.get(&who.sub, &id).await? {
                    Some(r) if r.status != TopUpStatus::Pending => return answer(&r).map(replayed),
                    Some(r) => r,
                    None => return Err(Problem::internal()),
                }
            } else {
                fresh
            }
        }
    };
    match settle(app, &record).await? {
        Settlement::Settled(done) => answer(&done),
        Settlement::ByAnother(done) => answer(&done).map(replayed),
        Settlement::Unavailable(e) => {
            enqueue_settle(app, &record).await;
            Err(unavailable(&record, &e))
        }
    }
}

/// What charging a PENDING top-up came to.
pub enum Settlement {
    /// Settled by this run (CREDITED, DECLINED or REFUNDED).
    Settled(TopUp),
    /// Another run settled it first: its record.
    ByAnother(TopUp),
    /// The provider gave no decision: still PENDING.
    Unavailable(ProviderError),
}

/// Charges a PENDING top-up with its own card token and key (the provider answers a
/// charge that already happened with that charge) and settles it: credited, declined,
/// or refunded when the wallet can no longer take it.
pub async fn settle(app: &App, pending: &TopUp) -> Result<Settlement, StoreError> {
    let Some(token) = pending.card_token.clone() else {
        return Err(StoreError::Corrupt(format!(
            "PENDING top-up {} has no card token",
            pending.top_up_id
        )));
    };
    let charge = Charge {
        order_id: pending.provider_key(),
        amount: pending.money(),
        card_token: token,
        idempotency_key: pending.provider_key(),
    };
    match app.provider.authorize_capture(&charge).await {
        Ok(ChargeOutcome::Captured { charge_id }) => credit(app, pending, charge_id).await,
        Ok(ChargeOutcome::Declined { code }) => {
            tracing::info!(top_up_id = %pending.top_up_id, code = %code, "top-up declined");
            let declined = pending.settled(TopUpStatus::Declined, None, Some(code), &now());
            record_settled(app, declined).await
        }
        Err(e) => Ok(Settlement::Unavailable(e)),
    }
}

/// Asks the payment queue to settle the top-up later, so a charge that happened during
/// an outage is credited even if the customer never retries. Best effort: the customer's
/// retry with the same key settles it too.
async fn enqueue_settle(app: &App, pending: &TopUp) {
    let cmd = Envelope::new(
        MessageType::SettleTopUp,
        &pending.provider_key().replace(':', "-"),
        data::SettleTopUp {
            customer_id: pending.customer_id.clone(),
            top_up_id: pending.top_up_id.clone(),
        },
    );
    if let Err(e) = app.outlets.publisher.publish(&cmd).await {
        tracing::error!(top_up_id = %pending.top_up_id, error = %e, "could not queue the top-up's settlement; it waits for a retry");
    }
}

/// `SettleTopUp` from the payment queue: settles a top-up left PENDING by an outage. No
/// decision yet is a transient failure (the queue brings it back, then parks it in the DLQ
/// with the reason for an operator's redrive).
pub async fn settle_queued(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let req: data::SettleTopUp = cmd.data_as()?;
    if !is_valid_id(&req.customer_id) || !is_valid_id(&req.top_up_id) {
        return Err(MessageError::invalid_content(
            "customerId or topUpId is not an id",
        ));
    }
    let Some(top_up) = app.top_ups.get(&req.customer_id, &req.top_up_id).await? else {
        return Err(MessageError::unknown_reference(format!(
            "no top-up {}",
            req.top_up_id
        )));
    };
    if top_up.status != TopUpStatus::Pending {
        return Ok(());
    }
    match settle(app, &top_up).await? {
        Settlement::Settled(t) | Settlement::ByAnother(t) => {
            tracing::info!(top_up_id = %t.top_up_id, status = t.status.as_str(), "queued top-up settled");
            Ok(())
        }
        Settlement::Unavailable(e) => Err(MessageError::Transient(e.to_string())),
    }
}

/// Refuses before anything is written what the wallet could not take.
async fn admissible(app: &App, customer_id: &str, request: &TopUpRequest) -> Result<(), Problem> {
    let Some(wallet) = app.wallets.get(customer_id).await? else {
        return Ok(());
    };
    let refused = if wallet.currency != request.amount.currency {
        currency_mismatch(&wallet.currency)
    } else if wallet.balance.saturating_add(request.amount.amount) > MAX_BALANCE {
        limit_exceeded()
    } else {
        return Ok(());
    };
    wallet_metrics::record(Operation::TopUp, false, customer_id);
    Err(refused)
}

/// Charged: credit the wallet (PENDING -> CREDITED with the entry). If the wallet can no
/// longer take it (a concurrent credit reached the limit), the charge is given back.
async fn credit(app: &App, pending: &TopUp, charge_id: String) -> Result<Settlement, StoreError> {
    let at = now();
    let credited = pending.settled(TopUpStatus::Credited, Some(charge_id.clone()), None, &at);
    let entry = LedgerEntry::top_up(
        &pending.customer_id,
        &pending.top_up_id,
        &charge_id,
        &pending.money(),
        &at,
    );
    let reason = match app.top_ups.credit(&credited, &entry).await? {
        Credit::Credited => {
            wallet_metrics::record(Operation::TopUp, true, &pending.customer_id);
            tracing::info!(top_up_id = %pending.top_up_id, customer_id = %pending.customer_id,
                amount = pending.amount, currency = %pending.currency, "wallet topped up");
            return Ok(Settlement::Settled(credited));
        }
        Credit::AlreadySettled => return settled_elsewhere(app, pending).await,
        // The stored reason is the code the replayed answer carries.
        Credit::CurrencyMismatch => ProblemCode::CurrencyMismatch.as_str(),
        Credit::LimitExceeded => ProblemCode::WalletLimitExceeded.as_str(),
    };
    wallet_metrics::record(Operation::TopUp, false, &pending.customer_id);
    let refund_key = format!("{}:refund", pending.provider_key());
    match app
        .provider
        .refund(&charge_id, &pending.money(), &refund_key)
        .await
    {
        Ok(RefundOutcome::Refunded { .. }) | Ok(RefundOutcome::UnknownCharge) => {
            tracing::warn!(top_up_id = %pending.top_up_id, reason, "top-up charged but not creditable: refunded");
            let refunded = pending.settled(
                TopUpStatus::Refunded,
                Some(charge_id),
                Some(reason.into()),
                &now(),
            );
            record_settled(app, refunded).await
        }
        // The record stays PENDING: a retry charges (deduplicated) and tries again.
        Err(e) => Ok(Settlement::Unavailable(e)),
    }
}

async fn record_settled(app: &App, settled: TopUp) -> Result<Settlement, StoreError> {
    if app.top_ups.settle(&settled).await? {
        Ok(Settlement::Settled(settled))
    } else {
        settled_elsewhere(app, &settled).await
    }
}

/// Another run settled the top-up first: its outcome is the answer.
async fn settled_elsewhere(app: &App, top_up: &TopUp) -> Result<Settlement, StoreError> {
    match app
        .top_ups
        .get(&top_up.customer_id, &top_up.top_up_id)
        .await?
    {
        Some(r) if r.status != TopUpStatus::Pending => Ok(Settlement::ByAnother(r)),
        _ => Err(StoreError::Corrupt(format!(
            "top-up {} vanished or is still PENDING after a settle conflict",
            top_up.top_up_id
        ))),
    }
}

/// The answer a settled top-up gives, from its record alone.
fn answer(t: &TopUp) -> Result<Response<Body>, Problem> {
    match t.status {
        TopUpStatus::Credited => Ok(json(201, &TopUpView::from(t))),
        TopUpStatus::Declined => Err(Problem::new(
            402,
            ProblemCode::CardDeclined,
            format!(
                "the card was declined ({}); nothing was charged",
                t.reason.as_deref().unwrap_or("declined")
            ),
        )
        .with_field("cardToken")),
        TopUpStatus::Refunded
            if t.reason.as_deref() == Some(ProblemCode::CurrencyMismatch.as_str()) =>
        {
            Err(Problem::unprocessable(
                ProblemCode::CurrencyMismatch,
                "the wallet holds another currency; the charge was refunded",
            )
            .with_field("amount.currency"))
        }
        TopUpStatus::Refunded => Err(Problem::unprocessable(
            ProblemCode::WalletLimitExceeded,
            format!(
                "the wallet may hold at most {MAX_BALANCE} (minor units); the charge was refunded"
            ),
        )
        .with_field("amount.amount")),
        TopUpStatus::Pending => Err(Problem::internal()),
    }
}

fn currency_mismatch(held: &str) -> Problem {
    Problem::unprocessable(
        ProblemCode::CurrencyMismatch,
        format!("the wallet holds {held}; a top-up cannot change its currency"),
    )
    .with_field("amount.currency")
}

fn limit_exceeded() -> Problem {
    Problem::unprocessable(
        ProblemCode::WalletLimitExceeded,
        format!("the wallet may hold at most {MAX_BALANCE} (minor units)"),
    )
    .with_field("amount.amount")
}

/// The provider gave no decision: nothing credited, the top-up stays PENDING, and a retry
/// with the same `Idempotency-Key` settles it.
fn unavailable(t: &TopUp, e: &ProviderError) -> Problem {
    let retry_after = match e {
        ProviderError::CircuitOpen { retry_after } => retry_after.as_secs().max(1),
        _ => RETRY_AFTER_SECS,
    };
    if e.needs_operator() {
        tracing::error!(top_up_id = %t.top_up_id, error = %e, "top-up: payment provider refused or not configured");
    } else {
        tracing::warn!(top_up_id = %t.top_up_id, error = %e, "top-up: payment provider unavailable");
    }
    Problem::new(
        503,
        ProblemCode::PaymentProviderUnavailable,
        format!(
            "the card could not be charged now; nothing was credited. Retry with the same Idempotency-Key (top-up {})",
            t.top_up_id
        ),
    )
    .with_retry_after(retry_after)
}
