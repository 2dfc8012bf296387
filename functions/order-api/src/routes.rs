//! The HTTP routes, keyed by the API Gateway route key.

use crate::App;
use dishpatch::envelope::now;
use dishpatch::error::{Problem, ProblemCode, StoreError};
use dishpatch::http::{body_bytes, caller, json, path_param, query, route_key, Caller, Role};
use dishpatch::idempotency::http::idempotency_key;
use dishpatch::orchestration::advance;
use dishpatch::order::{Order, OrderView};
use dishpatch::saga::{self, SagaEvent};
use dishpatch::transition::{self, Applied, Cause};
use dishpatch::validation::{parse_place_order, ValidOrderRequest};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// `POST /v1/orders` idempotency records are `order-api.place_order#{hash}`.
pub const PLACE_ORDER_OPERATION: &str = "place_order";
pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;
/// Conditional-write conflicts worth re-reading and retrying before answering 409.
const CANCEL_ATTEMPTS: usize = 3;

pub async fn route(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    match route_key(req).as_str() {
        "GET /v1/health" => Ok(json(200, &serde_json::json!({"status": "ok"}))),
        "POST /v1/orders" => place_order(app, req).await,
        "GET /v1/orders" => list_orders(app, req).await,
        "GET /v1/orders/{orderId}" => get_order(app, req).await,
        "DELETE /v1/orders/{orderId}" => cancel_order(app, req).await,
        "GET /v1/orders/{orderId}/timeline" => timeline(app, req).await,
        "GET /v1/restaurants/{restaurantId}/orders" => restaurant_orders(app, req).await,
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

/// `POST /v1/orders`. With an `Idempotency-Key` header the same key and body (from the
/// same caller) answer with the first response, status and `Location` included, without
/// placing another order; the key with another body is `422 IDEMPOTENCY_KEY_REUSED`; a
/// duplicate while the first is running is `409 REQUEST_IN_PROGRESS` + `Retry-After`.
/// Only a placed order (`201`) is kept; a refused request releases the key. The body is
/// validated before the key is claimed, so an invalid request costs no write.
async fn place_order(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    who.require(&[Role::Customer])?;
    let key = idempotency_key(req)?;
    let valid = parse_place_order(body_bytes(req))?;
    let Some(key) = key else {
        return create_order(app, who.sub, None, valid).await;
    };
    // Hashed as canonical JSON: key order and whitespace do not make another body.
    let payload: serde_json::Value = serde_json::from_slice(body_bytes(req))
        .map_err(|e| Problem::bad_request("body", format!("invalid JSON body: {e}")))?;
    let customer = who.sub;
    dishpatch::idempotency::http::respond(
        &app.idempotency.for_operation(PLACE_ORDER_OPERATION),
        req,
        &[&customer, &key],
        &payload,
        || create_order(app, customer.clone(), Some(&key), valid),
    )
    .await
}

/// Names order ids made from an `Idempotency-Key` (a fixed, random namespace).
const ORDER_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5d1c_7a0e_93b4_4f62_a8e1_2c6f_0b9d_4e37);

/// The id of the order a request places. With an `Idempotency-Key` it is derived from
/// the caller and the key, so a re-run of a request whose first run was cut off after
/// its write (a timeout, a crash) meets that write instead of placing a second order.
pub fn order_id_for(customer_id: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => dishpatch::keys::derived_id(ORDER_ID_NAMESPACE, &[customer_id, k]),
        None => uuid::Uuid::new_v4().to_string(),
    }
}

/// Whether `stored` is what this request places: same caller and same content. Prices
/// and times may differ between two runs; what the client asked for may not.
fn same_request(stored: &Order, customer_id: &str, req: &ValidOrderRequest) -> bool {
    stored.customer_id == customer_id
        && stored.restaurant_id == req.restaurant_id
        && stored.item_quantities() == req.items
        && stored.delivery_address == req.delivery_address
        && stored.payment_method == req.payment_method
        && stored.card_token == req.card_token
}

/// The order an earlier run of this request placed under its derived id, if any.
async fn placed_before(
    app: &App,
    order_id: &str,
    customer_id: &str,
    req: &ValidOrderRequest,
) -> Result<Option<Order>, Problem> {
    Ok(app
        .orders
        .get(order_id)
        .await?
        .filter(|stored| same_request(stored, customer_id, req)))
}

fn placed(order: &Order) -> Response<Body> {
    let mut resp = json(201, &OrderView::from(order));
    resp.headers_mut().insert(
        "location",
        format!("/v1/orders/{}", order.order_id)
            .parse()
            .expect("ids are header-safe"),
    );
    resp
}

async fn create_order(
    app: &App,
    customer_id: String,
    key: Option<&str>,
    valid: ValidOrderRequest,
) -> Result<Response<Body>, Problem> {
    let order_id = order_id_for(&customer_id, key);
    let ids: Vec<String> = valid.items.iter().map(|i| i.menu_item_id.clone()).collect();
    let menu = app.menu.items(&valid.restaurant_id, &ids).await?;
    let priced = match dishpatch::pricing::price(&valid.items, &menu) {
        Ok(p) => p,
        // The menu may have changed since an earlier run placed this request's order:
        // that order still stands and is the answer.
        Err(problem) => {
            if key.is_some() {
                if let Some(stored) = placed_before(app, &order_id, &customer_id, &valid).await? {
                    return Ok(placed(&stored));
                }
            }
            return Err(problem);
        }
    };
    let at = now();
    let start = saga::start();
    let draft = Order {
        order_id,
        customer_id,
        restaurant_id: valid.restaurant_id.clone(),
        items: priced.lines,
        total: priced.total,
        delivery_address: valid.delivery_address.clone(),
        payment_method: valid.payment_method,
        card_token: valid.card_token.clone(),
        created_at: at.clone(),
        updated_at: at.clone(),
        version: 0,
        saga: start.state.clone(),
        timeline: vec![],
        deadline: None,
    };
    let (order, outbox) = advance(&draft, &start, "PlaceOrder", None, &at, &app.timings);
    let Err(e) = app.orders.save(&order, None, &outbox).await else {
        transition::metrics::placed(&order);
        tracing::info!(orderId = %order.order_id, total = order.total.amount, "order placed");
        return Ok(placed(&order));
    };
    // The id is new or derived from this caller's key, so a conflict on its first write
    // is an earlier run of this request: one whose answer was lost (the SDK retried an
    // applied write) or which was cut off after writing. That order exists and runs, so
    // it is the answer; a 409 would have the client place it again. The same key with
    // another request is a reused key.
    let StoreError::Conflict(_) = e else {
        return Err(e.into());
    };
    match app.orders.get(&order.order_id).await? {
        Some(stored) if same_request(&stored, &order.customer_id, &valid) => {
            tracing::warn!(orderId = %order.order_id, "order already written by an earlier run of this request; placed");
            Ok(placed(&stored))
        }
        Some(stored) if key.is_some() && stored.customer_id == order.customer_id => {
            Err(dishpatch::idempotency::http::key_reused_problem())
        }
        _ => Err(e.into()),
    }
}

/// Loads an order the caller may see; another customer's order is indistinguishable from none.
async fn visible_order(app: &App, who: &Caller, order_id: &str) -> Result<Order, Problem> {
    match app.orders.get(order_id).await? {
        Some(o) if visible(who, &o) => Ok(o),
        _ => Err(Problem::not_found("order")),
    }
}

fn visible(who: &Caller, order: &Order) -> bool {
    order.customer_id == who.sub || who.has(Role::Admin)
}

async fn get_order(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    let order = visible_order(app, &who, &path_param(req, "orderId")?).await?;
    Ok(json(200, &OrderView::from(&order)))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderList {
    items: Vec<OrderView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_orders(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    who.require(&[Role::Customer])?;
    let page_size = dishpatch::http::page_size(req, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let token = query(req, "page_token");
    let page = app
        .orders
        .list_for_customer(&who.sub, page_size, token.as_deref())
        .await
        .map_err(|e| match e {
            StoreError::Corrupt(_) if token.is_some() => {
                Problem::bad_request("page_token", "page_token is not valid for this list")
            }
            other => other.into(),
        })?;
    Ok(json(
        200,
        &OrderList {
            items: page.orders.iter().map(OrderView::from).collect(),
            next_page_token: page.next_token,
        },
    ))
}

/// `GET /v1/restaurants/{restaurantId}/orders?status=&page_size=&page_token=`: a MANAGER
/// of the restaurant (or ADMIN) reads its orders, newest first; another restaurant's are
/// `403`, as for its menu.
async fn restaurant_orders(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    let restaurant_id = path_param(req, "restaurantId")?;
    who.require_manager_of(&restaurant_id)?;
    let page_size = dishpatch::http::page_size(req, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let status = crate::restaurant_orders::parse_status(query(req, "status").as_deref())?;
    let page = crate::restaurant_orders::list(
        &*app.restaurant_orders,
        &restaurant_id,
        status,
        page_size,
        query(req, "page_token").as_deref(),
    )
    .await?;
    Ok(json(200, &page))
}

async fn cancel_order(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    let order_id = path_param(req, "orderId")?;
    let cancel = SagaEvent::CancelRequested {
        reason: "CUSTOMER_CANCELLED".into(),
    };
    let decide = |order: &Order| visible(&who, order).then(|| cancel.clone()).ok_or(());
    let cause = Cause {
        name: "CancelRequested",
        message: None,
    };
    let applied = transition::apply_with(
        &*app.orders,
        &app.timings,
        &order_id,
        decide,
        cause,
        CANCEL_ATTEMPTS,
    )
    .await?;
    match applied {
        Applied::Moved { to, .. } => {
            tracing::info!(orderId = %order_id, status = to.status().as_str(), "cancel requested");
            Ok(json(202, &OrderView::from(&*to)))
        }
        Applied::Ignored { order, .. } => Ok(json(202, &OrderView::from(&*order))),
        Applied::Refused { error, .. } => Err(Problem::conflict(
            ProblemCode::OrderNotCancellable,
            error.to_string(),
        )),
        // Another customer's order is indistinguishable from none.
        Applied::Declined(()) | Applied::Missing => Err(Problem::not_found("order")),
        Applied::Contended => Err(Problem::conflict(
            ProblemCode::ConcurrentUpdate,
            "the order is changing; retry",
        )),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimelineView {
    order_id: String,
    status: &'static str,
    entries: Vec<TimelineItem>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
enum TimelineItem {
    #[serde(rename = "STATUS")]
    Status {
        at: String,
        status: &'static str,
        cause: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    #[serde(rename = "NOTIFICATION")]
    #[serde(rename_all = "camelCase")]
    Notification {
        at: String,
        event_type: String,
        channel: String,
        message: String,
    },
}

impl TimelineItem {
    fn at(&self) -> &str {
        match self {
            TimelineItem::Status { at, .. } | TimelineItem::Notification { at, .. } => at,
        }
    }
}

async fn timeline(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    let order = visible_order(app, &who, &path_param(req, "orderId")?).await?;
    let mut entries: Vec<TimelineItem> = order
        .timeline
        .iter()
        .map(|t| TimelineItem::Status {
            at: t.at.clone(),
            status: t.status.as_str(),
            cause: t.cause.clone(),
            detail: t.detail.clone(),
        })
        .collect();
    entries.extend(
        app.notifications
            .for_order(&order.order_id)
            .await?
            .into_iter()
            .map(|n| TimelineItem::Notification {
                at: n.sent_at,
                event_type: n.event_type,
                channel: n.channel,
                message: n.message,
            }),
    );
    // RFC 3339 UTC timestamps of one format sort as strings; the sort is stable.
    entries.sort_by(|a, b| a.at().cmp(b.at()));
    Ok(json(
        200,
        &TimelineView {
            order_id: order.order_id.clone(),
            status: order.status().as_str(),
            entries,
        },
    ))
}
