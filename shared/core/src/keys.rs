//! Table key formats that are plain functions of an id, so a test, the seed and the
//! store all compute the same key.

// Orders table.

/// The partition key of an order in the orders table.
pub fn order_pk(order_id: &str) -> String {
    format!("{ORDER_PK_PREFIX}{order_id}")
}

/// What [`order_pk`] puts before the id.
pub const ORDER_PK_PREFIX: &str = "ORDER#";

/// The sort key of the order item itself.
pub const ORDER_SK: &str = "ORDER";

/// The index key (`gsi1pk`) that lists a customer's orders.
pub fn customer_pk(customer_id: &str) -> String {
    format!("CUSTOMER#{customer_id}")
}

/// The sparse index of orders waiting on a deadline: only an order with a deadline has
/// its `sweepShard`, so the index holds exactly the orders not at rest.
pub const OVERDUE_INDEX: &str = "gsi2";
/// Open orders spread over this many index partitions, so their updates do not all
/// write one.
pub const SWEEP_SHARDS: u32 = 4;

/// The shard of an order in [`OVERDUE_INDEX`] (FNV-1a: stable across builds).
pub fn sweep_shard(order_id: &str) -> String {
    let h = order_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // The remainder is below SWEEP_SHARDS, so it fits.
    open_shard((h % u64::from(SWEEP_SHARDS)) as u32)
}

/// The keys-only index of a restaurant's orders by placement time, keyed by the order's
/// own `restaurantId` and `createdAt`: they never change, so only an order's first write
/// writes the index.
pub const RESTAURANT_INDEX: &str = "gsi3";

/// The [`OVERDUE_INDEX`] partition of shard number `shard` (`0..SWEEP_SHARDS`).
pub fn open_shard(shard: u32) -> String {
    format!("OPEN#{shard}")
}

// Notifications table: messages are keyed by the order they tell about.

/// Sort keys of an order's customer messages begin with this.
pub const NOTIFICATION_SK_PREFIX: &str = "NOTIFICATION#";

/// The sort key of the message about one order fact (under [`order_pk`]).
pub fn notification_sk(event_id: &str) -> String {
    format!("{NOTIFICATION_SK_PREFIX}{event_id}")
}

// Inventory table.

/// The partition key of a restaurant: its item count and its menu items.
pub fn restaurant_pk(restaurant_id: &str) -> String {
    format!("RESTAURANT#{restaurant_id}")
}

/// The sort key of a restaurant's item count.
pub const MENU_SK: &str = "MENU";

/// Sort keys of a restaurant's menu items begin with this.
pub const ITEM_SK_PREFIX: &str = "ITEM#";

/// The sort key of one menu item (under [`restaurant_pk`]).
pub fn item_sk(menu_item_id: &str) -> String {
    format!("{ITEM_SK_PREFIX}{menu_item_id}")
}

/// The partition key of an order's stock reservation.
pub fn reservation_pk(order_id: &str) -> String {
    format!("RESERVATION#{order_id}")
}

/// The sort key of a reservation.
pub const RESERVATION_SK: &str = "RESERVATION";

// Payments table.

/// The partition key of a customer's wallet in the payments table: the wallet, its
/// ledger, its top-ups and its ADMIN credits.
pub fn wallet_pk(customer_id: &str) -> String {
    format!("WALLET#{customer_id}")
}

/// The sort key of the wallet item itself.
pub const WALLET_SK: &str = "WALLET";

/// Sort keys of a wallet's ledger entries begin with this.
pub const LEDGER_SK_PREFIX: &str = "TX#";

/// The sort key of one ledger entry: by time first, so the wallet's history reads in order.
pub fn ledger_sk(created_at: &str, entry_id: &str) -> String {
    format!("{LEDGER_SK_PREFIX}{created_at}#{entry_id}")
}

/// The sort key of a paid top-up (under [`wallet_pk`]).
pub fn top_up_sk(top_up_id: &str) -> String {
    format!("TOPUP#{top_up_id}")
}

/// The sort key of an ADMIN credit's record (under [`wallet_pk`]).
pub fn credit_sk(credit_id: &str) -> String {
    format!("CREDIT#{credit_id}")
}

/// The partition key of an order's payment.
pub fn payment_pk(order_id: &str) -> String {
    format!("PAYMENT#{order_id}")
}

/// The sort key of a payment.
pub const PAYMENT_SK: &str = "PAYMENT";

// Delivery table.

/// The partition key of a courier.
pub fn courier_pk(courier_id: &str) -> String {
    format!("COURIER#{courier_id}")
}

/// The sort key of a courier.
pub const COURIER_SK: &str = "COURIER";

/// The index key (`gsi1pk`) of the sparse "free couriers" index: only an AVAILABLE
/// courier carries it.
pub const AVAILABLE_COURIERS: &str = "COURIER#AVAILABLE";

/// The index key (`gsi1pk`) of the deliveries waiting for a courier: only a WAITING
/// delivery carries it, sorted by when it began to wait (oldest first).
pub const WAITING_DELIVERIES: &str = "DELIVERY#WAITING";

/// The index (keys only) of each courier's deliveries, newest first: keyed by the
/// delivery's own `courierId` and `createdAt`, which never change once set (a courier
/// item has no `createdAt`, so it is not in it).
pub const COURIER_DELIVERIES_INDEX: &str = "gsi2";

/// The partition key of an order's delivery.
pub fn delivery_pk(order_id: &str) -> String {
    format!("DELIVERY#{order_id}")
}

/// The sort key of a delivery.
pub const DELIVERY_SK: &str = "DELIVERY";

/// An id derived from its parts under `namespace` (UUID v5): the same parts always name
/// the same thing (a retried request its first order, top-up or credit), and different
/// parts never collide however they are spelled (they are hashed as a JSON list).
pub fn derived_id(namespace: uuid::Uuid, parts: &[&str]) -> String {
    let name = serde_json::to_vec(parts).expect("strings serialize");
    uuid::Uuid::new_v5(&namespace, &name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_formats() {
        assert_eq!(order_pk("o-1"), "ORDER#o-1");
        assert_eq!(customer_pk("alice"), "CUSTOMER#alice");
        assert_eq!(open_shard(3), "OPEN#3");
        assert!(sweep_shard("o-1").starts_with("OPEN#"));
        assert_eq!(notification_sk("e-1"), "NOTIFICATION#e-1");
        assert_eq!(restaurant_pk("r-1"), "RESTAURANT#r-1");
        assert_eq!(item_sk("m-1"), "ITEM#m-1");
        assert_eq!(reservation_pk("o-1"), "RESERVATION#o-1");
        assert_eq!(wallet_pk("alice"), "WALLET#alice");
        assert_eq!(
            ledger_sk("2026-01-01T00:00:00Z", "capture:o-1"),
            "TX#2026-01-01T00:00:00Z#capture:o-1"
        );
        assert_eq!(top_up_sk("t-1"), "TOPUP#t-1");
        assert_eq!(credit_sk("c-1"), "CREDIT#c-1");
        assert_eq!(payment_pk("o-1"), "PAYMENT#o-1");
        assert_eq!(courier_pk("c-1"), "COURIER#c-1");
        assert_eq!(delivery_pk("o-1"), "DELIVERY#o-1");
    }

    #[test]
    fn derived_ids_are_stable_and_keep_their_parts_apart() {
        let ns = uuid::Uuid::from_u128(1);
        assert_eq!(derived_id(ns, &["a", "b"]), derived_id(ns, &["a", "b"]));
        assert_ne!(derived_id(ns, &["a", "b"]), derived_id(ns, &["ab", ""]));
        assert_ne!(
            derived_id(ns, &["a", "b"]),
            derived_id(uuid::Uuid::from_u128(2), &["a", "b"])
        );
    }
}
