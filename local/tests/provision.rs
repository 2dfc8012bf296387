//! Provisioning against a real moto server: every resource of template.yaml exists with
//! the right keys, indexes, streams, TTL, redrive and filter policies, and the
//! functions' environments point at them.

use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use dishpatch_local::provision::provision;
use dishpatch_local::template::{SubscriptionEndpoint, Template};
use dishpatch_local::testing;
use serde_json::Value;

#[tokio::test]
async fn provisions_every_template_resource() {
    let sdk = testing::sdk().await;
    let template = Arc::new(Template::embedded().unwrap());
    let prefix = testing::unique_prefix("prov");
    let stack = provision(&sdk, template.clone(), &prefix)
        .await
        .expect("provision");

    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    assert_eq!(stack.tables.len(), template.tables.len());
    for def in &template.tables {
        let name = stack.table_name(&def.logical_id);
        assert_eq!(name, format!("{prefix}-{}", def.logical_id));
        let t = ddb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let keys: Vec<(String, String)> = t
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = def
            .key_schema
            .iter()
            .map(|k| (k.name.clone(), k.key_type.clone()))
            .collect();
        assert_eq!(keys, want, "{name} key schema");
        let gsis: Vec<String> = t
            .global_secondary_indexes()
            .iter()
            .filter_map(|g| g.index_name().map(str::to_owned))
            .collect();
        let want_gsis: Vec<String> = def
            .global_secondary_indexes
            .iter()
            .map(|g| g.name.clone())
            .collect();
        assert_eq!(gsis, want_gsis, "{name} GSIs");
        match &def.stream_view_type {
            Some(view) => {
                let spec = t.stream_specification().expect("stream spec");
                assert!(spec.stream_enabled());
                assert_eq!(
                    spec.stream_view_type().map(|v| v.as_str()),
                    Some(view.as_str())
                );
                assert_eq!(
                    stack.table(&def.logical_id).stream_arn.as_deref(),
                    t.latest_stream_arn()
                );
            }
            None => assert!(t.latest_stream_arn().is_none(), "{name} has no stream"),
        }
        let ttl = ddb
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        assert_eq!(
            ttl.attribute_name(),
            def.ttl_attribute.as_deref(),
            "{name} TTL"
        );
    }
    // The contract's specifics, double-checked against the template.
    assert!(template
        .table("OrdersTable")
        .unwrap()
        .stream_view_type
        .is_some());
    assert_eq!(
        template
            .table("IdempotencyTable")
            .unwrap()
            .ttl_attribute
            .as_deref(),
        Some("expiration")
    );

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    assert_eq!(stack.queues.len(), template.queues.len());
    for def in &template.queues {
        let q = stack.queue(&def.logical_id);
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&q.url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        assert_eq!(attrs[&QueueAttributeName::QueueArn], q.arn);
        assert_eq!(
            attrs[&QueueAttributeName::VisibilityTimeout],
            def.visibility_timeout.to_string(),
            "{} visibility",
            def.logical_id
        );
        // The stack records the template's dead-letter queue (the checker reads it).
        assert_eq!(
            q.dead_letter_queue.as_deref(),
            def.redrive.as_ref().map(|r| r.dead_letter_queue.as_str()),
            "{} DLQ",
            def.logical_id
        );
        match &def.redrive {
            Some(r) => {
                let policy: Value =
                    serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy])
                        .expect("redrive json");
                assert_eq!(
                    policy["deadLetterTargetArn"],
                    stack.queue(&r.dead_letter_queue).arn
                );
                let max = match &policy["maxReceiveCount"] {
                    Value::String(s) => s.parse::<i64>().unwrap(),
                    v => v.as_i64().unwrap(),
                };
                assert_eq!(max, r.max_receive_count);
            }
            None => assert!(!attrs.contains_key(&QueueAttributeName::RedrivePolicy)),
        }
    }

    let sns = aws_sdk_sns::Client::new(&sdk);
    assert_eq!(stack.topics.len(), template.topics.len());
    for def in &template.topics {
        sns.get_topic_attributes()
            .topic_arn(stack.topic_arn(&def.logical_id))
            .send()
            .await
            .unwrap_or_else(|e| panic!("topic {}: {e}", def.logical_id));
    }
    assert_eq!(stack.subscriptions.len(), template.subscriptions.len());
    for def in &template.subscriptions {
        let s = &stack.subscriptions[&def.logical_id];
        let attrs = sns
            .get_subscription_attributes()
            .subscription_arn(&s.arn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        assert_eq!(attrs["TopicArn"], stack.topic_arn(&def.topic));
        assert_eq!(attrs["Protocol"], def.protocol);
        if let SubscriptionEndpoint::Queue(q) = &def.endpoint {
            assert_eq!(attrs["Endpoint"], stack.queue(q).arn);
        }
        let fp: Value = serde_json::from_str(&attrs["FilterPolicy"]).unwrap();
        assert_eq!(
            Some(&fp),
            def.filter_policy.as_ref(),
            "{} filter policy",
            def.logical_id
        );
        assert_eq!(
            attrs.get("FilterPolicyScope").map(String::as_str),
            Some(
                def.filter_policy_scope
                    .as_deref()
                    .unwrap_or("MessageAttributes")
            )
        );
        assert_eq!(
            attrs["RawMessageDelivery"],
            def.raw_message_delivery.to_string()
        );
    }

    // Function environments resolve to the physical resources.
    assert_eq!(stack.functions.len(), template.functions.len());
    let saga = stack.env("order-saga");
    assert_eq!(
        saga.get("ORDERS_TABLE"),
        Some(stack.table_name("OrdersTable"))
    );
    assert_eq!(
        saga.get("ORDER_EVENTS_TOPIC_ARN"),
        Some(stack.topic_arn("OrderEventsTopic"))
    );
    assert_eq!(
        saga.get("OPS_ALERTS_TOPIC_ARN"),
        Some(stack.topic_arn("OpsAlertsTopic"))
    );
    assert_eq!(
        saga.get("INVENTORY_QUEUE_URL"),
        Some(stack.queue_url("InventoryQueue"))
    );
    assert_eq!(saga.get("RUST_LOG"), Some("info"), "Globals merged");
    assert_eq!(saga.get("AWS_REGION"), Some(stack.region.as_str()));
    assert_eq!(
        stack.env("PaymentFunction").get("WALLETS_TABLE"),
        Some(stack.table_name("PaymentsTable"))
    );
    for f in stack.functions.values() {
        let def = template.function(&f.logical_id).unwrap();
        for var in def.environment.keys() {
            assert!(
                f.env.get(var).is_some_and(|v| !v.is_empty()),
                "{}: {var} unresolved",
                f.logical_id
            );
        }
    }

    // Re-running against the same emulator is fine and yields the same stack.
    let again = provision(&sdk, template, &prefix)
        .await
        .expect("re-provision");
    for (id, q) in &stack.queues {
        assert_eq!(again.queues[id].url, q.url);
        assert_eq!(again.queues[id].arn, q.arn);
    }
    for (id, s) in &stack.subscriptions {
        assert_eq!(
            again.subscriptions[id].arn, s.arn,
            "no duplicate subscription"
        );
    }
    for (id, t) in &stack.tables {
        assert_eq!(again.tables[id].stream_arn, t.stream_arn);
    }
}

#[tokio::test]
async fn seed_writes_demo_data_once() {
    let sdk = testing::sdk().await;
    let template = Arc::new(Template::embedded().unwrap());
    let stack = provision(&sdk, template, &testing::unique_prefix("seed"))
        .await
        .unwrap();
    let first = dishpatch_local::seed::seed(&stack, &sdk).await.unwrap();
    assert_eq!(first, dishpatch_local::seed::items().len());
    assert_eq!(
        dishpatch_local::seed::seed(&stack, &sdk).await.unwrap(),
        0,
        "idempotent"
    );

    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let item = ddb
        .get_item()
        .table_name(stack.table_name("InventoryTable"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("RESTAURANT#r-1".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("ITEM#m-1".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("menu item seeded");
    let v: Value = serde_dynamo::from_item(item).unwrap();
    assert_eq!(v["name"], "Margherita");
    assert_eq!(v["price"]["amount"], 950);
    assert_eq!(v["available"], 50);
    let couriers = ddb
        .query()
        .table_name(stack.table_name("DeliveryTable"))
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :p")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("COURIER#AVAILABLE".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(couriers.count(), 2);
}
