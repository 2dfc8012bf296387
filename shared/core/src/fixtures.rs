//! A sample order for tests, here and in the crates built on core (the `fixtures`
//! feature; no deployed binary carries it).

use crate::order::Order;

/// A new wallet order of alice's at restaurant r-1 for 19.00 EUR, to Lisbon, not yet
/// advanced by the saga; tests override what they care about.
pub fn sample_order() -> Order {
    use crate::order::{Address, PaymentMethod};
    Order {
        order_id: "o-1".into(),
        customer_id: "alice".into(),
        restaurant_id: "r-1".into(),
        items: vec![],
        total: crate::money::Money::new(1900, "EUR"),
        delivery_address: Address {
            line1: "1 Main St".into(),
            line2: None,
            city: "Lisbon".into(),
            postcode: "1000-001".into(),
            country: "PT".into(),
        },
        payment_method: PaymentMethod::Wallet,
        card_token: None,
        created_at: "2026-11-22T10:00:00.000Z".into(),
        updated_at: "2026-11-22T10:00:00.000Z".into(),
        version: 0,
        saga: crate::saga::start().state,
        timeline: vec![],
        deadline: None,
    }
}
