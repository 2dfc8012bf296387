//! The HTTP routes, keyed by the API Gateway route key: the caller's own wallet.

use crate::wallets::{TopUp, Wallet, DEFAULT_CURRENCY};
use crate::App;
use dishpatch::error::Problem;
use dishpatch::http::{body_bytes, caller, json, route_key, Role};
use dishpatch::money::{is_currency_code, Money};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::Value;

pub const MAX_TOP_UP: i64 = 1_000_000;

pub async fn route(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    match route_key(req).as_str() {
        "GET /v1/wallet" => get_wallet(app, req).await,
        "POST /v1/wallet/top-ups" => top_up(app, req).await,
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WalletView {
    customer_id: String,
    balance: Money,
}

impl From<Wallet> for WalletView {
    fn from(w: Wallet) -> Self {
        WalletView {
            customer_id: w.customer_id,
            balance: Money::new(w.balance, w.currency),
        }
    }
}

async fn get_wallet(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    who.require(&[Role::Customer])?;
    let wallet = app.wallets.get(&who.sub).await?.unwrap_or_else(|| Wallet {
        customer_id: who.sub.clone(),
        balance: 0,
        currency: DEFAULT_CURRENCY.into(),
    });
    Ok(json(200, &WalletView::from(wallet)))
}

/// Parses and validates `{amount: {amount, currency}}`; each error names the field.
// `Problem` is the API's error type everywhere (shared/ returns it the same way).
#[allow(clippy::result_large_err)]
pub fn parse_top_up(body: &[u8]) -> Result<Money, Problem> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request("body", format!("invalid JSON body: {e}")))?;
    if !v.is_object() {
        return Err(Problem::bad_request(
            "body",
            "the body must be a JSON object",
        ));
    }
    if !v.get("amount").is_some_and(Value::is_object) {
        return Err(Problem::bad_request(
            "amount",
            "amount {amount, currency} is required",
        ));
    }
    let amount = v["amount"]["amount"]
        .as_i64()
        .filter(|a| (1..=MAX_TOP_UP).contains(a))
        .ok_or_else(|| {
            Problem::bad_request(
                "amount.amount",
                format!("must be an integer 1..={MAX_TOP_UP} (minor units)"),
            )
        })?;
    let currency = v["amount"]["currency"]
        .as_str()
        .filter(|c| is_currency_code(c))
        .ok_or_else(|| {
            Problem::bad_request("amount.currency", "must be an ISO 4217 code such as EUR")
        })?;
    Ok(Money::new(amount, currency))
}

async fn top_up(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    who.require(&[Role::Customer])?;
    let amount = parse_top_up(body_bytes(req))?;
    match app.wallets.top_up(&who.sub, &amount).await? {
        TopUp::Credited(wallet) => {
            tracing::info!(customer_id = %who.sub, amount = amount.amount, currency = %amount.currency, "wallet topped up");
            Ok(json(200, &WalletView::from(wallet)))
        }
        TopUp::CurrencyMismatch => Err(Problem::unprocessable(
            "CURRENCY_MISMATCH",
            format!("the wallet holds another currency than {}", amount.currency),
        )
        .with_field("amount.currency")),
    }
}
