//! A list read a page at a time: one page of a Query, the table's items a keys-only
//! index page names (in the index's order), and the opaque token a client holds between
//! pages.
//!
//! A token carries a cursor: where its list resumes and, where a caller could hand it to
//! another list, which list it belongs to (a restaurant and its filter, a customer). The
//! list that decodes it checks that it is its own; a token that is not is no token.

use super::{batch_get_consistent, classify, s, Item};
use crate::error::StoreError;
use serde::{de::DeserializeOwned, Serialize};

/// One page of a Query: its items and, when there may be more, the key to start after.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryPage {
    pub items: Vec<Item>,
    pub last: Option<Item>,
}

/// Runs `query` once, from just after `after` when given.
pub async fn query_page(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    after: Option<Item>,
) -> Result<QueryPage, StoreError> {
    let out = query
        .set_exclusive_start_key(after)
        .send()
        .await
        .map_err(classify)?;
    Ok(QueryPage {
        items: out.items.unwrap_or_default(),
        last: out.last_evaluated_key,
    })
}

/// The table's items that a page of a keys-only index names, read strongly consistent
/// and put back in the index's order; an item gone since the query is left out. The
/// index holds keys only so that an item's updates never write it.
pub async fn read_in_order(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    index_items: Vec<Item>,
) -> Result<Vec<Item>, StoreError> {
    let keys: Vec<Item> = index_items.into_iter().map(table_key).collect();
    let found = batch_get_consistent(client, table, keys.clone()).await?;
    Ok(in_order(&keys, found))
}

/// An index item's table key (`pk`, `sk`), without the index's own keys.
fn table_key(item: Item) -> Item {
    item.into_iter()
        .filter(|(k, _)| k == "pk" || k == "sk")
        .collect()
}

/// `found` in the order of `keys`, each item once; a key with no item is skipped. Every
/// table here is keyed by string `pk` and `sk`.
fn in_order(keys: &[Item], found: Vec<Item>) -> Vec<Item> {
    let id = |i: &Item| {
        (
            text(i, "pk").map(str::to_owned),
            text(i, "sk").map(str::to_owned),
        )
    };
    let mut by_key: std::collections::HashMap<_, Item> =
        found.into_iter().map(|i| (id(&i), i)).collect();
    keys.iter().filter_map(|k| by_key.remove(&id(k))).collect()
}

/// A key (or start key) of string attributes.
pub fn string_key<'a>(attributes: impl IntoIterator<Item = (&'a str, String)>) -> Item {
    attributes
        .into_iter()
        .map(|(name, value)| (name.to_owned(), s(value)))
        .collect()
}

/// A string attribute of `item`, if it has one by that name.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// The page token of a cursor: URL-safe base64 (no padding) of its JSON.
pub fn encode_token<C: Serialize>(cursor: &C) -> String {
    encode_text_token(&serde_json::to_string(cursor).expect("cursors serialize"))
}

/// The cursor a page token carries, if it is one: at most `max_len` characters, and a
/// `C`. Whether it is this list's is for the list to check.
pub fn decode_token<C: DeserializeOwned>(token: &str, max_len: usize) -> Option<C> {
    serde_json::from_str(&decode_text_token(token, max_len)?).ok()
}

/// The page token of a cursor that is a plain position (a sort key): its URL-safe base64.
pub fn encode_text_token(position: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position)
}

/// The position a page token of [`encode_text_token`] carries, if it is one: not empty,
/// at most `max_len` characters, and text.
pub fn decode_text_token(token: &str, max_len: usize) -> Option<String> {
    use base64::Engine;
    if token.is_empty() || token.len() > max_len {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Cursor {
        list: String,
        at: String,
    }

    #[test]
    fn a_token_carries_its_cursor_and_nothing_else_is_one() {
        let c = Cursor {
            list: "r-1".into(),
            at: "2026-12-06T08:00:00.000Z#o-1".into(),
        };
        let token = encode_token(&c);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(decode_token::<Cursor>(&token, 512), Some(c));
        assert_eq!(
            decode_token::<Cursor>(&token, token.len() - 1),
            None,
            "too long"
        );
        for bad in ["", "%%%", &encode_text_token("{}"), &encode_text_token("x")] {
            assert_eq!(decode_token::<Cursor>(bad, 512), None, "{bad}");
        }
        // The list that decodes a token checks it is its own.
        let own = |t: &str| decode_token::<Cursor>(t, 512).filter(|c| c.list == "r-2");
        assert_eq!(own(&token), None);
    }

    #[test]
    fn a_text_token_carries_its_position() {
        let sk = "TX#2026-12-06T08:00:00.000Z#capture:o-1";
        assert_eq!(
            decode_text_token(&encode_text_token(sk), 400).as_deref(),
            Some(sk)
        );
        assert_eq!(decode_text_token("", 400), None);
        assert_eq!(decode_text_token("%%%", 400), None);
        assert_eq!(decode_text_token(&"A".repeat(401), 400), None);
        // Base64 of bytes that are not text.
        assert_eq!(decode_text_token("_w", 400), None);
    }

    #[test]
    fn items_come_back_in_the_index_order_and_missing_ones_are_left_out() {
        let index: Vec<Item> = ["o-3", "o-1", "o-2"]
            .map(|o| {
                let mut i = string_key([("pk", format!("ORDER#{o}")), ("sk", "ORDER".into())]);
                i.insert("gsi".into(), s("index key"));
                i
            })
            .to_vec();
        let keys: Vec<Item> = index.into_iter().map(table_key).collect();
        assert!(keys.iter().all(|k| k.len() == 2), "the table's keys only");
        let stored = |o: &str| {
            let mut i = string_key([("pk", format!("ORDER#{o}")), ("sk", "ORDER".into())]);
            i.insert("status".into(), s("PAID"));
            i
        };
        // Read back in another order, o-1 gone since.
        let found = vec![stored("o-2"), stored("o-3")];
        let pks: Vec<String> = in_order(&keys, found)
            .iter()
            .map(|i| text(i, "pk").unwrap().to_owned())
            .collect();
        assert_eq!(pks, ["ORDER#o-3", "ORDER#o-2"]);
    }
}
