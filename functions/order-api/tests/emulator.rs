//! A restaurant's orders against the AWS emulator: orders written by the order store
//! are found through the keys-only restaurant index, newest first across pages, of one
//! status when asked, never another restaurant's; and the wired function serves them.

use dishpatch::config::Env;
use dishpatch::keys::{OVERDUE_INDEX, RESTAURANT_INDEX};
use dishpatch::order::{Order, OrderStatus};
use dishpatch::orders::{DynamoOrderStore, OrderStore};
use dishpatch::testing::{
    call, create_table_with, emulator, http_event, sample_order, unique, with_claim, Index,
};
use order_api::restaurant_orders::{list, DynamoRestaurantOrders, KitchenOrderPage};
use std::collections::HashMap;

/// The orders table as template.yaml defines it: its keys and its three keys-only indexes.
async fn orders_table(sdk: &aws_config::SdkConfig) -> String {
    let indexes = [
        Index::keys_only("gsi1", "gsi1pk", "gsi1sk"),
        Index::keys_only(OVERDUE_INDEX, "sweepShard", "deadline"),
        Index::keys_only(RESTAURANT_INDEX, "restaurantId", "createdAt"),
    ];
    create_table_with(sdk, "orders", &indexes).await
}

/// Order `n` of `restaurant`, placed at second `n` (two orders share a second when
/// `n` repeats across restaurants, and `tie` makes two of one restaurant share one).
fn order(restaurant: &str, n: usize, tie: &str) -> Order {
    Order {
        order_id: format!("{restaurant}-o{n:03}{tie}"),
        restaurant_id: restaurant.into(),
        customer_id: format!("c-{}", n % 3),
        created_at: format!("2026-11-22T10:{:02}:{:02}.000Z", n / 60, n % 60),
        updated_at: format!("2026-11-22T10:{:02}:{:02}.000Z", n / 60, n % 60),
        ..sample_order()
    }
}

/// Moves a stored order to `status` the way the saga does: a new version, written
/// conditional on the one read.
async fn move_to(store: &DynamoOrderStore, id: &str, status: OrderStatus) {
    let mut o = store.get(id).await.unwrap().unwrap();
    let read = o.version;
    o.version += 1;
    o.saga.status = status;
    store.save(&o, Some(read), &[]).await.unwrap();
}

fn ids(page: &KitchenOrderPage) -> Vec<String> {
    page.items.iter().map(|o| o.order_id.clone()).collect()
}

async fn all_pages(
    index: &DynamoRestaurantOrders,
    restaurant: &str,
    status: Option<OrderStatus>,
    page_size: u32,
) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut token = None;
    for requests in 1..=50 {
        let page = list(index, restaurant, status, page_size, token.as_deref())
            .await
            .unwrap();
        out.extend(ids(&page));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => return (out, requests),
        }
    }
    panic!("the pages never end");
}

#[tokio::test]
async fn the_index_lists_a_restaurants_orders_newest_first_by_status_and_nothing_else() {
    let sdk = emulator().await;
    let table = orders_table(&sdk).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoOrderStore::new(ddb.clone(), table.clone());
    let index = DynamoRestaurantOrders::new(ddb, table);
    for n in 0..7 {
        store.save(&order("r-1", n, ""), None, &[]).await.unwrap();
        store.save(&order("r-2", n, ""), None, &[]).await.unwrap();
    }
    // Two orders of r-1 placed in the same millisecond as r-1-o003.
    store.save(&order("r-1", 3, "a"), None, &[]).await.unwrap();
    store.save(&order("r-1", 3, "b"), None, &[]).await.unwrap();

    // Newest first, across pages of 2, each order once, ties included.
    let (r1, requests) = all_pages(&index, "r-1", None, 2).await;
    assert_eq!(requests, 5);
    let mut want: Vec<String> = [6, 5, 4].iter().map(|n| format!("r-1-o00{n}")).collect();
    let mut tied: Vec<String> = r1[3..6].to_vec();
    tied.sort();
    assert_eq!(tied, ["r-1-o003", "r-1-o003a", "r-1-o003b"]);
    want.extend(r1[3..6].iter().cloned());
    want.extend(["r-1-o002", "r-1-o001", "r-1-o000"].map(String::from));
    assert_eq!(r1, want);
    // The other restaurant's list holds only its own.
    let (r2, _) = all_pages(&index, "r-2", None, 100).await;
    assert_eq!(
        r2,
        (0..7)
            .rev()
            .map(|n| format!("r-2-o00{n}"))
            .collect::<Vec<_>>()
    );
    let (none, _) = all_pages(&index, "r-3", None, 20).await;
    assert!(none.is_empty());

    // Status changes are read fresh from the table, the index untouched by them.
    for id in ["r-1-o006", "r-1-o003a", "r-1-o001", "r-2-o005"] {
        move_to(&store, id, OrderStatus::Paid).await;
    }
    let (paid, _) = all_pages(&index, "r-1", Some(OrderStatus::Paid), 1).await;
    assert_eq!(paid, ["r-1-o006", "r-1-o003a", "r-1-o001"]);
    let first = list(&index, "r-1", Some(OrderStatus::Paid), 20, None)
        .await
        .unwrap();
    assert_eq!(ids(&first), paid);
    assert_eq!(first.items[0].status, OrderStatus::Paid);
    assert!(first.next_page_token.is_none());
    let (pending, _) = all_pages(&index, "r-1", Some(OrderStatus::Pending), 3).await;
    assert_eq!(pending.len(), 6);
    assert!(!pending.iter().any(|id| paid.contains(id)));
    // A token from one restaurant's list is refused on another's.
    let page = list(&index, "r-1", None, 1, None).await.unwrap();
    let token = page.next_page_token.unwrap();
    let refused = list(&index, "r-2", None, 1, Some(&token))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status, refused.field.as_deref()),
        (400, Some("page_token"))
    );
}

#[tokio::test]
async fn a_rare_status_is_found_a_bounded_number_of_orders_at_a_time() {
    let sdk = emulator().await;
    let table = orders_table(&sdk).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoOrderStore::new(ddb.clone(), table.clone());
    let index = DynamoRestaurantOrders::new(ddb, table);
    for n in 0..230 {
        store.save(&order("r-1", n, ""), None, &[]).await.unwrap();
    }
    move_to(&store, "r-1-o000", OrderStatus::Dispatched).await;
    let first = list(&index, "r-1", Some(OrderStatus::Dispatched), 20, None)
        .await
        .unwrap();
    assert!(first.items.is_empty(), "{first:?}");
    assert!(first.next_page_token.is_some(), "200 examined, 30 to go");
    let (found, requests) = all_pages(&index, "r-1", Some(OrderStatus::Dispatched), 20).await;
    assert_eq!((found, requests), (vec!["r-1-o000".to_owned()], 2));
}

#[tokio::test]
async fn the_wired_function_serves_a_managers_restaurant_only() {
    let sdk = emulator().await;
    let table = orders_table(&sdk).await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
    for n in 0..3 {
        store.save(&order("r-1", n, ""), None, &[]).await.unwrap();
        store.save(&order("r-2", n, ""), None, &[]).await.unwrap();
    }
    let env = Env::from_map(HashMap::from([
        ("ORDERS_TABLE".to_owned(), table),
        ("INVENTORY_TABLE".to_owned(), unique("unused")),
        ("NOTIFICATIONS_TABLE".to_owned(), unique("unused")),
        ("IDEMPOTENCY_TABLE".to_owned(), unique("unused")),
    ]));
    let app = order_api::build(&sdk, &env).await.unwrap();
    let route = "/v1/restaurants/{restaurantId}/orders";
    let get = |restaurant: &str, query: &str, sub: &str, roles: &str, manages: Option<&str>| {
        let path = format!("/v1/restaurants/{restaurant}/orders");
        let event = http_event(
            "GET",
            route,
            &path,
            &[("restaurantId", restaurant)],
            query,
            None,
            Some((sub, roles)),
        );
        match manages {
            Some(r) => with_claim(event, "restaurants", r),
            None => event,
        }
    };
    let (status, page) = call(
        &app,
        get("r-1", "page_size=2", "manager-1", "[MANAGER]", Some("r-1")),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let got: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["r-1-o002", "r-1-o001"]);
    assert!(page["items"][0].get("customerId").is_none());
    let token = page["nextPageToken"].as_str().unwrap();
    let (_, rest) = call(
        &app,
        get(
            "r-1",
            &format!("page_size=2&page_token={token}"),
            "manager-1",
            "[MANAGER]",
            Some("r-1"),
        ),
    )
    .await;
    assert_eq!(rest["items"][0]["orderId"], "r-1-o000");
    assert!(rest.get("nextPageToken").is_none(), "{rest}");
    let (status, refused) = call(&app, get("r-1", "", "manager-2", "[MANAGER]", Some("r-2"))).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("FORBIDDEN")));
    let (status, _) = call(&app, get("r-1", "", "c-1", "[CUSTOMER]", None)).await;
    assert_eq!(status, 403);
    let (status, page) = call(
        &app,
        get("r-2", "status=PENDING", "admin-1", "[ADMIN]", None),
    )
    .await;
    assert_eq!(
        (status, page["items"].as_array().map(Vec::len)),
        (200, Some(3))
    );
}
