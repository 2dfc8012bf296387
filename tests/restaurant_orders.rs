//! A restaurant's orders for its kitchen, end to end on the local stack: orders placed
//! at two restaurants, read by each restaurant's manager, refused to the other manager
//! and to a customer, read by ADMIN; newest first, a page at a time, by status.

use dishpatch_e2e::{order_body, System};
use serde_json::{json, Value};

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {body}"))
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_manager_reads_their_own_restaurants_orders() {
    let sys = System::start("kitchen").await;
    let manager_1 = Some(("manager-1", &["MANAGER"][..]));
    let manager_2 = Some(("manager-2", &["MANAGER"][..]));
    let admin = Some(("admin-1", &["ADMIN"][..]));
    let list = |path: &str, who: Option<(&'static str, &'static [&'static str])>| {
        let path = path.to_owned();
        let sys = &sys;
        async move { sys.call("GET", &path, who, None).await }
    };

    // Three orders at r-1 (alice, bob, alice), one at r-2 (bob), placed in that order.
    let a1 = sys
        .place(
            "alice",
            json!([{"menuItemId": "m-1", "quantity": 2}, {"menuItemId": "m-3", "quantity": 1}]),
        )
        .await;
    let b1 = sys
        .place("bob", json!([{"menuItemId": "m-2", "quantity": 1}]))
        .await;
    let mut at_r2 = order_body(json!([{"menuItemId": "m-21", "quantity": 3}]));
    at_r2["restaurantId"] = json!("r-2");
    let b2 = sys.place_body("bob", at_r2).await;
    let a2 = sys
        .place("alice", json!([{"menuItemId": "m-3", "quantity": 4}]))
        .await;
    assert_eq!(sys.cancel("alice", &a2).await.status, 202);

    // Manager 1: r-1's orders, newest first, as the kitchen sees them.
    let r = list("/v1/restaurants/r-1/orders", manager_1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r.body), [a2.clone(), b1.clone(), a1.clone()]);
    assert!(r.body.get("nextPageToken").is_none(), "{}", r.body);
    let first = &r.body["items"][2];
    assert_eq!(
        first["items"],
        json!([
            {"menuItemId": "m-1", "name": first["items"][0]["name"], "quantity": 2},
            {"menuItemId": "m-3", "name": first["items"][1]["name"], "quantity": 1}
        ])
    );
    assert_eq!(first["total"], json!({"amount": 2050, "currency": "EUR"}));
    assert!(first["placedAt"].is_string() && first["status"].is_string());
    for private in ["alice", "bob", "Rua Augusta", "WALLET", "customerId"] {
        assert!(
            !r.body.to_string().contains(private),
            "{private} shown to the kitchen: {}",
            r.body
        );
    }
    // A page at a time.
    let r = list("/v1/restaurants/r-1/orders?page_size=2", manager_1).await;
    assert_eq!(ids(&r.body), [a2.clone(), b1.clone()]);
    let token = r.body["nextPageToken"].as_str().unwrap().to_owned();
    let r = list(
        &format!("/v1/restaurants/r-1/orders?page_size=2&page_token={token}"),
        manager_1,
    )
    .await;
    assert_eq!(ids(&r.body), vec![a1.clone()]);
    // By status: the cancelled one, once it is.
    sys.wait_for("alice", &a2, "CANCELLED").await;
    let r = list("/v1/restaurants/r-1/orders?status=CANCELLED", manager_1).await;
    assert_eq!((r.status, ids(&r.body)), (200, vec![a2.clone()]));
    let r = list("/v1/restaurants/r-1/orders?status=cancelled", manager_1).await;
    assert_eq!(
        (r.status, r.content_type.as_str(), r.body["field"].as_str()),
        (400, "application/problem+json", Some("status"))
    );

    // Manager 2: r-2's only.
    let r = list("/v1/restaurants/r-2/orders", manager_2).await;
    assert_eq!((r.status, ids(&r.body)), (200, vec![b2.clone()]));
    assert_eq!(r.body["items"][0]["items"][0]["quantity"], 3);

    // Each manager is refused the other's restaurant, and a customer both.
    for (path, who) in [
        ("/v1/restaurants/r-2/orders", manager_1),
        ("/v1/restaurants/r-1/orders", manager_2),
        (
            "/v1/restaurants/r-1/orders",
            Some(("alice", &["CUSTOMER"][..])),
        ),
        (
            "/v1/restaurants/r-2/orders",
            Some(("bob", &["CUSTOMER"][..])),
        ),
    ] {
        let r = list(path, who).await;
        assert_eq!(
            (r.status, r.content_type.as_str(), r.body["code"].as_str()),
            (403, "application/problem+json", Some("FORBIDDEN")),
            "{path} as {who:?}: {}",
            r.body
        );
        assert!(!r.body.to_string().contains("orderId"), "{}", r.body);
    }
    assert_eq!(list("/v1/restaurants/r-1/orders", None).await.status, 401);

    // ADMIN reads both.
    let r = list("/v1/restaurants/r-1/orders", admin).await;
    assert_eq!((r.status, ids(&r.body)), (200, vec![a2, b1, a1]));
    let r = list("/v1/restaurants/r-2/orders", admin).await;
    assert_eq!((r.status, ids(&r.body)), (200, vec![b2]));
}

/// OrdersTable's write units for `n` happy-path orders (placed, delivered) on a stack
/// provisioned from `template`, metered by the AWS proxy: (table, indexes).
async fn orders_table_units(template: &std::path::Path, n: usize) -> (f64, f64) {
    use dishpatch_local::awsproxy::AwsProxyConfig;
    use dishpatch_local::testing::unique_prefix;
    use dishpatch_local::LocalStackOptions;
    let sys = System::start_with(
        LocalStackOptions::new(unique_prefix("kitchen-cost"))
            .template(template)
            .aws_proxy(AwsProxyConfig::default()),
    )
    .await;
    let proxy = sys.stack.aws_proxy().expect("the AWS proxy is on");
    let table = sys.stack.stack.table_name("OrdersTable").to_owned();
    proxy.reset();
    for _ in 0..n {
        let id = sys
            .place("alice", json!([{"menuItemId": "m-3", "quantity": 1}]))
            .await;
        let dispatched = sys.wait_for("alice", &id, "DISPATCHED").await;
        let courier = dispatched["courierId"].as_str().unwrap();
        assert_eq!(sys.complete(courier, &id).await.status, 200);
        sys.wait_for("alice", &id, "DELIVERED").await;
    }
    // DELIVERED is the order's last write.
    let units = proxy.counts().dynamodb.tables[&table];
    (units.write, units.index_write)
}

/// What the restaurant index costs: the same happy-path orders on a stack without it and
/// on one with it. Its keys are the order's own attributes, so the item does not grow,
/// and they never change, so only the first write writes the index: one unit an order.
#[tokio::test]
async fn the_restaurant_index_costs_one_write_unit_per_order() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let with = root.join("template.yaml");
    let text = std::fs::read_to_string(&with).unwrap();
    let start = text
        .find("        # A restaurant's orders, newest first")
        .unwrap();
    let end = start
        + text[start..]
            .find("            ProjectionType: KEYS_ONLY\n")
            .unwrap();
    let without_index = format!(
        "{}{}",
        &text[..start],
        &text[end + "            ProjectionType: KEYS_ONLY\n".len()..]
    )
    .replace(
        "        - AttributeName: restaurantId\n          AttributeType: S\n        - AttributeName: createdAt\n          AttributeType: S\n      KeySchema:",
        "      KeySchema:",
    );
    assert!(!without_index.contains("gsi3"));
    let without =
        std::env::temp_dir().join(format!("template-without-gsi3-{}.yaml", std::process::id()));
    std::fs::write(&without, without_index).unwrap();
    let n = 4;
    // Side by side: each stack has its own tables and its own metering proxy.
    let ((table_before, index_before), (table_after, index_after)) = tokio::join!(
        orders_table_units(&without, n),
        orders_table_units(&with, n)
    );
    let _ = std::fs::remove_file(&without);
    let per = |x: f64| x / n as f64;
    println!(
        "OrdersTable WRU per order: table {:.2} -> {:.2}, indexes {:.2} -> {:.2}",
        per(table_before),
        per(table_after),
        per(index_before),
        per(index_after)
    );
    // Whole units each; a stray retried write on either stack is tolerated, not a unit
    // an order.
    let index_cost = per(index_after - index_before);
    assert!(
        (index_cost - 1.0).abs() < 0.5,
        "{index_cost} index units an order"
    );
    let growth = per(table_after - table_before);
    assert!(
        growth.abs() < 0.5,
        "the order item grew: {growth} units an order"
    );
}
