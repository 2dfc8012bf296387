//! Handler logic against an in-memory fake of the ports (the table's conditional
//! semantics over a map).

use crate::ledger::{LedgerEntry, LedgerPage, LedgerStore};
use crate::payments::{Capture, Payment, PaymentStatus, PaymentStore};
use crate::provider::PaymentProvider;
use crate::topups::{TopUp, TopUpStatus, TopUpStore};
use crate::wallets::{AdminCredit, Credit, Wallet, WalletStore, MAX_BALANCE};
use crate::App;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::money::Money;
use dishpatch::order::PaymentMethod;
use dishpatch::runtime::{MessageError, PermanentCode};
use dishpatch::testing::{call, handle, http_event, RecordingPublisher};
use dishpatch::worker::Outlets;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    wallets: HashMap<String, Wallet>,
    payments: HashMap<String, Payment>,
    /// Every wallet movement, in the order written.
    ledger: Vec<LedgerEntry>,
    top_ups: HashMap<String, TopUp>,
    credits: HashMap<String, AdminCredit>,
}

impl State {
    /// The credit transaction: refused for another currency or past the limit.
    fn credit(&mut self, entry: &LedgerEntry) -> Credit {
        let w = self
            .wallets
            .entry(entry.customer_id.clone())
            .or_insert_with(|| Wallet {
                customer_id: entry.customer_id.clone(),
                balance: 0,
                currency: entry.currency.clone(),
            });
        if w.currency != entry.currency {
            return Credit::CurrencyMismatch;
        }
        if w.balance + entry.amount > MAX_BALANCE {
            return Credit::LimitExceeded;
        }
        w.balance += entry.amount;
        self.ledger.push(entry.clone());
        Credit::Credited
    }

    /// Every wallet equals the sum of its ledger entries.
    fn assert_ledger_balances(&self) {
        for (c, w) in &self.wallets {
            let sum: i64 = self
                .ledger
                .iter()
                .filter(|e| &e.customer_id == c)
                .map(|e| e.amount)
                .sum();
            assert_eq!(
                w.balance, sum,
                "wallet {c}: balance vs ledger {:?}",
                self.ledger
            );
        }
    }
}

#[derive(Default)]
struct FakePayments {
    state: Mutex<State>,
    /// A concurrent duplicate that records its payment just before our capture runs.
    racing_duplicate: Mutex<Option<Payment>>,
    /// A capture that lands just before the next `record` (racing a refund's tombstone).
    capture_before_record: Mutex<Option<Payment>>,
    /// A record written just before the next `replace` (a concurrent command settling a
    /// card payment first).
    settle_before_replace: Mutex<Option<Payment>>,
    /// A credit of this much that lands just before the next top-up's credit.
    credit_before_top_up: Mutex<Option<i64>>,
}

impl FakePayments {
    /// A wallet opened by an ADMIN credit of `balance`, as the seed does.
    fn with_wallet(customer_id: &str, balance: i64, currency: &str) -> Self {
        let f = FakePayments::default();
        let mut s = f.state.lock().unwrap();
        s.wallets.insert(
            customer_id.into(),
            Wallet {
                customer_id: customer_id.into(),
                balance,
                currency: currency.into(),
            },
        );
        s.ledger.push(LedgerEntry::admin_credit(
            customer_id,
            "opening",
            &Money::new(balance, currency),
            "opening balance",
            "seed",
            "2026-01-01T00:00:00.000Z",
        ));
        drop(s);
        f
    }

    fn ledger(&self, customer_id: &str) -> Vec<LedgerEntry> {
        let s = self.state.lock().unwrap();
        s.assert_ledger_balances();
        s.ledger
            .iter()
            .filter(|e| e.customer_id == customer_id)
            .cloned()
            .collect()
    }

    fn balance(&self, customer_id: &str) -> Option<i64> {
        self.state
            .lock()
            .unwrap()
            .wallets
            .get(customer_id)
            .map(|w| w.balance)
    }

    fn payment(&self, order_id: &str) -> Option<Payment> {
        self.state.lock().unwrap().payments.get(order_id).cloned()
    }
}

#[async_trait::async_trait]
impl PaymentStore for FakePayments {
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, StoreError> {
        Ok(self.payment(order_id))
    }

    async fn capture_from_wallet(&self, p: &Payment) -> Result<Capture, StoreError> {
        let mut s = self.state.lock().unwrap();
        if let Some(dup) = self.racing_duplicate.lock().unwrap().take() {
            s.payments.insert(dup.order_id.clone(), dup);
        }
        if s.payments.contains_key(&p.order_id) {
            return Ok(Capture::Exists);
        }
        match s.wallets.get_mut(&p.customer_id) {
            Some(w) if w.balance >= p.amount && w.currency == p.currency => w.balance -= p.amount,
            _ => return Ok(Capture::Refused),
        }
        s.ledger.push(LedgerEntry::capture(
            &p.customer_id,
            &p.order_id,
            &p.money(),
            &p.created_at,
        ));
        s.payments.insert(p.order_id.clone(), p.clone());
        Ok(Capture::Captured)
    }

    async fn record(&self, p: &Payment) -> Result<bool, StoreError> {
        let racing = self.capture_before_record.lock().unwrap().take();
        if let Some(racing) = racing {
            self.capture_from_wallet(&racing).await?;
        }
        let mut s = self.state.lock().unwrap();
        if s.payments.contains_key(&p.order_id) {
            return Ok(false);
        }
        s.payments.insert(p.order_id.clone(), p.clone());
        Ok(true)
    }

    async fn replace(&self, p: &Payment, expected: PaymentStatus) -> Result<bool, StoreError> {
        let racing = self.settle_before_replace.lock().unwrap().take();
        let mut s = self.state.lock().unwrap();
        if let Some(racing) = racing {
            s.payments.insert(racing.order_id.clone(), racing);
        }
        match s.payments.get(&p.order_id) {
            Some(stored) if stored.status == expected => {
                s.payments.insert(p.order_id.clone(), p.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn refund_to_wallet(&self, p: &Payment) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        match s.payments.get(&p.order_id) {
            Some(stored) if stored.status == PaymentStatus::Captured => {}
            _ => return Ok(false),
        }
        s.wallets.get_mut(&p.customer_id).unwrap().balance += p.amount;
        s.ledger.push(LedgerEntry::refund(
            &p.customer_id,
            &p.order_id,
            &p.money(),
            "2026-12-06T00:00:00.000Z",
        ));
        s.payments.get_mut(&p.order_id).unwrap().status = PaymentStatus::Refunded;
        Ok(true)
    }
}

#[async_trait::async_trait]
impl WalletStore for FakePayments {
    async fn get(&self, customer_id: &str) -> Result<Option<Wallet>, StoreError> {
        Ok(self.state.lock().unwrap().wallets.get(customer_id).cloned())
    }

    async fn admin_credit(
        &self,
        _: &str,
        credit_id: &str,
    ) -> Result<Option<AdminCredit>, StoreError> {
        Ok(self.state.lock().unwrap().credits.get(credit_id).cloned())
    }

    async fn credit_admin(&self, credit: &AdminCredit) -> Result<Credit, StoreError> {
        let mut s = self.state.lock().unwrap();
        if s.credits.contains_key(&credit.credit_id) {
            return Ok(Credit::AlreadySettled);
        }
        let done = s.credit(&credit.entry);
        if done == Credit::Credited {
            s.credits.insert(credit.credit_id.clone(), credit.clone());
        }
        Ok(done)
    }
}

#[async_trait::async_trait]
impl TopUpStore for FakePayments {
    async fn get(&self, _: &str, id: &str) -> Result<Option<TopUp>, StoreError> {
        Ok(self.state.lock().unwrap().top_ups.get(id).cloned())
    }

    async fn begin(&self, t: &TopUp) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        if s.top_ups.contains_key(&t.top_up_id) {
            return Ok(false);
        }
        s.top_ups.insert(t.top_up_id.clone(), t.clone());
        Ok(true)
    }

    async fn settle(&self, t: &TopUp) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        match s.top_ups.get(&t.top_up_id) {
            Some(stored) if stored.status == TopUpStatus::Pending => {
                s.top_ups.insert(t.top_up_id.clone(), t.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn credit(&self, t: &TopUp, entry: &LedgerEntry) -> Result<Credit, StoreError> {
        let racing = self.credit_before_top_up.lock().unwrap().take();
        let mut s = self.state.lock().unwrap();
        if let Some(amount) = racing {
            let other = LedgerEntry::admin_credit(
                &t.customer_id,
                "racing",
                &Money::new(amount, &t.currency),
                "racing",
                "root",
                "2026-12-06T00:00:00.000Z",
            );
            assert_eq!(s.credit(&other), Credit::Credited);
        }
        match s.top_ups.get(&t.top_up_id) {
            Some(stored) if stored.status == TopUpStatus::Pending => {}
            _ => return Ok(Credit::AlreadySettled),
        }
        let done = s.credit(entry);
        if done == Credit::Credited {
            s.top_ups.insert(t.top_up_id.clone(), t.clone());
        }
        Ok(done)
    }
}

#[async_trait::async_trait]
impl LedgerStore for FakePayments {
    async fn page(
        &self,
        customer_id: &str,
        size: u32,
        token: Option<&str>,
    ) -> Result<LedgerPage, StoreError> {
        let s = self.state.lock().unwrap();
        let mut all: Vec<LedgerEntry> = s
            .ledger
            .iter()
            .filter(|e| e.customer_id == customer_id)
            .cloned()
            .collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.sort_key()));
        let after = token.and_then(crate::ledger::decode_cursor);
        let rest: Vec<LedgerEntry> = all
            .into_iter()
            .filter(|e| after.as_ref().is_none_or(|a| e.sort_key() < *a))
            .collect();
        let entries: Vec<LedgerEntry> = rest.iter().take(size as usize).cloned().collect();
        let next_token = (rest.len() > entries.len())
            .then(|| crate::ledger::encode_cursor(&entries.last().unwrap().sort_key()));
        Ok(LedgerPage {
            entries,
            next_token,
        })
    }
}

struct Fixture {
    app: App,
    store: Arc<FakePayments>,
    publisher: Arc<RecordingPublisher>,
    psp: Arc<card::FakePsp>,
}

impl Fixture {
    /// Handles `cmd`, which must succeed.
    async fn handled(&self, cmd: &Envelope) {
        if let Err(e) = handle(&self.app, cmd).await {
            panic!("{} for {} failed: {e}", cmd.kind, cmd.order_id);
        }
    }
}

fn fixture(store: FakePayments) -> Fixture {
    let store = Arc::new(store);
    let publisher = Arc::new(RecordingPublisher::default());
    let psp = Arc::new(card::FakePsp::default());
    Fixture {
        app: App {
            payments: store.clone(),
            wallets: store.clone(),
            top_ups: store.clone(),
            ledger: store.clone(),
            provider: psp.clone() as Arc<dyn PaymentProvider>,
            outlets: Outlets::publishing(publisher.clone()),
        },
        store,
        publisher,
        psp,
    }
}

fn capture_cmd(order_id: &str, customer_id: &str, amount: i64, method: &str) -> Envelope {
    Envelope::new(
        MessageType::CapturePayment,
        order_id,
        json!({"customerId": customer_id, "amount": {"amount": amount, "currency": "EUR"}, "method": method}),
    )
}

fn refund_cmd(order_id: &str) -> Envelope {
    Envelope::new(MessageType::RefundPayment, order_id, json!({}))
}

fn captured(amount: i64) -> (String, Value) {
    (
        "PaymentCaptured".into(),
        json!({"amount": {"amount": amount, "currency": "EUR"}}),
    )
}

fn declined(reason: &str) -> (String, Value) {
    ("PaymentDeclined".into(), json!({"reason": reason}))
}

fn refunded(amount: i64) -> (String, Value) {
    (
        "PaymentRefunded".into(),
        json!({"amount": {"amount": amount, "currency": "EUR"}}),
    )
}

// ---- CapturePayment

#[tokio::test]
async fn capture_debits_the_wallet_and_follows_the_command() {
    let f = fixture(FakePayments::with_wallet("c-1", 5000, "EUR"));
    let c = capture_cmd("o-1", "c-1", 1200, "WALLET");
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
    assert_eq!(f.store.balance("c-1"), Some(3800));
    let p = f.store.payment("o-1").unwrap();
    assert_eq!(
        (p.status, p.method, p.amount),
        (PaymentStatus::Captured, Some(PaymentMethod::Wallet), 1200)
    );
    let fact = &f.publisher.sent.lock().unwrap()[0];
    assert_eq!(fact.causation_id.as_deref(), Some(c.id.as_str()));
}

#[tokio::test]
async fn duplicate_capture_republishes_and_charges_once() {
    let f = fixture(FakePayments::with_wallet("c-1", 5000, "EUR"));
    let c = capture_cmd("o-1", "c-1", 1200, "WALLET");
    for _ in 0..3 {
        f.handled(&c).await;
    }
    assert_eq!(f.publisher.facts(), vec![captured(1200); 3]);
    assert_eq!(f.store.balance("c-1"), Some(3800));
}

#[tokio::test]
async fn a_short_wallet_is_declined_on_record() {
    let f = fixture(FakePayments::with_wallet("c-1", 1000, "EUR"));
    let c = capture_cmd("o-1", "c-1", 1200, "WALLET");
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![declined("INSUFFICIENT_FUNDS")]);
    assert_eq!(f.store.balance("c-1"), Some(1000));
    // Money arriving later does not turn a recorded refusal into a charge.
    f.store
        .state
        .lock()
        .unwrap()
        .wallets
        .get_mut("c-1")
        .unwrap()
        .balance = 10_000;
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![declined("INSUFFICIENT_FUNDS"); 2]);
    assert_eq!(f.store.balance("c-1"), Some(10_000));
}

#[tokio::test]
async fn no_wallet_or_another_currency_is_insufficient_funds() {
    let f = fixture(FakePayments::with_wallet("c-usd", 100_000, "USD"));
    f.handled(&capture_cmd("o-1", "c-none", 100, "WALLET"))
        .await;
    f.handled(&capture_cmd("o-2", "c-usd", 100, "WALLET")).await;
    assert_eq!(f.publisher.facts(), vec![declined("INSUFFICIENT_FUNDS"); 2]);
    assert_eq!(f.store.balance("c-usd"), Some(100_000));
    assert_eq!(f.store.balance("c-none"), None);
}

#[tokio::test]
async fn a_card_command_without_a_token_is_declined_without_calling_the_provider() {
    let f = fixture(FakePayments::with_wallet("c-1", 5000, "EUR"));
    let c = capture_cmd("o-1", "c-1", 1200, "CARD");
    f.handled(&c).await;
    f.handled(&c).await;
    let reason = "CARD_DECLINED: missing_card_token";
    assert_eq!(f.publisher.facts(), vec![declined(reason); 2]);
    assert_eq!(f.store.balance("c-1"), Some(5000));
    assert_eq!(
        f.store.payment("o-1").unwrap().status,
        PaymentStatus::Declined
    );
    assert!(f.psp.calls().is_empty());
}

/// The record a wallet capture writes.
fn captured_payment(order_id: &str, customer_id: &str, amount: i64) -> Payment {
    let (eur, at) = (Money::new(amount, "EUR"), "2026-01-01T00:00:00.000Z");
    Payment::captured(order_id, customer_id, eur, PaymentMethod::Wallet, at.into())
}

#[tokio::test]
async fn a_concurrent_duplicate_that_won_is_republished() {
    let store = FakePayments::with_wallet("c-1", 5000, "EUR");
    *store.racing_duplicate.lock().unwrap() = Some(captured_payment("o-1", "c-1", 1200));
    let f = fixture(store);
    f.handled(&capture_cmd("o-1", "c-1", 1200, "WALLET")).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
    // The duplicate's debit is the fake's to model; this capture took nothing more.
    assert_eq!(f.store.balance("c-1"), Some(5000));
}

#[tokio::test]
async fn a_lost_publish_heals_on_retry() {
    let f = fixture(FakePayments::with_wallet("c-1", 5000, "EUR"));
    let c = capture_cmd("o-1", "c-1", 1200, "WALLET");
    f.publisher.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        handle(&f.app, &c).await,
        Err(MessageError::Transient(_))
    ));
    f.publisher.fail.store(false, Ordering::SeqCst);
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
    assert_eq!(f.store.balance("c-1"), Some(3800));
}

#[tokio::test]
async fn bad_payloads_and_foreign_messages_are_refused() {
    let f = fixture(FakePayments::with_wallet("c-1", 5000, "EUR"));
    let bad = Envelope::new(
        MessageType::CapturePayment,
        "o-1",
        json!({"customerId": "c-1", "method": "WALLET"}),
    );
    assert!(matches!(
        handle(&f.app, &bad).await,
        Err(MessageError::Decode(_))
    ));
    // A negative amount would credit the wallet.
    assert!(matches!(
        handle(&f.app, &capture_cmd("o-1", "c-1", -500, "WALLET")).await,
        Err(MessageError::Permanent {
            code: PermanentCode::InvalidContent,
            ..
        })
    ));
    let other = Envelope::new(MessageType::ReserveInventory, "o-1", json!({}));
    assert!(matches!(
        handle(&f.app, &other).await,
        Err(MessageError::Unsupported)
    ));
    assert_eq!(f.store.balance("c-1"), Some(5000));
    assert!(f.publisher.facts().is_empty());
}

// ---- RefundPayment

#[tokio::test]
async fn refund_credits_back_once() {
    let f = fixture(FakePayments::with_wallet("c-1", 5000, "EUR"));
    f.handled(&capture_cmd("o-1", "c-1", 1200, "WALLET")).await;
    for _ in 0..3 {
        f.handled(&refund_cmd("o-1")).await;
    }
    assert_eq!(f.store.balance("c-1"), Some(5000));
    assert_eq!(
        f.store.payment("o-1").unwrap().status,
        PaymentStatus::Refunded
    );
    assert_eq!(
        f.publisher.facts(),
        [vec![captured(1200)], vec![refunded(1200); 3]].concat()
    );
    // A late duplicate capture does not charge again; it repeats the step's success.
    f.handled(&capture_cmd("o-1", "c-1", 1200, "WALLET")).await;
    assert_eq!(f.store.balance("c-1"), Some(5000));
    assert_eq!(f.publisher.facts().last().unwrap(), &captured(1200));
}

#[tokio::test]
async fn refund_with_nothing_taken_answers_zero() {
    let f = fixture(FakePayments::with_wallet("c-1", 100, "EUR"));
    f.handled(&refund_cmd("o-missing")).await;
    f.handled(&capture_cmd("o-2", "c-1", 1200, "WALLET")).await;
    f.handled(&refund_cmd("o-2")).await;
    assert_eq!(
        f.publisher.facts(),
        vec![refunded(0), declined("INSUFFICIENT_FUNDS"), refunded(0)]
    );
    assert_eq!(f.store.balance("c-1"), Some(100));
    assert_eq!(
        f.store.payment("o-2").unwrap().status,
        PaymentStatus::Declined
    );
    // The refund with no payment left a tombstone (see the cancel-wins tests).
    assert_eq!(
        f.store.payment("o-missing").unwrap().status,
        PaymentStatus::Refunded
    );
}

// ---- Cancel wins: a refund that overtakes its capture

#[tokio::test]
async fn a_refund_before_the_capture_leaves_a_tombstone_the_capture_respects() {
    let f = fixture(FakePayments::with_wallet("c-1", 5000, "EUR"));
    f.handled(&refund_cmd("o-1")).await;
    let tombstone = f.store.payment("o-1").unwrap();
    assert_eq!(
        (tombstone.status, tombstone.amount, tombstone.method),
        (PaymentStatus::Refunded, 0, None)
    );
    // The late capture, by wallet or by card, takes nothing and repeats the recorded outcome.
    f.handled(&capture_cmd("o-1", "c-1", 1200, "WALLET")).await;
    f.handled(&capture_cmd("o-1", "c-1", 1200, "CARD")).await;
    assert_eq!(f.store.balance("c-1"), Some(5000));
    assert_eq!(f.store.payment("o-1").unwrap(), tombstone);
    // The saga answers that late success with another refund: a confirmation, no more.
    f.handled(&refund_cmd("o-1")).await;
    assert_eq!(
        f.publisher.facts(),
        vec![refunded(0), captured(0), captured(0), refunded(0)]
    );
    assert_eq!(f.store.balance("c-1"), Some(5000));
}

#[tokio::test]
async fn a_capture_landing_as_the_tombstone_is_written_is_refunded() {
    let store = FakePayments::with_wallet("c-1", 5000, "EUR");
    *store.capture_before_record.lock().unwrap() = Some(captured_payment("o-1", "c-1", 1200));
    let f = fixture(store);
    f.handled(&refund_cmd("o-1")).await;
    // The tombstone lost; the refund gave back the capture it found instead.
    let p = f.store.payment("o-1").unwrap();
    assert_eq!((p.status, p.amount), (PaymentStatus::Refunded, 1200));
    assert_eq!(f.store.balance("c-1"), Some(5000));
    assert_eq!(f.publisher.facts(), vec![refunded(1200)]);
}

// ---- HTTP

async fn get_wallet(f: &Fixture, sub: &str, roles: &str) -> (u16, Value) {
    let event = http_event(
        "GET",
        "/v1/wallet",
        "/v1/wallet",
        &[],
        "",
        None,
        Some((sub, roles)),
    );
    call(&f.app, event).await
}

/// Card payments through a fake provider.
mod card;
/// Paid top-ups, the ledger and ADMIN credits over HTTP.
mod wallet;

/// Generated requests on every route: no panic, no 5xx, every 4xx a problem with a code.
/// (The provider is the fake: a top-up's 503 is an outage answer, not checked here.)
#[test]
fn any_request_gets_a_clean_answer() {
    use dishpatch::http_fuzz::{run, Route};
    let f = fixture(FakePayments::with_wallet("alice", 5000, "EUR"));
    run(
        &f.app,
        vec![
            Route::new("GET", "/v1/wallet", None),
            Route::new(
                "POST",
                "/v1/wallet/top-ups",
                Some(
                    json!({"amount": {"amount": 2500, "currency": "EUR"}, "cardToken": "tok_visa"}),
                ),
            ),
            Route::new("GET", "/v1/wallet/transactions", None),
            Route::new(
                "POST",
                "/v1/admin/wallets/{customerId}/credits",
                Some(json!({"amount": {"amount": 100, "currency": "EUR"}, "reason": "goodwill"})),
            ),
        ],
    );
    f.store.state.lock().unwrap().assert_ledger_balances();
}
