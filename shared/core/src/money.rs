//! Money in integer minor units plus an ISO 4217 currency code.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// Minor units (cents): never a float.
    pub amount: i64,
    pub currency: String,
}

impl Money {
    pub fn new(amount: i64, currency: impl Into<String>) -> Self {
        Self {
            amount,
            currency: currency.into(),
        }
    }

    /// `None` on overflow or currency mismatch: callers turn that into a clear error.
    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::new(
            self.amount.checked_add(other.amount)?,
            &*self.currency,
        ))
    }

    pub fn checked_mul(&self, factor: i64) -> Option<Money> {
        Some(Money::new(
            self.amount.checked_mul(factor)?,
            &*self.currency,
        ))
    }
}

/// Three upper-case ASCII letters, as ISO 4217 codes are.
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_refuses_mixed_currencies_and_overflow() {
        let eur = Money::new(100, "EUR");
        assert_eq!(
            eur.checked_add(&Money::new(5, "EUR")),
            Some(Money::new(105, "EUR"))
        );
        assert_eq!(eur.checked_add(&Money::new(5, "USD")), None);
        assert_eq!(Money::new(i64::MAX, "EUR").checked_add(&eur), None);
        assert_eq!(Money::new(i64::MAX, "EUR").checked_mul(2), None);
    }

    #[test]
    fn currency_codes() {
        assert!(is_currency_code("EUR"));
        assert!(!is_currency_code("eur"));
        assert!(!is_currency_code("EURO"));
    }
}
