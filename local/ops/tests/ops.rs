//! The `dishpatch` operator CLI's commands, as library calls against the local stack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageAttributeValue;
use clap::{CommandFactory, Parser};
use dishpatch_local::{testing, LocalStack, LocalStackOptions};
use dishpatch_ops::cli::{self, Cli, Command, DlqCommand};
use dishpatch_ops::dlq::{self, ReasonSource, RedriveOptions, Source, REDRIVE_COUNT_ATTRIBUTE};
use dishpatch_ops::orders::{self, WatchOptions};
use dishpatch_ops::Target;

const DEADLINE: Duration = Duration::from_secs(30);

async fn start(name: &str, pollers: bool) -> (LocalStack, Target) {
    let local = LocalStack::start(
        LocalStackOptions::new(testing::unique_prefix(name))
            .endpoint(testing::moto())
            .seed(false)
            .pollers(pollers)
            .retry_delay(Duration::ZERO),
    )
    .await
    .expect("local stack starts");
    let target = Target::new(
        local.sdk.clone(),
        local.stack.template.clone(),
        local.stack.prefix.as_str(),
    );
    (local, target)
}

fn count(list: &[dlq::DlqStatus], id: &str) -> i64 {
    list.iter()
        .find(|d| d.logical_id == id)
        .unwrap_or_else(|| panic!("{id} listed"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_is_listed_shown_and_redriven() {
    let (local, target) = start("ops-poison", true).await;
    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    sqs.send_message()
        .queue_url(local.stack.queue_url("InventoryQueue"))
        .message_body("{this is not an envelope")
        .send()
        .await
        .unwrap();

    // Undecodable: the function parks it in the DLQ at once.
    let list = testing::eventually(DEADLINE, || async {
        let list = dlq::list(&target).await.unwrap();
        (count(&list, "InventoryQueueDLQ") == 1).then_some(list)
    })
    .await
    .expect("the poison message reaches InventoryQueueDLQ");
    let inv = list
        .iter()
        .find(|d| d.logical_id == "InventoryQueueDLQ")
        .unwrap();
    assert_eq!(
        inv.source,
        Source::Queue {
            logical_id: "InventoryQueue".into(),
            max_receive_count: 3
        }
    );
    assert_eq!(list.len(), 6, "every DLQ of the template: {list:?}");
    for d in &list {
        assert!(d.error.is_none(), "{d:?}");
        if d.logical_id != "InventoryQueueDLQ" {
            assert_eq!(d.count(), 0, "{d:?}");
        }
    }
    let mut text = Vec::new();
    cli::print_list(&list, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("InventoryQueueDLQ"), "{text}");
    assert!(text.contains("OrdersStreamDLQ"), "{text}");

    let letters = dlq::show(&target, "InventoryQueueDLQ", 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let poison = &letters[0];
    assert!(poison.receive_count >= 1);
    assert!(poison.sent_at.is_some());
    assert_eq!(poison.body, "{this is not an envelope");
    // The inventory function parked it itself, with why, on its first receive.
    let reason = poison.reason.clone().expect("a reason");
    assert_eq!(
        reason.source,
        ReasonSource::Attribute("failureReason".into()),
        "{poison:?}"
    );
    assert!(reason.text.contains("malformed"), "{reason}");
    assert_eq!(poison.code.as_deref(), Some("MALFORMED_MESSAGE"));
    let mut text = Vec::new();
    cli::print_letters("InventoryQueueDLQ", &letters, true, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(&poison.message_id), "{text}");
    assert!(text.contains("MALFORMED_MESSAGE"), "{text}");
    // Showing leaves it there.
    assert_eq!(
        count(&dlq::list(&target).await.unwrap(), "InventoryQueueDLQ"),
        1
    );

    let report = dlq::redrive(
        &target,
        "InventoryQueueDLQ",
        &RedriveOptions {
            all: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.moved.len(), 1, "{report:?}");
    assert_eq!(report.moved[0].message_id, poison.message_id);
    assert_eq!(report.moved[0].to, "InventoryQueue");
    assert_eq!(report.moved[0].redrives, 1);
    let mut text = Vec::new();
    cli::print_redrive("InventoryQueueDLQ", &report, &mut text).unwrap();
    assert!(String::from_utf8(text).unwrap().contains("moved 1 message"));

    // It left the DLQ, was received from InventoryQueue again, and is back in the DLQ,
    // parked again with its redrive count.
    let back = testing::eventually(DEADLINE, || async {
        let letters = dlq::show(&target, "InventoryQueueDLQ", 10).await.unwrap();
        assert!(
            letters.iter().all(|l| l.message_id != poison.message_id),
            "the original left the DLQ: {letters:?}"
        );
        letters.into_iter().find(|l| l.redrives == 1)
    })
    .await
    .expect("the redriven copy went through InventoryQueue and back to the DLQ");
    assert_ne!(back.message_id, poison.message_id);
    assert_eq!(back.body, poison.body);
    assert_eq!(back.code.as_deref(), Some("MALFORMED_MESSAGE"));
    local.shutdown();
}

fn number(n: u32) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(n.to_string())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_redrive_follows_the_policy_and_bad_requests_are_refused() {
    let (local, target) = start("ops-policy", false).await;
    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    let dlq_url = local.stack.queue_url("PaymentQueueDLQ");
    let fresh = sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(r#"{"type":"CapturePayment","orderId":"o-1"}"#)
        .message_attributes(
            "failureReason",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("provider said no")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();
    let tired = sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(r#"{"type":"CapturePayment","orderId":"o-2"}"#)
        .message_attributes(REDRIVE_COUNT_ATTRIBUTE, number(3))
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();

    let letters = dlq::show(&target, "PaymentQueueDLQ", 10).await.unwrap();
    let by_id: HashMap<_, _> = letters.iter().map(|l| (l.message_id.clone(), l)).collect();
    let r = by_id[&fresh].reason.clone().unwrap();
    assert_eq!(r.text, "provider said no");
    assert_eq!(r.source, ReasonSource::Attribute("failureReason".into()));
    assert_eq!(by_id[&fresh].kind.as_deref(), Some("CapturePayment"));
    assert_eq!(by_id[&fresh].order_id.as_deref(), Some("o-1"));
    assert_eq!(by_id[&tired].redrives, 3);

    // Nothing selected, a stream's failure destination, an unknown queue: refused.
    assert!(
        dlq::redrive(&target, "PaymentQueueDLQ", &RedriveOptions::default())
            .await
            .is_err()
    );
    let all = RedriveOptions {
        all: true,
        ..Default::default()
    };
    let err = dlq::redrive(&target, "OrdersStreamDLQ", &all)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stream"), "{err}");
    assert!(dlq::redrive(&target, "PaymentQueue", &all).await.is_err());

    let auto = dlq::redrive(
        &target,
        "PaymentQueueDLQ",
        &RedriveOptions {
            auto: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(auto.moved.len(), 1, "{auto:?}");
    assert_eq!(auto.moved[0].message_id, fresh);
    assert_eq!(auto.skipped.len(), 1, "{auto:?}");
    assert_eq!(auto.skipped[0].0, tired);

    // The copy in PaymentQueue keeps its attributes and counts the redrive.
    let got = dishpatch_local::esm::receive_batch(&sqs, local.stack.queue_url("PaymentQueue"), 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let attrs = got[0].message_attributes.clone().unwrap();
    assert_eq!(
        attrs["failureReason"].string_value.as_deref(),
        Some("provider said no")
    );
    assert_eq!(
        attrs[REDRIVE_COUNT_ATTRIBUTE].string_value.as_deref(),
        Some("1")
    );

    // A manual redrive by id moves the tired one; an unknown id is reported.
    let manual = dlq::redrive(
        &target,
        "PaymentQueueDLQ",
        &RedriveOptions {
            ids: vec![tired.clone(), "no-such-id".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(manual.moved.len(), 1);
    assert_eq!(manual.moved[0].redrives, 4);
    assert_eq!(manual.not_found, vec!["no-such-id".to_owned()]);
    assert_eq!(
        count(&dlq::list(&target).await.unwrap(), "PaymentQueueDLQ"),
        0
    );
    local.shutdown();
}

fn entry(status: &str, cause: &str) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (
            "at".to_owned(),
            AttributeValue::S(format!("2026-01-01T00:00:0{}Z", cause.len() % 10)),
        ),
        ("status".to_owned(), AttributeValue::S(status.to_owned())),
        ("cause".to_owned(), AttributeValue::S(cause.to_owned())),
    ]))
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_watch_prints_new_entries_until_terminal() {
    let (local, target) = start("ops-watch", false).await;
    let ddb = aws_sdk_dynamodb::Client::new(&local.sdk);
    let table = local.stack.table_name("OrdersTable").to_owned();
    let put = |status: &str, timeline: Vec<AttributeValue>| {
        ddb.put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("ORDER#o-watch".into()))
            .item("sk", AttributeValue::S("ORDER".into()))
            .item("status", AttributeValue::S(status.into()))
            .item("timeline", AttributeValue::L(timeline))
            .send()
    };
    assert!(orders::snapshot(&target, "o-watch")
        .await
        .unwrap()
        .is_none());
    put("PENDING", vec![entry("PENDING", "PlaceOrder")])
        .await
        .unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let mut first_tx = Some(first_tx);
    let watcher = {
        let target = target.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            orders::watch(
                &target,
                "o-watch",
                &WatchOptions {
                    interval: Duration::from_millis(50),
                    timeout: Some(DEADLINE),
                },
                |e| {
                    seen.lock().unwrap().push(e.clone());
                    if let Some(tx) = first_tx.take() {
                        let _ = tx.send(());
                    }
                },
            )
            .await
        })
    };
    first_rx.await.expect("the first entry is printed");
    put(
        "DELIVERED",
        vec![
            entry("PENDING", "PlaceOrder"),
            entry("RESERVED", "InventoryReserved"),
            entry("DELIVERED", "DeliveryCompleted"),
        ],
    )
    .await
    .unwrap();
    let status = watcher.await.unwrap().unwrap();
    assert_eq!(status, "DELIVERED");
    let seen = seen.lock().unwrap().clone();
    let statuses: Vec<&str> = seen.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["PENDING", "RESERVED", "DELIVERED"],
        "each entry once"
    );
    local.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_runs_invariants_and_dlq_list() {
    let (local, _target) = start("ops-cli", false).await;
    let base = [
        "dishpatch",
        "--endpoint",
        testing::moto(),
        "--prefix",
        local.stack.prefix.as_str(),
    ];
    let run = |args: &[&str]| {
        let cli = Cli::try_parse_from(base.iter().chain(args)).unwrap();
        async move {
            let mut out = Vec::new();
            let ok = cli::run(cli, &mut out).await.unwrap();
            (ok, String::from_utf8(out).unwrap())
        }
    };
    let (ok, text) = run(&["invariants", "check"]).await;
    assert!(ok, "{text}");
    assert!(text.contains("invariants of stack"), "{text}");
    let (ok, text) = run(&["dlq", "list"]).await;
    assert!(ok);
    for id in [
        "InventoryQueueDLQ",
        "PaymentQueueDLQ",
        "OrdersStreamDLQ",
        "SagaQueueDLQ",
    ] {
        assert!(text.contains(id), "{text}");
    }
    // From the emulator's metrics: whatever other tests' breakers did, every line is a
    // provider's state (see breaker_status_reads_the_cloudwatch_metrics).
    let (ok, text) = run(&["breaker", "status"]).await;
    assert!(ok);
    assert!(
        text.lines().all(|l| l.contains(": CLOSED")
            || l.contains(": OPEN")
            || l.contains(": HALF_OPEN")
            || l.starts_with("no breaker metrics")),
        "{text}"
    );
    local.shutdown();
}

#[test]
fn clap_parses_the_commands() {
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from([
        "dishpatch",
        "dlq",
        "redrive",
        "InventoryQueueDLQ",
        "--id",
        "a",
        "--id",
        "b",
        "--prefix",
        "p1",
        "--queue-url",
        "InventoryQueue=https://sqs.example/q",
    ])
    .unwrap();
    assert_eq!(cli.target.prefix, "p1");
    assert_eq!(
        cli.target.queue_urls,
        vec![(
            "InventoryQueue".to_owned(),
            "https://sqs.example/q".to_owned()
        )]
    );
    match cli.command {
        Command::Dlq(DlqCommand::Redrive {
            dlq,
            ids,
            all,
            auto,
        }) => {
            assert_eq!(dlq, "InventoryQueueDLQ");
            assert_eq!(ids, ["a", "b"]);
            assert!(!all && !auto);
        }
        other => panic!("{other:?}"),
    }
    assert!(Cli::try_parse_from(["dishpatch", "dlq", "redrive", "X", "--all", "--auto"]).is_err());
    assert!(
        Cli::try_parse_from(["dishpatch", "orders", "watch", "o-1", "--timeout-secs", "5"]).is_ok()
    );
}

#[test]
fn breaker_status_reads_emf_lines() {
    let lines = [
        "noise".to_owned(),
        r#"{"_aws":{"Timestamp":1},"Provider":"psp","from":"CLOSED","to":"OPEN","calls":15,"failures":15,"transitions":1}"#.to_owned(),
        r#"2026 INFO {"_aws":{"Timestamp":2},"Provider":"psp","from":"HALF_OPEN","to":"CLOSED","calls":1,"failures":0,"transitions":3}"#.to_owned(),
    ];
    let last = cli::breaker_transitions(lines.into_iter());
    assert_eq!(last["psp"]["to"], "CLOSED");
}

/// `--stack NAME`: physical names come from a deployed CloudFormation stack's resources.
#[tokio::test(flavor = "multi_thread")]
async fn a_deployed_stack_is_found_by_name() {
    let sdk = testing::sdk().await;
    let stack_name = testing::unique_prefix("ops-stack");
    // A plain CloudFormation stack with a few of the template's resources; its
    // physical names are CloudFormation's, not the local `{prefix}-{LogicalId}`.
    let body = serde_json::json!({
        "Resources": {
            "InventoryQueueDLQ": {"Type": "AWS::SQS::Queue"},
            "InventoryQueue": {"Type": "AWS::SQS::Queue"},
            "OrdersTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"}],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"}]}}
        }
    });
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(&stack_name)
        .template_body(body.to_string())
        .send()
        .await
        .expect("create stack");

    let template = Arc::new(dishpatch_local::template::Template::embedded().unwrap());
    let target = Target::new(sdk.clone(), template, "no-such-prefix")
        .with_queue_url("InventoryQueue", "https://explicit.example/q")
        .with_stack(&stack_name)
        .await
        .expect("the stack's resources");
    assert!(target.is_deployed());
    // An explicit name wins over the lookup.
    assert_eq!(
        target.queue_url("InventoryQueue").await.unwrap(),
        "https://explicit.example/q"
    );
    let table = target.table_name("OrdersTable");
    assert!(!table.starts_with("no-such-prefix"), "{table}");
    target
        .dynamodb()
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("the looked-up table exists");

    // The DLQ commands work through the looked-up URL.
    let dlq_url = target.queue_url("InventoryQueueDLQ").await.unwrap();
    target
        .sqs()
        .send_message()
        .queue_url(&dlq_url)
        .message_body("{\"type\":\"ReserveInventory\",\"orderId\":\"o-9\"}")
        .send()
        .await
        .unwrap();
    let letters = dlq::show(&target, "InventoryQueueDLQ", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].order_id.as_deref(), Some("o-9"));

    let missing = Target::new(sdk, target.template.clone(), "p")
        .with_stack("no-such-stack")
        .await;
    assert!(missing.is_err());
}

/// `breaker status` from the metrics: the local stack turns EMF lines into CloudWatch
/// metrics as CloudWatch Logs would, and the status is the latest transition.
#[tokio::test(flavor = "multi_thread")]
async fn breaker_status_reads_the_cloudwatch_metrics() {
    use dishpatch::resilience::{emf_line, metrics, BreakerState, Transition};
    use dishpatch_ops::breaker;

    let (local, target) = start("ops-breaker", false).await;
    // A provider of this test's own: other tests share the emulator's metrics.
    let provider = testing::unique_prefix("psp");
    let now = chrono::Utc::now().timestamp_millis();
    let transition = |from, to, at: i64| {
        let t = Transition {
            provider: provider.clone(),
            from,
            to,
            calls: 12,
            failures: 12,
            at: Duration::ZERO,
            transitions: 1,
        };
        metrics::emit(&emf_line(&t, at));
    };
    let state_of = |status: Vec<breaker::ProviderStatus>| {
        status
            .into_iter()
            .find(|s| s.provider == provider)
            .and_then(|s| s.latest.map(|l| (l.state, s.transitions)))
    };
    let window = Duration::from_secs(600);

    transition(BreakerState::Closed, BreakerState::Open, now - 31_000);
    let opened = testing::eventually(DEADLINE, || async {
        state_of(breaker::status(&target, window).await.unwrap())
            .filter(|(state, _)| *state == "OPEN")
    })
    .await;
    assert_eq!(opened, Some(("OPEN", 1)));

    // The half-open trial and its success land in the same second: closed wins.
    transition(BreakerState::Open, BreakerState::HalfOpen, now);
    transition(BreakerState::HalfOpen, BreakerState::Closed, now);
    let closed = testing::eventually(DEADLINE, || async {
        state_of(breaker::status(&target, window).await.unwrap())
            .filter(|(_, transitions)| *transitions == 3)
    })
    .await;
    assert_eq!(closed, Some(("CLOSED", 3)));

    let mut out = Vec::new();
    cli::run(
        Cli::try_parse_from([
            "dishpatch",
            "--prefix",
            &local.stack.prefix,
            "--endpoint",
            testing::moto(),
            "breaker",
            "status",
        ])
        .unwrap(),
        &mut out,
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!("{provider}: CLOSED since")),
        "{text}"
    );
    local.shutdown();
}
