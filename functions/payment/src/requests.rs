//! The wallet routes' request bodies, parsed and bounded before anything is written; each
//! error names the offending field.
// `Problem` is the API's error type everywhere (shared/ returns it the same way).
#![allow(clippy::result_large_err)]

use dishpatch::error::Problem;
use dishpatch::money::Money;
use dishpatch::validation::{is_valid_card_token, money_field, MAX_CARD_TOKEN_LEN};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The most one top-up may add (minor units).
pub const MAX_TOP_UP: i64 = 50_000;
/// The most one ADMIN credit may add (minor units).
pub const MAX_ADMIN_CREDIT: i64 = 50_000;
/// An ADMIN credit's reason: characters, and bytes (what it costs to store).
pub const MAX_REASON_CHARS: usize = 200;
pub const MAX_REASON_BYTES: usize = 600;

/// `POST /v1/wallet/top-ups` `{amount: {amount, currency}, cardToken}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUpRequest {
    pub amount: Money,
    pub card_token: String,
}

impl TopUpRequest {
    /// What makes two requests the same request (a hash: the token is not kept).
    pub fn fingerprint(&self) -> String {
        fingerprint(&[
            &self.amount.amount.to_string(),
            &self.amount.currency,
            &self.card_token,
        ])
    }
}

/// `POST /v1/admin/wallets/{customerId}/credits` `{amount: {amount, currency}, reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCreditRequest {
    pub amount: Money,
    pub reason: String,
}

impl AdminCreditRequest {
    pub fn fingerprint(&self, customer_id: &str) -> String {
        fingerprint(&[
            customer_id,
            &self.amount.amount.to_string(),
            &self.amount.currency,
            &self.reason,
        ])
    }
}

fn fingerprint(parts: &[&str]) -> String {
    // JSON keeps the parts apart whatever they contain.
    let bytes = serde_json::to_vec(parts).expect("strings serialize");
    hex::encode(Sha256::digest(bytes))
}

fn amount(v: &Value, max: i64) -> Result<Money, Problem> {
    money_field(v, "amount", 1, max)
}

pub fn parse_top_up(body: &[u8]) -> Result<TopUpRequest, Problem> {
    let v = dishpatch::http::json_object(body)?;
    let amount = amount(&v, MAX_TOP_UP)?;
    let card_token = match v.get("cardToken") {
        Some(Value::String(t)) if is_valid_card_token(t) => t.clone(),
        Some(_) => {
            return Err(Problem::bad_request(
                "cardToken",
                format!("must be 1-{MAX_CARD_TOKEN_LEN} characters of letters, digits or '_'"),
            ))
        }
        None => {
            return Err(Problem::bad_request(
                "cardToken",
                "cardToken is required: a top-up is paid by card",
            ))
        }
    };
    Ok(TopUpRequest { amount, card_token })
}

pub fn parse_admin_credit(body: &[u8]) -> Result<AdminCreditRequest, Problem> {
    let v = dishpatch::http::json_object(body)?;
    let amount = amount(&v, MAX_ADMIN_CREDIT)?;
    let reason = match v.get("reason") {
        Some(Value::String(r))
            if !r.trim().is_empty()
                && r.chars().count() <= MAX_REASON_CHARS
                && r.len() <= MAX_REASON_BYTES
                && !r.chars().any(char::is_control) =>
        {
            r.trim().to_owned()
        }
        _ => {
            return Err(Problem::bad_request(
                "reason",
                format!(
                    "reason is required: 1..={MAX_REASON_CHARS} characters, no control characters"
                ),
            ))
        }
    };
    Ok(AdminCreditRequest { amount, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(r: Result<impl std::fmt::Debug, Problem>) -> String {
        r.unwrap_err().field.unwrap_or_default()
    }

    #[test]
    fn a_top_up_is_bounded_and_paid_by_a_card() {
        let ok = json!({"amount": {"amount": 2500, "currency": "EUR"}, "cardToken": "tok_visa"});
        let parsed = parse_top_up(ok.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.amount, Money::new(2500, "EUR"));
        for (body, f) in [
            (
                json!({"amount": {"amount": 2500, "currency": "EUR"}}),
                "cardToken",
            ),
            (
                json!({"amount": {"amount": 2500, "currency": "EUR"}, "cardToken": "tok visa"}),
                "cardToken",
            ),
            (
                json!({"amount": {"amount": 2500, "currency": "EUR"}, "cardToken": "t".repeat(65)}),
                "cardToken",
            ),
            (
                json!({"amount": {"amount": MAX_TOP_UP + 1, "currency": "EUR"}, "cardToken": "tok_visa"}),
                "amount.amount",
            ),
            (
                json!({"amount": {"amount": 0, "currency": "EUR"}, "cardToken": "tok_visa"}),
                "amount.amount",
            ),
            (
                json!({"amount": {"amount": 1.5, "currency": "EUR"}, "cardToken": "tok_visa"}),
                "amount.amount",
            ),
            (
                json!({"amount": {"amount": 10, "currency": "eur"}, "cardToken": "tok_visa"}),
                "amount.currency",
            ),
            (json!({"amount": 10, "cardToken": "tok_visa"}), "amount"),
            (json!([]), "body"),
        ] {
            assert_eq!(
                field(parse_top_up(body.to_string().as_bytes())),
                f,
                "{body}"
            );
        }
    }

    #[test]
    fn an_admin_credit_needs_a_bounded_reason() {
        let body = |reason: Value| {
            json!({"amount": {"amount": 100, "currency": "EUR"}, "reason": reason}).to_string()
        };
        assert_eq!(
            parse_admin_credit(body(json!(" goodwill: late delivery ")).as_bytes())
                .unwrap()
                .reason,
            "goodwill: late delivery"
        );
        for bad in [
            json!(null),
            json!(""),
            json!("  "),
            json!("x".repeat(201)),
            json!("a\nb"),
            json!(5),
        ] {
            assert_eq!(
                field(parse_admin_credit(body(bad.clone()).as_bytes())),
                "reason",
                "{bad}"
            );
        }
        // 200 characters of four bytes each pass the character bound but not the byte one.
        assert_eq!(
            field(parse_admin_credit(body(json!("😀".repeat(200))).as_bytes())),
            "reason"
        );
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let a = TopUpRequest {
            amount: Money::new(100, "EUR"),
            card_token: "tok_visa".into(),
        };
        let b = TopUpRequest {
            card_token: "tok_other".into(),
            ..a.clone()
        };
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
