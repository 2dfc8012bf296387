//! Table key formats that are plain functions of an id, so a test, the seed and the
//! store all compute the same key.

/// The partition key of an order in the orders table.
pub fn order_pk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
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
    format!("OPEN#{}", h % u64::from(SWEEP_SHARDS))
}

/// The partition key of a customer's wallet in the payments table.
pub fn wallet_pk(customer_id: &str) -> String {
    format!("WALLET#{customer_id}")
}

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
