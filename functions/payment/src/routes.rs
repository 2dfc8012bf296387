//! The HTTP routes, keyed by the API Gateway route key: the caller's own wallet, its
//! paid top-ups and ledger, and the ADMIN credit.

use crate::topups::TopUp;
use crate::wallets::{Wallet, DEFAULT_CURRENCY};
use crate::App;
use dishpatch::error::Problem;
use dishpatch::http::{
    body_bytes, caller, json, page_size, page_token, path_param, route_key, Role,
};
use dishpatch::money::Money;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

pub use crate::requests::{parse_admin_credit, parse_top_up, AdminCreditRequest, TopUpRequest};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

pub async fn route(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    match route_key(req).as_str() {
        "GET /v1/wallet" => get_wallet(app, req).await,
        "POST /v1/wallet/top-ups" => crate::top_up::top_up(app, req).await,
        "GET /v1/wallet/transactions" => transactions(app, req).await,
        "POST /v1/admin/wallets/{customerId}/credits" => crate::admin::credit(app, req).await,
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

/// One ledger entry as the customer sees it (who credited is not shown, why is).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    entry_id: String,
    kind: crate::ledger::EntryKind,
    /// Signed: negative for money out of the wallet.
    amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_up_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    created_at: String,
}

impl From<crate::ledger::LedgerEntry> for EntryView {
    fn from(e: crate::ledger::LedgerEntry) -> Self {
        EntryView {
            entry_id: e.entry_id,
            kind: e.kind,
            amount: Money::new(e.amount, e.currency),
            order_id: e.order_id,
            top_up_id: e.top_up_id,
            reason: e.reason,
            created_at: e.created_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntriesView {
    items: Vec<EntryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// `GET /v1/wallet/transactions?page_size=&page_token=`: the caller's ledger, newest first.
async fn transactions(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    who.require(&[Role::Customer])?;
    let page_size = page_size(req, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let token = page_token(req, |t| crate::ledger::decode_cursor(t).is_some())?;
    let page = app
        .ledger
        .page(&who.sub, page_size, token.as_deref())
        .await?;
    Ok(json(
        200,
        &EntriesView {
            items: page.entries.into_iter().map(EntryView::from).collect(),
            next_page_token: page.next_token,
        },
    ))
}

/// What a top-up answers, built from its record alone so a replay answers the same.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopUpView {
    top_up_id: String,
    status: crate::topups::TopUpStatus,
    amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge_id: Option<String>,
    created_at: String,
}

impl From<&TopUp> for TopUpView {
    fn from(t: &TopUp) -> Self {
        TopUpView {
            top_up_id: t.top_up_id.clone(),
            status: t.status,
            amount: t.money(),
            charge_id: t.charge_id.clone(),
            created_at: t.created_at.clone(),
        }
    }
}

/// The caller named by a path parameter (ids are bounded by `path_param`).
pub fn customer_param(req: &Request) -> Result<String, Problem> {
    path_param(req, "customerId")
}

/// The body, for routes that take one.
pub fn body(req: &Request) -> &[u8] {
    body_bytes(req)
}
