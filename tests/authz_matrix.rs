//! Who may call what: every route of `template.yaml` × every kind of caller, expected
//! statuses from ONE table ([`MATRIX`]). Each row runs twice on one local stack: against
//! the function's handler, invoked with the event the JWT authorizer would pass (claims as
//! strings), and over HTTP through the gateway with a real token.
//!
//! Adding a route to the template fails [`the_matrix_covers_every_route_and_caller`] until
//! it has a row per caller here (and a request in [`request`]).

use dishpatch_e2e::{order_body, System};
use dishpatch_local::template::Template;
use dishpatch_local::tokens;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// A kind of caller, relative to the fixture: an order of [`Who::Customer`]'s at r-1,
/// dispatched to [`Who::Courier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    /// No token.
    Anonymous,
    /// CUSTOMER, the order's customer (and the wallet's owner).
    Customer,
    /// CUSTOMER, someone else.
    OtherCustomer,
    /// COURIER, the one the order's delivery is assigned to.
    Courier,
    /// COURIER, not assigned to it.
    OtherCourier,
    /// MANAGER of the restaurant in the path (r-1).
    Manager,
    /// MANAGER of another restaurant (r-2).
    OtherManager,
    Admin,
}

use Who::*;

const EVERYONE: [Who; 8] = [
    Anonymous,
    Customer,
    OtherCustomer,
    Courier,
    OtherCourier,
    Manager,
    OtherManager,
    Admin,
];

/// (route key, caller, expected status): one row per route and caller.
#[rustfmt::skip]
const MATRIX: &[(&str, Who, u16)] = &[
    ("GET /v1/health", Anonymous, 200),
    ("GET /v1/health", Customer, 200),
    ("GET /v1/health", OtherCustomer, 200),
    ("GET /v1/health", Courier, 200),
    ("GET /v1/health", OtherCourier, 200),
    ("GET /v1/health", Manager, 200),
    ("GET /v1/health", OtherManager, 200),
    ("GET /v1/health", Admin, 200),
    //
    ("POST /v1/orders", Anonymous, 401),
    ("POST /v1/orders", Customer, 201),
    ("POST /v1/orders", OtherCustomer, 201),
    ("POST /v1/orders", Courier, 403),
    ("POST /v1/orders", OtherCourier, 403),
    ("POST /v1/orders", Manager, 403),
    ("POST /v1/orders", OtherManager, 403),
    ("POST /v1/orders", Admin, 201),
    // Everyone signed in lists their own orders (none, unless they placed some).
    ("GET /v1/orders", Anonymous, 401),
    ("GET /v1/orders", Customer, 200),
    ("GET /v1/orders", OtherCustomer, 200),
    ("GET /v1/orders", Courier, 403),
    ("GET /v1/orders", OtherCourier, 403),
    ("GET /v1/orders", Manager, 403),
    ("GET /v1/orders", OtherManager, 403),
    ("GET /v1/orders", Admin, 200),
    // Another's order is indistinguishable from none.
    ("GET /v1/orders/{orderId}", Anonymous, 401),
    ("GET /v1/orders/{orderId}", Customer, 200),
    ("GET /v1/orders/{orderId}", OtherCustomer, 404),
    ("GET /v1/orders/{orderId}", Courier, 404),
    ("GET /v1/orders/{orderId}", OtherCourier, 404),
    ("GET /v1/orders/{orderId}", Manager, 404),
    ("GET /v1/orders/{orderId}", OtherManager, 404),
    ("GET /v1/orders/{orderId}", Admin, 200),
    //
    ("GET /v1/orders/{orderId}/timeline", Anonymous, 401),
    ("GET /v1/orders/{orderId}/timeline", Customer, 200),
    ("GET /v1/orders/{orderId}/timeline", OtherCustomer, 404),
    ("GET /v1/orders/{orderId}/timeline", Courier, 404),
    ("GET /v1/orders/{orderId}/timeline", OtherCourier, 404),
    ("GET /v1/orders/{orderId}/timeline", Manager, 404),
    ("GET /v1/orders/{orderId}/timeline", OtherManager, 404),
    ("GET /v1/orders/{orderId}/timeline", Admin, 200),
    // The fixture is dispatched: those who may cancel it are told it is too late.
    ("DELETE /v1/orders/{orderId}", Anonymous, 401),
    ("DELETE /v1/orders/{orderId}", Customer, 409),
    ("DELETE /v1/orders/{orderId}", OtherCustomer, 404),
    ("DELETE /v1/orders/{orderId}", Courier, 404),
    ("DELETE /v1/orders/{orderId}", OtherCourier, 404),
    ("DELETE /v1/orders/{orderId}", Manager, 404),
    ("DELETE /v1/orders/{orderId}", OtherManager, 404),
    ("DELETE /v1/orders/{orderId}", Admin, 409),
    //
    ("GET /v1/restaurants/{restaurantId}/menu", Anonymous, 200),
    ("GET /v1/restaurants/{restaurantId}/menu", Customer, 200),
    ("GET /v1/restaurants/{restaurantId}/menu", OtherCustomer, 200),
    ("GET /v1/restaurants/{restaurantId}/menu", Courier, 200),
    ("GET /v1/restaurants/{restaurantId}/menu", OtherCourier, 200),
    ("GET /v1/restaurants/{restaurantId}/menu", Manager, 200),
    ("GET /v1/restaurants/{restaurantId}/menu", OtherManager, 200),
    ("GET /v1/restaurants/{restaurantId}/menu", Admin, 200),
    //
    ("PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}", Anonymous, 401),
    ("PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}", Customer, 403),
    ("PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}", OtherCustomer, 403),
    ("PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}", Courier, 403),
    ("PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}", OtherCourier, 403),
    ("PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}", Manager, 200),
    ("PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}", OtherManager, 403),
    ("PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}", Admin, 200),
    // Another restaurant's orders are refused, as its menu is.
    ("GET /v1/restaurants/{restaurantId}/orders", Anonymous, 401),
    ("GET /v1/restaurants/{restaurantId}/orders", Customer, 403),
    ("GET /v1/restaurants/{restaurantId}/orders", OtherCustomer, 403),
    ("GET /v1/restaurants/{restaurantId}/orders", Courier, 403),
    ("GET /v1/restaurants/{restaurantId}/orders", OtherCourier, 403),
    ("GET /v1/restaurants/{restaurantId}/orders", Manager, 200),
    ("GET /v1/restaurants/{restaurantId}/orders", OtherManager, 403),
    ("GET /v1/restaurants/{restaurantId}/orders", Admin, 200),
    // Each customer's own wallet; Admin has every role.
    ("GET /v1/wallet", Anonymous, 401),
    ("GET /v1/wallet", Customer, 200),
    ("GET /v1/wallet", OtherCustomer, 200),
    ("GET /v1/wallet", Courier, 403),
    ("GET /v1/wallet", OtherCourier, 403),
    ("GET /v1/wallet", Manager, 403),
    ("GET /v1/wallet", OtherManager, 403),
    ("GET /v1/wallet", Admin, 200),
    //
    ("POST /v1/wallet/top-ups", Anonymous, 401),
    ("POST /v1/wallet/top-ups", Customer, 201),
    ("POST /v1/wallet/top-ups", OtherCustomer, 201),
    ("POST /v1/wallet/top-ups", Courier, 403),
    ("POST /v1/wallet/top-ups", OtherCourier, 403),
    ("POST /v1/wallet/top-ups", Manager, 403),
    ("POST /v1/wallet/top-ups", OtherManager, 403),
    ("POST /v1/wallet/top-ups", Admin, 201),
    //
    ("GET /v1/wallet/transactions", Anonymous, 401),
    ("GET /v1/wallet/transactions", Customer, 200),
    ("GET /v1/wallet/transactions", OtherCustomer, 200),
    ("GET /v1/wallet/transactions", Courier, 403),
    ("GET /v1/wallet/transactions", OtherCourier, 403),
    ("GET /v1/wallet/transactions", Manager, 403),
    ("GET /v1/wallet/transactions", OtherManager, 403),
    ("GET /v1/wallet/transactions", Admin, 200),
    //
    ("POST /v1/admin/wallets/{customerId}/credits", Anonymous, 401),
    ("POST /v1/admin/wallets/{customerId}/credits", Customer, 403),
    ("POST /v1/admin/wallets/{customerId}/credits", OtherCustomer, 403),
    ("POST /v1/admin/wallets/{customerId}/credits", Courier, 403),
    ("POST /v1/admin/wallets/{customerId}/credits", OtherCourier, 403),
    ("POST /v1/admin/wallets/{customerId}/credits", Manager, 403),
    ("POST /v1/admin/wallets/{customerId}/credits", OtherManager, 403),
    ("POST /v1/admin/wallets/{customerId}/credits", Admin, 201),
    // Another courier's delivery is indistinguishable from none.
    ("POST /v1/deliveries/{orderId}/complete", Anonymous, 401),
    ("POST /v1/deliveries/{orderId}/complete", Customer, 403),
    ("POST /v1/deliveries/{orderId}/complete", OtherCustomer, 403),
    ("POST /v1/deliveries/{orderId}/complete", Courier, 200),
    ("POST /v1/deliveries/{orderId}/complete", OtherCourier, 404),
    ("POST /v1/deliveries/{orderId}/complete", Manager, 403),
    ("POST /v1/deliveries/{orderId}/complete", OtherManager, 403),
    ("POST /v1/deliveries/{orderId}/complete", Admin, 200),
    // A courier acts on their own record only (another's is not found); an admin for any.
    ("PUT /v1/couriers/{courierId}/shift", Anonymous, 401),
    ("PUT /v1/couriers/{courierId}/shift", Customer, 403),
    ("PUT /v1/couriers/{courierId}/shift", OtherCustomer, 403),
    ("PUT /v1/couriers/{courierId}/shift", Courier, 200),
    ("PUT /v1/couriers/{courierId}/shift", OtherCourier, 404),
    ("PUT /v1/couriers/{courierId}/shift", Manager, 403),
    ("PUT /v1/couriers/{courierId}/shift", OtherManager, 403),
    ("PUT /v1/couriers/{courierId}/shift", Admin, 200),
    //
    ("GET /v1/couriers/{courierId}/deliveries", Anonymous, 401),
    ("GET /v1/couriers/{courierId}/deliveries", Customer, 403),
    ("GET /v1/couriers/{courierId}/deliveries", OtherCustomer, 403),
    ("GET /v1/couriers/{courierId}/deliveries", Courier, 200),
    ("GET /v1/couriers/{courierId}/deliveries", OtherCourier, 404),
    ("GET /v1/couriers/{courierId}/deliveries", Manager, 403),
    ("GET /v1/couriers/{courierId}/deliveries", OtherManager, 403),
    ("GET /v1/couriers/{courierId}/deliveries", Admin, 200),
];

/// What the rows act on.
struct Fixture {
    customer: String,
    order_id: String,
    courier: String,
    other_courier: String,
}

/// The subject and roles of each caller (managers' restaurants come with their tokens:
/// manager-1 manages r-1, manager-2 r-2).
fn identity(who: Who, fx: &Fixture) -> Option<(String, &'static str)> {
    Some(match who {
        Anonymous => return None,
        Customer => (fx.customer.clone(), "CUSTOMER"),
        OtherCustomer => ("bob".into(), "CUSTOMER"),
        Courier => (fx.courier.clone(), "COURIER"),
        OtherCourier => (fx.other_courier.clone(), "COURIER"),
        Manager => ("manager-1".into(), "MANAGER"),
        OtherManager => ("manager-2".into(), "MANAGER"),
        Admin => ("admin-1".into(), "ADMIN"),
    })
}

fn token(who: Who, fx: &Fixture) -> Option<String> {
    identity(who, fx).map(|(sub, role)| tokens::mint(&sub, &[role]).unwrap())
}

/// The path and body a row sends on its route.
fn request(route: &str, who: Who, fx: &Fixture) -> (String, Option<Value>) {
    let money = |amount: i64| json!({"amount": amount, "currency": "EUR"});
    let (path, body) = match route {
        "GET /v1/health" => ("/v1/health".into(), None),
        "POST /v1/orders" => (
            "/v1/orders".into(),
            Some(order_body(json!([{"menuItemId": "m-2", "quantity": 1}]))),
        ),
        "GET /v1/orders" => ("/v1/orders".into(), None),
        "GET /v1/orders/{orderId}" | "DELETE /v1/orders/{orderId}" => {
            (format!("/v1/orders/{}", fx.order_id), None)
        }
        "GET /v1/orders/{orderId}/timeline" => {
            (format!("/v1/orders/{}/timeline", fx.order_id), None)
        }
        "GET /v1/restaurants/{restaurantId}/menu" => ("/v1/restaurants/r-1/menu".into(), None),
        // The name says who sent it: a refused edit must leave no trace.
        "PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}" => (
            "/v1/restaurants/r-1/menu/items/m-3".into(),
            Some(json!({"name": item_name(who), "price": money(150), "stock": 200})),
        ),
        "GET /v1/restaurants/{restaurantId}/orders" => ("/v1/restaurants/r-1/orders".into(), None),
        "GET /v1/wallet" => ("/v1/wallet".into(), None),
        "POST /v1/wallet/top-ups" => (
            "/v1/wallet/top-ups".into(),
            Some(json!({"amount": money(500), "cardToken": "tok_visa"})),
        ),
        "GET /v1/wallet/transactions" => ("/v1/wallet/transactions".into(), None),
        "POST /v1/admin/wallets/{customerId}/credits" => (
            format!("/v1/admin/wallets/{}/credits", fx.customer),
            Some(json!({"amount": money(100), "reason": "authorization matrix"})),
        ),
        "POST /v1/deliveries/{orderId}/complete" => {
            (format!("/v1/deliveries/{}/complete", fx.order_id), None)
        }
        // The assigned courier's own record; staying on shift changes nothing.
        "PUT /v1/couriers/{courierId}/shift" => (
            format!("/v1/couriers/{}/shift", fx.courier),
            Some(json!({"onShift": true})),
        ),
        "GET /v1/couriers/{courierId}/deliveries" => {
            (format!("/v1/couriers/{}/deliveries", fx.courier), None)
        }
        other => panic!("no request for route {other:?}: add one here"),
    };
    (path, body)
}

fn item_name(who: Who) -> String {
    format!("Pastel set by {who:?}")
}

fn template_routes() -> BTreeSet<String> {
    Template::embedded()
        .unwrap()
        .http_routes()
        .into_iter()
        .map(|(_, r)| r.route_key())
        .collect()
}

#[test]
fn the_matrix_covers_every_route_and_caller() {
    let routes = template_routes();
    let mut seen = BTreeSet::new();
    for (route, who, _) in MATRIX {
        assert!(routes.contains(*route), "{route} is not in template.yaml");
        assert!(seen.insert((*route, *who)), "{route} × {who:?} twice");
    }
    for route in &routes {
        for who in EVERYONE {
            assert!(
                seen.contains(&(route.as_str(), who)),
                "no row for {route} × {who:?}"
            );
        }
    }
}

/// The function's answer to the event API Gateway would pass it for this row.
async fn via_handler(sys: &System, route: &str, who: Who, fx: &Fixture) -> (u16, Value) {
    let (function, def) = {
        let template = Template::embedded().unwrap();
        let (f, r) = template
            .http_routes()
            .into_iter()
            .find(|(_, r)| r.route_key() == route)
            .map(|(f, r)| (f.logical_id.clone(), r.clone()))
            .expect("route in the template");
        (f, r)
    };
    let (path, body) = request(route, who, fx);
    let params: Map<String, Value> = def
        .path
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, v)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_owned(), json!(v)))
        })
        .collect();
    let mut context = json!({
        "accountId": "123456789012", "apiId": "local", "domainName": "localhost",
        "http": {"method": def.method, "path": path, "protocol": "HTTP/1.1",
                 "sourceIp": "127.0.0.1", "userAgent": "authz-matrix"},
        "requestId": "authz-matrix", "routeKey": route, "stage": "$default",
        "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0
    });
    if let Some(t) = token(who, fx) {
        let claims = tokens::claims_as_strings(&tokens::verify(&t).unwrap());
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    let mut event = json!({
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": context, "isBase64Encoded": false
    });
    if !params.is_empty() {
        event["pathParameters"] = Value::Object(params);
    }
    if let Some(b) = body {
        event["body"] = json!(b.to_string());
    }
    let resp = sys.stack.invoke(&function, event).await.expect("invoked");
    let body = resp["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (resp["statusCode"].as_u64().unwrap_or(0) as u16, body)
}

async fn via_http(
    http: &reqwest::Client,
    sys: &System,
    route: &str,
    who: Who,
    fx: &Fixture,
) -> (u16, Value) {
    let (method, _) = route.split_once(' ').unwrap();
    let (path, body) = request(route, who, fx);
    let mut req = http.request(
        method.parse().unwrap(),
        format!("{}{path}", sys.stack.url()),
    );
    if let Some(t) = token(who, fx) {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("gateway answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn menu_item_name(sys: &System) -> String {
    let r = sys
        .call("GET", "/v1/restaurants/r-1/menu", None, None)
        .await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["menuItemId"] == "m-3")
        .and_then(|i| i["name"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_matrix_says() {
    let sys = System::start("authz").await;
    let customer = "alice".to_owned();
    let order_id = sys
        .place(&customer, json!([{"menuItemId": "m-1", "quantity": 1}]))
        .await;
    let dispatched = sys.wait_for(&customer, &order_id, "DISPATCHED").await;
    let courier = dispatched["courierId"].as_str().unwrap().to_owned();
    let other_courier = if courier == "courier-1" {
        "courier-2"
    } else {
        "courier-1"
    }
    .to_owned();
    let fx = Fixture {
        customer,
        order_id,
        courier,
        other_courier,
    };
    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    for (how, over_http) in [("handler", false), ("HTTP", true)] {
        for (route, who, expected) in MATRIX {
            let (status, body) = if over_http {
                via_http(&http, &sys, route, *who, &fx).await
            } else {
                via_handler(&sys, route, *who, &fx).await
            };
            if status != *expected {
                wrong.push(format!(
                    "{how}: {route} as {who:?}: {status}, expected {expected}: {body}"
                ));
            }
            // Refusals are problems (the gateway's own 401 excepted), and write nothing.
            if (403..500).contains(&status) && body["code"].as_str().is_none() {
                wrong.push(format!(
                    "{how}: {route} as {who:?}: {status} without a problem code: {body}"
                ));
            }
            if route.starts_with("PUT /v1/restaurants/") && status >= 400 {
                let name = menu_item_name(&sys).await;
                if name == item_name(*who) {
                    wrong.push(format!("{how}: {route} as {who:?} was refused but wrote"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
