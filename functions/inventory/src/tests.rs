//! Handler logic against an in-memory fake of the ports (the table's conditional
//! semantics over a map).

use crate::menu::{Created, MenuStore};
use crate::reservations::{Reservation, ReservationStatus, ReservationStore, Reserve};
use crate::App;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::menu::MenuItem;
use dishpatch::money::Money;
use dishpatch::order::ItemQuantity;
use dishpatch::runtime::{MessageError, PermanentCode};
use dishpatch::testing::{call, handle, http_event, with_claim, RecordingPublisher};
use dishpatch::worker::Outlets;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const R: &str = "r-1";

#[derive(Default)]
struct State {
    items: BTreeMap<String, MenuItem>,
    reservations: HashMap<String, Reservation>,
}

#[derive(Default)]
struct FakeInventory {
    state: Mutex<State>,
    /// A concurrent duplicate that records its reservation just before our reserve runs.
    racing_duplicate: Mutex<Option<Reservation>>,
    /// Stock that moves (a reservation elsewhere) just before the next `save`s: how many.
    moves_before_save: AtomicUsize,
    /// A reserve that lands just before the next `record` (racing a release's tombstone).
    reserve_before_record: Mutex<Option<Reservation>>,
}

impl FakeInventory {
    fn with_items(items: &[(&str, i64)]) -> Self {
        let f = FakeInventory::default();
        for (id, available) in items {
            f.state
                .lock()
                .unwrap()
                .items
                .insert(id.to_string(), item(id, *available));
        }
        f
    }

    fn item(&self, id: &str) -> MenuItem {
        self.state.lock().unwrap().items[id].clone()
    }

    fn reservation(&self, order_id: &str) -> Option<Reservation> {
        self.state
            .lock()
            .unwrap()
            .reservations
            .get(order_id)
            .cloned()
    }

    fn all_conserve(&self) -> bool {
        self.state
            .lock()
            .unwrap()
            .items
            .values()
            .all(MenuItem::conserves_stock)
    }

    fn moves(
        s: &mut State,
        r: &Reservation,
        from: fn(&mut MenuItem) -> &mut i64,
        to: fn(&mut MenuItem) -> &mut i64,
    ) {
        for line in &r.items {
            let item = s.items.get_mut(&line.menu_item_id).unwrap();
            *from(item) -= line.quantity as i64;
            *to(item) += line.quantity as i64;
        }
    }
}

fn item(id: &str, available: i64) -> MenuItem {
    MenuItem {
        restaurant_id: R.into(),
        menu_item_id: id.into(),
        name: format!("dish {id}"),
        price: Money::new(950, "EUR"),
        available,
        reserved: 0,
        sold: 0,
        stocked: available,
    }
}

#[async_trait::async_trait]
impl ReservationStore for FakeInventory {
    async fn get(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        Ok(self.reservation(order_id))
    }

    async fn reserve(&self, r: &Reservation) -> Result<Reserve, StoreError> {
        let mut s = self.state.lock().unwrap();
        if let Some(dup) = self.racing_duplicate.lock().unwrap().take() {
            s.reservations.insert(dup.order_id.clone(), dup);
        }
        if s.reservations.contains_key(&r.order_id) {
            return Ok(Reserve::Exists);
        }
        for line in &r.items {
            match s.items.get(&line.menu_item_id) {
                Some(i) if i.available >= line.quantity as i64 => {}
                _ => {
                    return Ok(Reserve::OutOfStock {
                        menu_item_id: line.menu_item_id.clone(),
                    })
                }
            }
        }
        match r.status {
            ReservationStatus::Reserved => {
                Self::moves(&mut s, r, |i| &mut i.available, |i| &mut i.reserved)
            }
            _ => Self::moves(&mut s, r, |i| &mut i.available, |i| &mut i.sold),
        }
        s.reservations.insert(r.order_id.clone(), r.clone());
        Ok(Reserve::Reserved)
    }

    async fn record(&self, r: &Reservation) -> Result<bool, StoreError> {
        let racing = self.reserve_before_record.lock().unwrap().take();
        if let Some(racing) = racing {
            self.reserve(&racing).await?;
        }
        let mut s = self.state.lock().unwrap();
        if s.reservations.contains_key(&r.order_id) {
            return Ok(false);
        }
        s.reservations.insert(r.order_id.clone(), r.clone());
        Ok(true)
    }

    async fn settle(&self, r: &Reservation, to: ReservationStatus) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        match s.reservations.get(&r.order_id) {
            Some(stored) if stored.status == r.status => {}
            _ => return Ok(false),
        }
        match (r.status, to) {
            (ReservationStatus::Reserved, ReservationStatus::Released) => {
                Self::moves(&mut s, r, |i| &mut i.reserved, |i| &mut i.available)
            }
            (ReservationStatus::Reserved, ReservationStatus::Sold) => {
                Self::moves(&mut s, r, |i| &mut i.reserved, |i| &mut i.sold)
            }
            (ReservationStatus::Sold, ReservationStatus::Released) => {
                Self::moves(&mut s, r, |i| &mut i.sold, |i| &mut i.available)
            }
            other => unreachable!("{other:?} does not settle a reservation"),
        }
        s.reservations.get_mut(&r.order_id).unwrap().status = to;
        Ok(true)
    }
}

#[async_trait::async_trait]
impl MenuStore for FakeInventory {
    async fn list(&self, restaurant_id: &str) -> Result<Vec<MenuItem>, StoreError> {
        let s = self.state.lock().unwrap();
        // Reverse order on purpose: the route must sort.
        Ok(s.items
            .values()
            .rev()
            .filter(|i| i.restaurant_id == restaurant_id)
            .cloned()
            .collect())
    }

    async fn get(
        &self,
        _restaurant_id: &str,
        menu_item_id: &str,
    ) -> Result<Option<MenuItem>, StoreError> {
        Ok(self.state.lock().unwrap().items.get(menu_item_id).cloned())
    }

    async fn create(&self, item: &MenuItem, max_items: u32) -> Result<Created, StoreError> {
        let mut s = self.state.lock().unwrap();
        if s.items.contains_key(&item.menu_item_id) {
            return Err(StoreError::Conflict("exists".into()));
        }
        let count = s
            .items
            .values()
            .filter(|i| i.restaurant_id == item.restaurant_id)
            .count();
        if count >= max_items as usize {
            return Ok(Created::MenuFull);
        }
        s.items.insert(item.menu_item_id.clone(), item.clone());
        Ok(Created::Created)
    }

    async fn save(&self, next: &MenuItem, read: &MenuItem) -> Result<(), StoreError> {
        let read = Some(read);
        let mut s = self.state.lock().unwrap();
        if self.moves_before_save.load(Ordering::SeqCst) > 0 {
            self.moves_before_save.fetch_sub(1, Ordering::SeqCst);
            if let Some(i) = s.items.get_mut(&next.menu_item_id) {
                i.available -= 1;
                i.reserved += 1;
            }
        }
        if s.items.get(&next.menu_item_id) != read {
            return Err(StoreError::Conflict("changed".into()));
        }
        s.items.insert(next.menu_item_id.clone(), next.clone());
        Ok(())
    }
}

struct Fixture {
    app: App,
    store: Arc<FakeInventory>,
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

fn fixture(store: FakeInventory) -> Fixture {
    let store = Arc::new(store);
    let publisher = Arc::new(RecordingPublisher::default());
    Fixture {
        app: App {
            reservations: store.clone(),
            menu: store.clone(),
            outlets: Outlets::publishing(publisher.clone()),
        },
        store,
        publisher,
    }
}

fn reserve_cmd(order_id: &str, lines: &[(&str, u32)]) -> Envelope {
    let items: Vec<Value> = lines
        .iter()
        .map(|(id, q)| json!({"menuItemId": id, "quantity": q}))
        .collect();
    Envelope::new(
        MessageType::ReserveInventory,
        order_id,
        json!({"restaurantId": R, "items": items}),
    )
}

fn cmd(kind: MessageType, order_id: &str) -> Envelope {
    Envelope::new(kind, order_id, json!({}))
}

fn reserved() -> (String, Value) {
    ("InventoryReserved".into(), json!({}))
}

fn rejected() -> (String, Value) {
    (
        "InventoryRejected".into(),
        json!({"reason": "OUT_OF_STOCK"}),
    )
}

fn released() -> (String, Value) {
    ("InventoryReleased".into(), json!({}))
}

fn counters(i: &MenuItem) -> (i64, i64, i64, i64) {
    (i.available, i.reserved, i.sold, i.stocked)
}

// ---- ReserveInventory

#[tokio::test]
async fn reserve_sells_every_line_and_follows_the_command() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5), ("m-2", 3)]));
    let c = reserve_cmd("o-1", &[("m-1", 2), ("m-2", 3)]);
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![reserved()]);
    assert_eq!(counters(&f.store.item("m-1")), (3, 0, 2, 5));
    assert_eq!(counters(&f.store.item("m-2")), (0, 0, 3, 3));
    assert_eq!(
        f.store.reservation("o-1").unwrap().status,
        ReservationStatus::Sold
    );
    let fact = &f.publisher.sent.lock().unwrap()[0];
    assert_eq!(fact.causation_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(fact.order_id, "o-1");
}

#[tokio::test]
async fn duplicate_reserve_republishes_and_holds_stock_once() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    let c = reserve_cmd("o-1", &[("m-1", 2)]);
    for _ in 0..3 {
        f.handled(&c).await;
    }
    assert_eq!(
        f.publisher.facts(),
        vec![reserved(), reserved(), reserved()]
    );
    assert_eq!(counters(&f.store.item("m-1")), (3, 0, 2, 5));
}

#[tokio::test]
async fn out_of_stock_is_recorded_and_the_same_answer_repeats() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5), ("m-2", 1)]));
    let c = reserve_cmd("o-1", &[("m-1", 2), ("m-2", 2)]);
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![rejected()]);
    // Nothing held: all or nothing.
    assert_eq!(counters(&f.store.item("m-1")), (5, 0, 0, 5));
    let r = f.store.reservation("o-1").unwrap();
    assert_eq!(r.status, ReservationStatus::Rejected);
    assert!(r.detail.unwrap().contains("m-2"));
    // Stock arriving later does not turn a recorded refusal into a reservation.
    f.store
        .state
        .lock()
        .unwrap()
        .items
        .insert("m-2".into(), item("m-2", 10));
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![rejected(), rejected()]);
    assert_eq!(counters(&f.store.item("m-2")), (10, 0, 0, 10));
}

#[tokio::test]
async fn an_unknown_item_is_out_of_stock() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    f.handled(&reserve_cmd("o-1", &[("m-9", 1)])).await;
    assert_eq!(f.publisher.facts(), vec![rejected()]);
}

#[tokio::test]
async fn repeated_lines_are_merged_into_one_hold() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    f.handled(&reserve_cmd("o-1", &[("m-1", 2), ("m-1", 3)]))
        .await;
    assert_eq!(f.publisher.facts(), vec![reserved()]);
    assert_eq!(counters(&f.store.item("m-1")), (0, 0, 5, 5));
    assert_eq!(f.store.reservation("o-1").unwrap().items.len(), 1);
}

#[tokio::test]
async fn a_concurrent_duplicate_that_won_is_republished() {
    let store = FakeInventory::with_items(&[("m-1", 5)]);
    let mut winner = f_reservation("o-1", ReservationStatus::Rejected);
    winner.reason = Some("OUT_OF_STOCK".into());
    *store.racing_duplicate.lock().unwrap() = Some(winner);
    let f = fixture(store);
    f.handled(&reserve_cmd("o-1", &[("m-1", 1)])).await;
    assert_eq!(f.publisher.facts(), vec![rejected()]);
    assert_eq!(counters(&f.store.item("m-1")), (5, 0, 0, 5));
}

fn f_reservation(order_id: &str, status: ReservationStatus) -> Reservation {
    Reservation {
        order_id: order_id.into(),
        restaurant_id: R.into(),
        items: vec![],
        status,
        reason: None,
        detail: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

#[tokio::test]
async fn a_lost_publish_heals_on_retry() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    let c = reserve_cmd("o-1", &[("m-1", 2)]);
    f.publisher.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        handle(&f.app, &c).await,
        Err(MessageError::Transient(_))
    ));
    f.publisher.fail.store(false, Ordering::SeqCst);
    f.handled(&c).await;
    assert_eq!(f.publisher.facts(), vec![reserved()]);
    assert_eq!(counters(&f.store.item("m-1")), (3, 0, 2, 5));
}

#[tokio::test]
async fn bad_payloads_and_foreign_messages_are_refused() {
    let f = fixture(FakeInventory::with_items(&[]));
    let bad = Envelope::new(
        MessageType::ReserveInventory,
        "o-1",
        json!({"restaurantId": 7}),
    );
    assert!(matches!(
        handle(&f.app, &bad).await,
        Err(MessageError::Decode(_))
    ));
    let too_many: Vec<(String, u32)> = (0..100).map(|i| (format!("m-{i}"), 1)).collect();
    let lines: Vec<(&str, u32)> = too_many.iter().map(|(id, q)| (id.as_str(), *q)).collect();
    assert!(matches!(
        handle(&f.app, &reserve_cmd("o-2", &lines)).await,
        Err(MessageError::Permanent {
            code: PermanentCode::InvalidContent,
            ..
        })
    ));
    assert!(matches!(
        handle(&f.app, &cmd(MessageType::CapturePayment, "o-1")).await,
        Err(MessageError::Unsupported)
    ));
    assert!(f.publisher.facts().is_empty());
}

// ---- ReleaseInventory and CommitInventory

#[tokio::test]
async fn release_gives_the_units_back_once() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    f.handled(&reserve_cmd("o-1", &[("m-1", 2)])).await;
    for _ in 0..3 {
        f.handled(&cmd(MessageType::ReleaseInventory, "o-1")).await;
    }
    assert_eq!(counters(&f.store.item("m-1")), (5, 0, 0, 5));
    assert_eq!(
        f.store.reservation("o-1").unwrap().status,
        ReservationStatus::Released
    );
    assert_eq!(
        f.publisher.facts(),
        vec![reserved(), released(), released(), released()]
    );
    // A late duplicate reserve does not hold stock again; it repeats the step's success.
    f.handled(&reserve_cmd("o-1", &[("m-1", 2)])).await;
    assert_eq!(counters(&f.store.item("m-1")), (5, 0, 0, 5));
    assert_eq!(f.publisher.facts().last().unwrap(), &reserved());
}

#[tokio::test]
async fn release_with_nothing_held_just_answers() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 1)]));
    f.handled(&cmd(MessageType::ReleaseInventory, "o-missing"))
        .await;
    f.handled(&reserve_cmd("o-2", &[("m-1", 2)])).await; // rejected
    f.handled(&cmd(MessageType::ReleaseInventory, "o-2")).await;
    assert_eq!(
        f.publisher.facts(),
        vec![released(), rejected(), released()]
    );
    assert_eq!(counters(&f.store.item("m-1")), (1, 0, 0, 1));
    assert_eq!(
        f.store.reservation("o-2").unwrap().status,
        ReservationStatus::Rejected
    );
}

#[tokio::test]
async fn reserve_sells_the_stock_once_and_a_commit_of_it_does_nothing() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    f.handled(&reserve_cmd("o-1", &[("m-1", 2)])).await;
    assert_eq!(
        f.store.reservation("o-1").unwrap().status,
        ReservationStatus::Sold
    );
    // A CommitInventory still in flight from before: already sold.
    f.handled(&cmd(MessageType::CommitInventory, "o-1")).await;
    assert_eq!(counters(&f.store.item("m-1")), (3, 0, 2, 5));
    assert_eq!(f.publisher.facts(), vec![reserved()]);
    // Commit of something never reserved is a logged no-op.
    f.handled(&cmd(MessageType::CommitInventory, "o-none"))
        .await;
    assert!(f.store.all_conserve());
}

#[tokio::test]
async fn a_reservation_held_before_stock_was_sold_at_reservation_still_settles() {
    // As written before: RESERVED, its units in `reserved`.
    let f = fixture(FakeInventory::with_items(&[("m-1", 5), ("m-2", 5)]));
    for (order, item) in [("o-old-1", "m-1"), ("o-old-2", "m-2")] {
        let mut held = f_reservation(order, ReservationStatus::Reserved);
        held.items = vec![ItemQuantity {
            menu_item_id: item.into(),
            quantity: 2,
        }];
        f.store.reserve(&held).await.unwrap();
    }
    assert_eq!(counters(&f.store.item("m-1")), (3, 2, 0, 5));
    // Its delivered order's CommitInventory sells it, once.
    for _ in 0..2 {
        f.handled(&cmd(MessageType::CommitInventory, "o-old-1"))
            .await;
    }
    assert_eq!(counters(&f.store.item("m-1")), (3, 0, 2, 5));
    assert_eq!(
        f.store.reservation("o-old-1").unwrap().status,
        ReservationStatus::Sold
    );
    // A cancelled order's release gives it back from `reserved`.
    f.handled(&cmd(MessageType::ReleaseInventory, "o-old-2"))
        .await;
    assert_eq!(counters(&f.store.item("m-2")), (5, 0, 0, 5));
    assert!(f.store.all_conserve());
}

// ---- Cancel wins: a release that overtakes its reserve

#[tokio::test]
async fn a_release_before_the_reserve_leaves_a_tombstone_the_reserve_respects() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    f.handled(&cmd(MessageType::ReleaseInventory, "o-1")).await;
    let tombstone = f.store.reservation("o-1").unwrap();
    assert_eq!(
        (tombstone.status, tombstone.items.len()),
        (ReservationStatus::Released, 0)
    );
    // The late reserve takes nothing and repeats the recorded outcome.
    f.handled(&reserve_cmd("o-1", &[("m-1", 2)])).await;
    assert_eq!(counters(&f.store.item("m-1")), (5, 0, 0, 5));
    assert_eq!(f.store.reservation("o-1").unwrap(), tombstone);
    // The saga answers that late success with another release: a confirmation, no more.
    f.handled(&cmd(MessageType::ReleaseInventory, "o-1")).await;
    f.handled(&cmd(MessageType::CommitInventory, "o-1")).await;
    assert_eq!(
        f.publisher.facts(),
        vec![released(), reserved(), released()]
    );
    assert_eq!(counters(&f.store.item("m-1")), (5, 0, 0, 5));
    assert_eq!(f.store.reservation("o-1").unwrap(), tombstone);
}

#[tokio::test]
async fn a_reserve_landing_as_the_tombstone_is_written_is_released() {
    let store = FakeInventory::with_items(&[("m-1", 5)]);
    let mut racing = f_reservation("o-1", ReservationStatus::Reserved);
    racing.items = vec![ItemQuantity {
        menu_item_id: "m-1".into(),
        quantity: 2,
    }];
    *store.reserve_before_record.lock().unwrap() = Some(racing);
    let f = fixture(store);
    f.handled(&cmd(MessageType::ReleaseInventory, "o-1")).await;
    // The tombstone lost; the release undid the reservation it found instead.
    let r = f.store.reservation("o-1").unwrap();
    assert_eq!((r.status, r.items.len()), (ReservationStatus::Released, 1));
    assert_eq!(counters(&f.store.item("m-1")), (5, 0, 0, 5));
    assert_eq!(f.publisher.facts(), vec![released()]);
}

// ---- HTTP

async fn get_menu(f: &Fixture, restaurant_id: &str) -> (u16, Value) {
    let path = format!("/v1/restaurants/{restaurant_id}/menu");
    let params = [("restaurantId", restaurant_id)];
    let route = "/v1/restaurants/{restaurantId}/menu";
    call(
        &f.app,
        http_event("GET", route, &path, &params, "", None, None),
    )
    .await
}

const ITEM_ROUTE: &str = "/v1/restaurants/{restaurantId}/menu/items/{menuItemId}";

/// A PUT of `item_id` at restaurant R by a caller with `roles` who manages R.
async fn put_item(f: &Fixture, item_id: &str, roles: &str, body: Value) -> (u16, Value) {
    put_item_as(f, R, item_id, roles, Some(R), body).await
}

async fn put_item_as(
    f: &Fixture,
    restaurant_id: &str,
    item_id: &str,
    roles: &str,
    manages: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let path = format!("/v1/restaurants/{restaurant_id}/menu/items/{item_id}");
    let params = [("restaurantId", restaurant_id), ("menuItemId", item_id)];
    let body = body.to_string();
    let claims = Some(("u-1", roles));
    let mut event = http_event("PUT", ITEM_ROUTE, &path, &params, "", Some(&body), claims);
    if let Some(restaurants) = manages {
        event = with_claim(event, "restaurants", restaurants);
    }
    call(&f.app, event).await
}

fn item_body(stock: i64) -> Value {
    json!({"name": "Bacalhau", "price": {"amount": 1450, "currency": "EUR"}, "stock": stock})
}

#[tokio::test]
async fn the_public_menu_is_sorted_and_hides_bookkeeping() {
    let f = fixture(FakeInventory::with_items(&[
        ("m-2", 3),
        ("m-1", 5),
        ("m-10", 0),
    ]));
    f.handled(&reserve_cmd("o-1", &[("m-1", 2)])).await;
    let (status, body) = get_menu(&f, R).await;
    assert_eq!(status, 200);
    assert_eq!(body["restaurantId"], R);
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["menuItemId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["m-1", "m-10", "m-2"]);
    assert_eq!(
        body["items"][0],
        json!({"menuItemId": "m-1", "name": "dish m-1", "price": {"amount": 950, "currency": "EUR"}, "available": 3})
    );
    let (status, body) = get_menu(&f, "r-unknown").await;
    assert_eq!((status, body["items"].clone()), (200, json!([])));
}

#[tokio::test]
async fn a_manager_creates_then_restocks_an_item() {
    let f = fixture(FakeInventory::with_items(&[]));
    let (status, body) = put_item(&f, "m-7", "[MANAGER]", item_body(10)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"menuItemId": "m-7", "name": "Bacalhau", "price": {"amount": 1450, "currency": "EUR"}, "available": 10})
    );
    assert_eq!(counters(&f.store.item("m-7")), (10, 0, 0, 10));
    f.handled(&reserve_cmd("o-1", &[("m-7", 4)])).await;
    f.handled(&cmd(MessageType::CommitInventory, "o-1")).await;
    f.handled(&reserve_cmd("o-2", &[("m-7", 1)])).await;
    // available 5, sold 5 (at reservation): setting stock 20 adds 15 units.
    let (status, body) = put_item(&f, "m-7", "[ADMIN]", item_body(20)).await;
    assert_eq!((status, body["available"].clone()), (200, json!(20)));
    assert_eq!(counters(&f.store.item("m-7")), (20, 0, 5, 25));
    // Down to zero: the sold units stay counted.
    put_item(&f, "m-7", "[MANAGER]", item_body(0)).await;
    assert_eq!(counters(&f.store.item("m-7")), (0, 0, 5, 5));
    assert!(f.store.all_conserve());
}

#[tokio::test]
async fn an_edit_racing_with_reservations_retries_on_fresh_counters() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    f.store.moves_before_save.store(2, Ordering::SeqCst);
    let (status, _) = put_item(&f, "m-1", "[MANAGER]", item_body(8)).await;
    assert_eq!(status, 200);
    // Two units were reserved meanwhile; the edit applied to the fresh counters.
    assert_eq!(counters(&f.store.item("m-1")), (8, 2, 0, 10));
    f.store.moves_before_save.store(10, Ordering::SeqCst);
    let (status, body) = put_item(&f, "m-1", "[MANAGER]", item_body(8)).await;
    assert_eq!(
        (status, body["code"].clone()),
        (409, json!("CONCURRENT_UPDATE"))
    );
    assert!(f.store.all_conserve());
}

#[tokio::test]
async fn only_managers_and_admins_edit_the_menu() {
    let f = fixture(FakeInventory::with_items(&[]));
    let (status, body) = put_item(&f, "m-1", "[CUSTOMER COURIER]", item_body(1)).await;
    assert_eq!((status, body["code"].clone()), (403, json!("FORBIDDEN")));
    let path = format!("/v1/restaurants/{R}/menu/items/m-1");
    let params = [("restaurantId", R), ("menuItemId", "m-1")];
    let body = item_body(1).to_string();
    let event = http_event("PUT", ITEM_ROUTE, &path, &params, "", Some(&body), None);
    let (status, _) = call(&f.app, event).await;
    assert_eq!(status, 401);
    assert!(f.store.state.lock().unwrap().items.is_empty());
}

#[tokio::test]
async fn invalid_item_bodies_name_the_field() {
    let f = fixture(FakeInventory::with_items(&[]));
    let cases = [
        (
            json!({"price": {"amount": 1, "currency": "EUR"}, "stock": 1}),
            "name",
        ),
        (
            json!({"name": "", "price": {"amount": 1, "currency": "EUR"}, "stock": 1}),
            "name",
        ),
        (
            json!({"name": "x".repeat(101), "price": {"amount": 1, "currency": "EUR"}, "stock": 1}),
            "name",
        ),
        (json!({"name": "ok", "stock": 1}), "price"),
        (
            json!({"name": "ok", "price": {"amount": -1, "currency": "EUR"}, "stock": 1}),
            "price.amount",
        ),
        (
            json!({"name": "ok", "price": {"amount": 10_000_001, "currency": "EUR"}, "stock": 1}),
            "price.amount",
        ),
        (
            json!({"name": "ok", "price": {"amount": 1.5, "currency": "EUR"}, "stock": 1}),
            "price.amount",
        ),
        (
            json!({"name": "ok", "price": {"amount": 1, "currency": "eur"}, "stock": 1}),
            "price.currency",
        ),
        (
            json!({"name": "ok", "price": {"amount": 1, "currency": "EUR"}}),
            "stock",
        ),
        (
            json!({"name": "ok", "price": {"amount": 1, "currency": "EUR"}, "stock": 100_001}),
            "stock",
        ),
        (
            json!({"name": "ok", "price": {"amount": 1, "currency": "EUR"}, "stock": 2.5}),
            "stock",
        ),
        (
            json!({"name": "ok", "price": {"amount": 1, "currency": "EUR"}, "stock": "3"}),
            "stock",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        let (status, problem) = put_item(&f, "m-1", "[MANAGER]", body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(problem["field"], field, "{body}");
        assert_eq!(problem["code"], "VALIDATION_FAILED");
    }
    // 100 two-byte characters are fine.
    let (status, _) = put_item(
        &f,
        "m-1",
        "[MANAGER]",
        json!({"name": "é".repeat(100), "price": {"amount": 1, "currency": "EUR"}, "stock": 100_000}),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn prices_are_positive_and_names_bounded_in_bytes() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    let before = f.store.item("m-1");
    let cases = [
        (
            json!({"name": "ok", "price": {"amount": 0, "currency": "EUR"}, "stock": 1}),
            "price.amount",
        ),
        // 100 characters but 400 bytes.
        (
            json!({"name": "🍕".repeat(100), "price": {"amount": 1, "currency": "EUR"}, "stock": 1}),
            "name",
        ),
        (
            json!({"name": "a\u{0}b", "price": {"amount": 1, "currency": "EUR"}, "stock": 1}),
            "name",
        ),
        (
            json!({"name": "a\nb", "price": {"amount": 1, "currency": "EUR"}, "stock": 1}),
            "name",
        ),
        (
            json!({"name": 7, "price": {"amount": 1, "currency": "EUR"}, "stock": 1}),
            "name",
        ),
        (
            json!({"name": "ok", "price": {"amount": 1, "currency": "EUR"}, "stock": 1, "pad": "x".repeat(5000)}),
            "body",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = put_item(&f, "m-1", "[MANAGER]", body.clone()).await;
        assert_eq!(
            (status, problem["field"].clone()),
            (400, json!(field)),
            "{body}"
        );
    }
    assert_eq!(f.store.item("m-1"), before, "nothing written");
}

#[tokio::test]
async fn a_manager_edits_only_the_restaurants_they_manage() {
    let f = fixture(FakeInventory::with_items(&[("m-1", 5)]));
    let before = f.store.item("m-1");
    for (roles, manages) in [
        ("[MANAGER]", Some("r-2")),
        ("[MANAGER]", Some("r-2,r-3")),
        ("[MANAGER]", None),
        ("[MANAGER]", Some("")),
        // Near misses of the id are other ids.
        ("[MANAGER]", Some("r-10")),
        ("[MANAGER]", Some("[r-1]")),
        // A claim without the role grants nothing.
        ("[CUSTOMER]", Some(R)),
    ] {
        let (status, body) = put_item_as(&f, R, "m-1", roles, manages, item_body(9)).await;
        assert_eq!(
            (status, body["code"].clone()),
            (403, json!("FORBIDDEN")),
            "{roles} managing {manages:?}"
        );
        let (status, _) = put_item_as(&f, R, "m-new", roles, manages, item_body(9)).await;
        assert_eq!(status, 403);
    }
    assert_eq!(f.store.item("m-1"), before, "nothing written");
    assert_eq!(f.store.state.lock().unwrap().items.len(), 1);
    // Refused before the body is looked at.
    let (status, _) = put_item_as(&f, R, "m-1", "[MANAGER]", Some("r-2"), json!([])).await;
    assert_eq!(status, 403);
    // One of several managed restaurants; ADMIN needs no claim.
    let (status, _) = put_item_as(&f, R, "m-1", "[MANAGER]", Some("r-2,r-1"), item_body(9)).await;
    assert_eq!(status, 200);
    let (status, _) = put_item_as(&f, R, "m-1", "[ADMIN]", None, item_body(8)).await;
    assert_eq!(status, 200);
    assert_eq!(f.store.item("m-1").available, 8);
}

#[tokio::test]
async fn a_restaurant_has_a_bounded_number_of_items() {
    let max = crate::routes::MAX_ITEMS_PER_RESTAURANT as usize;
    let ids: Vec<String> = (0..max).map(|i| format!("m-{i:03}")).collect();
    let refs: Vec<(&str, i64)> = ids.iter().map(|id| (id.as_str(), 1)).collect();
    let f = fixture(FakeInventory::with_items(&refs));
    let (status, body) = put_item(&f, "m-new", "[MANAGER]", item_body(1)).await;
    assert_eq!((status, body["code"].clone()), (409, json!("MENU_FULL")));
    assert_eq!(
        f.store.state.lock().unwrap().items.len(),
        max,
        "nothing written"
    );
    // Existing items stay editable at the cap.
    let (status, _) = put_item(&f, "m-000", "[MANAGER]", item_body(3)).await;
    assert_eq!(status, 200);
    // The public menu is that bounded list.
    let (status, body) = get_menu(&f, R).await;
    assert_eq!(
        (status, body["items"].as_array().unwrap().len()),
        (200, max)
    );
}

/// Generated requests on every route: no panic, no 5xx, every 4xx a problem with a code.
#[test]
fn any_request_gets_a_clean_answer() {
    use dishpatch::http_fuzz::{run, Route};
    let f = fixture(FakeInventory::with_items(&[("m-1", 5), ("m-2", 0)]));
    run(
        &f.app,
        vec![
            Route::new("GET", "/v1/restaurants/{restaurantId}/menu", None),
            Route::new(
                "PUT",
                "/v1/restaurants/{restaurantId}/menu/items/{menuItemId}",
                Some(item_body(7)),
            ),
        ],
    );
}
