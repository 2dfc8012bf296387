//! The HTTP routes, keyed by the API Gateway route key.

use crate::deliveries::{Delivery, DeliveryStatus};
use crate::App;
use dishpatch::envelope::{data, Envelope, MessageType};
use dishpatch::error::{Problem, ProblemCode, StoreError};
use dishpatch::http::{caller, json, path_param, route_key, Caller, Role};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// Re-reads of a delivery that changed under us before answering 409.
const ATTEMPTS: usize = 3;

pub async fn route(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    match route_key(req).as_str() {
        "POST /v1/deliveries/{orderId}/complete" => complete(app, req).await,
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
    for _ in 0..ATTEMPTS {
        let delivery = app.deliveries.get(&order_id).await?;
        let courier_id = assigned_courier(&who, delivery.as_ref())
            .ok_or_else(|| Problem::not_found("delivery"))?;
        match delivery.map(|d| d.status) {
            Some(DeliveryStatus::Dispatched) => {
                match app
                    .deliveries
                    .finish(&order_id, &courier_id, DeliveryStatus::Delivered)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(orderId = %order_id, courier_id = %courier_id, "delivery completed")
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
            Some(DeliveryStatus::Unavailable) | None => return Err(Problem::not_found("delivery")),
        }
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
