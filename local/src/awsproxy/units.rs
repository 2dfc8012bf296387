//! DynamoDB item sizes and request units, computed from the JSON wire form
//! (`{"S": "..."}`, `{"N": "..."}`, ...) the SDK sends and the emulator answers.
//!
//! Sizing follows "DynamoDB item sizes and formats" in the DynamoDB developer guide: an
//! item is the sum of its attribute names (UTF-8 bytes) and values; a string is its UTF-8
//! bytes, a number about 1 byte per two significant digits plus 1, a binary its raw
//! bytes, null and boolean 1 byte, a list or map 3 bytes plus its elements plus 1 byte
//! per element (map entries also carry their names), a set the sum of its elements.

use serde_json::{Map, Value};

/// One write request unit covers 1 KB, one read request unit 4 KB.
pub const WRITE_UNIT_BYTES: u64 = 1024;
pub const READ_UNIT_BYTES: u64 = 4096;

/// Bytes of an item (attribute name -> typed value).
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter()
        .map(|(name, v)| name.len() as u64 + value_size(v))
        .sum()
}

/// Bytes of one typed attribute value, without its name.
pub fn value_size(v: &Value) -> u64 {
    let Some((ty, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    match ty.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, base64_len),
        "BOOL" | "NULL" => 1,
        "SS" => strs(inner).iter().map(|s| s.len() as u64).sum(),
        "NS" => strs(inner).iter().map(|s| number_size(s)).sum(),
        "BS" => strs(inner).iter().map(|s| base64_len(s)).sum(),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |a| a.iter().map(|e| 1 + value_size(e)).sum())
        }
        "M" => {
            3 + inner.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(k, e)| 1 + k.len() as u64 + value_size(e))
                    .sum()
            })
        }
        _ => 0,
    }
}

/// `ceil(significant digits / 2) + 1`: leading and trailing zeros, sign, decimal point
/// and exponent do not count.
pub fn number_size(n: &str) -> u64 {
    let mantissa = n.split(['e', 'E']).next().unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.max(1).div_ceil(2) + 1
}

fn base64_len(s: &str) -> u64 {
    let s = s.trim_end_matches('=');
    (s.len() as u64 * 3) / 4
}

/// Write units of one standard write of an item of `bytes` (at least 1).
pub fn write_units(bytes: u64) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1)
}

/// Read units of reading `bytes` in one unit of account (an item for GetItem, the sum of
/// the items for Query/Scan), strongly consistent; halve for eventually consistent.
pub fn read_units(bytes: u64) -> u64 {
    bytes.div_ceil(READ_UNIT_BYTES).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn scalars_follow_the_documented_sizes() {
        // "pk"(2) + "abc"(3) + "n"(1) + 123.45 (5 digits -> 3 + 1) + "ok"(2) + bool(1)
        let i = item(json!({"pk": {"S": "abc"}, "n": {"N": "123.45"}, "ok": {"BOOL": true}}));
        assert_eq!(item_size(&i), 2 + 3 + 1 + 4 + 2 + 1);
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("-1000"), 2, "trailing zeros are trimmed");
        assert_eq!(number_size("0.0012"), 2, "leading zeros are trimmed");
        assert_eq!(number_size("12345678901234567890"), 11);
        assert_eq!(value_size(&json!({"B": "AAECAw=="})), 4);
        assert_eq!(value_size(&json!({"SS": ["a", "bc"]})), 3);
    }

    #[test]
    fn documents_carry_overhead_per_container_and_element() {
        // Map: 3 + ("a": 1 + 1 + 1) + ("b": 1 + 1 + list(3 + (1 + 2)))
        let v = json!({"M": {"a": {"S": "x"}, "b": {"L": [{"N": "7"}]}}});
        assert_eq!(value_size(&v), 3 + 3 + (1 + 1 + 3 + 1 + 2));
        assert_eq!(value_size(&json!({"L": []})), 3);
    }

    #[test]
    fn units_round_up_with_a_minimum_of_one() {
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(read_units(4096), 1);
        assert_eq!(read_units(4097), 2);
    }
}
