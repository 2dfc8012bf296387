//! The payment function as it deploys (DynamoDB and SNS on the emulator) against the PSP
//! sandbox the local stack runs: real HTTP, the sandbox's test cards, its idempotency and
//! its outages. What the customer is charged is read back from the sandbox itself.

use dishpatch::config::Env;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::resilience::{BreakerConfig, BreakerState, RetryPolicy};
use dishpatch::runtime::MessageError;
use dishpatch::testing::{
    create_table, deliver, deliver_racing, emulator, handle, topic_with_subscription, unique,
    Subscription,
};
use dishpatch_psp_sandbox::{start, tokens, Sandbox, SandboxConfig, SandboxOptions};
use payment::{
    ApiKey, App, DynamoPaymentStore, HttpPaymentProvider, Payment, PaymentStatus, PaymentStore,
    PspConfig,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sandbox-test-key";

struct Rig {
    app: App,
    sandbox: Sandbox,
    payments: DynamoPaymentStore,
    events: Subscription,
}

/// The wired function (`payment::build`, as the local stack builds it) on a fresh table
/// and topic, pointed at a fresh sandbox whose timeout cards hold their answer 1.5 s.
async fn rig() -> Rig {
    let sandbox = start(SandboxOptions {
        api_key: KEY.into(),
        timeout_delay: Duration::from_millis(1_500),
        seed: Some(7),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let sdk = emulator().await;
    let table = create_table(&sdk, "payments", &[]).await;
    let (topic, events) = topic_with_subscription(&sdk, None).await;
    let env = Env::from_map(HashMap::from([
        ("WALLETS_TABLE".to_owned(), table.clone()),
        ("ORDER_EVENTS_TOPIC_ARN".to_owned(), topic),
        ("PSP_BASE_URL".to_owned(), sandbox.url()),
        ("PSP_API_KEY".to_owned(), KEY.to_owned()),
    ]));
    let app = payment::build(&sdk, &env).await.unwrap();
    let payments = DynamoPaymentStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    Rig {
        app,
        sandbox,
        payments,
        events,
    }
}

/// Short timeouts and waits, so the timeout cards and outages run in test time.
fn fast(rig: &mut Rig, budget: Duration) -> Arc<HttpPaymentProvider> {
    let config = PspConfig {
        policy: RetryPolicy {
            base_delay: Duration::from_millis(20),
            attempt_timeout: Duration::from_millis(400),
            ..RetryPolicy::default()
        },
        breaker: BreakerConfig {
            open_for: Duration::from_millis(300),
            ..BreakerConfig::default()
        },
        default_budget: budget,
        min_attempt: Duration::from_millis(100),
        ..PspConfig::new(rig.sandbox.url())
    };
    let provider = Arc::new(
        HttpPaymentProvider::new(config, ApiKey::Static(KEY.into()))
            .unwrap()
            .on_transition(|_| {}),
    );
    rig.app.provider = provider.clone();
    provider
}

fn capture(order_id: &str, token: &str) -> Envelope {
    Envelope::new(
        MessageType::CapturePayment,
        order_id,
        json!({"customerId": "c-1", "amount": {"amount": 1200, "currency": "EUR"}, "method": "CARD", "cardToken": token}),
    )
}

fn refund(order_id: &str) -> Envelope {
    Envelope::new(MessageType::RefundPayment, order_id, json!({}))
}

async fn transient(app: &App, cmd: &Envelope) -> String {
    match handle(app, cmd).await {
        Err(MessageError::Transient(e)) => e,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

/// Money the sandbox holds for the order: charged less refunded.
fn taken(sandbox: &Sandbox, order_id: &str) -> i64 {
    sandbox
        .handle()
        .charges_for(order_id)
        .iter()
        .map(|c| c.amount - c.refunded_amount)
        .sum()
}

async fn payment(rig: &Rig, order_id: &str) -> Payment {
    rig.payments.get(order_id).await.unwrap().unwrap()
}

async fn facts(events: &Subscription, want: usize) -> Vec<(String, String, Value)> {
    let mut got: Vec<(String, String, Value)> = events
        .received_facts(want)
        .await
        .into_iter()
        .map(|f| (f.event_type, f.envelope.order_id, f.envelope.data))
        .collect();
    got.sort_by_key(|f| format!("{f:?}"));
    got
}

#[tokio::test]
async fn cards_are_charged_declined_and_refunded_through_the_sandbox() {
    let rig = rig().await;
    let (ok, funds, stolen, unknown) = (
        unique("o-visa"),
        unique("o-funds"),
        unique("o-stolen"),
        unique("o-unknown"),
    );
    for (order, token) in [
        (&ok, tokens::VISA),
        (&ok, tokens::VISA),
        (&funds, tokens::DECLINE_FUNDS),
        (&stolen, tokens::DECLINE_STOLEN),
        (&unknown, "tok_nobody_knows"),
    ] {
        deliver(&rig.app, &capture(order, token)).await;
    }
    deliver(&rig.app, &refund(&ok)).await;
    deliver(&rig.app, &refund(&ok)).await;

    let charges = rig.sandbox.handle().charges_for(&ok);
    assert_eq!(charges.len(), 1, "charged once: {charges:?}");
    assert_eq!(charges[0].idempotency_key, format!("{ok}:capture"));
    assert_eq!(charges[0].refunds.len(), 1, "refunded once");
    assert_eq!(
        charges[0].refunds[0].idempotency_key,
        format!("{ok}:refund")
    );
    assert_eq!(taken(&rig.sandbox, &ok), 0);
    for order in [&funds, &stolen, &unknown] {
        assert!(rig.sandbox.handle().charges_for(order).is_empty());
    }
    let p = payment(&rig, &ok).await;
    assert_eq!(
        (p.status, p.charge_id.as_deref(), p.card_token.as_deref()),
        (
            PaymentStatus::Refunded,
            Some(charges[0].charge_id.as_str()),
            None
        )
    );

    let eur = |a: i64| json!({"amount": {"amount": a, "currency": "EUR"}});
    let reason = |r: &str| json!({"reason": r});
    let mut expected = vec![
        ("PaymentCaptured".to_owned(), ok.clone(), eur(1200)),
        ("PaymentCaptured".to_owned(), ok.clone(), eur(1200)),
        ("PaymentRefunded".to_owned(), ok.clone(), eur(1200)),
        ("PaymentRefunded".to_owned(), ok.clone(), eur(1200)),
        (
            "PaymentDeclined".to_owned(),
            funds.clone(),
            reason("CARD_DECLINED: insufficient_funds"),
        ),
        (
            "PaymentDeclined".to_owned(),
            stolen.clone(),
            reason("CARD_DECLINED: card_stolen"),
        ),
        (
            "PaymentDeclined".to_owned(),
            unknown.clone(),
            reason("CARD_DECLINED: unknown_card_token"),
        ),
    ];
    expected.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(facts(&rig.events, expected.len()).await, expected);
}

#[tokio::test]
async fn a_charge_whose_answer_is_lost_is_charged_once() {
    let mut rig = rig().await;
    // Time for a retry within the message: the retry with the same key gets the stored
    // charge at once.
    fast(&mut rig, Duration::from_secs(5));
    let order = unique("o-late");
    handle(&rig.app, &capture(&order, tokens::CHARGE_THEN_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(rig.sandbox.handle().charges_for(&order).len(), 1);
    assert_eq!(payment(&rig, &order).await.status, PaymentStatus::Captured);

    // No time for a retry: the message fails, stays PENDING, and its redelivery (the
    // same key) finds the charge instead of making another.
    fast(&mut rig, Duration::from_millis(600));
    let order = unique("o-late");
    let cmd = capture(&order, tokens::CHARGE_THEN_TIMEOUT);
    let e = transient(&rig.app, &cmd).await;
    assert!(e.contains("unavailable"), "{e}");
    assert_eq!(payment(&rig, &order).await.status, PaymentStatus::Pending);
    assert_eq!(rig.sandbox.handle().charges_for(&order).len(), 1);
    handle(&rig.app, &cmd).await.unwrap();
    handle(&rig.app, &cmd).await.unwrap();
    let charges = rig.sandbox.handle().charges_for(&order);
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(
        payment(&rig, &order).await.charge_id.as_deref(),
        Some(charges[0].charge_id.as_str())
    );
}

#[tokio::test]
async fn a_refund_that_finds_a_lost_charge_pending_refunds_it() {
    let mut rig = rig().await;
    fast(&mut rig, Duration::from_millis(600));
    let order = unique("o-undo");
    transient(&rig.app, &capture(&order, tokens::CHARGE_THEN_TIMEOUT)).await;
    assert_eq!(taken(&rig.sandbox, &order), 1200);
    // The saga gives up on the step and undoes it.
    deliver(&rig.app, &refund(&order)).await;
    assert_eq!(taken(&rig.sandbox, &order), 0);
    assert_eq!(rig.sandbox.handle().charges_for(&order).len(), 1);
    assert_eq!(payment(&rig, &order).await.status, PaymentStatus::Refunded);
    // The capture, redelivered late, finds it settled and charges nothing.
    deliver(&rig.app, &capture(&order, tokens::CHARGE_THEN_TIMEOUT)).await;
    assert_eq!(rig.sandbox.handle().charges_for(&order).len(), 1);
    assert_eq!(taken(&rig.sandbox, &order), 0);
}

#[tokio::test]
async fn a_card_that_never_answers_stays_pending_and_is_never_charged() {
    let mut rig = rig().await;
    fast(&mut rig, Duration::from_millis(600));
    let order = unique("o-silent");
    transient(&rig.app, &capture(&order, tokens::TIMEOUT)).await;
    // A refund cannot learn the outcome either: it is not confirmed, and the saga's undo
    // deadline and alert take over.
    transient(&rig.app, &refund(&order)).await;
    assert_eq!(payment(&rig, &order).await.status, PaymentStatus::Pending);
    assert!(rig.sandbox.handle().charges_for(&order).is_empty());
}

#[tokio::test]
async fn captures_racing_their_refunds_never_leave_money_taken() {
    let rig = rig().await;
    for round in 0..8 {
        let order = unique("o-race");
        deliver_racing(
            &rig.app,
            &capture(&order, tokens::VISA),
            &refund(&order),
            round,
        )
        .await;
        assert_eq!(taken(&rig.sandbox, &order), 0, "round {round}");
        assert!(rig.sandbox.handle().charges_for(&order).len() <= 1);
        let p = payment(&rig, &order).await;
        assert_eq!(p.status, PaymentStatus::Refunded, "round {round}: {p:?}");
        // Whatever arrives later changes nothing.
        deliver(&rig.app, &capture(&order, tokens::VISA)).await;
        deliver(&rig.app, &refund(&order)).await;
        assert_eq!(taken(&rig.sandbox, &order), 0, "round {round}");
        assert!(rig.sandbox.handle().charges_for(&order).len() <= 1);
    }
}

#[tokio::test]
async fn an_outage_delays_orders_opens_the_breaker_and_loses_none() {
    let mut rig = rig().await;
    let provider = fast(&mut rig, Duration::from_secs(5));
    rig.sandbox
        .set_config(SandboxConfig {
            down: true,
            ..SandboxConfig::default()
        })
        .unwrap();
    let orders: Vec<String> = (0..4).map(|_| unique("o-outage")).collect();
    // Each message tries 4 times; by the third the breaker has seen enough and opens.
    let mut errors = Vec::new();
    for order in &orders {
        errors.push(transient(&rig.app, &capture(order, tokens::VISA)).await);
    }
    assert_eq!(provider.breaker().state(), BreakerState::Open, "{errors:?}");
    assert!(
        errors.last().unwrap().contains("circuit open"),
        "{errors:?}"
    );
    for order in &orders {
        assert_eq!(payment(&rig, order).await.status, PaymentStatus::Pending);
    }
    // The provider comes back; after the open time the trial call closes the breaker and
    // every waiting order completes, each charged once.
    rig.sandbox.set_config(SandboxConfig::default()).unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    for order in &orders {
        deliver(&rig.app, &capture(order, tokens::VISA)).await;
        deliver(&rig.app, &capture(order, tokens::VISA)).await;
    }
    assert_eq!(provider.breaker().state(), BreakerState::Closed);
    let snapshot = rig
        .app
        .provider
        .breaker_snapshot()
        .expect("the HTTP provider has one");
    assert_eq!(
        (
            snapshot.provider.as_str(),
            snapshot.state,
            snapshot.transitions
        ),
        ("psp", BreakerState::Closed, 3)
    );
    for order in &orders {
        assert_eq!(payment(&rig, order).await.status, PaymentStatus::Captured);
        assert_eq!(rig.sandbox.handle().charges_for(order).len(), 1, "{order}");
    }
}

// ---- Paid top-ups

async fn top_up(rig: &Rig, customer: &str, key: &str, token: &str) -> (u16, Value) {
    let body =
        json!({"amount": {"amount": 1500, "currency": "EUR"}, "cardToken": token}).to_string();
    let route = "/v1/wallet/top-ups";
    let mut req = dishpatch::testing::http_request(
        "POST",
        route,
        route,
        &[],
        "",
        Some(&body),
        Some((customer, "[CUSTOMER]")),
    );
    req.headers_mut()
        .insert("idempotency-key", key.parse().unwrap());
    let resp = dishpatch::http::respond(&req, payment::routes::route(&rig.app, &req).await);
    dishpatch::testing::parts(resp)
}

async fn wallet_balance(rig: &Rig, customer: &str) -> Option<i64> {
    rig.app
        .wallets
        .get(customer)
        .await
        .unwrap()
        .map(|w| w.balance)
}

#[tokio::test]
async fn top_ups_are_credited_only_against_a_charge_and_once() {
    let mut rig = rig().await;
    let customer = unique("c-top");
    let (status, body) = top_up(&rig, &customer, "k-visa", tokens::VISA).await;
    assert_eq!(status, 201, "{body}");
    let reference = format!("topup:{}", body["topUpId"].as_str().unwrap());
    let charges = rig.sandbox.handle().charges_for(&reference);
    assert_eq!(charges.len(), 1);
    assert_eq!(body["chargeId"], json!(charges[0].charge_id));
    assert_eq!(wallet_balance(&rig, &customer).await, Some(1500));

    let (status, p) = top_up(&rig, &customer, "k-funds", tokens::DECLINE_FUNDS).await;
    assert_eq!((status, p["code"].clone()), (402, json!("CARD_DECLINED")));
    assert_eq!(wallet_balance(&rig, &customer).await, Some(1500));

    // Charged, then the answer is lost: 503 and nothing credited; the retry with the
    // key finds the charge and credits it, once.
    fast(&mut rig, Duration::from_millis(600));
    let (status, p) = top_up(&rig, &customer, "k-late", tokens::CHARGE_THEN_TIMEOUT).await;
    assert_eq!(
        (status, p["code"].clone()),
        (503, json!("PAYMENT_PROVIDER_UNAVAILABLE")),
        "{p}"
    );
    assert_eq!(wallet_balance(&rig, &customer).await, Some(1500));
    let (status, body) = top_up(&rig, &customer, "k-late", tokens::CHARGE_THEN_TIMEOUT).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = top_up(&rig, &customer, "k-late", tokens::CHARGE_THEN_TIMEOUT).await;
    assert_eq!(status, 201);
    let reference = format!("topup:{}", body["topUpId"].as_str().unwrap());
    assert_eq!(rig.sandbox.handle().charges_for(&reference).len(), 1);
    assert_eq!(wallet_balance(&rig, &customer).await, Some(3000));
}
