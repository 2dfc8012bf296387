//! api/openapi.json says what the code does: its routes are template.yaml's, its bodies
//! are the handlers' types, its problem codes are `ProblemCode`'s, and every status a
//! handler can answer is documented.

#[path = "openapi/spec.rs"]
mod spec;

use dishpatch_core::error::{Problem, ProblemCode};
use dishpatch_core::menu::MenuItem;
use dishpatch_core::money::Money;
use dishpatch_core::order::{Address, LineItem, OrderStatus, OrderView, PaymentMethod};
use dishpatch_local::template::Template;
use order_api::restaurant_orders::{KitchenLine, KitchenOrder, KitchenOrderPage};
use serde_json::{json, Value};
use spec::{assert_same_fields, schema_ref, statuses};
use std::collections::BTreeSet;
use std::path::Path;

fn template() -> Template {
    Template::from_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
        .expect("template.yaml parses")
}

/// `(METHOD, path, needs a token)` of every operation in the spec.
fn spec_routes(spec: &Value) -> BTreeSet<(String, String, bool)> {
    let global = spec["security"].as_array().is_some_and(|s| !s.is_empty());
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let auth = match op.get("security").and_then(Value::as_array) {
                Some(s) => !s.is_empty(),
                None => global,
            };
            out.insert((method.to_uppercase(), path.clone(), auth));
        }
    }
    out
}

#[test]
fn the_spec_has_exactly_the_templates_routes() {
    let t = template();
    let from_template: BTreeSet<(String, String, bool)> = t
        .http_routes()
        .into_iter()
        .map(|(_, r)| {
            (
                r.method.clone(),
                r.path.clone(),
                t.http_api.requires_auth(r),
            )
        })
        .collect();
    let spec = spec::spec();
    let from_spec = spec_routes(&spec);
    assert_eq!(
        from_template.difference(&from_spec).collect::<Vec<_>>(),
        Vec::<&(String, String, bool)>::new(),
        "in template.yaml, not in api/openapi.json (method, path, auth)"
    );
    assert_eq!(
        from_spec.difference(&from_template).collect::<Vec<_>>(),
        Vec::<&(String, String, bool)>::new(),
        "in api/openapi.json, not in template.yaml (method, path, auth)"
    );
}

#[test]
fn the_problem_codes_are_problem_codes() {
    let spec = spec::spec();
    let listed: Vec<&str> = spec["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .expect("ProblemCode is an enum")
        .iter()
        .map(|c| c.as_str().expect("codes are strings"))
        .collect();
    let code: Vec<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, code);
}

/// What each handler can answer, read from its code (besides what every route may:
/// 413 from the runtime's body bound, 429 from API Gateway, 500 and 503). A new route
/// in template.yaml needs a line here.
const HANDLER_STATUSES: &[(&str, &[u16])] = &[
    ("GET /v1/health", &[200]),
    ("POST /v1/orders", &[201, 400, 401, 403, 409, 422]),
    ("GET /v1/orders", &[200, 400, 401, 403]),
    ("GET /v1/orders/{orderId}", &[200, 401, 404]),
    ("DELETE /v1/orders/{orderId}", &[202, 401, 404, 409]),
    ("GET /v1/orders/{orderId}/timeline", &[200, 401, 404]),
    ("GET /v1/restaurants/{restaurantId}/menu", &[200, 404]),
    (
        "GET /v1/restaurants/{restaurantId}/orders",
        &[200, 400, 401, 403, 404],
    ),
    (
        "PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}",
        &[200, 201, 400, 401, 403, 404, 409],
    ),
    ("GET /v1/wallet", &[200, 401, 403]),
    (
        "POST /v1/wallet/top-ups",
        &[201, 400, 401, 402, 403, 409, 422],
    ),
    ("GET /v1/wallet/transactions", &[200, 400, 401, 403]),
    (
        "POST /v1/admin/wallets/{customerId}/credits",
        &[201, 400, 401, 403, 404, 409, 422],
    ),
    (
        "POST /v1/deliveries/{orderId}/complete",
        &[200, 401, 403, 404, 409],
    ),
    (
        "PUT /v1/couriers/{courierId}/shift",
        &[200, 400, 401, 403, 404, 409],
    ),
    (
        "GET /v1/couriers/{courierId}/deliveries",
        &[200, 400, 401, 403, 404],
    ),
];
const EVERY_ROUTE: &[u16] = &[413, 429, 500, 503];

#[test]
fn every_status_a_route_can_answer_is_documented() {
    let t = template();
    let keys: BTreeSet<String> = t.http_routes().iter().map(|(_, r)| r.route_key()).collect();
    let listed: BTreeSet<String> = HANDLER_STATUSES
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(
        keys, listed,
        "HANDLER_STATUSES lists template.yaml's routes"
    );
    let spec = spec::spec();
    for (key, own) in HANDLER_STATUSES {
        let (method, path) = key.split_once(' ').unwrap();
        let (_, route) = t
            .http_routes()
            .into_iter()
            .find(|(_, r)| r.route_key() == *key)
            .unwrap();
        let op = spec::operation(&spec, method, path);
        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .map(|p| p.iter().map(|p| spec::resolve(&spec, p)).collect())
            .unwrap_or_default();
        let has = |place: &str| params.iter().any(|p| p["in"] == place);
        let keyed = params.iter().any(|p| p["name"] == "Idempotency-Key");
        let mut want: BTreeSet<u16> = own.iter().chain(EVERY_ROUTE).copied().collect();
        // What follows from the route's shape, whatever the handler does.
        if t.http_api.requires_auth(route) {
            want.insert(401);
        }
        if has("path") {
            want.insert(404);
        }
        if has("query") || op.get("requestBody").is_some() {
            want.insert(400);
        }
        if keyed {
            want.extend([409, 422]);
        }
        let documented = statuses(&spec, method, path);
        let missing: Vec<&u16> = want.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "{key}: undocumented statuses {missing:?}"
        );
        for status in &documented {
            let resp = spec::resolve(&spec, &op["responses"][status.to_string()]);
            let ct = if *status >= 400 {
                "application/problem+json"
            } else {
                "application/json"
            };
            assert!(
                resp["content"].get(ct).is_some(),
                "{key} {status} documents {ct}"
            );
        }
    }
}

fn money(amount: i64) -> Money {
    Money::new(amount, "EUR")
}

#[test]
fn response_bodies_are_the_handlers_types() {
    let spec = spec::spec();
    let order = OrderView {
        order_id: "o-1".into(),
        customer_id: "alice".into(),
        restaurant_id: "r-1".into(),
        status: OrderStatus::Cancelled,
        items: vec![LineItem {
            menu_item_id: "m-1".into(),
            name: "Bacalhau".into(),
            quantity: 2,
            unit_price: money(1200),
            line_total: money(2400),
        }],
        total: money(2400),
        delivery_address: Address {
            line1: "Rua Augusta 1".into(),
            line2: Some("2 Esq".into()),
            city: "Lisboa".into(),
            postcode: "1100-048".into(),
            country: "PT".into(),
        },
        payment_method: PaymentMethod::Wallet,
        courier_id: Some("courier-1".into()),
        cancel_reason: Some("CUSTOMER_CANCELLED".into()),
        created_at: "2026-01-02T03:04:05.678Z".into(),
        updated_at: "2026-01-02T03:04:06.789Z".into(),
    };
    let item = MenuItem {
        restaurant_id: "r-1".into(),
        menu_item_id: "m-1".into(),
        name: "Bacalhau".into(),
        price: money(1200),
        available: 5,
        reserved: 1,
        sold: 2,
        stocked: 8,
    };
    let top_up = payment::topups::TopUp {
        top_up_id: "t-1".into(),
        customer_id: "alice".into(),
        amount: 2500,
        currency: "EUR".into(),
        status: payment::topups::TopUpStatus::Credited,
        fingerprint: "f".into(),
        card_token: None,
        charge_id: Some("ch_1".into()),
        reason: None,
        created_at: "2026-01-02T03:04:05.678Z".into(),
        updated_at: "2026-01-02T03:04:05.678Z".into(),
    };
    let entry = payment::ledger::LedgerEntry {
        entry_id: "credit:c-1".into(),
        customer_id: "alice".into(),
        kind: payment::ledger::EntryKind::AdminCredit,
        amount: 500,
        currency: "EUR".into(),
        order_id: Some("o-1".into()),
        top_up_id: Some("t-1".into()),
        charge_id: Some("ch_1".into()),
        reason: Some("goodwill".into()),
        actor: Some("admin-1".into()),
        created_at: "2026-01-02T03:04:05.678Z".into(),
    };
    let mut problem = Problem::bad_request("items[0].quantity", "must be 1..=99");
    problem.request_id = Some("req-1".into());
    let kitchen = KitchenOrderPage {
        items: vec![KitchenOrder {
            order_id: "o-1".into(),
            status: OrderStatus::Paid,
            items: vec![KitchenLine {
                menu_item_id: "m-1".into(),
                name: "Bacalhau".into(),
                quantity: 2,
            }],
            total: money(2400),
            placed_at: "2026-01-02T03:04:05.678Z".into(),
            updated_at: "2026-01-02T03:04:06.789Z".into(),
        }],
        next_page_token: Some("eyJyIjoici0xIn0".into()),
    };
    let busy = delivery::Courier {
        courier_id: "courier-1".into(),
        status: delivery::CourierStatus::Busy,
        active_order_id: Some("o-1".into()),
    };
    let assignment = delivery::Delivery {
        order_id: "o-1".into(),
        courier_id: Some("courier-1".into()),
        status: delivery::DeliveryStatus::Dispatched,
        restaurant_id: "r-1".into(),
        delivery_address: Some(Address {
            line1: "Rua Augusta 1".into(),
            line2: Some("2 Esq".into()),
            city: "Lisboa".into(),
            postcode: "1100-048".into(),
            country: "PT".into(),
        }),
        reason: None,
        created_at: "2026-01-02T03:04:05.678Z".into(),
        updated_at: "2026-01-02T03:04:06.789Z".into(),
        dispatched_at: Some("2026-01-02T03:04:05.678Z".into()),
        dispatch_by: Some("2026-01-02T03:14:05.678Z".into()),
        attempt: 1,
        traceparent: None,
    };
    let samples: Vec<(&str, Value)> = vec![
        (
            "Shift",
            json!(delivery::routes::ShiftView::of("courier-1", Some(&busy))),
        ),
        (
            "AssignmentPage",
            json!({
                "items": [json!(delivery::routes::AssignmentView::from(assignment))],
                "nextPageToken": "MjAyNi0wMS0wMlQwMzowNDowNS42NzhaI28tMQ"
            }),
        ),
        ("Order", json!(order)),
        ("KitchenOrderPage", json!(kitchen)),
        ("MenuItem", json!(inventory::routes::ItemView::from(&item))),
        ("TopUp", json!(payment::routes::TopUpView::from(&top_up))),
        (
            "LedgerEntry",
            json!(payment::routes::EntryView::from(entry)),
        ),
        ("Problem", json!(problem)),
    ];
    for (name, value) in samples {
        assert_same_fields(&spec, &schema_ref(name), &value, name);
    }
    for &code in ProblemCode::ALL {
        let p = json!(Problem::new(400, code, "x"));
        assert!(
            spec::errors(&spec, &schema_ref("Problem"), &p).is_empty(),
            "{p}"
        );
    }
}

/// `full` sets every property the spec declares and parses; without any one of them it
/// parses to something else or not at all, so the spec names no field the code ignores.
fn request_is_read_whole<T: PartialEq + std::fmt::Debug>(
    spec: &Value,
    name: &str,
    full: Value,
    parse: impl Fn(&[u8]) -> Result<T, Problem>,
) {
    assert_same_fields(spec, &schema_ref(name), &full, name);
    let parsed = parse(full.to_string().as_bytes());
    assert!(parsed.is_ok(), "{name}: {full} is refused: {parsed:?}");
    for field in full.as_object().unwrap().keys() {
        let mut less = full.clone();
        less.as_object_mut().unwrap().remove(field);
        assert_ne!(
            parse(less.to_string().as_bytes()),
            parsed,
            "{name}.{field} changes nothing"
        );
    }
}

#[test]
fn request_bodies_are_what_the_handlers_parse() {
    let spec = spec::spec();
    let eur = |amount: i64| json!({"amount": amount, "currency": "EUR"});
    request_is_read_whole(
        &spec,
        "PlaceOrderRequest",
        json!({
            "restaurantId": "r-1",
            "items": [{"menuItemId": "m-1", "quantity": 2}],
            "deliveryAddress": {"line1": "Rua Augusta 1", "line2": "2 Esq", "city": "Lisboa",
                                "postcode": "1100-048", "country": "PT"},
            "paymentMethod": "CARD",
            "cardToken": "tok_visa"
        }),
        dishpatch_core::validation::parse_place_order,
    );
    request_is_read_whole(
        &spec,
        "ShiftRequest",
        json!({"onShift": true}),
        delivery::routes::parse_shift,
    );
    request_is_read_whole(
        &spec,
        "MenuItemUpdate",
        json!({"name": "Bacalhau", "price": eur(1200), "stock": 10}),
        inventory::routes::parse_item_update,
    );
    request_is_read_whole(
        &spec,
        "TopUpRequest",
        json!({"amount": eur(2500), "cardToken": "tok_visa"}),
        payment::routes::parse_top_up,
    );
    request_is_read_whole(
        &spec,
        "AdminCreditRequest",
        json!({"amount": eur(500), "reason": "goodwill"}),
        payment::routes::parse_admin_credit,
    );
}
