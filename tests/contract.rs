//! The running stack answers as api/openapi.json says: a walk through every route with
//! the roles it needs, each answer checked against the documented schema, then a short
//! schemathesis run (scripts/contract) against the same stack.

#[path = "openapi/spec.rs"]
mod spec;

use dishpatch_e2e::{order_body, System};
use dishpatch_local::tokens;
use serde_json::{json, Value};

struct Walk<'a> {
    sys: &'a System,
    spec: Value,
    http: reqwest::Client,
}

impl Walk<'_> {
    /// Calls `method path` as `who` and checks the answer against the spec's `route`.
    async fn check(
        &self,
        route: &str,
        path: &str,
        who: Option<(&str, &str)>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (method, template) = route.split_once(' ').unwrap();
        let mut req = self.http.request(
            method.parse().unwrap(),
            format!("{}{path}", self.sys.stack.url()),
        );
        if let Some((sub, role)) = who {
            req = req.bearer_auth(tokens::mint(sub, &[role]).unwrap());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: Value = resp.json().await.expect("JSON answers");
        let schema = spec::response_schema(&self.spec, method, template, status, &content_type)
            .unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        let errors = spec::errors(&self.spec, &schema, &body);
        assert!(errors.is_empty(), "{route} {status}: {body}: {errors:#?}");
        (status, body)
    }
}

#[tokio::test]
async fn every_route_answers_as_documented() {
    let sys = System::start("contract").await;
    let w = Walk {
        sys: &sys,
        spec: spec::spec(),
        http: reqwest::Client::new(),
    };
    let alice = Some(("alice", "CUSTOMER"));
    let manager = Some(("manager-1", "MANAGER"));
    let admin = Some(("admin-1", "ADMIN"));

    w.check("GET /v1/health", "/v1/health", None, None).await;
    let menu = "GET /v1/restaurants/{restaurantId}/menu";
    w.check(menu, "/v1/restaurants/r-1/menu", None, None).await;
    let item = "PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}";
    let edit =
        json!({"name": "Caldo verde", "price": {"amount": 450, "currency": "EUR"}, "stock": 40});
    for (status, who) in [(201, manager), (200, manager), (403, alice), (401, None)] {
        let (got, _) = w
            .check(
                item,
                "/v1/restaurants/r-1/menu/items/m-contract",
                who,
                Some(edit.clone()),
            )
            .await;
        assert_eq!(got, status);
    }

    let place = "POST /v1/orders";
    let body = order_body(json!([{"menuItemId": "m-1", "quantity": 1}]));
    let (status, order) = w.check(place, "/v1/orders", alice, Some(body)).await;
    assert_eq!(status, 201);
    let id = order["orderId"].as_str().unwrap().to_owned();
    w.check(place, "/v1/orders", alice, Some(json!({"items": []})))
        .await;
    w.check("GET /v1/orders", "/v1/orders?page_size=1", alice, None)
        .await;
    w.check("GET /v1/orders", "/v1/orders?page_size=0", alice, None)
        .await;
    let one = "GET /v1/orders/{orderId}";
    w.check(one, &format!("/v1/orders/{id}"), alice, None).await;
    w.check(
        one,
        &format!("/v1/orders/{id}"),
        Some(("bob", "CUSTOMER")),
        None,
    )
    .await;
    let dispatched = sys.wait_for("alice", &id, "DISPATCHED").await;
    let courier = dispatched["courierId"].as_str().unwrap().to_owned();
    let complete = "POST /v1/deliveries/{orderId}/complete";
    let done = format!("/v1/deliveries/{id}/complete");
    let (status, _) = w
        .check(complete, &done, Some((&courier, "COURIER")), None)
        .await;
    assert_eq!(status, 200);
    w.check(complete, &done, alice, None).await;
    sys.wait_for("alice", &id, "DELIVERED").await;
    let courier_me = Some((courier.as_str(), "COURIER"));
    let shift = "PUT /v1/couriers/{courierId}/shift";
    for (on, who, status) in [
        (json!({"onShift": false}), courier_me, 200),
        (json!({"onShift": true}), courier_me, 200),
        (json!({"onShift": "yes"}), courier_me, 400),
        (json!({"onShift": true}), alice, 403),
    ] {
        let (got, _) = w.check(shift, "/v1/couriers/me/shift", who, Some(on)).await;
        assert_eq!(got, status);
    }
    let assignments = "GET /v1/couriers/{courierId}/deliveries";
    let (status, page) = w
        .check(
            assignments,
            "/v1/couriers/me/deliveries?page_size=1",
            courier_me,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["orderId"].as_str(), Some(id.as_str()));
    let (status, _) = w
        .check(
            assignments,
            "/v1/couriers/me/deliveries?page_size=0",
            courier_me,
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = w
        .check(
            "DELETE /v1/orders/{orderId}",
            &format!("/v1/orders/{id}"),
            alice,
            None,
        )
        .await;
    assert_eq!(status, 409);
    let timeline = "GET /v1/orders/{orderId}/timeline";
    w.check(timeline, &format!("/v1/orders/{id}/timeline"), alice, None)
        .await;

    let kitchen = "GET /v1/restaurants/{restaurantId}/orders";
    let (_, page) = w
        .check(
            kitchen,
            "/v1/restaurants/r-1/orders?page_size=1",
            manager,
            None,
        )
        .await;
    assert_eq!(
        page["items"][0]["orderId"].as_str(),
        Some(id.as_str()),
        "{page}"
    );
    w.check(
        kitchen,
        "/v1/restaurants/r-1/orders?status=DELIVERED",
        admin,
        None,
    )
    .await;
    for bad in ["status=delivered", "page_token=x", "page_size=0"] {
        let (status, _) = w
            .check(
                kitchen,
                &format!("/v1/restaurants/r-1/orders?{bad}"),
                manager,
                None,
            )
            .await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = w
        .check(kitchen, "/v1/restaurants/r-1/orders", alice, None)
        .await;
    assert_eq!(status, 403);

    w.check("GET /v1/wallet", "/v1/wallet", alice, None).await;
    w.check("GET /v1/wallet", "/v1/wallet", manager, None).await;
    let top_up = json!({"amount": {"amount": 500, "currency": "EUR"}, "cardToken": "tok_visa"});
    w.check(
        "POST /v1/wallet/top-ups",
        "/v1/wallet/top-ups",
        alice,
        Some(top_up),
    )
    .await;
    let ledger = "GET /v1/wallet/transactions";
    let (_, page) = w
        .check(ledger, "/v1/wallet/transactions?page_size=1", alice, None)
        .await;
    assert!(page["nextPageToken"].is_string(), "{page}");
    w.check(ledger, "/v1/wallet/transactions?page_token=x", alice, None)
        .await;
    let credit = "POST /v1/admin/wallets/{customerId}/credits";
    let grant = json!({"amount": {"amount": 100, "currency": "EUR"}, "reason": "goodwill"});
    let (status, _) = w
        .check(
            credit,
            "/v1/admin/wallets/bob/credits",
            admin,
            Some(grant.clone()),
        )
        .await;
    assert_eq!(status, 201);
    w.check(credit, "/v1/admin/wallets/bob/credits", alice, Some(grant))
        .await;
}

/// The short schemathesis run of scripts/contract, with tokens of this test's issuer.
#[tokio::test]
async fn schemathesis_finds_nothing() {
    let sys = System::start("schemathesis").await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let token = |sub: &str, role: &str| tokens::mint(sub, &[role]).unwrap();
    let status = tokio::process::Command::new(format!("{root}/scripts/contract"))
        .args(["--url", &sys.stack.url()])
        .env("CUSTOMER_TOKEN", token("alice", "CUSTOMER"))
        .env("MANAGER_TOKEN", token("manager-1", "MANAGER"))
        .env("COURIER_TOKEN", token("courier-1", "COURIER"))
        .env("ADMIN_TOKEN", token("admin-1", "ADMIN"))
        .status()
        .await
        .expect("scripts/contract runs");
    assert!(
        status.success(),
        "schemathesis found problems (see its report above)"
    );
}
