//! The HTTP routes, keyed by the API Gateway route key.

use crate::couriers::{Courier, CourierStatus, OffShift};
use crate::deliveries::{Delivery, DeliveryStatus};
use crate::App;
use dishpatch::envelope::{data, Envelope, MessageType};
use dishpatch::error::{Problem, ProblemCode, StoreError};
use dishpatch::http::{
    body_bytes, caller, json, json_object, page_size, page_token, path_param, route_key, too_large,
    Caller, Role, MAX_BODY_BYTES,
};
use dishpatch::order::Address;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// A courier's deliveries per page: by default, and at most.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;
/// The path segment that names the calling courier.
pub const ME: &str = "me";

/// Re-reads of a delivery that changed under us before answering 409.
const ATTEMPTS: usize = 3;

pub async fn route(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    match route_key(req).as_str() {
        "POST /v1/deliveries/{orderId}/complete" => complete(app, req).await,
        "PUT /v1/couriers/{courierId}/shift" => shift(app, req).await,
        "GET /v1/couriers/{courierId}/deliveries" => assignments(app, req).await,
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Completed {
    order_id: String,
    courier_id: String,
    status: &'static str,
}

/// The delivery if the caller may act on it: its courier, or an admin acting for that
/// courier. Anyone else's delivery is indistinguishable from none.
fn assigned_courier(who: &Caller, delivery: Option<&Delivery>) -> Option<String> {
    let courier_id = delivery?.courier_id.as_ref()?;
    (*courier_id == who.sub || who.roles.contains(&Role::Admin)).then(|| courier_id.clone())
}

async fn complete(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    who.require(&[Role::Courier])?;
    let order_id = path_param(req, "orderId")?;
    // The order's trace, stored at dispatch: the completion, its writes and the fact it
    // publishes (and so the saga's DELIVERED leg) continue it instead of the request's.
    let traceparent = app
        .deliveries
        .get(&order_id)
        .await?
        .and_then(|d| d.traceparent);
    continuing_order(
        &order_id,
        traceparent.as_deref(),
        complete_as(app, &who, order_id.clone()),
    )
    .await
}

/// Runs `work` in a span of the order's own trace (`traceparent`), when there is one.
async fn continuing_order<F: std::future::Future>(
    order_id: &str,
    traceparent: Option<&str>,
    work: F,
) -> F::Output {
    use dishpatch_sdk::trace::{self, TraceContext};
    use tracing::Instrument;
    let Some(parent) = traceparent.and_then(TraceContext::from_traceparent) else {
        return work.await;
    };
    let span = tracing::error_span!("order", orderId = order_id, traceId = tracing::field::Empty);
    let ctx = trace::start(&span, Some(parent));
    trace::scope(ctx, work.instrument(span)).await
}

async fn complete_as(app: &App, who: &Caller, order_id: String) -> Result<Response<Body>, Problem> {
    for _ in 0..ATTEMPTS {
        let delivery = app.deliveries.get(&order_id).await?;
        let courier_id = assigned_courier(who, delivery.as_ref())
            .ok_or_else(|| Problem::not_found("delivery"))?;
        match delivery.map(|d| d.status) {
            Some(DeliveryStatus::Dispatched) => {
                match app
                    .deliveries
                    .finish(&order_id, &courier_id, DeliveryStatus::Delivered)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(orderId = %order_id, courier_id = %courier_id, "delivery completed");
                        crate::handlers::hand_off(app, &courier_id).await;
                    }
                    // Cancelled or completed meanwhile: answer from the fresh state.
                    Ok(false) | Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // A retry: the write is done, the fact may not have been published.
            Some(DeliveryStatus::Delivered) => {}
            Some(DeliveryStatus::Cancelled) => {
                return Err(Problem::conflict(
                    ProblemCode::DeliveryCancelled,
                    "the order was cancelled; do not deliver it",
                ))
            }
            Some(DeliveryStatus::Unavailable | DeliveryStatus::Waiting) | None => {
                return Err(Problem::not_found("delivery"))
            }
        }
        // Made in the order's trace (see `complete`), so it carries that traceparent.
        let fact = Envelope::new(
            MessageType::DeliveryCompleted,
            &order_id,
            data::Courier {
                courier_id: courier_id.clone(),
            },
        );
        if let Err(e) = app.outlets.publisher.publish(&fact).await {
            tracing::error!(orderId = %order_id, error = %e, "DeliveryCompleted not published; a retry re-publishes it");
            return Err(Problem::unavailable());
        }
        return Ok(json(
            200,
            &Completed {
                order_id,
                courier_id,
                status: DeliveryStatus::Delivered.as_str(),
            },
        ));
    }
    Err(Problem::conflict(
        ProblemCode::ConcurrentUpdate,
        "the delivery is changing; retry",
    ))
}

/// The courier a shift or list route acts for: `me` (or their own id) for a COURIER, any
/// courier for an ADMIN. Another courier's record is indistinguishable from none.
fn acting_for(req: &Request) -> Result<String, Problem> {
    let who = caller(req)?;
    let named = path_param(req, "courierId")?;
    let is_courier = who.roles.contains(&Role::Courier);
    let is_admin = who.roles.contains(&Role::Admin);
    if !is_courier && !is_admin {
        return Err(Problem::forbidden(
            "only couriers and admins act on couriers",
        ));
    }
    if named == ME || named == who.sub {
        if !is_courier {
            return Err(Problem::forbidden("you are not a courier"));
        }
        if !dishpatch::validation::is_valid_id(&who.sub) {
            return Err(Problem::forbidden("your identity is not a courier id"));
        }
        return Ok(who.sub);
    }
    if is_admin {
        Ok(named)
    } else {
        Err(Problem::not_found("courier"))
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftView {
    courier_id: String,
    on_shift: bool,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    active_order_id: Option<String>,
}

impl ShiftView {
    /// What the route answers for `courier_id` as stored (`None`: no record, off shift).
    pub fn of(courier_id: &str, c: Option<&Courier>) -> Self {
        let status = c.map_or(CourierStatus::OffShift, |c| c.status);
        ShiftView {
            courier_id: courier_id.to_owned(),
            on_shift: status.on_shift(),
            status: status.as_str(),
            active_order_id: c.and_then(|c| c.active_order_id.clone()),
        }
    }
}

/// The body of a shift change: `{"onShift": true|false}`, nothing else.
pub fn parse_shift(bytes: &[u8]) -> Result<bool, Problem> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large(bytes.len()));
    }
    let body = json_object(bytes)?;
    let obj = body.as_object().expect("an object");
    if let Some(extra) = obj.keys().find(|k| *k != "onShift") {
        return Err(Problem::bad_request(extra, "unknown field"));
    }
    obj.get("onShift")
        .and_then(|v| v.as_bool())
        .ok_or_else(|| Problem::bad_request("onShift", "must be true or false"))
}

/// `PUT /v1/couriers/{courierId}/shift` `{"onShift": bool}`. On shift: listed as free
/// (the record is created on a courier's first shift) and handed the oldest waiting
/// order at once. Off shift: never dispatched; refused while on a delivery. Idempotent.
async fn shift(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let courier_id = acting_for(req)?;
    let view = if parse_shift(body_bytes(req))? {
        let c = app.couriers.go_on_shift(&courier_id).await?;
        if c.status == CourierStatus::Available {
            crate::handlers::hand_off(app, &courier_id).await;
            // Answer with the state after the hand-off (BUSY if it took an order).
            let now = app.couriers.courier(&courier_id).await?;
            ShiftView::of(&courier_id, now.as_ref().or(Some(&c)))
        } else {
            ShiftView::of(&courier_id, Some(&c))
        }
    } else {
        match app.couriers.go_off_shift(&courier_id).await? {
            OffShift::Done(c) => ShiftView::of(&courier_id, c.as_ref()),
            OffShift::OnDelivery(c) => {
                return Err(Problem::conflict(
                    ProblemCode::CourierOnDelivery,
                    format!(
                        "courier {courier_id} is on delivery {}: complete it first",
                        c.active_order_id.unwrap_or_default()
                    ),
                ))
            }
        }
    };
    tracing::info!(courier_id = %courier_id, status = view.status, "shift");
    Ok(json(200, &view))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentView {
    order_id: String,
    status: &'static str,
    restaurant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dispatched_at: Option<String>,
    updated_at: String,
}

impl From<Delivery> for AssignmentView {
    fn from(d: Delivery) -> Self {
        AssignmentView {
            order_id: d.order_id,
            status: d.status.as_str(),
            restaurant_id: d.restaurant_id,
            delivery_address: d.delivery_address,
            dispatched_at: d.dispatched_at.or(Some(d.created_at)),
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentsView {
    items: Vec<AssignmentView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// `GET /v1/couriers/{courierId}/deliveries?page_size=&page_token=`: the courier's
/// deliveries, the active one first (on the first page), then the rest newest first.
async fn assignments(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let courier_id = acting_for(req)?;
    let page_size = page_size(req, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let token = page_token(req, |t| crate::deliveries::decode_cursor(t).is_some())?;
    let page = app
        .deliveries
        .for_courier(&courier_id, page_size, token.as_deref())
        .await?;
    // At most one delivery is active (invariant 4): on the first page it leads, and it
    // is left out of every page where the index lists it.
    let active = match &token {
        None => match app.couriers.courier(&courier_id).await? {
            Some(Courier {
                active_order_id: Some(order_id),
                ..
            }) => app
                .deliveries
                .get(&order_id)
                .await?
                .filter(|d| d.is_active() && d.courier_id.as_deref() == Some(&courier_id)),
            _ => None,
        },
        Some(_) => None,
    };
    let mut items: Vec<AssignmentView> = Vec::new();
    let active_id = active.as_ref().map(|d| d.order_id.clone());
    items.extend(active.map(AssignmentView::from));
    items.extend(
        page.deliveries
            .into_iter()
            .filter(|d| {
                !(d.is_active() && token.is_none() && Some(&d.order_id) == active_id.as_ref())
            })
            .filter(|d| !(d.is_active() && token.is_some()))
            .map(AssignmentView::from),
    );
    Ok(json(
        200,
        &AssignmentsView {
            items,
            next_page_token: page.next_token,
        },
    ))
}
