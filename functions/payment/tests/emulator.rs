//! The DynamoDB adapters (and the wired function) against the AWS emulator: the
//! conditional semantics that charge a customer at most once and refund at most once.

use dishpatch::aws::dynamo::{n, s};
use dishpatch::config::Env;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::keys::{wallet_pk, WALLET_SK};
use dishpatch::money::Money;
use dishpatch::order::PaymentMethod;
use dishpatch::testing::{
    call, create_table, deliver, deliver_racing, emulator, http_event, sqs_event,
    topic_with_subscription, unique, Subscription,
};
use payment::wallets::MAX_BALANCE;
use payment::{
    AdminCredit, Capture, Credit, DynamoLedgerStore, DynamoPaymentStore, DynamoTopUpStore,
    DynamoWalletStore, EntryKind, LedgerEntry, LedgerStore, Payment, PaymentStatus, PaymentStore,
    TopUp, TopUpStatus, TopUpStore, WalletStore,
};
use serde_json::json;
use std::collections::HashMap;

struct Table {
    ddb: aws_sdk_dynamodb::Client,
    name: String,
    payments: DynamoPaymentStore,
    wallets: DynamoWalletStore,
    top_ups: DynamoTopUpStore,
    ledger: DynamoLedgerStore,
}

/// A fresh table on the emulator, which applies each transaction atomically as DynamoDB
/// does (see `dishpatch::testing::emulator`): the races below are faithful.
async fn table() -> Table {
    let sdk = emulator().await;
    let name = create_table(&sdk, "payments", &[]).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    Table {
        payments: DynamoPaymentStore::new(ddb.clone(), &name),
        wallets: DynamoWalletStore::new(ddb.clone(), &name),
        top_ups: DynamoTopUpStore::new(ddb.clone(), &name),
        ledger: DynamoLedgerStore::new(ddb.clone(), &name),
        ddb,
        name,
    }
}

/// Writes a wallet the way the local seed does (flat: customerId, balance, currency).
async fn seed_wallet(t: &Table, customer_id: &str, balance: i64, currency: &str) {
    t.ddb
        .put_item()
        .table_name(&t.name)
        .item("pk", s(wallet_pk(customer_id)))
        .item("sk", s(WALLET_SK))
        .item("customerId", s(customer_id))
        .item("balance", n(balance))
        .item("currency", s(currency))
        .send()
        .await
        .unwrap();
}

async fn balance(t: &Table, customer_id: &str) -> i64 {
    t.wallets.get(customer_id).await.unwrap().unwrap().balance
}

fn payment(order_id: &str, customer_id: &str, amount: i64) -> Payment {
    let (eur, at) = (Money::new(amount, "EUR"), "2026-01-01T00:00:00.000Z");
    Payment::captured(order_id, customer_id, eur, PaymentMethod::Wallet, at.into())
}

#[tokio::test]
async fn concurrent_captures_from_a_wallet_that_covers_one_take_one() {
    let t = table().await;
    for round in 0..5 {
        let customer = format!("c-{round}");
        seed_wallet(&t, &customer, 1000, "EUR").await;
        let (a, b) = (
            payment(&format!("o-a{round}"), &customer, 800),
            payment(&format!("o-b{round}"), &customer, 800),
        );
        let (ra, rb) = tokio::join!(
            t.payments.capture_from_wallet(&a),
            t.payments.capture_from_wallet(&b)
        );
        let results = [ra.unwrap(), rb.unwrap()];
        let captured = results.iter().filter(|r| **r == Capture::Captured).count();
        let refused = results.iter().filter(|r| **r == Capture::Refused).count();
        assert_eq!((captured, refused), (1, 1), "round {round}: {results:?}");
        assert_eq!(balance(&t, &customer).await, 200);
        let stored = [
            t.payments.get(&a.order_id).await.unwrap(),
            t.payments.get(&b.order_id).await.unwrap(),
        ];
        // The loser wrote nothing; its handler records the refusal separately.
        assert_eq!(stored.iter().flatten().count(), 1);
        assert_eq!(
            stored.iter().flatten().next().unwrap().status,
            PaymentStatus::Captured
        );
    }
}

#[tokio::test]
async fn concurrent_duplicates_of_one_capture_charge_once() {
    let t = table().await;
    seed_wallet(&t, "c-1", 5000, "EUR").await;
    let p = payment("o-1", "c-1", 1200);
    let (ra, rb) = tokio::join!(
        t.payments.capture_from_wallet(&p),
        t.payments.capture_from_wallet(&p)
    );
    let mut results = vec![ra.unwrap(), rb.unwrap()];
    results.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(results, vec![Capture::Captured, Capture::Exists]);
    assert_eq!(balance(&t, "c-1").await, 3800);
    assert_eq!(
        t.payments.capture_from_wallet(&p).await.unwrap(),
        Capture::Exists
    );
    assert_eq!(balance(&t, "c-1").await, 3800);
    assert_eq!(t.payments.get("o-1").await.unwrap().unwrap(), p);
}

#[tokio::test]
async fn refunding_twice_refunds_once() {
    let t = table().await;
    seed_wallet(&t, "c-1", 5000, "EUR").await;
    let p = payment("o-1", "c-1", 1200);
    assert_eq!(
        t.payments.capture_from_wallet(&p).await.unwrap(),
        Capture::Captured
    );
    assert_eq!(balance(&t, "c-1").await, 3800);
    let (ra, rb) = tokio::join!(
        t.payments.refund_to_wallet(&p),
        t.payments.refund_to_wallet(&p)
    );
    assert_eq!([ra.unwrap(), rb.unwrap()].iter().filter(|x| **x).count(), 1);
    assert!(!t.payments.refund_to_wallet(&p).await.unwrap());
    assert_eq!(balance(&t, "c-1").await, 5000);
    assert_eq!(
        t.payments.get("o-1").await.unwrap().unwrap().status,
        PaymentStatus::Refunded
    );
    // A late duplicate capture of the refunded order charges nothing.
    assert_eq!(
        t.payments.capture_from_wallet(&p).await.unwrap(),
        Capture::Exists
    );
    assert_eq!(balance(&t, "c-1").await, 5000);
}

#[tokio::test]
async fn no_wallet_another_currency_or_too_little_is_refused_and_nothing_is_written() {
    let t = table().await;
    seed_wallet(&t, "c-usd", 100_000, "USD").await;
    seed_wallet(&t, "c-poor", 100, "EUR").await;
    for (order, customer) in [("o-1", "c-none"), ("o-2", "c-usd"), ("o-3", "c-poor")] {
        let p = payment(order, customer, 500);
        assert_eq!(
            t.payments.capture_from_wallet(&p).await.unwrap(),
            Capture::Refused,
            "{customer}"
        );
        assert!(t.payments.get(order).await.unwrap().is_none());
    }
    assert!(
        t.wallets.get("c-none").await.unwrap().is_none(),
        "the debit must not create a wallet"
    );
    assert_eq!(balance(&t, "c-usd").await, 100_000);
    assert_eq!(balance(&t, "c-poor").await, 100);
    // The refusal is recorded once; a declined payment is never refunded.
    let declined = Payment {
        status: PaymentStatus::Declined,
        reason: Some("INSUFFICIENT_FUNDS".into()),
        ..payment("o-3", "c-poor", 500)
    };
    assert!(t.payments.record(&declined).await.unwrap());
    assert!(!t.payments.record(&declined).await.unwrap());
    assert_eq!(t.payments.get("o-3").await.unwrap().unwrap(), declined);
    assert!(!t.payments.refund_to_wallet(&declined).await.unwrap());
    assert_eq!(balance(&t, "c-poor").await, 100);
}

fn pending_top_up(customer_id: &str, id: &str, amount: i64, currency: &str) -> TopUp {
    let at = "2026-12-06T08:00:00.000Z".to_owned();
    TopUp {
        top_up_id: id.into(),
        customer_id: customer_id.into(),
        amount,
        currency: currency.into(),
        status: TopUpStatus::Pending,
        fingerprint: "f".into(),
        card_token: Some("tok_visa".into()),
        charge_id: None,
        reason: None,
        created_at: at.clone(),
        updated_at: at,
    }
}

/// Credits one settled top-up (PENDING -> CREDITED with its entry).
async fn credit_top_up(t: &Table, p: &TopUp, charge: &str) -> Credit {
    let at = "2026-12-06T08:00:01.000Z";
    let credited = p.settled(TopUpStatus::Credited, Some(charge.into()), None, at);
    let entry = LedgerEntry::top_up(&p.customer_id, &p.top_up_id, charge, &p.money(), at);
    t.top_ups.credit(&credited, &entry).await.unwrap()
}

async fn ledger_sum(t: &Table, customer_id: &str) -> i64 {
    let mut sum = 0;
    let mut token = None;
    loop {
        let page = t
            .ledger
            .page(customer_id, 2, token.as_deref())
            .await
            .unwrap();
        sum += page.entries.iter().map(|e| e.amount).sum::<i64>();
        match page.next_token {
            Some(next) => token = Some(next),
            None => return sum,
        }
    }
}

#[tokio::test]
async fn a_top_up_credits_once_with_its_entry_even_when_credited_concurrently() {
    let t = table().await;
    for round in 0..4 {
        let customer = format!("c-{round}");
        let p = pending_top_up(&customer, &format!("t-{round}"), 2500, "EUR");
        assert!(t.top_ups.begin(&p).await.unwrap());
        assert!(
            !t.top_ups.begin(&p).await.unwrap(),
            "one record per top-up id"
        );
        let (a, b) = tokio::join!(credit_top_up(&t, &p, "ch_1"), credit_top_up(&t, &p, "ch_1"));
        let mut outcomes = [a, b];
        outcomes.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            outcomes,
            [Credit::AlreadySettled, Credit::Credited],
            "round {round}"
        );
        assert_eq!(balance(&t, &customer).await, 2500);
        let stored = t
            .top_ups
            .get(&customer, &p.top_up_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                stored.status,
                stored.card_token,
                stored.charge_id.as_deref()
            ),
            (TopUpStatus::Credited, None, Some("ch_1"))
        );
        assert_eq!(ledger_sum(&t, &customer).await, 2500);
    }
}

#[tokio::test]
async fn credits_keep_the_wallet_currency_and_limit_and_write_nothing_when_refused() {
    let t = table().await;
    let first = pending_top_up("c-1", "t-1", 2000, "EUR");
    t.top_ups.begin(&first).await.unwrap();
    assert_eq!(credit_top_up(&t, &first, "ch_1").await, Credit::Credited);
    let usd = pending_top_up("c-1", "t-2", 100, "USD");
    t.top_ups.begin(&usd).await.unwrap();
    assert_eq!(
        credit_top_up(&t, &usd, "ch_2").await,
        Credit::CurrencyMismatch
    );
    let big = pending_top_up("c-1", "t-3", MAX_BALANCE - 1999, "EUR");
    t.top_ups.begin(&big).await.unwrap();
    assert_eq!(credit_top_up(&t, &big, "ch_3").await, Credit::LimitExceeded);
    // Refused credits left their top-ups PENDING and wrote no entry.
    for id in ["t-2", "t-3"] {
        let stored = t.top_ups.get("c-1", id).await.unwrap().unwrap();
        assert_eq!(stored.status, TopUpStatus::Pending);
    }
    assert_eq!(balance(&t, "c-1").await, 2000);
    assert_eq!(ledger_sum(&t, "c-1").await, 2000);
    // Settling one as refunded happens once.
    let refunded = usd.settled(
        TopUpStatus::Refunded,
        Some("ch_2".into()),
        Some("CURRENCY_MISMATCH".into()),
        "2026-12-06T09:00:00.000Z",
    );
    assert!(t.top_ups.settle(&refunded).await.unwrap());
    assert!(!t.top_ups.settle(&refunded).await.unwrap());
}

#[tokio::test]
async fn every_wallet_movement_is_an_entry_and_the_balance_is_their_sum() {
    let t = table().await;
    let credit = |id: &str, amount: i64| AdminCredit {
        credit_id: id.into(),
        fingerprint: "f".into(),
        entry: LedgerEntry::admin_credit(
            "c-1",
            id,
            &Money::new(amount, "EUR"),
            "opening balance",
            "root",
            "2025-12-06T08:00:00.000Z",
        ),
    };
    assert_eq!(
        t.wallets.credit_admin(&credit("g-1", 5000)).await.unwrap(),
        Credit::Credited
    );
    assert_eq!(
        t.wallets.credit_admin(&credit("g-1", 5000)).await.unwrap(),
        Credit::AlreadySettled
    );
    let recorded = t.wallets.admin_credit("c-1", "g-1").await.unwrap().unwrap();
    assert_eq!(recorded.entry.reason.as_deref(), Some("opening balance"));
    // In turn: a capture, its duplicate, another order's capture.
    for (order_id, amount, outcome) in [
        ("o-1", 1200, Capture::Captured),
        ("o-1", 1200, Capture::Exists),
        ("o-2", 300, Capture::Captured),
    ] {
        let p = payment(order_id, "c-1", amount);
        assert_eq!(t.payments.capture_from_wallet(&p).await.unwrap(), outcome);
    }
    // A refund, once.
    for applied in [true, false] {
        let p = payment("o-1", "c-1", 1200);
        assert_eq!(t.payments.refund_to_wallet(&p).await.unwrap(), applied);
    }
    assert_eq!(balance(&t, "c-1").await, 4700);
    assert_eq!(ledger_sum(&t, "c-1").await, 4700);

    let page = t.ledger.page("c-1", 10, None).await.unwrap();
    let kinds: Vec<EntryKind> = page.entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.len(), 4);
    assert_eq!(kinds[3], EntryKind::AdminCredit, "newest first: {kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == EntryKind::Capture).count(),
        2
    );
    assert_eq!(kinds.iter().filter(|k| **k == EntryKind::Refund).count(), 1);
    assert!(page.next_token.is_none());
    // Another customer's wallet partition holds none of it.
    assert!(t
        .ledger
        .page("c-2", 10, None)
        .await
        .unwrap()
        .entries
        .is_empty());
}

#[tokio::test]
async fn the_wired_function_captures_refunds_publishes_and_serves_the_wallet() {
    let sdk = emulator().await;
    let name = create_table(&sdk, "payments", &[]).await;
    let (topic, events) = topic_with_subscription(&sdk, None).await;
    let env = Env::from_map(HashMap::from([
        ("WALLETS_TABLE".to_owned(), name.clone()),
        ("ORDER_EVENTS_TOPIC_ARN".to_owned(), topic),
    ]));
    let app = payment::build(&sdk, &env).await.unwrap();
    let invoke = |event| dishpatch::runtime::invoke(&app, event, Default::default());
    let customer = unique("cust");

    // No provider is configured here: a top-up is refused as unavailable, nothing credited.
    let body =
        json!({"amount": {"amount": 2000, "currency": "EUR"}, "cardToken": "tok_visa"}).to_string();
    let route = "/v1/wallet/top-ups";
    let claims = Some((customer.as_str(), "[CUSTOMER]"));
    let (status, p) = call(
        &app,
        http_event("POST", route, route, &[], "", Some(&body), claims),
    )
    .await;
    assert_eq!(
        (status, p["code"].clone()),
        (503, json!("PAYMENT_PROVIDER_UNAVAILABLE"))
    );
    // An ADMIN credits the wallet with a reason; a USD credit is refused.
    let credit = |amount: i64, currency: &str| {
        let body = json!({"amount": {"amount": amount, "currency": currency}, "reason": "opening balance"}).to_string();
        let route = "/v1/admin/wallets/{customerId}/credits";
        let path = format!("/v1/admin/wallets/{customer}/credits");
        let params = [("customerId", customer.as_str())];
        http_event(
            "POST",
            route,
            &path,
            &params,
            "",
            Some(&body),
            Some(("root", "[ADMIN]")),
        )
    };
    let (status, body) = call(&app, credit(2000, "EUR")).await;
    assert_eq!(
        (status, body["kind"].clone(), body["amount"].clone()),
        (
            201,
            json!("ADMIN_CREDIT"),
            json!({"amount": 2000, "currency": "EUR"})
        )
    );
    let (status, body) = call(&app, credit(100, "USD")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (422, json!("CURRENCY_MISMATCH"))
    );

    // Capture (and a duplicate), one that does not fit, a card without a token (no
    // provider is configured here, and none is needed to refuse it), then refund twice.
    let capture = |order: &str, amount: i64, method: &str| {
        Envelope::new(
            MessageType::CapturePayment,
            order,
            json!({"customerId": customer, "amount": {"amount": amount, "currency": "EUR"}, "method": method}),
        )
    };
    let ok = capture("o-1", 1500, "WALLET");
    let too_much = capture("o-2", 1500, "WALLET");
    let card = capture("o-3", 100, "CARD");
    let refund = Envelope::new(MessageType::RefundPayment, "o-1", json!({}));
    for cmd in [&ok, &ok, &too_much, &card, &refund, &refund] {
        let resp = invoke(sqs_event(cmd)).await.unwrap();
        assert_eq!(resp, json!({"batchItemFailures": []}));
    }
    let got = events.received_facts(6).await;
    let mut facts: Vec<(String, String, serde_json::Value)> = got
        .iter()
        .map(|f| {
            (
                f.event_type.clone(),
                f.envelope.order_id.clone(),
                f.envelope.data.clone(),
            )
        })
        .collect();
    facts.sort_by_key(|f| format!("{f:?}"));
    let eur = |a: i64| json!({"amount": {"amount": a, "currency": "EUR"}});
    let mut expected = vec![
        ("PaymentCaptured".to_owned(), "o-1".to_owned(), eur(1500)),
        ("PaymentCaptured".to_owned(), "o-1".to_owned(), eur(1500)),
        (
            "PaymentDeclined".to_owned(),
            "o-2".to_owned(),
            json!({"reason": "INSUFFICIENT_FUNDS"}),
        ),
        (
            "PaymentDeclined".to_owned(),
            "o-3".to_owned(),
            json!({"reason": "CARD_DECLINED: missing_card_token"}),
        ),
        ("PaymentRefunded".to_owned(), "o-1".to_owned(), eur(1500)),
        ("PaymentRefunded".to_owned(), "o-1".to_owned(), eur(1500)),
    ];
    expected.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(facts, expected);

    // Charged once, refunded once: the wallet is whole again.
    let claims = Some((customer.as_str(), "[CUSTOMER]"));
    let get = http_event("GET", "/v1/wallet", "/v1/wallet", &[], "", None, claims);
    let (status, body) = call(&app, get).await;
    assert_eq!(
        (status, body["balance"].clone()),
        (200, json!({"amount": 2000, "currency": "EUR"}))
    );
    // The ledger says how: the credit, the capture, its refund.
    let route = "/v1/wallet/transactions";
    let (status, page) = call(&app, http_event("GET", route, route, &[], "", None, claims)).await;
    assert_eq!(status, 200);
    let amounts: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts.len(), 3, "{page}");
    assert_eq!(amounts.iter().sum::<i64>(), 2000);
}

// ---- Cancel wins: a refund that overtakes its capture (the saga's step deadline)

/// The function as it deploys, on `t`'s table, publishing to a topic read back here.
async fn wired(t: &Table) -> (payment::App, Subscription) {
    let sdk = emulator().await;
    let (topic, events) = topic_with_subscription(&sdk, None).await;
    let env = Env::from_map(HashMap::from([
        ("WALLETS_TABLE".to_owned(), t.name.clone()),
        ("ORDER_EVENTS_TOPIC_ARN".to_owned(), topic),
    ]));
    (payment::build(&sdk, &env).await.unwrap(), events)
}

fn capture_cmd(order_id: &str, customer_id: &str, amount: i64) -> Envelope {
    Envelope::new(
        MessageType::CapturePayment,
        order_id,
        json!({"customerId": customer_id, "amount": {"amount": amount, "currency": "EUR"}, "method": "WALLET"}),
    )
}

fn refund_cmd(order_id: &str) -> Envelope {
    Envelope::new(MessageType::RefundPayment, order_id, json!({}))
}

#[tokio::test]
async fn a_capture_after_its_refund_takes_no_money() {
    let t = table().await;
    let (app, events) = wired(&t).await;
    seed_wallet(&t, "c-1", 5000, "EUR").await;
    deliver(&app, &refund_cmd("o-1")).await;
    let tombstone = t.payments.get("o-1").await.unwrap().unwrap();
    assert_eq!(
        (tombstone.status, tombstone.amount, tombstone.method),
        (PaymentStatus::Refunded, 0, None)
    );
    // The late capture (and a duplicate of it) finds the tombstone: the wallet is untouched.
    for _ in 0..2 {
        deliver(&app, &capture_cmd("o-1", "c-1", 1200)).await;
    }
    assert_eq!(balance(&t, "c-1").await, 5000);
    assert_eq!(t.payments.get("o-1").await.unwrap().unwrap(), tombstone);
    // The saga's second refund only confirms.
    deliver(&app, &refund_cmd("o-1")).await;
    assert_eq!(balance(&t, "c-1").await, 5000);
    let mut facts: Vec<(String, serde_json::Value)> = events
        .received_facts(4)
        .await
        .into_iter()
        .map(|f| (f.event_type, f.envelope.data))
        .collect();
    facts.sort_by_key(|f| format!("{f:?}"));
    let zero = json!({"amount": {"amount": 0, "currency": "EUR"}});
    assert_eq!(
        facts,
        vec![
            ("PaymentCaptured".to_owned(), zero.clone()),
            ("PaymentCaptured".to_owned(), zero.clone()),
            ("PaymentRefunded".to_owned(), zero.clone()),
            ("PaymentRefunded".to_owned(), zero),
        ]
    );
    assert!(events.drain().await.is_empty());
}

#[tokio::test]
async fn a_capture_racing_its_refund_ends_charging_nothing() {
    let t = table().await;
    let (app, _events) = wired(&t).await;
    seed_wallet(&t, "c-1", 5000, "EUR").await;
    for round in 0..12 {
        let order = format!("o-race-{round}");
        let capture = capture_cmd(&order, "c-1", 1200);
        let refund = refund_cmd(&order);
        deliver_racing(&app, &capture, &refund, round).await;
        assert_eq!(balance(&t, "c-1").await, 5000, "round {round}");
        assert_eq!(
            t.payments.get(&order).await.unwrap().unwrap().status,
            PaymentStatus::Refunded,
            "round {round}"
        );
        // Whatever arrives later changes nothing either.
        deliver(&app, &capture).await;
        assert_eq!(balance(&t, "c-1").await, 5000, "round {round}");
    }
}

// ---- Card payment records: the conditional moves the card flow relies on

#[tokio::test]
async fn a_card_payment_moves_pending_captured_refunded_only_from_the_expected_state() {
    let t = table().await;
    let at = || "2026-01-01T00:00:00.000Z".to_owned();
    let pending = Payment::pending_card("o-1", "c-1", Money::new(1200, "EUR"), "tok_visa", at());
    assert!(t.payments.record(&pending).await.unwrap());
    assert!(!t.payments.record(&pending).await.unwrap(), "one per order");
    let stored = t.payments.get("o-1").await.unwrap().unwrap();
    assert_eq!(stored, pending);
    assert_eq!(stored.card_token.as_deref(), Some("tok_visa"));

    let captured = Payment {
        status: PaymentStatus::Captured,
        charge_id: Some("ch_1".into()),
        card_token: None,
        ..pending.clone()
    };
    // Not from the wrong state, then once from PENDING (and the token is gone with it).
    for (expected, applied) in [
        (PaymentStatus::Captured, false),
        (PaymentStatus::Pending, true),
        (PaymentStatus::Pending, false),
    ] {
        let replaced = t.payments.replace(&captured, expected).await.unwrap();
        assert_eq!(replaced, applied, "replace expecting {expected:?}");
    }
    let stored = t.payments.get("o-1").await.unwrap().unwrap();
    assert_eq!(stored, captured);
    let raw = t
        .ddb
        .get_item()
        .table_name(&t.name)
        .key("pk", s("PAYMENT#o-1"))
        .key("sk", s("PAYMENT"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!raw.contains_key("cardToken"), "{raw:?}");
    assert_eq!(raw["status"], s("CAPTURED"));
    assert_eq!(raw["chargeId"], s("ch_1"));

    let refunded = Payment {
        status: PaymentStatus::Refunded,
        refund_id: Some("re_1".into()),
        ..captured.clone()
    };
    let (a, b) = tokio::join!(
        t.payments.replace(&refunded, PaymentStatus::Captured),
        t.payments.replace(&refunded, PaymentStatus::Captured)
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);
    assert_eq!(t.payments.get("o-1").await.unwrap().unwrap(), refunded);
    // A replace never creates a record.
    assert!(!t
        .payments
        .replace(
            &Payment {
                order_id: "o-none".into(),
                ..refunded
            },
            PaymentStatus::Captured
        )
        .await
        .unwrap());
    assert!(t.payments.get("o-none").await.unwrap().is_none());
}
