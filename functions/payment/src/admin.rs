//! `POST /v1/admin/wallets/{customerId}/credits` `{amount, reason}`: an ADMIN puts money
//! into a customer's wallet, with the reason recorded in the ledger beside who did it.
//!
//! With an `Idempotency-Key` the credit id comes from the ADMIN, the customer and the
//! key, and the credit's record is written in the same transaction as the money, so a
//! retried request credits once and answers the first credit (`Idempotent-Replayed`);
//! the key with another request is `422 IDEMPOTENCY_KEY_REUSED`.

use crate::ledger::LedgerEntry;
use crate::requests::parse_admin_credit;
use crate::routes::{customer_param, EntryView};
use crate::wallet_metrics::{self, Operation};
use crate::wallets::{AdminCredit, Credit, MAX_BALANCE};
use crate::App;
use dishpatch::envelope::now;
use dishpatch::error::{Problem, ProblemCode};
use dishpatch::http::{body_bytes, caller, json, Role};
use dishpatch::idempotency::http::{idempotency_key, key_reused_problem, replayed};
use lambda_http::{Body, Request, Response};

/// Names credit ids made from an `Idempotency-Key` (a fixed, random namespace).
const CREDIT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x1f7b_9c24_e05d_4a83_b6c2_7d18_e9a4_3f60);

pub fn credit_id_for(admin: &str, customer_id: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => dishpatch::keys::derived_id(CREDIT_NAMESPACE, &[admin, customer_id, k]),
        None => uuid::Uuid::new_v4().to_string(),
    }
}

pub async fn credit(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    if !who.roles.contains(&Role::Admin) {
        return Err(Problem::forbidden("only an ADMIN may credit a wallet"));
    }
    let customer_id = customer_param(req)?;
    let key = idempotency_key(req)?;
    let request = parse_admin_credit(body_bytes(req))?;
    let credit_id = credit_id_for(&who.sub, &customer_id, key.as_deref());
    let fingerprint = request.fingerprint(&customer_id);
    if let Some(earlier) = app.wallets.admin_credit(&customer_id, &credit_id).await? {
        return replay(&earlier, &fingerprint);
    }
    let record = AdminCredit {
        credit_id: credit_id.clone(),
        fingerprint: fingerprint.clone(),
        entry: LedgerEntry::admin_credit(
            &customer_id,
            &credit_id,
            &request.amount,
            &request.reason,
            &who.sub,
            &now(),
        ),
    };
    match app.wallets.credit_admin(&record).await? {
        Credit::Credited => {
            wallet_metrics::record(Operation::Credit, true, &customer_id);
            tracing::info!(customer_id = %customer_id, admin = %who.sub, credit_id = %credit_id,
                amount = request.amount.amount, currency = %request.amount.currency,
                reason = %request.reason, "wallet credited by an admin");
            Ok(json(201, &EntryView::from(record.entry)))
        }
        Credit::AlreadySettled => match app.wallets.admin_credit(&customer_id, &credit_id).await? {
            Some(earlier) => replay(&earlier, &fingerprint),
            None => Err(Problem::internal()),
        },
        refused => {
            wallet_metrics::record(Operation::Credit, false, &customer_id);
            Err(refusal(refused))
        }
    }
}

/// Why the wallet could not take a credit.
fn refusal(credit: Credit) -> Problem {
    if credit == Credit::CurrencyMismatch {
        Problem::unprocessable(
            ProblemCode::CurrencyMismatch,
            "the wallet holds another currency",
        )
        .with_field("amount.currency")
    } else {
        Problem::unprocessable(
            ProblemCode::WalletLimitExceeded,
            format!("the wallet may hold at most {MAX_BALANCE} (minor units)"),
        )
        .with_field("amount.amount")
    }
}

fn replay(earlier: &AdminCredit, fingerprint: &str) -> Result<Response<Body>, Problem> {
    if earlier.fingerprint != fingerprint {
        return Err(key_reused_problem());
    }
    Ok(replayed(json(201, &EntryView::from(earlier.entry.clone()))))
}
