//! The tables the checker reads, and the table-only check.

use dishpatch_template::names::{physical_name, StackNames, TABLE_NAME_MAX};

use crate::checks::evaluate;
use crate::state::State;
use crate::{CheckOptions, Error, Item, Report, Result};

/// Physical names of the tables the checker reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub orders: String,
    pub inventory: String,
    pub payments: String,
    pub delivery: String,
}

/// The template's logical ids of those tables.
pub const TABLE_IDS: [&str; 4] = [
    "OrdersTable",
    "InventoryTable",
    "PaymentsTable",
    "DeliveryTable",
];

impl Tables {
    /// The tables of a provisioned stack.
    pub fn of(stack: &impl StackNames) -> Tables {
        let name = |id: &str| {
            stack
                .table_name_of(id)
                .unwrap_or_else(|| physical_name(stack.prefix(), id, TABLE_NAME_MAX, ""))
        };
        Tables {
            orders: name(TABLE_IDS[0]),
            inventory: name(TABLE_IDS[1]),
            payments: name(TABLE_IDS[2]),
            delivery: name(TABLE_IDS[3]),
        }
    }

    /// The names provisioning gives them under `prefix` (nothing is looked up).
    pub fn for_prefix(prefix: &str) -> Tables {
        let name = |id: &str| physical_name(prefix, id, TABLE_NAME_MAX, "");
        Tables {
            orders: name(TABLE_IDS[0]),
            inventory: name(TABLE_IDS[1]),
            payments: name(TABLE_IDS[2]),
            delivery: name(TABLE_IDS[3]),
        }
    }
}

async fn scan_all(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| Error::aws(format!("scan {table}"), e))?;
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

/// Scans the tables and checks the invariants (see the module docs for which run
/// when). Tables are read inventory, payments, delivery, then orders: a record read
/// earlier always belongs to an order that exists by the time orders are read.
pub async fn check(
    client: &aws_sdk_dynamodb::Client,
    tables: &Tables,
    opts: &CheckOptions,
) -> Result<Report> {
    let mut state = State::default();
    for item in scan_all(client, &tables.inventory).await? {
        state.add_inventory(item);
    }
    for item in scan_all(client, &tables.payments).await? {
        state.add_payments(item);
    }
    for item in scan_all(client, &tables.delivery).await? {
        state.add_delivery(item);
    }
    for item in scan_all(client, &tables.orders).await? {
        state.add_order(item);
    }
    Ok(evaluate(state, opts))
}
