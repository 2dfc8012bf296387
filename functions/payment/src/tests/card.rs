//! Card payments against a fake provider that deduplicates on the idempotency key the
//! way the real one does, and can be told to fail, to be "open", or to charge and then
//! lose its answer.

use super::{captured, declined, fixture, handle, refund_cmd, refunded, FakePayments, Fixture};
use crate::payments::{Payment, PaymentStatus};
use crate::provider::{Charge, ChargeOutcome, PaymentProvider, ProviderError, RefundOutcome};
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::money::Money;
use dishpatch::order::PaymentMethod;
use dishpatch::runtime::MessageError;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// What the fake does on its next call, before behaving normally again.
#[derive(Debug, Clone)]
pub(super) enum Script {
    /// Answers this error without doing anything.
    Fail(ProviderError),
    /// Does the call (charges, refunds), then loses the answer (a timeout).
    ActThenLose,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FakeCharge {
    pub charge_id: String,
    pub amount: i64,
    pub card_token: String,
    pub reference: String,
    pub refunded: i64,
}

#[derive(Default)]
pub(super) struct FakePsp {
    script: Mutex<VecDeque<Script>>,
    /// The provider's idempotency records: key -> the outcome it answers again.
    charges_by_key: Mutex<HashMap<String, ChargeOutcome>>,
    /// Charges actually made (money taken), by charge id.
    charges: Mutex<HashMap<String, FakeCharge>>,
    refunds_by_key: Mutex<HashMap<String, String>>,
    calls: Mutex<Vec<String>>,
}

impl FakePsp {
    pub fn then(&self, step: Script) -> &Self {
        self.script.lock().unwrap().push_back(step);
        self
    }

    pub fn unavailable(&self) -> &Self {
        self.then(Script::Fail(ProviderError::Unavailable(
            "no answer within the attempt's timeout".into(),
        )))
    }

    /// Every call so far, as `"capture <key>"` / `"refund <key>"`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// The charges made for `order_id`.
    pub fn charges_for(&self, order_id: &str) -> Vec<FakeCharge> {
        let mut v: Vec<FakeCharge> = self
            .charges
            .lock()
            .unwrap()
            .values()
            .filter(|c| c.reference == order_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.charge_id.cmp(&b.charge_id));
        v
    }

    fn next_step(&self) -> Option<Script> {
        self.script.lock().unwrap().pop_front()
    }

    fn charge_now(&self, charge: &Charge) -> ChargeOutcome {
        if let Some(first) = self
            .charges_by_key
            .lock()
            .unwrap()
            .get(&charge.idempotency_key)
        {
            return first.clone();
        }
        let outcome = match charge.card_token.as_str() {
            "tok_decline_funds" => ChargeOutcome::Declined {
                code: "insufficient_funds".into(),
            },
            "tok_decline_stolen" => ChargeOutcome::Declined {
                code: "card_stolen".into(),
            },
            _ => {
                let mut charges = self.charges.lock().unwrap();
                let charge_id = format!("ch_{}", charges.len() + 1);
                charges.insert(
                    charge_id.clone(),
                    FakeCharge {
                        charge_id: charge_id.clone(),
                        amount: charge.amount.amount,
                        card_token: charge.card_token.clone(),
                        reference: charge.order_id.clone(),
                        refunded: 0,
                    },
                );
                ChargeOutcome::Captured { charge_id }
            }
        };
        self.charges_by_key
            .lock()
            .unwrap()
            .insert(charge.idempotency_key.clone(), outcome.clone());
        outcome
    }

    fn refund_now(&self, charge_id: &str, amount: i64, key: &str) -> RefundOutcome {
        if let Some(id) = self.refunds_by_key.lock().unwrap().get(key) {
            return RefundOutcome::Refunded {
                refund_id: id.clone(),
            };
        }
        let mut charges = self.charges.lock().unwrap();
        let Some(charge) = charges.get_mut(charge_id) else {
            return RefundOutcome::UnknownCharge;
        };
        charge.refunded += amount;
        let refund_id = format!("re_{charge_id}");
        self.refunds_by_key
            .lock()
            .unwrap()
            .insert(key.to_owned(), refund_id.clone());
        RefundOutcome::Refunded { refund_id }
    }
}

fn lost() -> ProviderError {
    ProviderError::Unavailable("the answer was lost (timeout)".into())
}

#[async_trait::async_trait]
impl PaymentProvider for FakePsp {
    async fn authorize_capture(&self, charge: &Charge) -> Result<ChargeOutcome, ProviderError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("capture {}", charge.idempotency_key));
        match self.next_step() {
            Some(Script::Fail(e)) => Err(e),
            Some(Script::ActThenLose) => {
                self.charge_now(charge);
                Err(lost())
            }
            None => Ok(self.charge_now(charge)),
        }
    }

    async fn refund(
        &self,
        charge_id: &str,
        amount: &Money,
        key: &str,
    ) -> Result<RefundOutcome, ProviderError> {
        self.calls.lock().unwrap().push(format!("refund {key}"));
        match self.next_step() {
            Some(Script::Fail(e)) => Err(e),
            Some(Script::ActThenLose) => {
                self.refund_now(charge_id, amount.amount, key);
                Err(lost())
            }
            None => Ok(self.refund_now(charge_id, amount.amount, key)),
        }
    }
}

fn card_cmd(order_id: &str, token: &str) -> Envelope {
    Envelope::new(
        MessageType::CapturePayment,
        order_id,
        json!({"customerId": "c-1", "amount": {"amount": 1200, "currency": "EUR"}, "method": "CARD", "cardToken": token}),
    )
}

fn card_fixture() -> Fixture {
    // A wallet too, to show a card never touches it.
    fixture(FakePayments::with_wallet("c-1", 5000, "EUR"))
}

async fn transient(f: &Fixture, cmd: &Envelope) -> String {
    match handle(&f.app, cmd).await {
        Err(MessageError::Transient(e)) => e,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

fn money_taken(f: &Fixture, order_id: &str) -> i64 {
    f.psp
        .charges_for(order_id)
        .iter()
        .map(|c| c.amount - c.refunded)
        .sum()
}

// ---- capture

#[tokio::test]
async fn an_approved_card_is_captured_once_and_recorded_without_its_token() {
    let f = card_fixture();
    let c = card_cmd("o-1", "tok_visa");
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
    let p = f.store.payment("o-1").unwrap();
    assert_eq!(
        (p.status, p.method, p.amount, p.charge_id.as_deref()),
        (
            PaymentStatus::Captured,
            Some(PaymentMethod::Card),
            1200,
            Some("ch_1")
        )
    );
    assert_eq!(p.card_token, None, "a settled payment keeps no card token");
    assert_eq!(f.psp.calls(), vec!["capture o-1:capture"]);
    // A duplicate re-publishes the outcome without asking the provider again.
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200); 2]);
    assert_eq!(f.psp.calls().len(), 1);
    assert_eq!(money_taken(&f, "o-1"), 1200);
    assert_eq!(
        f.store.balance("c-1"),
        Some(5000),
        "the wallet is not touched"
    );
    let fact = &f.publisher.sent.lock().unwrap()[0];
    assert_eq!(fact.causation_id.as_deref(), Some(c.id.as_str()));
}

#[tokio::test]
async fn a_declined_card_is_declined_on_record_with_a_stable_reason() {
    let f = card_fixture();
    for (order, token, code) in [
        ("o-1", "tok_decline_funds", "insufficient_funds"),
        ("o-2", "tok_decline_stolen", "card_stolen"),
    ] {
        let c = card_cmd(order, token);
        f.handled(&c).await;
        f.handled(&c).await;
        let reason = format!("CARD_DECLINED: {code}");
        let p = f.store.payment(order).unwrap();
        assert_eq!(
            (p.status, p.reason.as_deref(), p.card_token),
            (PaymentStatus::Declined, Some(reason.as_str()), None)
        );
        assert_eq!(money_taken(&f, order), 0);
    }
    assert_eq!(
        f.publisher.facts(),
        vec![
            declined("CARD_DECLINED: insufficient_funds"),
            declined("CARD_DECLINED: insufficient_funds"),
            declined("CARD_DECLINED: card_stolen"),
            declined("CARD_DECLINED: card_stolen"),
        ]
    );
    // One provider call each: the duplicates read the record.
    assert_eq!(
        f.psp.calls(),
        vec!["capture o-1:capture", "capture o-2:capture"]
    );
    // A decline is refunded as nothing.
    f.handled(&refund_cmd("o-1")).await;
    assert_eq!(f.publisher.facts().last().unwrap(), &refunded(0));
}

#[tokio::test]
async fn a_provider_outage_leaves_the_payment_pending_and_the_redelivery_captures() {
    let f = card_fixture();
    f.psp.unavailable().unavailable();
    let c = card_cmd("o-1", "tok_visa");
    for _ in 0..2 {
        let e = transient(&f, &c).await;
        assert!(e.contains("unavailable"), "{e}");
        let p = f.store.payment("o-1").unwrap();
        assert_eq!(
            (p.status, p.card_token.as_deref()),
            (PaymentStatus::Pending, Some("tok_visa"))
        );
    }
    assert!(f.publisher.facts().is_empty(), "the order waits: no fact");
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
    assert_eq!(
        f.psp.calls(),
        vec!["capture o-1:capture"; 3],
        "every try carries the same key"
    );
    assert_eq!(money_taken(&f, "o-1"), 1200);
    assert_eq!(f.store.payment("o-1").unwrap().card_token, None);
}

#[tokio::test]
async fn an_open_breaker_fails_the_message_transiently_and_cancels_nothing() {
    let f = card_fixture();
    f.psp.then(Script::Fail(ProviderError::CircuitOpen {
        retry_after: Duration::from_secs(30),
    }));
    let c = card_cmd("o-1", "tok_visa");
    let e = transient(&f, &c).await;
    assert!(e.contains("circuit open"), "{e}");
    assert_eq!(
        f.store.payment("o-1").unwrap().status,
        PaymentStatus::Pending
    );
    assert!(f.publisher.facts().is_empty());
    // The provider back: the message comes back and completes.
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
}

#[tokio::test]
async fn a_refused_call_is_retried_later_never_declined() {
    let f = card_fixture();
    f.psp.then(Script::Fail(ProviderError::Refused {
        status: 401,
        detail: "bad api key".into(),
    }));
    f.psp
        .then(Script::Fail(ProviderError::Config("no API key".into())));
    let c = card_cmd("o-1", "tok_visa");
    transient(&f, &c).await;
    transient(&f, &c).await;
    assert_eq!(
        f.store.payment("o-1").unwrap().status,
        PaymentStatus::Pending
    );
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
}

#[tokio::test]
async fn a_lost_answer_then_the_redelivery_charges_once() {
    let f = card_fixture();
    // The provider charges, then the answer never arrives (tok_charge_then_timeout).
    f.psp.then(Script::ActThenLose);
    let c = card_cmd("o-1", "tok_visa");
    transient(&f, &c).await;
    assert_eq!(money_taken(&f, "o-1"), 1200, "the charge happened");
    assert_eq!(
        f.store.payment("o-1").unwrap().status,
        PaymentStatus::Pending
    );
    f.handled(&c).await;
    f.handled(&c).await;
    assert_eq!(f.psp.charges_for("o-1").len(), 1, "charged once");
    assert_eq!(money_taken(&f, "o-1"), 1200);
    assert_eq!(
        f.store.payment("o-1").unwrap().charge_id.as_deref(),
        Some("ch_1")
    );
    assert_eq!(f.publisher.facts(), vec![captured(1200); 2]);
}

#[tokio::test]
async fn a_lost_publish_after_the_charge_heals_without_charging_again() {
    let f = card_fixture();
    let c = card_cmd("o-1", "tok_visa");
    f.publisher
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    transient(&f, &c).await;
    f.publisher
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
    assert_eq!(f.psp.calls().len(), 1);
}

#[tokio::test]
async fn a_concurrent_duplicate_that_settled_first_is_the_outcome() {
    let f = card_fixture();
    // Between our provider call and our write, a duplicate records the (same) charge.
    let mut theirs = Payment::pending_card(
        "o-1",
        "c-1",
        Money::new(1200, "EUR"),
        "tok_visa",
        "2026-01-01T00:00:00.000Z".into(),
    );
    theirs.status = PaymentStatus::Captured;
    theirs.charge_id = Some("ch_1".into());
    theirs.card_token = None;
    *f.store.settle_before_replace.lock().unwrap() = Some(theirs.clone());
    f.handled(&card_cmd("o-1", "tok_visa")).await;
    assert_eq!(f.store.payment("o-1").unwrap(), theirs);
    assert_eq!(f.publisher.facts(), vec![captured(1200)]);
    assert_eq!(money_taken(&f, "o-1"), 1200);
}

// ---- refund

#[tokio::test]
async fn a_captured_card_is_refunded_once_through_the_provider() {
    let f = card_fixture();
    f.handled(&card_cmd("o-1", "tok_visa")).await;
    for _ in 0..3 {
        f.handled(&refund_cmd("o-1")).await;
    }
    let p = f.store.payment("o-1").unwrap();
    assert_eq!(
        (p.status, p.charge_id.as_deref(), p.refund_id.as_deref()),
        (PaymentStatus::Refunded, Some("ch_1"), Some("re_ch_1"))
    );
    assert_eq!(money_taken(&f, "o-1"), 0);
    assert_eq!(
        f.psp.calls(),
        vec!["capture o-1:capture", "refund o-1:refund"]
    );
    assert_eq!(
        f.publisher.facts(),
        [vec![captured(1200)], vec![refunded(1200); 3]].concat()
    );
    // A late duplicate capture charges nothing; it repeats the step's success.
    f.handled(&card_cmd("o-1", "tok_visa")).await;
    assert_eq!(f.psp.calls().len(), 2);
    assert_eq!(f.publisher.facts().last().unwrap(), &captured(1200));
    assert_eq!(f.store.balance("c-1"), Some(5000));
}

#[tokio::test]
async fn a_refund_during_an_outage_is_retried_and_refunds_once() {
    let f = card_fixture();
    f.handled(&card_cmd("o-1", "tok_visa")).await;
    f.psp.unavailable().then(Script::ActThenLose);
    transient(&f, &refund_cmd("o-1")).await;
    transient(&f, &refund_cmd("o-1")).await;
    assert_eq!(
        f.store.payment("o-1").unwrap().status,
        PaymentStatus::Captured,
        "not refunded on record until the provider says so"
    );
    f.handled(&refund_cmd("o-1")).await;
    assert_eq!(money_taken(&f, "o-1"), 0, "refunded once, not twice");
    assert_eq!(
        f.psp.calls(),
        vec![
            "capture o-1:capture",
            "refund o-1:refund",
            "refund o-1:refund",
            "refund o-1:refund"
        ]
    );
    assert_eq!(f.publisher.facts(), vec![captured(1200), refunded(1200)]);
}

#[tokio::test]
async fn a_refund_that_finds_the_capture_pending_learns_it_happened_and_refunds_it() {
    let f = card_fixture();
    f.psp.then(Script::ActThenLose);
    let c = card_cmd("o-1", "tok_visa");
    transient(&f, &c).await;
    assert_eq!(money_taken(&f, "o-1"), 1200);
    // The saga gave up on the step and undoes it while the payment is PENDING.
    f.handled(&refund_cmd("o-1")).await;
    assert_eq!(money_taken(&f, "o-1"), 0);
    assert_eq!(f.psp.charges_for("o-1").len(), 1, "no second charge");
    let p = f.store.payment("o-1").unwrap();
    assert_eq!(
        (p.status, p.charge_id.as_deref(), p.card_token),
        (PaymentStatus::Refunded, Some("ch_1"), None)
    );
    assert_eq!(f.publisher.facts(), vec![refunded(1200)]);
    // The capture's redelivery finds it settled: nothing more is charged.
    f.handled(&c).await;
    assert_eq!(f.psp.charges_for("o-1").len(), 1);
    assert_eq!(money_taken(&f, "o-1"), 0);
    assert_eq!(
        f.psp.calls(),
        vec![
            "capture o-1:capture",
            "capture o-1:capture",
            "refund o-1:refund"
        ]
    );
}

#[tokio::test]
async fn a_refund_that_finds_the_capture_pending_and_uncharged_charges_then_refunds() {
    let f = card_fixture();
    f.psp.unavailable();
    transient(&f, &card_cmd("o-1", "tok_visa")).await;
    assert!(f.psp.charges_for("o-1").is_empty());
    f.handled(&refund_cmd("o-1")).await;
    // The keyed capture charged now; the refund gave it straight back.
    let charges = f.psp.charges_for("o-1");
    assert_eq!(charges.len(), 1);
    assert_eq!((charges[0].amount, charges[0].refunded), (1200, 1200));
    assert_eq!(f.publisher.facts(), vec![refunded(1200)]);
}

#[tokio::test]
async fn a_refund_that_finds_the_capture_pending_and_declined_confirms_zero() {
    let f = card_fixture();
    f.psp.unavailable();
    transient(&f, &card_cmd("o-1", "tok_decline_funds")).await;
    f.handled(&refund_cmd("o-1")).await;
    let p = f.store.payment("o-1").unwrap();
    assert_eq!(
        (p.status, p.reason.as_deref()),
        (
            PaymentStatus::Declined,
            Some("CARD_DECLINED: insufficient_funds")
        )
    );
    assert_eq!(f.publisher.facts(), vec![refunded(0)]);
    assert!(f.psp.charges_for("o-1").is_empty());
}

#[tokio::test]
async fn a_refund_that_finds_the_capture_pending_while_the_provider_is_down_waits() {
    let f = card_fixture();
    f.psp.unavailable().unavailable();
    transient(&f, &card_cmd("o-1", "tok_visa")).await;
    transient(&f, &refund_cmd("o-1")).await;
    assert_eq!(
        f.store.payment("o-1").unwrap().status,
        PaymentStatus::Pending,
        "never confirmed while money may be taken"
    );
    assert!(f.publisher.facts().is_empty());
    f.handled(&refund_cmd("o-1")).await;
    assert_eq!(f.publisher.facts(), vec![refunded(1200)]);
    assert_eq!(money_taken(&f, "o-1"), 0);
}

#[tokio::test]
async fn a_tombstone_makes_a_late_card_capture_do_nothing() {
    let f = card_fixture();
    f.handled(&refund_cmd("o-1")).await;
    let tombstone = f.store.payment("o-1").unwrap();
    assert_eq!(
        (tombstone.status, tombstone.amount),
        (PaymentStatus::Refunded, 0)
    );
    for _ in 0..2 {
        f.handled(&card_cmd("o-1", "tok_visa")).await;
    }
    assert!(f.psp.calls().is_empty(), "the provider is never called");
    assert_eq!(f.store.payment("o-1").unwrap(), tombstone);
    f.handled(&refund_cmd("o-1")).await;
    assert_eq!(
        f.publisher.facts(),
        vec![refunded(0), captured(0), captured(0), refunded(0)]
    );
}

#[tokio::test]
async fn a_charge_the_provider_does_not_know_is_not_marked_refunded() {
    let f = card_fixture();
    f.handled(&card_cmd("o-1", "tok_visa")).await;
    // The provider lost the charge (e.g. a sandbox restart).
    f.psp.charges.lock().unwrap().clear();
    let e = transient(&f, &refund_cmd("o-1")).await;
    assert!(e.contains("knows no charge"), "{e}");
    assert_eq!(
        f.store.payment("o-1").unwrap().status,
        PaymentStatus::Captured
    );
}
