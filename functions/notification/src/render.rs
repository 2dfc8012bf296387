//! What the customer reads: one short message per order fact. Pure, no I/O.

use dishpatch::envelope::{data::OrderFact, MessageType};
use dishpatch::money::Money;

/// The only channel so far: a push notification to the customer's app.
pub const CHANNEL: &str = "PUSH";

/// The message for `kind`, or `None` for a type customers are not told about.
pub fn render(kind: MessageType, order_id: &str, fact: &OrderFact) -> Option<String> {
    let total = format_money(&fact.total);
    let text = match kind {
        MessageType::OrderPlaced => format!("Your order {order_id} for {total} has been placed."),
        MessageType::OrderConfirmed => {
            format!("Your order {order_id} is confirmed: we received your payment of {total} and the restaurant is preparing it.")
        }
        MessageType::OrderAwaitingCourier => format!(
            "All our couriers are busy right now: we are finding one for your order {order_id} and will tell you when it is on its way."
        ),
        MessageType::OrderDispatched => match &fact.courier_id {
            Some(c) => format!("Your order {order_id} is on its way with courier {c}."),
            None => format!("Your order {order_id} is on its way."),
        },
        MessageType::OrderDelivered => format!("Your order {order_id} has been delivered. Enjoy your meal!"),
        MessageType::OrderCancelled => format!(
            "Your order {order_id} has been cancelled because {}. Any payment taken has been refunded.",
            human_reason(fact.reason.as_deref())
        ),
        MessageType::CompensationFailed => format!(
            "Something went wrong while cancelling your order {order_id}. Our team has been alerted and will sort it out; you do not need to do anything."
        ),
        _ => return None,
    };
    Some(text)
}

/// A cancellation reason code in words a customer understands.
pub fn human_reason(code: Option<&str>) -> &'static str {
    match code {
        Some("OUT_OF_STOCK") => "some items are out of stock",
        Some("INSUFFICIENT_FUNDS") => "the payment was declined for insufficient funds",
        Some("PAYMENT_DECLINED" | "CARD_DECLINED") => "the payment was declined",
        Some("CARD_DECLINED: insufficient_funds") => {
            "the payment was declined for insufficient funds"
        }
        Some(r) if r.starts_with("CARD_DECLINED") => "the card was declined",
        Some("NO_COURIER") => "no courier was available to deliver it",
        Some("CUSTOMER_CANCELLED") => "you cancelled it",
        Some(r) if r.contains("TIMEOUT") || r.contains("TIMED_OUT") => {
            "it could not be processed in time"
        }
        _ => "it could not be completed",
    }
}

/// Digits after the decimal point for an ISO 4217 currency (2 unless listed).
pub fn minor_unit_exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// Minor units as a decimal amount with its code: `1900 EUR` -> "19.00 EUR".
pub fn format_money(m: &Money) -> String {
    let exp = minor_unit_exponent(&m.currency);
    let sign = if m.amount < 0 { "-" } else { "" };
    // unsigned_abs: i64::MIN has no positive i64 counterpart.
    let abs = m.amount.unsigned_abs();
    if exp == 0 {
        return format!("{sign}{abs} {}", m.currency);
    }
    let scale = 10u64.pow(exp);
    format!(
        "{sign}{}.{:0width$} {}",
        abs / scale,
        abs % scale,
        m.currency,
        width = exp as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(amount: i64, currency: &str) -> OrderFact {
        OrderFact {
            customer_id: "cust-1".into(),
            total: Money::new(amount, currency),
            courier_id: None,
            reason: None,
            failed_step: None,
        }
    }

    #[test]
    fn money_in_each_exponent() {
        assert_eq!(format_money(&Money::new(1900, "EUR")), "19.00 EUR");
        assert_eq!(format_money(&Money::new(5, "USD")), "0.05 USD");
        assert_eq!(format_money(&Money::new(0, "GBP")), "0.00 GBP");
        assert_eq!(format_money(&Money::new(1500, "JPY")), "1500 JPY");
        assert_eq!(format_money(&Money::new(1234, "KWD")), "1.234 KWD");
        assert_eq!(format_money(&Money::new(-250, "EUR")), "-2.50 EUR");
        assert_eq!(
            format_money(&Money::new(i64::MIN, "EUR")),
            "-92233720368547758.08 EUR"
        );
    }

    #[test]
    fn each_fact_reads_well() {
        let f = fact(1900, "EUR");
        let say = |k| render(k, "o-1", &f).unwrap();
        assert_eq!(
            say(MessageType::OrderPlaced),
            "Your order o-1 for 19.00 EUR has been placed."
        );
        assert!(say(MessageType::OrderConfirmed).contains("confirmed"));
        assert!(say(MessageType::OrderConfirmed).contains("19.00 EUR"));
        assert!(say(MessageType::OrderAwaitingCourier).contains("finding one"));
        assert_eq!(
            say(MessageType::OrderDispatched),
            "Your order o-1 is on its way."
        );
        assert_eq!(
            say(MessageType::OrderDelivered),
            "Your order o-1 has been delivered. Enjoy your meal!"
        );
        assert!(say(MessageType::CompensationFailed).contains("alerted"));
        let with_courier = OrderFact {
            courier_id: Some("c-7".into()),
            ..fact(1900, "EUR")
        };
        assert_eq!(
            render(MessageType::OrderDispatched, "o-1", &with_courier).unwrap(),
            "Your order o-1 is on its way with courier c-7."
        );
        assert_eq!(render(MessageType::InventoryReserved, "o-1", &f), None);
    }

    #[test]
    fn cancellation_says_why() {
        let cancelled = |reason: Option<&str>| {
            let f = OrderFact {
                reason: reason.map(str::to_owned),
                ..fact(1900, "EUR")
            };
            render(MessageType::OrderCancelled, "o-1", &f).unwrap()
        };
        assert_eq!(
            cancelled(Some("OUT_OF_STOCK")),
            "Your order o-1 has been cancelled because some items are out of stock. Any payment taken has been refunded."
        );
        assert!(cancelled(Some("INSUFFICIENT_FUNDS")).contains("insufficient funds"));
        assert!(cancelled(Some("NO_COURIER")).contains("no courier was available"));
        assert!(cancelled(Some("CUSTOMER_CANCELLED")).contains("because you cancelled it"));
        assert!(cancelled(Some("SOMETHING_NEW")).contains("could not be completed"));
        assert!(cancelled(None).contains("could not be completed"));
    }
}
