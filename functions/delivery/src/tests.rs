//! Handler logic against in-memory fakes of the ports.

use crate::couriers::{Courier as StoredCourier, CourierStatus, CourierStore, OffShift};
use crate::deliveries::{
    encode_cursor, Claim, Delivery, DeliveryPage, DeliveryStatus, DeliveryStore,
};
use crate::{App, Waiting};
use dishpatch::envelope::{data, Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::runtime::MessageError;
use dishpatch::testing::{call, handle, http_event, RecordingPublisher};
use dishpatch::worker::Outlets;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq)]
struct Courier {
    available: bool,
    active_order: Option<String>,
}

impl Courier {
    /// Available, on no order.
    const FREE: Courier = Courier {
        available: true,
        active_order: None,
    };
}

#[derive(Default)]
struct State {
    couriers: BTreeMap<String, Courier>,
    /// Couriers off shift (not available, on no order).
    off_shift: BTreeSet<String>,
    deliveries: HashMap<String, Delivery>,
}

/// The store's semantics (conditional writes, the sparse index) over a map.
#[derive(Default)]
struct FakeStore {
    state: Mutex<State>,
    /// Couriers the index still lists although they are taken (it is eventually consistent).
    stale_index: Mutex<Vec<String>>,
    /// A concurrent duplicate that writes its delivery just before our first claim.
    racing_duplicate: Mutex<Option<(String, Delivery)>>,
    /// The next claim meets a concurrent transaction on the courier.
    contend: AtomicBool,
    /// A dispatch that claims its courier just before the next `record` (racing a cancel's
    /// tombstone).
    claim_before_record: Mutex<Option<(String, Delivery)>>,
}

impl FakeStore {
    fn with_couriers(ids: &[&str]) -> Self {
        let store = FakeStore::default();
        for id in ids {
            store.add_courier(id);
        }
        store
    }

    fn add_courier(&self, id: &str) {
        self.state
            .lock()
            .unwrap()
            .couriers
            .insert(id.into(), Courier::FREE);
    }

    /// `id` claimed by someone else, and still listed by the stale index.
    fn taken_but_listed(self, id: &str) -> Self {
        self.state
            .lock()
            .unwrap()
            .couriers
            .get_mut(id)
            .unwrap()
            .available = false;
        self.stale_index.lock().unwrap().push(id.into());
        self
    }

    fn courier(&self, id: &str) -> Courier {
        self.state.lock().unwrap().couriers[id].clone()
    }

    fn delivery(&self, order_id: &str) -> Option<Delivery> {
        self.state.lock().unwrap().deliveries.get(order_id).cloned()
    }

    fn busy_couriers(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.couriers
            .iter()
            .filter(|(_, c)| !c.available)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn take(state: &mut State, courier_id: &str, order_id: &str) {
        let c = state.couriers.get_mut(courier_id).unwrap();
        c.available = false;
        c.active_order = Some(order_id.into());
    }
}

#[async_trait::async_trait]
impl DeliveryStore for FakeStore {
    async fn get(&self, order_id: &str) -> Result<Option<Delivery>, StoreError> {
        Ok(self.delivery(order_id))
    }

    async fn available_couriers(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let s = self.state.lock().unwrap();
        let mut ids = self.stale_index.lock().unwrap().clone();
        ids.extend(
            s.couriers
                .iter()
                .filter(|(_, c)| c.available)
                .map(|(id, _)| id.clone()),
        );
        ids.truncate(limit);
        Ok(ids)
    }

    async fn claim(&self, courier_id: &str, delivery: &Delivery) -> Result<Claim, StoreError> {
        let mut s = self.state.lock().unwrap();
        if let Some((courier, winner)) = self.racing_duplicate.lock().unwrap().take() {
            FakeStore::take(&mut s, &courier, &winner.order_id);
            s.deliveries.insert(winner.order_id.clone(), winner);
        }
        if self.contend.swap(false, Ordering::SeqCst) {
            return Ok(Claim::Contended);
        }
        if s.deliveries.contains_key(&delivery.order_id) {
            return Ok(Claim::DeliveryExists);
        }
        if !s.couriers.get(courier_id).is_some_and(|c| c.available) {
            return Ok(Claim::CourierTaken);
        }
        FakeStore::take(&mut s, courier_id, &delivery.order_id);
        s.deliveries
            .insert(delivery.order_id.clone(), delivery.clone());
        Ok(Claim::Claimed)
    }

    async fn record(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let racing = self.claim_before_record.lock().unwrap().take();
        if let Some((courier_id, racing)) = racing {
            self.claim(&courier_id, &racing).await?;
        }
        let mut s = self.state.lock().unwrap();
        if s.deliveries.contains_key(&delivery.order_id) {
            return Ok(false);
        }
        s.deliveries
            .insert(delivery.order_id.clone(), delivery.clone());
        Ok(true)
    }

    async fn finish(
        &self,
        order_id: &str,
        courier_id: &str,
        to: DeliveryStatus,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        let Some(d) = s.deliveries.get_mut(order_id) else {
            return Ok(false);
        };
        if d.status != DeliveryStatus::Dispatched || d.courier_id.as_deref() != Some(courier_id) {
            return Ok(false);
        }
        d.status = to;
        if let Some(c) = s
            .couriers
            .get_mut(courier_id)
            .filter(|c| c.active_order.as_deref() == Some(order_id))
        {
            c.available = true;
            c.active_order = None;
        }
        Ok(true)
    }

    async fn waiting(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let s = self.state.lock().unwrap();
        let mut w: Vec<(String, String)> = s
            .deliveries
            .values()
            .filter(|d| d.status == DeliveryStatus::Waiting)
            .map(|d| (d.created_at.clone(), d.order_id.clone()))
            .collect();
        w.sort();
        Ok(w.into_iter().take(limit).map(|(_, o)| o).collect())
    }

    async fn claim_waiting(
        &self,
        courier_id: &str,
        order_id: &str,
        at: &str,
    ) -> Result<Claim, StoreError> {
        let mut s = self.state.lock().unwrap();
        if self.contend.swap(false, Ordering::SeqCst) {
            return Ok(Claim::Contended);
        }
        if s.deliveries.get(order_id).map(|d| d.status) != Some(DeliveryStatus::Waiting) {
            return Ok(Claim::DeliveryExists);
        }
        if !s.couriers.get(courier_id).is_some_and(|c| c.available) {
            return Ok(Claim::CourierTaken);
        }
        FakeStore::take(&mut s, courier_id, order_id);
        let d = s.deliveries.get_mut(order_id).unwrap();
        d.status = DeliveryStatus::Dispatched;
        d.courier_id = Some(courier_id.into());
        d.dispatched_at = Some(at.into());
        Ok(Claim::Claimed)
    }

    async fn cancel_waiting(&self, order_id: &str) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        match s.deliveries.get_mut(order_id) {
            Some(d) if d.status == DeliveryStatus::Waiting => {
                d.status = DeliveryStatus::Cancelled;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn schedule_retry(&self, order_id: &str, attempt: u32) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        match s.deliveries.get_mut(order_id) {
            Some(d) if d.status == DeliveryStatus::Waiting && d.attempt + 1 == attempt => {
                d.attempt = attempt;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn for_courier(
        &self,
        courier_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<DeliveryPage, StoreError> {
        let s = self.state.lock().unwrap();
        let mut mine: Vec<(String, Delivery)> = s
            .deliveries
            .values()
            .filter(|d| d.courier_id.as_deref() == Some(courier_id))
            .map(|d| (format!("{}#{}", d.created_at, d.order_id), d.clone()))
            .collect();
        mine.sort_by(|a, b| b.0.cmp(&a.0));
        let after = page_token.and_then(crate::deliveries::decode_cursor);
        let rest: Vec<(String, Delivery)> = mine
            .into_iter()
            .filter(|(sk, _)| after.as_ref().is_none_or(|a| sk < a))
            .collect();
        let more = rest.len() > page_size as usize;
        let page: Vec<(String, Delivery)> = rest.into_iter().take(page_size as usize).collect();
        Ok(DeliveryPage {
            next_token: more
                .then(|| page.last().map(|(sk, _)| encode_cursor(sk)))
                .flatten(),
            deliveries: page.into_iter().map(|(_, d)| d).collect(),
        })
    }
}

#[async_trait::async_trait]
impl CourierStore for FakeStore {
    async fn courier(&self, courier_id: &str) -> Result<Option<StoredCourier>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.couriers.get(courier_id).map(|c| StoredCourier {
            courier_id: courier_id.to_owned(),
            status: if s.off_shift.contains(courier_id) {
                CourierStatus::OffShift
            } else if c.available {
                CourierStatus::Available
            } else {
                CourierStatus::Busy
            },
            active_order_id: c.active_order.clone(),
        }))
    }

    async fn go_on_shift(&self, courier_id: &str) -> Result<StoredCourier, StoreError> {
        {
            let mut s = self.state.lock().unwrap();
            if s.off_shift.remove(courier_id) || !s.couriers.contains_key(courier_id) {
                s.couriers.insert(courier_id.into(), Courier::FREE);
            }
        }
        Ok(CourierStore::courier(self, courier_id).await?.unwrap())
    }

    async fn go_off_shift(&self, courier_id: &str) -> Result<OffShift, StoreError> {
        {
            let mut s = self.state.lock().unwrap();
            if let Some(c) = s.couriers.get_mut(courier_id) {
                if c.available {
                    c.available = false;
                    s.off_shift.insert(courier_id.into());
                }
            }
        }
        Ok(match CourierStore::courier(self, courier_id).await? {
            Some(c) if c.status == CourierStatus::Busy => OffShift::OnDelivery(c),
            other => OffShift::Done(other),
        })
    }
}

struct Fixture {
    app: App,
    store: Arc<FakeStore>,
    publisher: Arc<RecordingPublisher>,
}

impl Fixture {
    /// Handles `cmd`, which must succeed.
    async fn handled(&self, cmd: &Envelope) {
        if let Err(e) = handle(&self.app, cmd).await {
            panic!("{} for {} failed: {e}", cmd.kind, cmd.order_id);
        }
    }
}

fn fixture(store: FakeStore) -> Fixture {
    let store = Arc::new(store);
    let publisher = Arc::new(RecordingPublisher::default());
    Fixture {
        app: App {
            deliveries: store.clone(),
            couriers: store.clone(),
            waiting: Waiting::default(),
            outlets: Outlets::publishing(publisher.clone()),
        },
        store,
        publisher,
    }
}

fn dispatch_cmd(order_id: &str) -> Envelope {
    Envelope::new(
        MessageType::DispatchDelivery,
        order_id,
        json!({"restaurantId": "r-1", "deliveryAddress": {"line1": "1 Main St", "city": "Lisbon", "postcode": "1000-001", "country": "PT"}}),
    )
}

fn cancel_cmd(order_id: &str) -> Envelope {
    Envelope::new(MessageType::CancelDelivery, order_id, json!({}))
}

fn dispatched(courier: &str) -> (String, Value) {
    ("DeliveryDispatched".into(), json!({"courierId": courier}))
}

fn unavailable() -> (String, Value) {
    (
        "DeliveryUnavailable".into(),
        json!({"reason": "NO_COURIER"}),
    )
}

fn waiting() -> (String, Value) {
    ("DeliveryWaiting".into(), json!({}))
}

fn retry(attempt: u32) -> (String, Value) {
    ("RetryDispatch".into(), json!({"attempt": attempt}))
}

fn cancelled() -> (String, Value) {
    ("DeliveryCancelled".into(), json!({}))
}

#[tokio::test]
async fn dispatch_claims_one_courier_and_follows_the_command() {
    let f = fixture(FakeStore::with_couriers(&["c-1"]));
    let cmd = dispatch_cmd("o-1");
    f.handled(&cmd).await;
    assert_eq!(f.publisher.facts(), vec![dispatched("c-1")]);
    let fact = f.publisher.sent.lock().unwrap()[0].clone();
    assert_eq!(fact.causation_id.as_deref(), Some(cmd.id.as_str()));
    assert_eq!(fact.order_id, "o-1");
    assert_eq!(
        f.store.courier("c-1"),
        Courier {
            available: false,
            active_order: Some("o-1".into())
        }
    );
    let d = f.store.delivery("o-1").unwrap();
    assert_eq!(
        (d.status, d.courier_id.as_deref(), d.restaurant_id.as_str()),
        (DeliveryStatus::Dispatched, Some("c-1"), "r-1")
    );
}

#[tokio::test]
async fn duplicate_dispatch_assigns_one_courier_and_republishes_the_same_outcome() {
    let f = fixture(FakeStore::with_couriers(&["c-1", "c-2", "c-3"]));
    let cmd = dispatch_cmd("o-1");
    f.handled(&cmd).await;
    f.handled(&cmd).await;
    // A redelivered copy with a new message id is a duplicate too: the order is the key.
    f.handled(&dispatch_cmd("o-1")).await;
    let sent = f.publisher.facts();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|s| *s == sent[0]), "{sent:?}");
    assert_eq!(f.store.busy_couriers().len(), 1);
}

#[tokio::test]
async fn an_unavailable_record_keeps_its_outcome() {
    let f = fixture(FakeStore::with_couriers(&[]));
    let mut d = dispatched_delivery("o-1", "c-1");
    d.courier_id = None;
    d.status = DeliveryStatus::Unavailable;
    d.reason = Some("NO_COURIER".into());
    f.store.record(&d).await.unwrap();
    // A courier freeing up later does not change the recorded outcome of this order.
    f.store.add_courier("c-1");
    f.handled(&dispatch_cmd("o-1")).await;
    assert_eq!(f.publisher.facts(), vec![unavailable()]);
    assert!(f.store.courier("c-1").available);
}

#[tokio::test]
async fn a_courier_taken_meanwhile_is_skipped() {
    let f = fixture(FakeStore::with_couriers(&["c-1", "c-2"]).taken_but_listed("c-1"));
    f.handled(&dispatch_cmd("o-1")).await;
    assert_eq!(f.publisher.facts(), vec![dispatched("c-2")]);
}

#[tokio::test]
async fn only_taken_couriers_means_waiting() {
    let f = fixture(FakeStore::with_couriers(&["c-1"]).taken_but_listed("c-1"));
    f.handled(&dispatch_cmd("o-1")).await;
    assert_eq!(f.publisher.facts()[0], waiting());
}

/// The record a dispatch writes when it claims `courier_id`.
fn dispatched_delivery(order_id: &str, courier_id: &str) -> Delivery {
    Delivery {
        order_id: order_id.into(),
        courier_id: Some(courier_id.into()),
        status: DeliveryStatus::Dispatched,
        restaurant_id: "r-1".into(),
        delivery_address: Some(
            dispatch_cmd(order_id)
                .data_as::<data::DispatchDelivery>()
                .unwrap()
                .delivery_address,
        ),
        reason: None,
        created_at: "t".into(),
        updated_at: "t".into(),
        dispatched_at: Some("t".into()),
        dispatch_by: None,
        attempt: 0,
        traceparent: None,
    }
}

#[tokio::test]
async fn a_concurrent_duplicate_that_won_is_republished() {
    let store = FakeStore::with_couriers(&["c-1", "c-2"]);
    let f = fixture(store);
    let winner = dispatched_delivery("o-1", "c-2");
    *f.store.racing_duplicate.lock().unwrap() = Some(("c-2".into(), winner));
    f.handled(&dispatch_cmd("o-1")).await;
    assert_eq!(f.publisher.facts(), vec![dispatched("c-2")]);
    assert_eq!(f.store.busy_couriers(), vec!["c-2".to_owned()]);
}

#[tokio::test]
async fn contention_is_retried_not_declared_unavailable() {
    let f = fixture(FakeStore::with_couriers(&["c-1"]));
    f.store.contend.store(true, Ordering::SeqCst);
    let err = handle(&f.app, &dispatch_cmd("o-1")).await.unwrap_err();
    assert!(matches!(err, MessageError::Transient(_)), "{err:?}");
    assert!(f.store.delivery("o-1").is_none());
    assert!(f.publisher.facts().is_empty());
    // The retry finds the courier free.
    f.handled(&dispatch_cmd("o-1")).await;
    assert_eq!(f.publisher.facts(), vec![dispatched("c-1")]);
}

#[tokio::test]
async fn a_lost_publish_heals_on_retry() {
    let f = fixture(FakeStore::with_couriers(&["c-1", "c-2"]));
    let cmd = dispatch_cmd("o-1");
    f.publisher.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        handle(&f.app, &cmd).await,
        Err(MessageError::Transient(_))
    ));
    f.publisher.fail.store(false, Ordering::SeqCst);
    f.handled(&cmd).await;
    assert_eq!(f.publisher.facts().len(), 1);
    assert_eq!(f.store.busy_couriers().len(), 1);
}

#[tokio::test]
async fn cancel_frees_the_courier_for_the_next_order() {
    let f = fixture(FakeStore::with_couriers(&["c-1"]));
    f.handled(&dispatch_cmd("o-1")).await;
    f.handled(&cancel_cmd("o-1")).await;
    assert_eq!(
        f.store.delivery("o-1").unwrap().status,
        DeliveryStatus::Cancelled
    );
    assert_eq!(f.store.courier("c-1"), Courier::FREE);
    // A duplicate cancel answers again and changes nothing.
    f.handled(&cancel_cmd("o-1")).await;
    f.handled(&dispatch_cmd("o-2")).await;
    assert_eq!(
        f.publisher.facts(),
        vec![
            dispatched("c-1"),
            cancelled(),
            cancelled(),
            dispatched("c-1")
        ]
    );
    // A duplicate dispatch of the cancelled order re-publishes its courier but claims nobody.
    f.handled(&dispatch_cmd("o-1")).await;
    assert_eq!(f.publisher.facts().last().unwrap(), &dispatched("c-1"));
    assert_eq!(f.store.courier("c-1").active_order.as_deref(), Some("o-2"));
}

#[tokio::test]
async fn cancel_without_a_dispatched_delivery_just_answers() {
    let f = fixture(FakeStore::with_couriers(&[]));
    f.handled(&cancel_cmd("o-missing")).await;
    f.handled(&dispatch_cmd("o-1")).await;
    f.handled(&cancel_cmd("o-1")).await;
    assert_eq!(
        f.publisher.facts(),
        vec![cancelled(), waiting(), retry(1), cancelled()]
    );
    assert_eq!(
        f.store.delivery("o-1").unwrap().status,
        DeliveryStatus::Cancelled
    );
    // The cancel with no delivery left a tombstone (see the cancel-wins tests).
    assert_eq!(
        f.store.delivery("o-missing").unwrap().status,
        DeliveryStatus::Cancelled
    );
}

// ---- Cancel wins: a cancel that overtakes its dispatch

#[tokio::test]
async fn a_cancel_before_the_dispatch_leaves_a_tombstone_the_dispatch_respects() {
    let f = fixture(FakeStore::with_couriers(&["c-1"]));
    f.handled(&cancel_cmd("o-1")).await;
    let tombstone = f.store.delivery("o-1").unwrap();
    assert_eq!(
        (tombstone.status, tombstone.courier_id.as_deref()),
        (DeliveryStatus::Cancelled, None)
    );
    // The late dispatch claims nobody and says so (no courier to name).
    f.handled(&dispatch_cmd("o-1")).await;
    assert!(f.store.courier("c-1").available);
    assert_eq!(f.store.delivery("o-1").unwrap(), tombstone);
    // A second cancel only confirms; the courier is there for the next order.
    f.handled(&cancel_cmd("o-1")).await;
    let late = (
        "DeliveryUnavailable".to_owned(),
        json!({"reason": "CANCELLED"}),
    );
    assert_eq!(f.publisher.facts(), vec![cancelled(), late, cancelled()]);
    assert!(f.store.courier("c-1").available);
    f.handled(&dispatch_cmd("o-2")).await;
    assert_eq!(f.publisher.facts().last().unwrap(), &dispatched("c-1"));
}

#[tokio::test]
async fn a_dispatch_landing_as_the_tombstone_is_written_is_cancelled() {
    let store = FakeStore::with_couriers(&["c-1"]);
    *store.claim_before_record.lock().unwrap() =
        Some(("c-1".into(), dispatched_delivery("o-1", "c-1")));
    let f = fixture(store);
    f.handled(&cancel_cmd("o-1")).await;
    // The tombstone lost; the cancel freed the courier the dispatch claimed instead.
    let d = f.store.delivery("o-1").unwrap();
    assert_eq!(
        (d.status, d.courier_id.as_deref()),
        (DeliveryStatus::Cancelled, Some("c-1"))
    );
    assert_eq!(f.store.courier("c-1"), Courier::FREE);
    assert_eq!(f.publisher.facts(), vec![cancelled()]);
}

#[tokio::test]
async fn other_messages_and_bad_payloads_are_refused() {
    let f = fixture(FakeStore::default());
    let other = Envelope::new(MessageType::ReserveInventory, "o-1", json!({}));
    assert!(matches!(
        handle(&f.app, &other).await,
        Err(MessageError::Unsupported)
    ));
    let bad = Envelope::new(
        MessageType::DispatchDelivery,
        "o-1",
        json!({"restaurantId": 7}),
    );
    assert!(matches!(
        handle(&f.app, &bad).await,
        Err(MessageError::Decode(_))
    ));
}

// ---- HTTP: POST /v1/deliveries/{orderId}/complete

async fn complete(f: &Fixture, order_id: &str, sub: &str, roles: &str) -> (u16, Value) {
    let path = format!("/v1/deliveries/{order_id}/complete");
    let event = http_event(
        "POST",
        "/v1/deliveries/{orderId}/complete",
        &path,
        &[("orderId", order_id)],
        "",
        None,
        Some((sub, roles)),
    );
    call(&f.app, event).await
}

async fn dispatched_fixture() -> Fixture {
    let f = fixture(FakeStore::with_couriers(&["c-1"]));
    f.handled(&dispatch_cmd("o-1")).await;
    f.publisher.sent.lock().unwrap().clear();
    f
}

fn completed(courier: &str) -> (String, Value) {
    ("DeliveryCompleted".into(), json!({"courierId": courier}))
}

#[tokio::test]
async fn the_courier_completes_and_a_retry_answers_the_same() {
    let f = dispatched_fixture().await;
    let (status, body) = complete(&f, "o-1", "c-1", "[COURIER]").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"orderId": "o-1", "courierId": "c-1", "status": "DELIVERED"})
    );
    assert_eq!(
        f.store.delivery("o-1").unwrap().status,
        DeliveryStatus::Delivered
    );
    assert_eq!(f.store.courier("c-1"), Courier::FREE);
    let fact = f.publisher.sent.lock().unwrap()[0].clone();
    assert_eq!(
        (fact.order_id.as_str(), fact.correlation_id.as_str()),
        ("o-1", "o-1")
    );
    // A retry (say the answer was lost) re-publishes and answers 200 again.
    let (status, body2) = complete(&f, "o-1", "c-1", "[COURIER]").await;
    assert_eq!((status, body2), (200, body));
    assert_eq!(
        f.publisher.facts(),
        vec![completed("c-1"), completed("c-1")]
    );
}

#[tokio::test]
async fn another_courier_sees_404_and_other_roles_403() {
    let f = dispatched_fixture().await;
    let (status, body) = complete(&f, "o-1", "c-2", "[COURIER]").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    let (status, body) = complete(&f, "o-1", "c-1", "[CUSTOMER]").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    let (status, _) = complete(&f, "o-unknown", "c-1", "[COURIER]").await;
    assert_eq!(status, 404);
    assert_eq!(
        f.store.delivery("o-1").unwrap().status,
        DeliveryStatus::Dispatched
    );
    assert!(f.publisher.facts().is_empty());
}

#[tokio::test]
async fn an_admin_completes_for_the_assigned_courier() {
    let f = dispatched_fixture().await;
    let (status, body) = complete(&f, "o-1", "admin-1", "[ADMIN]").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["courierId"], "c-1");
    assert_eq!(f.publisher.facts(), vec![completed("c-1")]);
}

#[tokio::test]
async fn a_cancelled_delivery_cannot_be_completed() {
    let f = dispatched_fixture().await;
    f.handled(&cancel_cmd("o-1")).await;
    let (status, body) = complete(&f, "o-1", "c-1", "[COURIER]").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("DELIVERY_CANCELLED"))
    );
    assert_eq!(f.publisher.facts(), vec![cancelled()]);
}

#[tokio::test]
async fn a_failed_publish_is_503_and_the_retry_heals_it() {
    let f = dispatched_fixture().await;
    f.publisher.fail.store(true, Ordering::SeqCst);
    let (status, body) = complete(&f, "o-1", "c-1", "[COURIER]").await;
    assert_eq!((status, body["code"].as_str()), (503, Some("UNAVAILABLE")));
    assert_eq!(
        f.store.delivery("o-1").unwrap().status,
        DeliveryStatus::Delivered
    );
    f.publisher.fail.store(false, Ordering::SeqCst);
    let (status, _) = complete(&f, "o-1", "c-1", "[COURIER]").await;
    assert_eq!(status, 200);
    assert_eq!(f.publisher.facts(), vec![completed("c-1")]);
}

#[tokio::test]
async fn a_cancel_of_a_completed_delivery_answers_with_the_completion() {
    let f = dispatched_fixture().await;
    let (status, _) = complete(&f, "o-1", "c-1", "[COURIER]").await;
    assert_eq!(status, 200);
    let cmd = cancel_cmd("o-1");
    f.handled(&cmd).await;
    // The saga, which cancels the dispatch before refunding, delivers the order instead.
    assert_eq!(
        f.publisher.facts(),
        vec![completed("c-1"), completed("c-1")]
    );
    let fact = f.publisher.sent.lock().unwrap()[1].clone();
    assert_eq!(fact.causation_id.as_deref(), Some(cmd.id.as_str()));
    assert_eq!(
        f.store.delivery("o-1").unwrap().status,
        DeliveryStatus::Delivered
    );
    // A duplicate dispatch re-publishes the same truth.
    f.handled(&dispatch_cmd("o-1")).await;
    assert_eq!(f.publisher.facts()[2], completed("c-1"));
}

/// Generated requests on every route: no panic, no 5xx, every 4xx a problem with a code.
#[test]
fn any_request_gets_a_clean_answer() {
    use dishpatch::http_fuzz::{run, Route};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = fixture(FakeStore::with_couriers(&["courier-1"]));
    rt.block_on(handle(&f.app, &dispatch_cmd("o-1"))).unwrap();
    drop(rt);
    run(
        &f.app,
        vec![
            Route::new("POST", "/v1/deliveries/{orderId}/complete", None),
            Route::new(
                "PUT",
                "/v1/couriers/{courierId}/shift",
                Some(json!({"onShift": true})),
            ),
            Route::new("GET", "/v1/couriers/{courierId}/deliveries", None),
        ],
    );
}

// ---- waiting for a courier

/// The delays the recorded messages were sent with, in order.
fn delays(f: &Fixture) -> Vec<Option<u32>> {
    f.publisher
        .delivered
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.delivery.delay_seconds)
        .collect()
}

fn sent(f: &Fixture, i: usize) -> Envelope {
    f.publisher.sent.lock().unwrap()[i].clone()
}

fn dispatch_by(order_id: &str, secs: i64) -> Envelope {
    let mut cmd = dispatch_cmd(order_id);
    let by = chrono::Utc::now() + chrono::Duration::seconds(secs);
    cmd.data["dispatchBy"] = json!(by.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    cmd
}

#[tokio::test]
async fn no_free_courier_waits_tells_the_saga_and_queues_a_delayed_retry() {
    let f = fixture(FakeStore::with_couriers(&[]));
    let cmd = dispatch_by("o-1", 600);
    f.handled(&cmd).await;
    assert_eq!(f.publisher.facts(), vec![waiting(), retry(1)]);
    assert_eq!(delays(&f), vec![None, Some(15)]);
    let d = f.store.delivery("o-1").unwrap();
    assert_eq!(d.status, DeliveryStatus::Waiting);
    assert_eq!(d.dispatch_by.as_deref(), cmd.data["dispatchBy"].as_str());
    assert_eq!(sent(&f, 1).causation_id.as_deref(), Some(cmd.id.as_str()));
    // The retry finds none either: the next one, later, recorded once.
    let r1 = sent(&f, 1);
    f.handled(&r1).await;
    assert_eq!(f.publisher.facts()[2], retry(2));
    assert_eq!(delays(&f)[2], Some(30));
    assert_eq!(f.store.delivery("o-1").unwrap().attempt, 1);
    // A duplicate of retry 1 is stale: nothing sent.
    f.handled(&r1).await;
    assert_eq!(f.publisher.facts().len(), 3);
    // A courier comes along: retry 2 claims it.
    f.store.add_courier("c-1");
    let r2 = sent(&f, 2);
    f.handled(&r2).await;
    assert_eq!(f.publisher.facts()[3], dispatched("c-1"));
    let d = f.store.delivery("o-1").unwrap();
    assert_eq!(
        (d.status, d.courier_id.as_deref()),
        (DeliveryStatus::Dispatched, Some("c-1"))
    );
    assert_eq!(f.store.courier("c-1").active_order.as_deref(), Some("o-1"));
    // A late retry re-publishes the dispatch, claiming nothing more.
    f.handled(&r2).await;
    assert_eq!(f.publisher.facts()[4], dispatched("c-1"));
    assert_eq!(f.store.busy_couriers(), vec!["c-1".to_owned()]);
}

#[tokio::test]
async fn no_retry_is_queued_past_the_dispatch_deadline() {
    let f = fixture(FakeStore::with_couriers(&[]));
    f.handled(&dispatch_by("o-1", 5)).await;
    assert_eq!(f.publisher.facts(), vec![waiting()]);
}

#[test]
fn retries_back_off_doubling_up_to_the_cap() {
    let w = Waiting::default();
    assert_eq!(
        (1..=6).map(|a| w.delay(a)).collect::<Vec<_>>(),
        vec![15, 30, 60, 120, 120, 120]
    );
    let env = dishpatch::config::Env::from_map(
        [
            ("DISPATCH_RETRY_SECONDS".to_owned(), "100".to_owned()),
            ("DISPATCH_DEADLINE_SECONDS".to_owned(), "7".to_owned()),
        ]
        .into(),
    );
    let w = Waiting::from_env(&env);
    assert_eq!((w.deadline_seconds, w.delay(1), w.delay(9)), (7, 100, 120));
}

#[tokio::test]
async fn a_freed_courier_takes_the_oldest_waiting_order_at_once() {
    let f = dispatched_fixture().await;
    // Two orders wait, o-2 the older.
    f.handled(&dispatch_by("o-2", 600)).await;
    f.handled(&dispatch_by("o-3", 600)).await;
    f.publisher.sent.lock().unwrap().clear();
    f.publisher.delivered.lock().unwrap().clear();
    let (status, body) = complete(&f, "o-1", "c-1", "[COURIER]").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        f.publisher.facts(),
        vec![dispatched("c-1"), completed("c-1")]
    );
    assert_eq!(sent(&f, 0).order_id, "o-2");
    assert_eq!(f.store.courier("c-1").active_order.as_deref(), Some("o-2"));
    assert_eq!(
        f.store.delivery("o-3").unwrap().status,
        DeliveryStatus::Waiting
    );
    // Freed by a cancel: the next one.
    f.handled(&cancel_cmd("o-2")).await;
    assert_eq!(f.store.courier("c-1").active_order.as_deref(), Some("o-3"));
    let facts = f.publisher.facts();
    assert_eq!(facts[2], dispatched("c-1"));
    assert_eq!(sent(&f, 2).order_id, "o-3");
    assert_eq!(facts[3], cancelled());
}

#[tokio::test]
async fn a_waiting_delivery_cancelled_claims_no_courier_later() {
    let f = fixture(FakeStore::with_couriers(&[]));
    f.handled(&dispatch_by("o-1", 600)).await;
    f.handled(&cancel_cmd("o-1")).await;
    assert_eq!(f.publisher.facts()[2], cancelled());
    assert_eq!(
        f.store.delivery("o-1").unwrap().status,
        DeliveryStatus::Cancelled
    );
    f.store.add_courier("c-1");
    let r1 = sent(&f, 1);
    f.handled(&r1).await;
    assert_eq!(
        shift(&f, "me", "c-1", "[COURIER]", json!({"onShift": true}))
            .await
            .0,
        200
    );
    assert_eq!(f.publisher.facts().len(), 3);
    assert!(f.store.courier("c-1").available);
}

// ---- HTTP: PUT /v1/couriers/{courierId}/shift

async fn shift(f: &Fixture, named: &str, sub: &str, roles: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1/couriers/{named}/shift");
    let body = body.to_string();
    let event = http_event(
        "PUT",
        "/v1/couriers/{courierId}/shift",
        &path,
        &[("courierId", named)],
        "",
        Some(&body),
        Some((sub, roles)),
    );
    call(&f.app, event).await
}

#[tokio::test]
async fn a_courier_goes_off_and_on_shift_idempotently() {
    let f = fixture(FakeStore::with_couriers(&["c-1"]));
    let off = json!({"onShift": false});
    let (status, body) = shift(&f, "me", "c-1", "[COURIER]", off.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"courierId": "c-1", "onShift": false, "status": "OFF_SHIFT"})
    );
    assert_eq!(shift(&f, "c-1", "c-1", "[COURIER]", off).await, (200, body));
    // Off shift: never dispatched; the order waits.
    f.handled(&dispatch_by("o-1", 600)).await;
    assert_eq!(f.publisher.facts()[0], waiting());
    // On shift: handed the waiting order at once.
    let (status, body) = shift(&f, "me", "c-1", "[COURIER]", json!({"onShift": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"courierId": "c-1", "onShift": true, "status": "BUSY", "activeOrderId": "o-1"})
    );
    assert_eq!(f.publisher.facts()[2], dispatched("c-1"));
    // Again: still on shift, nothing else happens.
    let (status, again) = shift(&f, "me", "c-1", "[COURIER]", json!({"onShift": true})).await;
    assert_eq!((status, again), (200, body));
    assert_eq!(f.publisher.facts().len(), 3);
}

#[tokio::test]
async fn a_courier_on_a_delivery_cannot_go_off_shift() {
    let f = dispatched_fixture().await;
    let (status, body) = shift(&f, "me", "c-1", "[COURIER]", json!({"onShift": false})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("COURIER_ON_DELIVERY"))
    );
    assert_eq!(f.store.courier("c-1").active_order.as_deref(), Some("o-1"));
}

#[tokio::test]
async fn a_first_shift_creates_the_courier_and_off_shift_without_one_writes_nothing() {
    let f = fixture(FakeStore::with_couriers(&[]));
    let (status, body) = shift(&f, "me", "new-1", "[COURIER]", json!({"onShift": false})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("OFF_SHIFT")));
    assert!(f.store.state.lock().unwrap().couriers.is_empty());
    let (status, body) = shift(&f, "me", "new-1", "[COURIER]", json!({"onShift": true})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("AVAILABLE")));
    f.handled(&dispatch_cmd("o-1")).await;
    assert_eq!(f.publisher.facts(), vec![dispatched("new-1")]);
}

#[tokio::test]
async fn only_the_courier_or_an_admin_changes_a_shift_and_bodies_are_checked() {
    let f = fixture(FakeStore::with_couriers(&["c-1", "c-2"]));
    let off = json!({"onShift": false});
    let (status, body) = shift(&f, "c-2", "c-1", "[COURIER]", off.clone()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    for roles in ["[CUSTOMER]", "[MANAGER]"] {
        let (status, body) = shift(&f, "me", "c-1", roles, off.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("FORBIDDEN")),
            "{roles}"
        );
    }
    // An admin has no shift of their own, but may act for a courier.
    assert_eq!(
        shift(&f, "me", "admin-1", "[ADMIN]", off.clone()).await.0,
        403
    );
    let (status, body) = shift(&f, "c-2", "admin-1", "[ADMIN]", off).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("OFF_SHIFT")));
    assert!(f.store.courier("c-1").available);
    for bad in [
        json!({}),
        json!({"onShift": "yes"}),
        json!({"onShift": true, "x": 1}),
        json!([true]),
    ] {
        let (status, body) = shift(&f, "me", "c-1", "[COURIER]", bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("VALIDATION_FAILED")),
            "{bad}"
        );
    }
    assert!(f.store.courier("c-1").available);
}

// ---- HTTP: GET /v1/couriers/{courierId}/deliveries

async fn assignments(
    f: &Fixture,
    named: &str,
    sub: &str,
    roles: &str,
    query: &str,
) -> (u16, Value) {
    let path = format!("/v1/couriers/{named}/deliveries");
    let event = http_event(
        "GET",
        "/v1/couriers/{courierId}/deliveries",
        &path,
        &[("courierId", named)],
        query,
        None,
        Some((sub, roles)),
    );
    call(&f.app, event).await
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["orderId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_courier_lists_their_deliveries_active_first_in_pages() {
    let f = fixture(FakeStore::with_couriers(&["c-1", "c-2"]));
    for (i, o) in ["o-1", "o-2", "o-3"].into_iter().enumerate() {
        let mut d = dispatched_delivery(o, "c-1");
        d.status = DeliveryStatus::Delivered;
        d.created_at = format!("2026-01-0{}T00:00:00.000Z", i + 1);
        f.store.record(&d).await.unwrap();
    }
    let mut active = dispatched_delivery("o-4", "c-1");
    active.created_at = "2026-01-09T00:00:00.000Z".into();
    f.store.claim("c-1", &active).await.unwrap();
    f.store
        .record(&dispatched_delivery("o-9", "c-2"))
        .await
        .unwrap();
    let (status, body) = assignments(&f, "me", "c-1", "[COURIER]", "page_size=2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), vec!["o-4", "o-3"]);
    assert_eq!(body["items"][0]["status"], "DISPATCHED");
    assert_eq!(body["items"][1]["status"], "DELIVERED");
    let token = body["nextPageToken"].as_str().unwrap().to_owned();
    let (status, body) = assignments(
        &f,
        "me",
        "c-1",
        "[COURIER]",
        &format!("page_size=2&page_token={token}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), vec!["o-2", "o-1"]);
    assert!(body.get("nextPageToken").is_none(), "{body}");
    // Only their own: another courier's list is not found, an admin reads any.
    assert_eq!(assignments(&f, "c-1", "c-2", "[COURIER]", "").await.0, 404);
    let (status, body) = assignments(&f, "c-2", "admin-1", "[ADMIN]", "").await;
    assert_eq!((status, ids(&body)), (200, vec!["o-9".to_owned()]));
    assert_eq!(
        assignments(&f, "me", "alice", "[CUSTOMER]", "").await.0,
        403
    );
    for q in [
        "page_size=0",
        "page_size=101",
        "page_token=%25%25",
        "page_token=b3JkZXI",
    ] {
        let (status, body) = assignments(&f, "me", "c-1", "[COURIER]", q).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("VALIDATION_FAILED")),
            "{q}"
        );
    }
}

#[tokio::test]
async fn the_completion_continues_the_orders_trace() {
    let f = fixture(FakeStore::with_couriers(&["c-1"]));
    let mut cmd = dispatch_cmd("o-1");
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    cmd.traceparent = Some(tp.into());
    f.handled(&cmd).await;
    assert_eq!(
        f.store.delivery("o-1").unwrap().traceparent.as_deref(),
        Some(tp)
    );
    let (status, _) = complete(&f, "o-1", "c-1", "[COURIER]").await;
    assert_eq!(status, 200);
    // A span of the order's trace: the same trace id, a span of its own.
    let made = sent(&f, 1).traceparent.expect("a traceparent");
    let parts: Vec<&str> = made.split('-').collect();
    assert_eq!(parts[1], "0af7651916cd43dd8448eb211c80319c", "{made}");
    assert_ne!(parts[2], "b7ad6b7169203331", "{made}");
}
