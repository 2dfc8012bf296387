//! The HTTP routes, keyed by the API Gateway route key: the public menu and the
//! manager's item edit.

use crate::menu::Created;
use crate::App;
use dishpatch::error::{Problem, ProblemCode, StoreError};
use dishpatch::http::{body_bytes, caller, json, path_param, route_key, Role};
use dishpatch::menu::MenuItem;
use dishpatch::money::Money;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::Value;

pub const MAX_NAME_CHARS: usize = 100;
/// Also bounded in bytes: 100 characters of 4-byte UTF-8 would be 400.
pub const MAX_NAME_BYTES: usize = 200;
pub const MAX_PRICE: i64 = 10_000_000;
pub const MAX_STOCK: i64 = 100_000;
/// Items per restaurant; it also bounds the public menu, which is read whole.
pub const MAX_ITEMS_PER_RESTAURANT: u32 = 200;
/// A valid item body is well under this.
pub const MAX_BODY_BYTES: usize = 4096;
/// Conditional-write conflicts (stock moving under the edit) retried before a 409.
const SAVE_ATTEMPTS: usize = 4;

pub async fn route(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    match route_key(req).as_str() {
        "GET /v1/restaurants/{restaurantId}/menu" => get_menu(app, req).await,
        "PUT /v1/restaurants/{restaurantId}/menu/items/{menuItemId}" => put_item(app, req).await,
        other => Err(Problem::not_found(&format!("route {other:?}"))),
    }
}

/// What the public sees of an item: no reserved/sold bookkeeping.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    menu_item_id: String,
    name: String,
    price: Money,
    available: i64,
}

impl From<&MenuItem> for ItemView {
    fn from(i: &MenuItem) -> Self {
        ItemView {
            menu_item_id: i.menu_item_id.clone(),
            name: i.name.clone(),
            price: i.price.clone(),
            available: i.available,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MenuView {
    restaurant_id: String,
    items: Vec<ItemView>,
}

/// Public: no caller needed. A restaurant with no items has an empty menu (there is no
/// restaurant record to tell "unknown" from "empty"). At most
/// [`MAX_ITEMS_PER_RESTAURANT`] items, so the menu is one bounded answer, not paginated.
async fn get_menu(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let restaurant_id = path_param(req, "restaurantId")?;
    let mut items = app.menu.list(&restaurant_id).await?;
    items.sort_by(|a, b| a.menu_item_id.cmp(&b.menu_item_id));
    Ok(json(
        200,
        &MenuView {
            restaurant_id,
            items: items.iter().map(ItemView::from).collect(),
        },
    ))
}

/// A validated `PUT .../menu/items/{menuItemId}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemUpdate {
    pub name: String,
    pub price: Money,
    /// The units to make available now.
    pub stock: i64,
}

/// Parses and validates the body; each error names the offending field.
// `Problem` is the API's error type everywhere (shared/ returns it the same way).
#[allow(clippy::result_large_err)]
pub fn parse_item_update(body: &[u8]) -> Result<ItemUpdate, Problem> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::bad_request(
            "body",
            format!("the body must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    let v = dishpatch::http::json_object(body)?;
    let name = match v.get("name").and_then(Value::as_str).map(str::trim) {
        Some(s)
            if !s.is_empty()
                && s.chars().count() <= MAX_NAME_CHARS
                && s.len() <= MAX_NAME_BYTES
                && !s.chars().any(char::is_control) =>
        {
            s.to_owned()
        }
        _ => {
            return Err(Problem::bad_request(
                "name",
                format!(
                    "name must be 1..={MAX_NAME_CHARS} characters, at most {MAX_NAME_BYTES} \
                     bytes of UTF-8, without control characters"
                ),
            ))
        }
    };
    // A free item would let any order of it through without payment.
    let price = dishpatch::validation::money_field(&v, "price", 1, MAX_PRICE)?;
    let stock = integer_in(&v["stock"], 0, MAX_STOCK).ok_or_else(|| {
        Problem::bad_request("stock", format!("must be an integer 0..={MAX_STOCK}"))
    })?;
    Ok(ItemUpdate { name, price, stock })
}

fn integer_in(v: &Value, min: i64, max: i64) -> Option<i64> {
    v.as_i64().filter(|x| (min..=max).contains(x))
}

/// The item after the edit. `stock` sets `available`; `stocked` moves by the same
/// difference, so `available + reserved + sold == stocked` still holds and the units
/// held for orders (reserved) or sold are untouched.
pub fn edited(
    read: Option<&MenuItem>,
    restaurant_id: &str,
    menu_item_id: &str,
    u: &ItemUpdate,
) -> Option<MenuItem> {
    let (reserved, sold, stocked) = match read {
        None => (0, 0, u.stock),
        Some(was) => (
            was.reserved,
            was.sold,
            was.stocked
                .checked_add(u.stock.checked_sub(was.available)?)?,
        ),
    };
    Some(MenuItem {
        restaurant_id: restaurant_id.to_owned(),
        menu_item_id: menu_item_id.to_owned(),
        name: u.name.clone(),
        price: u.price.clone(),
        available: u.stock,
        reserved,
        sold,
        stocked,
    })
}

/// A MANAGER of this restaurant (claim, see `dishpatch::http::caller`) or ADMIN. The
/// caller is checked before the body, so a refused caller learns nothing of validation.
async fn put_item(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let who = caller(req)?;
    who.require(&[Role::Manager])?;
    let restaurant_id = path_param(req, "restaurantId")?;
    let menu_item_id = path_param(req, "menuItemId")?;
    who.require_manager_of(&restaurant_id)?;
    let update = parse_item_update(body_bytes(req))?;
    for _ in 0..SAVE_ATTEMPTS {
        let read = app.menu.get(&restaurant_id, &menu_item_id).await?;
        let next = edited(read.as_ref(), &restaurant_id, &menu_item_id, &update).ok_or_else(|| {
            tracing::error!(restaurant_id = %restaurant_id, menu_item_id = %menu_item_id, "stock counters overflow");
            Problem::internal()
        })?;
        let saved = match &read {
            None => app.menu.create(&next, MAX_ITEMS_PER_RESTAURANT).await,
            Some(was) => app.menu.save(&next, was).await.map(|()| Created::Created),
        };
        match saved {
            Ok(Created::Created) => {
                tracing::info!(
                    restaurant_id = %restaurant_id, menu_item_id = %menu_item_id,
                    available = next.available, stocked = next.stocked, created = read.is_none(),
                    "menu item saved"
                );
                let status = if read.is_none() { 201 } else { 200 };
                return Ok(json(status, &ItemView::from(&next)));
            }
            Ok(Created::MenuFull) => {
                return Err(Problem::conflict(
                    ProblemCode::MenuFull,
                    format!(
                        "a restaurant has at most {MAX_ITEMS_PER_RESTAURANT} menu items; edit one instead"
                    ),
                ))
            }
            // Stock moved (or the item appeared) since the read: edit the fresh values.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Problem::conflict(
        ProblemCode::ConcurrentUpdate,
        "the item kept changing; retry",
    ))
}
