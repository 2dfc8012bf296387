//! Every sample event in events/ is accepted by the handler it is named for, through
//! the same dispatch code Lambda runs.

use dishpatch::orders::{DynamoOrderStore, OrderStore};
use dishpatch_e2e::System;
use dishpatch_local::testing::unique_prefix;
use dishpatch_local::LocalStackOptions;
use serde_json::Value;
use std::path::PathBuf;

/// The function a sample is for, from its file name.
fn function_for(file: &str) -> &'static str {
    for f in dishpatch_local::template::embedded_binaries() {
        if file.starts_with(&format!("{f}-")) {
            return f;
        }
    }
    panic!("events/{file} is not named after a function");
}

/// Places order o-1 (the id the samples use) directly in the table.
async fn place_sample_order(sys: &System) {
    let ddb = aws_sdk_dynamodb::Client::new(&sys.stack.sdk);
    let store = DynamoOrderStore::new(ddb, sys.stack.stack.table_name("OrdersTable"));
    let start = dishpatch::saga::start();
    let draft = dishpatch::order::Order {
        order_id: "o-1".into(),
        customer_id: "cust-1".into(),
        restaurant_id: "r-1".into(),
        items: vec![],
        total: dishpatch::money::Money::new(1900, "EUR"),
        delivery_address: serde_json::from_value(serde_json::json!(
            {"line1": "1 Main St", "city": "Lisbon", "postcode": "1000-001", "country": "PT"}
        ))
        .unwrap(),
        payment_method: dishpatch::order::PaymentMethod::Wallet,
        card_token: None,
        created_at: dishpatch::envelope::now(),
        updated_at: dishpatch::envelope::now(),
        version: 0,
        saga: start.state.clone(),
        timeline: vec![],
        deadline: None,
    };
    let (order, _) = dishpatch::orchestration::advance(
        &draft,
        &start,
        "PlaceOrder",
        None,
        &dishpatch::envelope::now(),
        &Default::default(),
    );
    store.save(&order, None, &[]).await.unwrap();
}

#[tokio::test]
async fn every_sample_event_is_accepted_by_its_handler() {
    let sys =
        System::start_with(LocalStackOptions::new(unique_prefix("events")).pollers(false)).await;
    place_sample_order(&sys).await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected a sample per trigger, found {}",
        files.len()
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = sys
            .stack
            .invoke(function_for(&name), event.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: invocation failed: {e:?}"));
        if event.get("requestContext").is_some() {
            let status = out["statusCode"].as_i64().unwrap_or(0);
            // Accepted: routed and answered by the handler (a missing resource is fine, an
            // unknown route or a server error is not).
            assert!((200..500).contains(&status), "{name}: {out}");
            let body = out["body"].as_str().unwrap_or("");
            assert!(!body.contains("route"), "{name}: not routed: {out}");
        } else if event["detail-type"] == "Scheduled Event" {
            // The sweep ran and said what it found.
            assert!(out["overdue"].is_u64(), "{name}: {out}");
        } else {
            assert_eq!(
                out["batchItemFailures"],
                serde_json::json!([]),
                "{name}: {out}"
            );
        }
    }
}
