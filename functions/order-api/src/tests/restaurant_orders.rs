//! `GET /v1/restaurants/{restaurantId}/orders` over an in-memory index: scoping, the
//! kitchen's view, newest first across pages, the status filter and the work bound.

use super::app;
use crate::restaurant_orders::{IndexKey, IndexPage, RestaurantOrderIndex, MAX_EXAMINED};
use crate::App;
use dishpatch::error::StoreError;
use dishpatch::money::Money;
use dishpatch::order::{LineItem, Order, OrderStatus};
use dishpatch::testing::{call, http_event, sample_order, with_claim, InMemoryOrderStore};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

/// The index over the in-memory store's orders, ordered as DynamoDB orders the index:
/// by `createdAt`, then the order's key. Counts the keys it hands out.
#[derive(Default)]
pub(super) struct MemoryIndex {
    pub store: Arc<InMemoryOrderStore>,
    pub examined: AtomicUsize,
}

impl MemoryIndex {
    pub fn new(store: Arc<InMemoryOrderStore>) -> Self {
        MemoryIndex {
            store,
            examined: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl RestaurantOrderIndex for MemoryIndex {
    async fn keys(
        &self,
        restaurant_id: &str,
        after: Option<&IndexKey>,
        limit: u32,
    ) -> Result<IndexPage, StoreError> {
        assert!((1..=100).contains(&limit), "a query asks for 1..=100 keys");
        let pos = |k: &IndexKey| (k.created_at.clone(), k.order_id.clone());
        let mut all: Vec<IndexKey> = self
            .store
            .orders
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.restaurant_id == restaurant_id)
            .map(IndexKey::of)
            .collect();
        all.sort_by_key(|k| std::cmp::Reverse(pos(k)));
        let rest: Vec<IndexKey> = all
            .into_iter()
            .filter(|k| after.is_none_or(|a| pos(k) < pos(a)))
            .collect();
        let keys: Vec<IndexKey> = rest.iter().take(limit as usize).cloned().collect();
        self.examined.fetch_add(keys.len(), SeqCst);
        let last = (rest.len() > keys.len())
            .then(|| keys.last().cloned())
            .flatten();
        Ok(IndexPage { keys, last })
    }

    async fn orders(&self, keys: &[IndexKey]) -> Result<Vec<Order>, StoreError> {
        assert!(keys.len() <= 100, "a batch read takes at most 100 keys");
        let orders = self.store.orders.lock().unwrap();
        Ok(orders
            .iter()
            .filter(|o| keys.iter().any(|k| k.order_id == o.order_id))
            .cloned()
            .collect())
    }
}

fn order(n: usize, restaurant: &str, status: OrderStatus) -> Order {
    let mut o = Order {
        order_id: format!("{restaurant}-o{n:03}"),
        restaurant_id: restaurant.into(),
        // One second apart, n = 0 the oldest.
        created_at: format!("2026-11-22T10:{:02}:{:02}.000Z", n / 60, n % 60),
        items: vec![LineItem {
            menu_item_id: "m-1".into(),
            name: "Bacalhau".into(),
            quantity: 2,
            unit_price: Money::new(950, "EUR"),
            line_total: Money::new(1900, "EUR"),
        }],
        card_token: Some("tok_visa".into()),
        ..sample_order()
    };
    o.saga.status = status;
    o
}

/// The handler tests' app, and the index it reads.
fn app_and_index() -> (App, Arc<MemoryIndex>) {
    let (mut app, store) = app();
    let index = Arc::new(MemoryIndex::new(store));
    app.restaurant_orders = index.clone();
    (app, index)
}

fn seed(index: &MemoryIndex, orders: impl IntoIterator<Item = Order>) {
    index.store.orders.lock().unwrap().extend(orders);
}

const ROUTE: &str = "/v1/restaurants/{restaurantId}/orders";

/// A caller: subject, roles as API Gateway renders them, the restaurants they manage.
type Who = Option<(&'static str, &'static str, Option<&'static str>)>;

/// The route as `roles` (API Gateway's rendering), managing `restaurants` if given.
async fn list(app: &App, restaurant: &str, query: &str, who: Who) -> (u16, Value) {
    let path = format!("/v1/restaurants/{restaurant}/orders");
    let mut event = http_event(
        "GET",
        ROUTE,
        &path,
        &[("restaurantId", restaurant)],
        query,
        None,
        who.map(|(sub, roles, _)| (sub, roles)),
    );
    if let Some((_, _, Some(restaurants))) = who {
        event = with_claim(event, "restaurants", restaurants);
    }
    call(app, event).await
}

const MANAGER_1: Who = Some(("manager-1", "[MANAGER]", Some("r-1")));
const MANAGER_2: Who = Some(("manager-2", "[MANAGER]", Some("r-2")));
const ADMIN: Who = Some(("admin-1", "[ADMIN]", None));

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page from the first, following `nextPageToken`; the ids in order and the number
/// of requests.
async fn all_pages(app: &App, restaurant: &str, query: &str, who: Who) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for requests in 1..=100 {
        let q = match &token {
            None => query.to_owned(),
            Some(t) => format!("{query}&page_token={t}"),
        };
        let (status, page) = list(app, restaurant, &q, who).await;
        assert_eq!(status, 200, "{page}");
        out.extend(ids(&page));
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return (out, requests),
        }
    }
    panic!("the pages never end");
}

#[tokio::test]
async fn a_manager_reads_their_restaurants_orders_newest_first_across_pages() {
    let (app, index) = app_and_index();
    seed(&index, (0..5).map(|n| order(n, "r-1", OrderStatus::Paid)));
    seed(&index, (0..2).map(|n| order(n, "r-2", OrderStatus::Paid)));
    let (status, first) = list(&app, "r-1", "page_size=2", MANAGER_1).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first), ["r-1-o004", "r-1-o003"]);
    assert!(first["nextPageToken"].is_string());
    let (ids1, requests) = all_pages(&app, "r-1", "page_size=2", MANAGER_1).await;
    assert_eq!(
        ids1,
        ["r-1-o004", "r-1-o003", "r-1-o002", "r-1-o001", "r-1-o000"]
    );
    assert_eq!(requests, 3);
    // A page that ends exactly at the last order says there is no more.
    let (ids2, requests) = all_pages(&app, "r-2", "page_size=2", MANAGER_2).await;
    assert_eq!(
        (ids2, requests),
        (vec!["r-2-o001".into(), "r-2-o000".into()], 1)
    );
    // The default page holds them all.
    let (_, page) = list(&app, "r-1", "", MANAGER_1).await;
    assert_eq!(ids(&page).len(), 5);
    assert!(page.get("nextPageToken").is_none(), "{page}");
}

#[tokio::test]
async fn the_kitchen_sees_what_to_cook_and_nothing_private() {
    let (app, index) = app_and_index();
    seed(&index, [order(7, "r-1", OrderStatus::Reserved)]);
    let (status, page) = list(&app, "r-1", "", MANAGER_1).await;
    assert_eq!(status, 200, "{page}");
    let o = &page["items"][0];
    let fields: BTreeSet<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "orderId",
            "status",
            "items",
            "total",
            "placedAt",
            "updatedAt"
        ])
    );
    assert_eq!(o["orderId"], "r-1-o007");
    assert_eq!(o["status"], "RESERVED");
    assert_eq!(o["placedAt"], "2026-11-22T10:00:07.000Z");
    assert_eq!(o["total"]["amount"], 1900);
    assert_eq!(
        o["items"],
        serde_json::json!([{"menuItemId": "m-1", "name": "Bacalhau", "quantity": 2}])
    );
    let text = page.to_string();
    for private in ["alice", "Main St", "tok_visa", "WALLET", "customer"] {
        assert!(!text.contains(private), "{private} shown: {text}");
    }
}

#[tokio::test]
async fn only_a_manager_of_the_restaurant_or_admin_reads_it() {
    let (app, index) = app_and_index();
    seed(&index, [order(1, "r-1", OrderStatus::Paid)]);
    let cases: [(Who, u16); 9] = [
        (MANAGER_1, 200),
        (Some(("m", "[MANAGER]", Some("r-2,r-1"))), 200),
        (ADMIN, 200),
        (MANAGER_2, 403),
        (Some(("m", "[MANAGER]", None)), 403),
        (Some(("alice", "[CUSTOMER]", None)), 403),
        // The claim alone grants nothing without the role.
        (Some(("alice", "[CUSTOMER]", Some("r-1"))), 403),
        (Some(("courier-1", "[COURIER]", Some("r-1"))), 403),
        (None, 401),
    ];
    for (who, want) in cases {
        let (status, body) = list(&app, "r-1", "", who).await;
        assert_eq!(status, want, "{who:?}: {body}");
        if status == 200 {
            assert_eq!(ids(&body), ["r-1-o001"]);
        } else {
            // A refusal names no order.
            assert!(body["code"].is_string(), "{body}");
            assert!(!body.to_string().contains("r-1-o001"), "{body}");
        }
    }
    let (_, refused) = list(&app, "r-1", "", MANAGER_2).await;
    assert_eq!(refused["code"], "FORBIDDEN");
    // Admin reads any restaurant, the other's included.
    assert_eq!(list(&app, "r-9", "", ADMIN).await.0, 200);
    assert_eq!(list(&app, "r-1", "", MANAGER_1).await.0, 200);
}

#[tokio::test]
async fn the_status_filter_keeps_that_status_newest_first_across_pages() {
    let (app, index) = app_and_index();
    let status_of = |n: usize| match n % 3 {
        0 => OrderStatus::Paid,
        1 => OrderStatus::Delivered,
        _ => OrderStatus::Cancelled,
    };
    seed(&index, (0..60).map(|n| order(n, "r-1", status_of(n))));
    seed(&index, (0..10).map(|n| order(n, "r-2", OrderStatus::Paid)));
    let (paid, _) = all_pages(&app, "r-1", "status=PAID&page_size=7", MANAGER_1).await;
    let want: Vec<String> = (0..60)
        .rev()
        .filter(|n| n % 3 == 0)
        .map(|n| format!("r-1-o{n:03}"))
        .collect();
    assert_eq!(paid, want);
    let (_, page) = list(&app, "r-1", "status=DELIVERED&page_size=3", MANAGER_1).await;
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["status"] == "DELIVERED"));
    assert_eq!(ids(&page), ["r-1-o058", "r-1-o055", "r-1-o052"]);
    let (none, _) = all_pages(&app, "r-1", "status=PENDING", MANAGER_1).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_request_examines_a_bounded_number_of_orders_and_resumes() {
    let (app, index) = app_and_index();
    // 450 orders; the one DISPATCHED is the oldest.
    seed(
        &index,
        (0..450).map(|n| {
            let status = if n == 0 {
                OrderStatus::Dispatched
            } else {
                OrderStatus::Delivered
            };
            order(n, "r-1", status)
        }),
    );
    let (status, first) = list(&app, "r-1", "status=DISPATCHED", MANAGER_1).await;
    assert_eq!(status, 200, "{first}");
    assert!(ids(&first).is_empty(), "{first}");
    assert!(
        first["nextPageToken"].is_string(),
        "an empty page still goes on"
    );
    assert_eq!(index.examined.load(SeqCst), MAX_EXAMINED as usize);
    index.examined.store(0, SeqCst);
    let (found, requests) = all_pages(&app, "r-1", "status=DISPATCHED", MANAGER_1).await;
    assert_eq!(found, ["r-1-o000"]);
    assert_eq!(requests, 3, "450 orders at 200 a request");
    assert_eq!(index.examined.load(SeqCst), 450, "each examined once");
}

#[tokio::test]
async fn bad_queries_are_problems_naming_the_field() {
    let (app, index) = app_and_index();
    seed(&index, (0..3).map(|n| order(n, "r-1", OrderStatus::Paid)));
    let (_, page) = list(&app, "r-1", "page_size=1", MANAGER_1).await;
    let token = page["nextPageToken"].as_str().unwrap().to_owned();
    let (_, paid) = list(&app, "r-1", "page_size=1&status=PAID", MANAGER_1).await;
    let paid_token = paid["nextPageToken"].as_str().unwrap().to_owned();
    let long = "A".repeat(600);
    let cases = [
        ("r-1", "status=paid".to_owned(), "status"),
        ("r-1", "status=NOPE".to_owned(), "status"),
        ("r-1", "status=".to_owned(), "status"),
        ("r-1", "page_size=0".to_owned(), "page_size"),
        ("r-1", "page_size=101".to_owned(), "page_size"),
        ("r-1", "page_size=x".to_owned(), "page_size"),
        ("r-1", "page_token=x".to_owned(), "page_token"),
        ("r-1", format!("page_token={long}"), "page_token"),
        // A token is for its own list: another filter, another restaurant.
        ("r-1", format!("page_token={paid_token}"), "page_token"),
        (
            "r-1",
            format!("status=PAID&page_token={token}"),
            "page_token",
        ),
        ("r-2", format!("page_token={token}"), "page_token"),
    ];
    for (restaurant, query, field) in cases {
        let (status, body) = list(&app, restaurant, &query, ADMIN).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "VALIDATION_FAILED", "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    // A forged position is refused unless it is a timestamp and an order id.
    use base64::Engine;
    let forge = |c: &str, o: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::json!({"r": "r-1", "c": c, "o": o}).to_string())
    };
    for (c, o) in [
        ("", "o-1"),
        ("yesterday", "o-1"),
        ("2026-11-22T10:00:00.000Z", ""),
    ] {
        let (status, _) = list(&app, "r-1", &format!("page_token={}", forge(c, o)), ADMIN).await;
        assert_eq!(status, 400, "{c:?} {o:?}");
    }
    let ok = forge("2026-11-22T10:00:01.000Z", "r-1-o001");
    let (status, page) = list(&app, "r-1", &format!("page_token={ok}"), ADMIN).await;
    assert_eq!((status, ids(&page)), (200, vec!["r-1-o000".to_owned()]));
    // An id that is no id is no restaurant.
    assert_eq!(list(&app, "r 1", "", ADMIN).await.0, 404);
}

/// The sample events (ours and AWS's shape) are a manager's read of r-1's PAID orders.
#[tokio::test]
async fn the_sample_events_read_a_managers_restaurant() {
    let (app, index) = app_and_index();
    seed(
        &index,
        [
            order(1, "r-1", OrderStatus::Paid),
            order(2, "r-1", OrderStatus::Delivered),
            order(3, "r-2", OrderStatus::Paid),
        ],
    );
    for sample in [
        "order-api-restaurant-orders.json",
        "aws/order-api-restaurant-orders.json",
    ] {
        let path = format!("{}/../../events/{sample}", env!("CARGO_MANIFEST_DIR"));
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (status, page) = call(&app, event).await;
        assert_eq!(
            (status, ids(&page)),
            (200, vec!["r-1-o001".to_owned()]),
            "{sample}"
        );
    }
}
