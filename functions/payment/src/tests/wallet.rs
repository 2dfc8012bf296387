use super::card::Script;
use super::*;
use crate::requests::MAX_TOP_UP;
use lambda_http::{Body, Response};

/// One HTTP request through the routes, with an optional `Idempotency-Key`.
struct Req<'a> {
    method: &'a str,
    route: &'a str,
    path: String,
    params: Vec<(&'a str, String)>,
    query: String,
    body: Option<Value>,
    caller: Option<(&'a str, &'a str)>,
    key: Option<&'a str>,
}

impl<'a> Req<'a> {
    fn top_up(sub: &'a str, body: Value) -> Self {
        Req {
            method: "POST",
            route: "/v1/wallet/top-ups",
            path: "/v1/wallet/top-ups".into(),
            params: vec![],
            query: String::new(),
            body: Some(body),
            caller: Some((sub, "[CUSTOMER]")),
            key: None,
        }
    }

    fn transactions(sub: &'a str, query: &str) -> Self {
        Req {
            method: "GET",
            route: "/v1/wallet/transactions",
            path: "/v1/wallet/transactions".into(),
            query: query.into(),
            body: None,
            ..Req::top_up(sub, Value::Null)
        }
    }

    fn credit(admin: &'a str, roles: &'a str, customer: &str, body: Value) -> Self {
        Req {
            method: "POST",
            route: "/v1/admin/wallets/{customerId}/credits",
            path: format!("/v1/admin/wallets/{customer}/credits"),
            params: vec![("customerId", customer.to_owned())],
            query: String::new(),
            body: Some(body),
            caller: Some((admin, roles)),
            key: None,
        }
    }

    fn key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }

    fn roles(mut self, roles: &'a str) -> Self {
        self.caller = self.caller.map(|(s, _)| (s, roles));
        self
    }

    async fn send(self, f: &Fixture) -> Response<Body> {
        let params: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = self.body.map(|b| b.to_string());
        let mut req = dishpatch::testing::http_request(
            self.method,
            self.route,
            &self.path,
            &params,
            &self.query,
            body.as_deref(),
            self.caller,
        );
        if let Some(k) = self.key {
            req.headers_mut()
                .insert("idempotency-key", k.parse().unwrap());
        }
        dishpatch::http::respond(&req, crate::routes::route(&f.app, &req).await)
    }

    async fn parts(self, f: &Fixture) -> (u16, Value) {
        dishpatch::testing::parts(self.send(f).await)
    }
}

fn paid(amount: i64, token: &str) -> Value {
    json!({"amount": {"amount": amount, "currency": "EUR"}, "cardToken": token})
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The one top-up the fixture holds.
fn only_top_up(f: &Fixture) -> TopUp {
    let s = f.store.state.lock().unwrap();
    assert_eq!(s.top_ups.len(), 1);
    s.top_ups.values().next().cloned().unwrap()
}

fn top_up_entries(f: &Fixture, customer: &str) -> Vec<LedgerEntry> {
    f.store
        .ledger(customer)
        .into_iter()
        .filter(|e| e.kind == crate::ledger::EntryKind::TopUp)
        .collect()
}

#[tokio::test]
async fn a_top_up_charges_the_card_then_credits_once_with_a_ledger_entry() {
    let f = fixture(FakePayments::default());
    let (status, body) = Req::top_up("c-1", paid(2500, "tok_visa"))
        .key("k-1")
        .parts(&f)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "CREDITED");
    let id = body["topUpId"].as_str().unwrap().to_owned();
    assert_eq!(f.store.balance("c-1"), Some(2500));
    let charges = f.psp.charges_for(&format!("topup:{id}"));
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].amount, 2500);
    let entries = top_up_entries(&f, "c-1");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].charge_id.as_deref(),
        Some(charges[0].charge_id.as_str())
    );

    // The same request again: the first answer, no second charge or credit.
    let resp = Req::top_up("c-1", paid(2500, "tok_visa"))
        .key("k-1")
        .send(&f)
        .await;
    assert_eq!(
        header(&resp, "idempotent-replayed").as_deref(),
        Some("true")
    );
    let (status, again) = dishpatch::testing::parts(resp);
    assert_eq!((status, again), (201, body));
    assert_eq!(f.store.balance("c-1"), Some(2500));
    assert_eq!(f.psp.charges_for(&format!("topup:{id}")).len(), 1);

    // The key with another request is refused; nothing moves.
    let (status, p) = Req::top_up("c-1", paid(2600, "tok_visa"))
        .key("k-1")
        .parts(&f)
        .await;
    assert_eq!(
        (status, p["code"].clone()),
        (422, json!("IDEMPOTENCY_KEY_REUSED"))
    );
    assert_eq!(f.store.balance("c-1"), Some(2500));
}

#[tokio::test]
async fn an_unpaid_or_unbounded_top_up_is_refused_before_anything_is_written() {
    let f = fixture(FakePayments::default());
    // The reproduction: a million, no card, three times.
    for _ in 0..3 {
        let (status, p) = Req::top_up(
            "alice",
            json!({"amount": {"amount": 1_000_000, "currency": "EUR"}}),
        )
        .parts(&f)
        .await;
        assert_eq!(status, 400, "{p}");
        assert_eq!(p["code"], "VALIDATION_FAILED");
    }
    let (status, p) = Req::top_up("alice", paid(MAX_TOP_UP + 1, "tok_visa"))
        .parts(&f)
        .await;
    assert_eq!((status, p["field"].clone()), (400, json!("amount.amount")));
    let s = f.store.state.lock().unwrap();
    assert!(s.wallets.is_empty() && s.top_ups.is_empty() && s.ledger.is_empty());
    assert!(f.psp.calls().is_empty());
}

#[tokio::test]
async fn a_declined_card_answers_402_and_credits_nothing() {
    let f = fixture(FakePayments::with_wallet("c-1", 1000, "EUR"));
    let (status, p) = Req::top_up("c-1", paid(2500, "tok_decline_funds"))
        .key("d")
        .parts(&f)
        .await;
    assert_eq!(
        (status, p["code"].clone()),
        (402, json!("CARD_DECLINED")),
        "{p}"
    );
    assert!(p["detail"].as_str().unwrap().contains("insufficient_funds"));
    assert_eq!(f.store.balance("c-1"), Some(1000));
    assert!(top_up_entries(&f, "c-1").is_empty());
    // Replayed as it was.
    let (status, _) = Req::top_up("c-1", paid(2500, "tok_decline_funds"))
        .key("d")
        .parts(&f)
        .await;
    assert_eq!(status, 402);
    assert_eq!(f.psp.calls().len(), 1);
}

#[tokio::test]
async fn an_outage_answers_503_and_a_retry_with_the_key_credits_exactly_once() {
    let f = fixture(FakePayments::default());
    f.psp.unavailable();
    let resp = Req::top_up("c-1", paid(900, "tok_visa"))
        .key("o")
        .send(&f)
        .await;
    assert_eq!(header(&resp, "retry-after").as_deref(), Some("5"));
    let (status, p) = dishpatch::testing::parts(resp);
    assert_eq!(
        (status, p["code"].clone()),
        (503, json!("PAYMENT_PROVIDER_UNAVAILABLE"))
    );
    assert_eq!(
        f.store.balance("c-1"),
        None,
        "nothing credited during an outage"
    );
    assert_eq!(only_top_up(&f).status, TopUpStatus::Pending);

    let (status, body) = Req::top_up("c-1", paid(900, "tok_visa"))
        .key("o")
        .parts(&f)
        .await;
    assert_eq!((status, body["status"].clone()), (201, json!("CREDITED")));
    assert_eq!(f.store.balance("c-1"), Some(900));
}

#[tokio::test]
async fn a_charge_whose_answer_was_lost_is_credited_on_retry_not_charged_twice() {
    let f = fixture(FakePayments::default());
    f.psp.then(Script::ActThenLose);
    let (status, _) = Req::top_up("c-1", paid(700, "tok_visa"))
        .key("lost")
        .parts(&f)
        .await;
    assert_eq!(status, 503);
    assert_eq!(f.store.balance("c-1"), None);
    // The retry repeats the keyed charge: the provider answers with the first one.
    let (status, body) = Req::top_up("c-1", paid(700, "tok_visa"))
        .key("lost")
        .parts(&f)
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["topUpId"].as_str().unwrap();
    assert_eq!(f.psp.charges_for(&format!("topup:{id}")).len(), 1);
    assert_eq!(f.store.balance("c-1"), Some(700));
    assert_eq!(top_up_entries(&f, "c-1").len(), 1);
}

#[tokio::test]
async fn the_wallet_limit_and_currency_are_kept() {
    let f = fixture(FakePayments::with_wallet("c-1", MAX_BALANCE - 100, "EUR"));
    let (status, p) = Req::top_up("c-1", paid(200, "tok_visa")).parts(&f).await;
    assert_eq!(
        (status, p["code"].clone()),
        (422, json!("WALLET_LIMIT_EXCEEDED"))
    );
    let (status, p) = Req::top_up(
        "c-1",
        json!({"amount": {"amount": 50, "currency": "USD"}, "cardToken": "tok_visa"}),
    )
    .parts(&f)
    .await;
    assert_eq!(
        (status, p["code"].clone()),
        (422, json!("CURRENCY_MISMATCH"))
    );
    assert!(
        f.psp.calls().is_empty(),
        "refused before the card was charged"
    );
    assert_eq!(f.store.balance("c-1"), Some(MAX_BALANCE - 100));
    // Up to the limit is fine.
    let (status, _) = Req::top_up("c-1", paid(100, "tok_visa")).parts(&f).await;
    assert_eq!(status, 201);
    assert_eq!(f.store.balance("c-1"), Some(MAX_BALANCE));
}

#[tokio::test]
async fn a_charge_the_wallet_can_no_longer_take_is_refunded_not_credited() {
    let f = fixture(FakePayments::with_wallet("c-1", MAX_BALANCE - 500, "EUR"));
    // Another credit lands between the check and the credit.
    *f.store.credit_before_top_up.lock().unwrap() = Some(400);
    let (status, p) = Req::top_up("c-1", paid(300, "tok_visa"))
        .key("race")
        .parts(&f)
        .await;
    assert_eq!(
        (status, p["code"].clone()),
        (422, json!("WALLET_LIMIT_EXCEEDED")),
        "{p}"
    );
    let top_up = only_top_up(&f);
    assert_eq!(top_up.status, TopUpStatus::Refunded);
    let charges = f.psp.charges_for(&top_up.provider_key());
    assert_eq!((charges.len(), charges[0].refunded), (1, 300));
    assert!(top_up_entries(&f, "c-1").is_empty());
    assert_eq!(f.store.balance("c-1"), Some(MAX_BALANCE - 100));
}

#[tokio::test]
async fn the_ledger_lists_every_movement_newest_first_in_pages() {
    let f = fixture(FakePayments::with_wallet("c-1", 5000, "EUR"));
    Req::top_up("c-1", paid(100, "tok_visa")).parts(&f).await;
    f.handled(&capture_cmd("o-1", "c-1", 1200, "WALLET")).await;
    f.handled(&refund_cmd("o-1")).await;
    Req::top_up("c-2", paid(100, "tok_visa")).parts(&f).await;

    let mut seen = vec![];
    let mut token: Option<String> = None;
    loop {
        let q = match &token {
            Some(t) => format!("page_size=2&page_token={t}"),
            None => "page_size=2".into(),
        };
        let (status, page) = Req::transactions("c-1", &q).parts(&f).await;
        assert_eq!(status, 200, "{page}");
        for e in page["items"].as_array().unwrap() {
            seen.push((
                e["kind"].as_str().unwrap().to_owned(),
                e["amount"]["amount"].as_i64().unwrap(),
            ));
        }
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.len(), 4, "{seen:?}");
    assert!(kinds.contains(&"TOP_UP") && kinds.contains(&"CAPTURE") && kinds.contains(&"REFUND"));
    assert_eq!(kinds.last(), Some(&"ADMIN_CREDIT"), "oldest last: {seen:?}");
    assert_eq!(
        seen.iter().map(|(_, a)| a).sum::<i64>(),
        f.store.balance("c-1").unwrap()
    );

    for bad in ["page_size=0", "page_size=101", "page_token=nope"] {
        let (status, p) = Req::transactions("c-1", bad).parts(&f).await;
        assert_eq!(status, 400, "{bad}: {p}");
    }
    let (status, _) = Req::transactions("k-1", "")
        .roles("[COURIER]")
        .parts(&f)
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn only_an_admin_credits_a_wallet_and_only_with_a_reason() {
    let f = fixture(FakePayments::with_wallet("c-1", 1000, "EUR"));
    let body =
        json!({"amount": {"amount": 250, "currency": "EUR"}, "reason": "late delivery goodwill"});
    for roles in ["[CUSTOMER]", "[MANAGER]", "[COURIER]"] {
        let (status, _) = Req::credit("c-1", roles, "c-1", body.clone())
            .parts(&f)
            .await;
        assert_eq!(status, 403, "{roles}");
    }
    let (status, p) = Req::credit(
        "root",
        "[ADMIN]",
        "c-1",
        json!({"amount": {"amount": 250, "currency": "EUR"}}),
    )
    .parts(&f)
    .await;
    assert_eq!((status, p["field"].clone()), (400, json!("reason")));
    assert_eq!(f.store.balance("c-1"), Some(1000));

    let (status, entry) = Req::credit("root", "[ADMIN]", "c-1", body.clone())
        .key("g-1")
        .parts(&f)
        .await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["reason"], "late delivery goodwill");
    let again = Req::credit("root", "[ADMIN]", "c-1", body.clone())
        .key("g-1")
        .send(&f)
        .await;
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(f.store.balance("c-1"), Some(1250));
    let recorded = f.store.ledger("c-1");
    let credit = recorded
        .iter()
        .find(|e| e.reason.as_deref() == Some("late delivery goodwill"))
        .unwrap();
    assert_eq!(credit.actor.as_deref(), Some("root"));
    // The customer reads the reason in their ledger.
    let (_, page) = Req::transactions("c-1", "").parts(&f).await;
    assert_eq!(page["items"][0]["reason"], "late delivery goodwill");
}

#[tokio::test]
async fn wallets_are_for_customers() {
    let f = fixture(FakePayments::default());
    let (status, body) = get_wallet(&f, "k-1", "[COURIER MANAGER]").await;
    assert_eq!((status, body["code"].clone()), (403, json!("FORBIDDEN")));
    let (status, _) = Req::top_up("k-1", paid(100, "tok_visa"))
        .roles("[COURIER]")
        .parts(&f)
        .await;
    assert_eq!(status, 403);
    let event = http_event("GET", "/v1/wallet", "/v1/wallet", &[], "", None, None);
    let (status, _) = call(&f.app, event).await;
    assert_eq!(status, 401);
    assert!(f.store.state.lock().unwrap().wallets.is_empty());
}

#[tokio::test]
async fn a_top_up_left_pending_by_an_outage_is_settled_from_the_queue() {
    let f = fixture(FakePayments::default());
    // Charged, then the answer is lost: 503, and the settlement is queued.
    f.psp.then(Script::ActThenLose);
    let (status, _) = Req::top_up("c-1", paid(800, "tok_visa"))
        .key("q")
        .parts(&f)
        .await;
    assert_eq!(status, 503);
    let queued: Vec<Envelope> = f.publisher.sent.lock().unwrap().clone();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, "SettleTopUp");
    // Still down when it first arrives: a transient failure, nothing credited.
    f.psp.unavailable();
    assert!(matches!(
        handle(&f.app, &queued[0]).await,
        Err(MessageError::Transient(_))
    ));
    assert_eq!(f.store.balance("c-1"), None);
    // Back: the queued step finds the charge and credits it, once, with no new charge.
    f.handled(&queued[0]).await;
    f.handled(&queued[0]).await;
    assert_eq!(f.store.balance("c-1"), Some(800));
    let top_up = only_top_up(&f);
    assert_eq!(top_up.status, TopUpStatus::Credited);
    assert_eq!(f.psp.charges_for(&top_up.provider_key()).len(), 1);
    // The customer's retry answers the settled top-up.
    let (status, body) = Req::top_up("c-1", paid(800, "tok_visa"))
        .key("q")
        .parts(&f)
        .await;
    assert_eq!((status, body["status"].clone()), (201, json!("CREDITED")));
    assert_eq!(top_up_entries(&f, "c-1").len(), 1);
    // A command naming no top-up is parked, not retried.
    let stray = Envelope::new(
        MessageType::SettleTopUp,
        "topup-x",
        json!({"customerId": "c-1", "topUpId": "nope"}),
    );
    assert!(matches!(
        handle(&f.app, &stray).await,
        Err(MessageError::Permanent {
            code: PermanentCode::UnknownReference,
            ..
        })
    ));
}
