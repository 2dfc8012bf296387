//! Menu items and their stock counters.

use crate::money::Money;
use serde::{Deserialize, Serialize};

/// A menu item with its stock. `available + reserved + sold == stocked` always holds:
/// every stock write moves units between the counters inside one conditional write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuItem {
    pub restaurant_id: String,
    pub menu_item_id: String,
    pub name: String,
    pub price: Money,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    pub stocked: i64,
}

impl MenuItem {
    pub fn conserves_stock(&self) -> bool {
        self.available >= 0
            && self.reserved >= 0
            && self.sold >= 0
            && self.available + self.reserved + self.sold == self.stocked
    }
}
