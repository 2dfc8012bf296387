//! Validation of the place-order request: each error names the offending field.

use crate::error::Problem;
use crate::order::{Address, ItemQuantity, PaymentMethod};
use serde::Deserialize;

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: u32 = 99;
/// The longest card token accepted (the provider's tokens are far shorter).
pub const MAX_CARD_TOKEN_LEN: usize = 64;
/// Delivery address bounds, in characters.
pub const MAX_ADDRESS_LINE: usize = 200;
pub const MAX_CITY: usize = 100;
pub const MAX_POSTCODE: usize = 20;

/// The body of `POST /v1/orders`, as the client sent it (untrusted).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderRequest {
    pub restaurant_id: Option<String>,
    pub items: Option<Vec<RequestedItem>>,
    pub delivery_address: Option<Address>,
    pub payment_method: Option<PaymentMethod>,
    /// The payment provider's token for the card: required with `CARD`, refused with
    /// `WALLET`.
    pub card_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedItem {
    pub menu_item_id: Option<String>,
    pub quantity: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValidOrderRequest {
    pub restaurant_id: String,
    pub items: Vec<ItemQuantity>,
    pub delivery_address: Address,
    pub payment_method: PaymentMethod,
    /// `Some` exactly when `payment_method` is `CARD`.
    pub card_token: Option<String>,
}

/// Parses and validates; JSON type errors are reported against the body as a whole.
pub fn parse_place_order(body: &[u8]) -> Result<ValidOrderRequest, Problem> {
    let req: PlaceOrderRequest = serde_json::from_slice(body).map_err(|e| {
        Problem::bad_request(
            "body",
            format!("the body is not a valid order request: {e}"),
        )
    })?;
    validate(req)
}

pub fn validate(req: PlaceOrderRequest) -> Result<ValidOrderRequest, Problem> {
    let restaurant_id = required_id(req.restaurant_id, "restaurantId")?;
    let items = req
        .items
        .ok_or_else(|| Problem::bad_request("items", "items is required"))?;
    if items.is_empty() {
        return Err(Problem::bad_request(
            "items",
            "at least one item is required",
        ));
    }
    if items.len() > MAX_LINES {
        return Err(Problem::bad_request(
            "items",
            format!("at most {MAX_LINES} lines"),
        ));
    }
    let mut lines: Vec<ItemQuantity> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let id = required_id(item.menu_item_id, &format!("items[{i}].menuItemId"))?;
        let field = format!("items[{i}].quantity");
        let q = item
            .quantity
            .ok_or_else(|| Problem::bad_request(&field, "quantity is required"))?;
        if !(1..=MAX_QUANTITY as i64).contains(&q) {
            return Err(Problem::bad_request(
                &field,
                format!("quantity must be 1..={MAX_QUANTITY}"),
            ));
        }
        // The same item twice is merged, so stock is reserved once per item.
        match lines.iter_mut().find(|l| l.menu_item_id == id) {
            Some(l) if l.quantity + q as u32 > MAX_QUANTITY => {
                return Err(Problem::bad_request(
                    &field,
                    format!("quantity must be 1..={MAX_QUANTITY}"),
                ))
            }
            Some(l) => l.quantity += q as u32,
            None => lines.push(ItemQuantity {
                menu_item_id: id,
                quantity: q as u32,
            }),
        }
    }
    let address = req
        .delivery_address
        .ok_or_else(|| Problem::bad_request("deliveryAddress", "deliveryAddress is required"))?;
    let empty = String::new();
    for (field, value, max, required) in [
        (
            "deliveryAddress.line1",
            &address.line1,
            MAX_ADDRESS_LINE,
            true,
        ),
        (
            "deliveryAddress.line2",
            address.line2.as_ref().unwrap_or(&empty),
            MAX_ADDRESS_LINE,
            false,
        ),
        ("deliveryAddress.city", &address.city, MAX_CITY, true),
        (
            "deliveryAddress.postcode",
            &address.postcode,
            MAX_POSTCODE,
            true,
        ),
    ] {
        if !is_bounded_text(value, max, required) {
            return Err(Problem::bad_request(
                field,
                format!(
                    "must be {}..={max} characters (at most {} bytes), no control characters",
                    u8::from(required),
                    max * 4
                ),
            ));
        }
    }
    if address.country.len() != 2 || !address.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Problem::bad_request(
            "deliveryAddress.country",
            "must be an ISO 3166-1 alpha-2 code such as PT",
        ));
    }
    let payment_method = req.payment_method.ok_or_else(|| {
        Problem::bad_request(
            "paymentMethod",
            "paymentMethod is required (WALLET or CARD)",
        )
    })?;
    let card_token = match (payment_method, req.card_token) {
        (PaymentMethod::Card, Some(token)) if is_valid_card_token(&token) => Some(token),
        (PaymentMethod::Card, Some(_)) => {
            return Err(Problem::bad_request(
                "cardToken",
                format!("must be 1-{MAX_CARD_TOKEN_LEN} characters of letters, digits or '_'"),
            ))
        }
        (PaymentMethod::Card, None) => {
            return Err(Problem::bad_request(
                "cardToken",
                "cardToken is required when paymentMethod is CARD",
            ))
        }
        (PaymentMethod::Wallet, Some(_)) => {
            return Err(Problem::bad_request(
                "cardToken",
                "cardToken is only accepted when paymentMethod is CARD",
            ))
        }
        (PaymentMethod::Wallet, None) => None,
    };
    Ok(ValidOrderRequest {
        restaurant_id,
        items: lines,
        delivery_address: address,
        payment_method,
        card_token,
    })
}

/// The money object `{amount, currency}` at `body[field]`: an integer amount in
/// `min..=max` minor units and an ISO 4217 code; each error names the failing part.
#[allow(clippy::result_large_err)]
pub fn money_field(
    body: &serde_json::Value,
    field: &str,
    min: i64,
    max: i64,
) -> Result<crate::money::Money, Problem> {
    let Some(obj) = body.get(field).filter(|v| v.is_object()) else {
        return Err(Problem::bad_request(
            field,
            format!("{field} {{amount, currency}} is required"),
        ));
    };
    let amount = obj["amount"]
        .as_i64()
        .filter(|a| (min..=max).contains(a))
        .ok_or_else(|| {
            Problem::bad_request(
                &format!("{field}.amount"),
                format!("must be an integer {min}..={max} (minor units)"),
            )
        })?;
    let currency = obj["currency"]
        .as_str()
        .filter(|c| crate::money::is_currency_code(c))
        .ok_or_else(|| {
            Problem::bad_request(
                &format!("{field}.currency"),
                "must be an ISO 4217 code such as EUR",
            )
        })?;
    Ok(crate::money::Money::new(amount, currency))
}

/// Free text a person typed: at most `max_chars` characters and `4 × max_chars` bytes,
/// no control characters (they break logs, headers and notifications), and not blank
/// when `required`.
pub fn is_bounded_text(value: &str, max_chars: usize, required: bool) -> bool {
    (!required || !value.trim().is_empty())
        && value.len() <= max_chars * 4
        && value.chars().count() <= max_chars
        && !value.chars().any(char::is_control)
}

/// A card token as the payment provider issues them (`tok_visa`): 1-64 characters of
/// ASCII letters, digits and `_`. Tokens are opaque; this keeps them safe in logs,
/// headers and keys.
pub fn is_valid_card_token(token: &str) -> bool {
    (1..=MAX_CARD_TOKEN_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Ids are short printable tokens: they end up in keys and paths.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn required_id(value: Option<String>, field: &str) -> Result<String, Problem> {
    let v = value.ok_or_else(|| Problem::bad_request(field, format!("{field} is required")))?;
    if !is_valid_id(&v) {
        return Err(Problem::bad_request(
            field,
            "must be 1-64 characters of letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> serde_json::Value {
        json!({
            "restaurantId": "r-1",
            "items": [{"menuItemId": "m-1", "quantity": 2}],
            "deliveryAddress": {"line1": "1 Main St", "city": "Lisbon", "postcode": "1000-001", "country": "PT"},
            "paymentMethod": "WALLET"
        })
    }

    fn field_of(v: serde_json::Value) -> Option<String> {
        parse_place_order(v.to_string().as_bytes())
            .unwrap_err()
            .field
    }

    #[test]
    fn accepts_a_valid_order() {
        let ok = parse_place_order(body().to_string().as_bytes()).unwrap();
        assert_eq!(
            ok.items,
            vec![ItemQuantity {
                menu_item_id: "m-1".into(),
                quantity: 2
            }]
        );
    }

    #[test]
    fn names_the_failing_field() {
        let mut b = body();
        b["items"] = json!([]);
        assert_eq!(field_of(b).as_deref(), Some("items"));
        let mut b = body();
        b["items"][0]["quantity"] = json!(0);
        assert_eq!(field_of(b).as_deref(), Some("items[0].quantity"));
        let mut b = body();
        b["items"][0]["quantity"] = json!(-3);
        assert_eq!(field_of(b).as_deref(), Some("items[0].quantity"));
        let mut b = body();
        b["restaurantId"] = json!("bad id/../");
        assert_eq!(field_of(b).as_deref(), Some("restaurantId"));
        let mut b = body();
        b["deliveryAddress"]["country"] = json!("Portugal");
        assert_eq!(field_of(b).as_deref(), Some("deliveryAddress.country"));
        let mut b = body();
        b.as_object_mut().unwrap().remove("paymentMethod");
        assert_eq!(field_of(b).as_deref(), Some("paymentMethod"));
        assert_eq!(field_of(json!("just a string")).as_deref(), Some("body"));
    }

    #[test]
    fn a_card_order_carries_a_valid_token() {
        let mut b = body();
        b["paymentMethod"] = json!("CARD");
        b["cardToken"] = json!("tok_visa");
        let ok = parse_place_order(b.to_string().as_bytes()).unwrap();
        assert_eq!(
            (ok.payment_method, ok.card_token.as_deref()),
            (PaymentMethod::Card, Some("tok_visa"))
        );
        let longest = "A".repeat(MAX_CARD_TOKEN_LEN);
        b["cardToken"] = json!(longest);
        assert!(parse_place_order(b.to_string().as_bytes()).is_ok());
        // A wallet order has none.
        let ok = parse_place_order(body().to_string().as_bytes()).unwrap();
        assert_eq!(ok.card_token, None);
    }

    #[test]
    fn a_card_token_is_required_with_card_well_formed_and_refused_with_wallet() {
        let mut card = body();
        card["paymentMethod"] = json!("CARD");
        assert_eq!(field_of(card.clone()).as_deref(), Some("cardToken"));
        for bad in [
            json!(""),
            json!("tok visa"),
            json!("tok-visa"),
            json!("tok_visa\n"),
            json!("tök"),
            json!("A".repeat(MAX_CARD_TOKEN_LEN + 1)),
        ] {
            let mut b = card.clone();
            b["cardToken"] = bad.clone();
            assert_eq!(field_of(b).as_deref(), Some("cardToken"), "{bad}");
        }
        // Not a string at all: the body does not parse.
        let mut b = card.clone();
        b["cardToken"] = json!(42);
        assert_eq!(field_of(b).as_deref(), Some("body"));
        let mut wallet = body();
        wallet["cardToken"] = json!("tok_visa");
        let problem = parse_place_order(wallet.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            (problem.status, problem.field.as_deref()),
            (400, Some("cardToken"))
        );
    }

    #[test]
    fn merges_repeated_items() {
        let mut b = body();
        b["items"] =
            json!([{"menuItemId": "m-1", "quantity": 2}, {"menuItemId": "m-1", "quantity": 3}]);
        let ok = parse_place_order(b.to_string().as_bytes()).unwrap();
        assert_eq!(ok.items[0].quantity, 5);
        assert_eq!(ok.items.len(), 1);
    }

    #[test]
    fn a_price_sent_by_the_client_is_ignored() {
        let mut b = body();
        b["items"][0]["unitPrice"] = json!({"amount": 1, "currency": "EUR"});
        b["total"] = json!(1);
        assert!(parse_place_order(b.to_string().as_bytes()).is_ok());
    }
}
