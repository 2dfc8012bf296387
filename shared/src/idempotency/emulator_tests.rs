//! The DynamoDB idempotency store against the emulator: the claim condition, replay,
//! mismatch, expiry, crash takeover, release, and the Powertools item layout.

use super::*;
use crate::testing::{emulator, unique};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, KeySchemaElement, KeyType, ScalarAttributeType,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;

const SEC: Duration = Duration::from_secs(1);

async fn table() -> (DynamoIdempotencyStore, aws_sdk_dynamodb::Client) {
    let client = aws_sdk_dynamodb::Client::new(&emulator().await);
    let name = unique("idempotency");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (DynamoIdempotencyStore::new(client.clone(), name), client)
}

fn wrapper(store: &DynamoIdempotencyStore, clock: &Arc<ManualClock>) -> Idempotency {
    Idempotency::new(Arc::new(store.clone()), IdempotencyConfig::new("tests.op"))
        .with_clock(clock.clone())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::now_from_system())
}

/// Runs the wrapper with a handler that counts its runs and returns `value`.
async fn call(
    idem: &Idempotency,
    key: &str,
    payload: serde_json::Value,
    remaining: Duration,
    runs: &AtomicUsize,
    value: Result<serde_json::Value, String>,
) -> Result<Handled<serde_json::Value>, IdempotencyError<String>> {
    idem.run(&["order-1", key], &payload, remaining, || async {
        runs.fetch_add(1, Ordering::SeqCst);
        value
    })
    .await
}

#[tokio::test]
async fn claim_twice_second_sees_the_first_in_progress() {
    let (store, _) = table().await;
    let now = SystemClock.now();
    let claim = IdempotencyRecord::in_progress("k#1", Some("h".into()), now, 10 * SEC, 60 * SEC);
    assert_eq!(store.claim(&claim, now).await.unwrap(), Claim::Claimed);
    // The failed claim returns the blocking record itself (ALL_OLD), no second read.
    let second = IdempotencyRecord::in_progress("k#1", Some("h".into()), now, 10 * SEC, 60 * SEC);
    assert_eq!(
        store.claim(&second, now).await.unwrap(),
        Claim::Exists(claim.clone())
    );
    assert_eq!(
        store.put_claim(&second, now).await.unwrap(),
        super::dynamo::ClaimPut::Blocked(Some(claim.clone())),
        "the record comes with the failed condition"
    );
    assert_eq!(decide(Some(&claim), Some("h"), now), Outcome::InProgress);

    // Through the wrapper: a duplicate arriving while the first handler runs.
    let clock = clock();
    let idem = wrapper(&store, &clock);
    let runs = AtomicUsize::new(0);
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (finish_tx, finish_rx) = oneshot::channel::<()>();
    let first = idem.run(&["order-1", "step"], &1, 10 * SEC, || async {
        started_tx.send(()).unwrap();
        finish_rx.await.unwrap();
        Ok::<_, String>(serde_json::json!({"orderId": "o-1"}))
    });
    let duplicate = async {
        started_rx.await.unwrap();
        let r = call(
            &idem,
            "step",
            serde_json::json!(1),
            10 * SEC,
            &runs,
            Ok(serde_json::json!(0)),
        )
        .await;
        finish_tx.send(()).unwrap();
        r
    };
    let (first, duplicate) = tokio::join!(first, duplicate);
    assert_eq!(
        first.unwrap(),
        Handled::Ran(serde_json::json!({"orderId": "o-1"}))
    );
    assert!(matches!(duplicate, Err(IdempotencyError::InProgress)));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn completed_then_claimed_replays_the_stored_data_in_powertools_layout() {
    let (store, client) = table().await;
    let clock = clock();
    let idem = wrapper(&store, &clock);
    let runs = AtomicUsize::new(0);
    let payload = serde_json::json!({"orderId": "order-1", "amount": 2550});
    let result = serde_json::json!({"chargeId": "c-1", "amount": 2550});
    let first = call(
        &idem,
        "capture",
        payload.clone(),
        10 * SEC,
        &runs,
        Ok(result.clone()),
    )
    .await;
    assert_eq!(first.unwrap(), Handled::Ran(result.clone()));
    let again = call(
        &idem,
        "capture",
        payload.clone(),
        10 * SEC,
        &runs,
        Ok(serde_json::json!("other")),
    )
    .await;
    assert_eq!(again.unwrap(), Handled::Replayed(result.clone()));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // The item, attribute by attribute, as Powertools writes it.
    let id = idem.record_id(&["order-1", "capture"]);
    assert!(id.starts_with("tests.op#"));
    let item = client
        .get_item()
        .table_name(store.table())
        .key("id", AttributeValue::S(id.clone()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "data",
            "expiration",
            "id",
            "in_progress_expiration",
            "status",
            "validation"
        ]
    );
    assert_eq!(item["status"], AttributeValue::S("COMPLETED".into()));
    let data = item["data"].as_s().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(data).unwrap(),
        result
    );
    let expiration: i64 = item["expiration"].as_n().unwrap().parse().unwrap();
    assert_eq!(expiration, clock.now().secs() + 3600, "epoch seconds, 1 h");
    let ipe: i64 = item["in_progress_expiration"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ipe,
        clock.now().millis() + 10_000,
        "epoch millis, the deadline"
    );
    assert_eq!(item["validation"].as_s().unwrap(), &payload_hash(&payload));
}

#[tokio::test]
async fn a_different_payload_is_a_mismatch_running_or_done() {
    let (store, _) = table().await;
    let clock = clock();
    let idem = wrapper(&store, &clock);
    let runs = AtomicUsize::new(0);
    // Pays `amount`; a handler that runs would return `returns`.
    let pay = |amount: u32, returns: u32| {
        let payload = serde_json::json!({ "amount": amount });
        call(
            &idem,
            "pay",
            payload,
            SEC,
            &runs,
            Ok(serde_json::json!(returns)),
        )
    };
    let now = clock.now();
    let claim = IdempotencyRecord::in_progress(
        idem.record_id(&["order-1", "pay"]),
        idem.validation(&serde_json::json!({"amount": 1})).unwrap(),
        now,
        10 * SEC,
        DEFAULT_EXPIRES_AFTER,
    );
    assert_eq!(store.claim(&claim, now).await.unwrap(), Claim::Claimed);
    let r = pay(2, 1).await;
    assert!(matches!(r, Err(IdempotencyError::PayloadMismatch)));
    store
        .complete(&claim.completed("1".into(), now, DEFAULT_EXPIRES_AFTER))
        .await
        .unwrap();
    let r = pay(2, 1).await;
    assert!(matches!(r, Err(IdempotencyError::PayloadMismatch)));
    let r = pay(1, 2).await;
    assert_eq!(r.unwrap(), Handled::Replayed(serde_json::json!(1)));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_expired_completed_record_is_reclaimable() {
    let (store, _) = table().await;
    let clock = clock();
    let idem = Idempotency::new(
        Arc::new(store.clone()),
        IdempotencyConfig::new("tests.op").expires_after(60 * SEC),
    )
    .with_clock(clock.clone());
    let runs = AtomicUsize::new(0);
    let p = serde_json::json!({"n": 1});
    let run = |returns: &str| {
        call(
            &idem,
            "k",
            p.clone(),
            SEC,
            &runs,
            Ok(serde_json::json!(returns)),
        )
    };
    run("first").await.unwrap();
    clock.advance(60 * SEC);
    let r = run("second").await;
    assert_eq!(
        r.unwrap(),
        Handled::Replayed(serde_json::json!("first")),
        "not yet"
    );
    // TTL deletion lags (and the emulator never deletes): the code decides.
    clock.advance(SEC);
    let r = run("second").await;
    assert_eq!(r.unwrap(), Handled::Ran(serde_json::json!("second")));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let stored = store
        .get(&idem.record_id(&["order-1", "k"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.data.as_deref(), Some("\"second\""));
}

#[tokio::test]
async fn a_crashed_handler_blocks_until_its_deadline_then_is_taken_over() {
    let (store, _) = table().await;
    let clock = clock();
    let idem = wrapper(&store, &clock);
    let id = idem.record_id(&["order-1", "dispatch"]);
    let p = serde_json::json!({"orderId": "order-1"});

    // An invocation with 3 s left claims, then dies mid-handler (the task is dropped).
    let crashing = {
        let idem = idem.clone();
        let p = p.clone();
        tokio::spawn(async move {
            idem.run(&["order-1", "dispatch"], &p, 3 * SEC, || async {
                std::future::pending::<Result<u32, String>>().await
            })
            .await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.get(&id).await.unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the claim never appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    crashing.abort();
    assert!(crashing.await.unwrap_err().is_cancelled());
    let left = store.get(&id).await.unwrap().unwrap();
    assert_eq!(left.status, Status::InProgress);

    let runs = AtomicUsize::new(0);
    // A retry of the same step with the same payload; `n` is what its handler returns.
    let dispatch = |n: u32| {
        call(
            &idem,
            "dispatch",
            p.clone(),
            3 * SEC,
            &runs,
            Ok(serde_json::json!(n)),
        )
    };
    let r = dispatch(1).await;
    assert!(
        matches!(r, Err(IdempotencyError::InProgress)),
        "blocks before its deadline"
    );
    clock.advance(3 * SEC);
    let r = dispatch(1).await;
    assert!(
        matches!(r, Err(IdempotencyError::InProgress)),
        "still at the deadline"
    );
    clock.advance(Duration::from_millis(1));
    let r = dispatch(2).await;
    assert_eq!(r.unwrap(), Handled::Ran(serde_json::json!(2)), "taken over");
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // The crashed claim cannot clobber the new owner's result.
    assert!(matches!(
        store
            .complete(&left.completed("9".into(), clock.now(), SEC))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.release(&left).await,
        Err(StoreError::Conflict(_))
    ));
    let r = dispatch(3).await;
    assert_eq!(r.unwrap(), Handled::Replayed(serde_json::json!(2)));
}

#[tokio::test]
async fn on_the_real_clock_a_short_deadline_expires_and_the_retry_runs() {
    let (store, _) = table().await;
    let idem = Idempotency::new(Arc::new(store.clone()), IdempotencyConfig::new("tests.op"));
    let p = serde_json::json!({"orderId": "order-2"});
    let now = SystemClock.now();
    let crashed = IdempotencyRecord::in_progress(
        idem.record_id(&["order-2", "reserve"]),
        idem.validation(&p).unwrap(),
        now,
        Duration::from_millis(300),
        DEFAULT_EXPIRES_AFTER,
    );
    assert_eq!(store.claim(&crashed, now).await.unwrap(), Claim::Claimed);
    let runs = AtomicUsize::new(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut blocked = 0;
    let ran = loop {
        let r = idem
            .run(&["order-2", "reserve"], &p, 5 * SEC, || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>("reserved".to_owned())
            })
            .await;
        match r {
            Err(IdempotencyError::InProgress) => blocked += 1,
            other => break other.unwrap(),
        }
        assert!(std::time::Instant::now() < deadline, "never taken over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ran, Handled::Ran("reserved".to_owned()));
    assert!(blocked >= 1, "the live claim blocked at first");
    assert!(SystemClock.now() > now.plus(Duration::from_millis(300)));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_handler_releases_and_the_retry_runs() {
    let (store, _) = table().await;
    let clock = clock();
    let idem = wrapper(&store, &clock);
    let runs = AtomicUsize::new(0);
    let p = serde_json::json!({"n": 1});
    let r = call(
        &idem,
        "k",
        p.clone(),
        10 * SEC,
        &runs,
        Err("declined".into()),
    )
    .await;
    assert!(matches!(r, Err(IdempotencyError::Handler(ref e)) if e == "declined"));
    assert_eq!(
        store.get(&idem.record_id(&["order-1", "k"])).await.unwrap(),
        None
    );
    let r = call(&idem, "k", p, 10 * SEC, &runs, Ok(serde_json::json!("ok"))).await;
    assert_eq!(r.unwrap(), Handled::Ran(serde_json::json!("ok")));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_in_progress_record_past_its_expiration_is_claimable_without_a_deadline() {
    // Written by a caller without a Lambda context: no in_progress_expiration.
    let (store, _) = table().await;
    let now = SystemClock.now();
    let open = IdempotencyRecord {
        in_progress_expiration: None,
        ..IdempotencyRecord::in_progress("k#open", None, now, SEC, 60 * SEC)
    };
    assert_eq!(store.claim(&open, now).await.unwrap(), Claim::Claimed);
    let later = now.plus(2 * SEC);
    let next = IdempotencyRecord::in_progress("k#open", None, later, SEC, 60 * SEC);
    assert_eq!(
        store.claim(&next, later).await.unwrap(),
        Claim::Exists(open.clone())
    );
    let past = now.plus(62 * SEC);
    let next = IdempotencyRecord::in_progress("k#open", None, past, SEC, 60 * SEC);
    assert_eq!(store.claim(&next, past).await.unwrap(), Claim::Claimed);
    // Release of a claim without a deadline is conditional on that too.
    assert!(matches!(
        store.release(&open).await,
        Err(StoreError::Conflict(_))
    ));
    store.release(&next).await.unwrap();
    assert_eq!(store.get("k#open").await.unwrap(), None);
}
