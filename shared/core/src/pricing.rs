//! Pricing from the menu: the client never supplies a price.

use crate::error::{Problem, ProblemCode};
use crate::menu::MenuItem;
use crate::money::Money;
use crate::order::{ItemQuantity, LineItem};

#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    pub lines: Vec<LineItem>,
    pub total: Money,
}

/// Prices `items` against the restaurant's menu. `menu` is whatever was read for
/// those ids; an id missing from it is an unknown item (422).
pub fn price(items: &[ItemQuantity], menu: &[MenuItem]) -> Result<Priced, Problem> {
    let mut lines = Vec::with_capacity(items.len());
    let mut total: Option<Money> = None;
    for (i, item) in items.iter().enumerate() {
        let m = menu
            .iter()
            .find(|m| m.menu_item_id == item.menu_item_id)
            .ok_or_else(|| {
                Problem::unprocessable(
                    ProblemCode::UnknownMenuItem,
                    format!(
                        "menu item {:?} is not on this restaurant's menu",
                        item.menu_item_id
                    ),
                )
                .with_field(format!("items[{i}].menuItemId"))
            })?;
        let overflow =
            || Problem::unprocessable(ProblemCode::AmountTooLarge, "the order total is too large");
        let line_total = m
            .price
            .checked_mul(item.quantity as i64)
            .ok_or_else(overflow)?;
        total = Some(match total {
            None => line_total.clone(),
            Some(t) => t.checked_add(&line_total).ok_or_else(|| {
                Problem::unprocessable(
                    ProblemCode::MixedCurrencies,
                    "menu items are priced in different currencies",
                )
            })?,
        });
        lines.push(LineItem {
            menu_item_id: m.menu_item_id.clone(),
            name: m.name.clone(),
            quantity: item.quantity,
            unit_price: m.price.clone(),
            line_total,
        });
    }
    let total =
        total.ok_or_else(|| Problem::bad_request("items", "at least one item is required"))?;
    Ok(Priced { lines, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(id: &str, price: i64) -> MenuItem {
        MenuItem {
            restaurant_id: "r-1".into(),
            menu_item_id: id.into(),
            name: format!("dish {id}"),
            price: Money::new(price, "EUR"),
            available: 10,
            reserved: 0,
            sold: 0,
            stocked: 10,
        }
    }

    fn q(id: &str, quantity: u32) -> ItemQuantity {
        ItemQuantity {
            menu_item_id: id.into(),
            quantity,
        }
    }

    #[test]
    fn prices_from_the_menu() {
        let p = price(&[q("a", 2), q("b", 1)], &[item("a", 950), item("b", 300)]).unwrap();
        assert_eq!(p.total, Money::new(2200, "EUR"));
        assert_eq!(p.lines[0].line_total, Money::new(1900, "EUR"));
        assert_eq!(p.lines[1].name, "dish b");
    }

    #[test]
    fn unknown_item_is_422_naming_the_line() {
        let e = price(&[q("a", 1), q("zzz", 1)], &[item("a", 1)]).unwrap_err();
        assert_eq!((e.status, e.code), (422, ProblemCode::UnknownMenuItem));
        assert_eq!(e.field.as_deref(), Some("items[1].menuItemId"));
    }

    #[test]
    fn mixed_currencies_and_overflow_are_refused() {
        let mut usd = item("b", 1);
        usd.price.currency = "USD".into();
        assert_eq!(
            price(&[q("a", 1), q("b", 1)], &[item("a", 1), usd])
                .unwrap_err()
                .code,
            ProblemCode::MixedCurrencies
        );
        assert_eq!(
            price(&[q("a", 2)], &[item("a", i64::MAX)])
                .unwrap_err()
                .code,
            ProblemCode::AmountTooLarge
        );
    }

    proptest! {
        #[test]
        fn total_is_the_sum_of_lines(lines in proptest::collection::vec((1u32..100, 0i64..100_000), 1..20)) {
            let menu: Vec<_> = lines.iter().enumerate().map(|(i, (_, p))| item(&i.to_string(), *p)).collect();
            let items: Vec<_> = lines.iter().enumerate().map(|(i, (n, _))| q(&i.to_string(), *n)).collect();
            let p = price(&items, &menu).unwrap();
            let expected: i64 = lines.iter().map(|(n, pr)| *n as i64 * pr).sum();
            prop_assert_eq!(p.total.amount, expected);
            prop_assert_eq!(p.lines.iter().map(|l| l.line_total.amount).sum::<i64>(), expected);
        }
    }
}
