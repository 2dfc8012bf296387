//! Physical names: how the local stack names a template resource under a prefix, and
//! what a provisioned stack tells the checker about its names.
//!
//! Provisioning, the invariant checker and the operator CLI must agree on these names
//! without the latter two depending on the emulator, hence they live here.

use std::collections::BTreeMap;

use crate::Template;

/// Longest name AWS allows per resource kind.
pub const TABLE_NAME_MAX: usize = 255;
pub const QUEUE_NAME_MAX: usize = 80;
pub const TOPIC_NAME_MAX: usize = 256;
pub const FUNCTION_NAME_MAX: usize = 64;

/// `{prefix}-{logical}`, kept within `max` characters (including `suffix`): long names
/// are shortened with a stable hash so two logical ids never collide.
pub fn physical_name(prefix: &str, logical_id: &str, max: usize, suffix: &str) -> String {
    let full = format!("{prefix}-{logical_id}");
    if full.len() + suffix.len() <= max {
        return format!("{full}{suffix}");
    }
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in full.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let tag = format!("-{:08x}", h as u32);
    let keep = max.saturating_sub(tag.len() + suffix.len());
    let mut cut = full[..keep.min(full.len())].to_owned();
    while !cut.is_char_boundary(cut.len()) {
        cut.pop();
    }
    format!("{cut}{tag}{suffix}")
}

/// A topic as provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicName {
    pub name: String,
    pub arn: String,
}

/// A provisioned stack as seen by what only reads it: its prefix, its template and the
/// physical names of its resources. The local stack's `Stack` implements it; the checker
/// takes it, so it needs nothing else of the emulator.
pub trait StackNames {
    /// The prefix every physical name starts with.
    fn prefix(&self) -> &str;
    fn template(&self) -> &Template;
    /// The physical name of a provisioned table, `None` when it was not provisioned.
    fn table_name_of(&self, logical_id: &str) -> Option<String>;
    /// Every provisioned queue: logical id -> URL.
    fn queue_urls(&self) -> BTreeMap<String, String>;
    /// A provisioned topic, `None` when it was not provisioned.
    fn topic_of(&self, logical_id: &str) -> Option<TopicName>;
}

/// A stack shared between tasks is read the same way.
impl<S: StackNames + ?Sized> StackNames for std::sync::Arc<S> {
    fn prefix(&self) -> &str {
        (**self).prefix()
    }

    fn template(&self) -> &Template {
        (**self).template()
    }

    fn table_name_of(&self, logical_id: &str) -> Option<String> {
        (**self).table_name_of(logical_id)
    }

    fn queue_urls(&self) -> BTreeMap<String, String> {
        (**self).queue_urls()
    }

    fn topic_of(&self, logical_id: &str) -> Option<TopicName> {
        (**self).topic_of(logical_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_names_fit_the_limits() {
        assert_eq!(
            physical_name("dishpatch", "SagaQueue", 80, ""),
            "dishpatch-SagaQueue"
        );
        let long = physical_name(
            &"p".repeat(40),
            &"VeryLongLogicalIdentifier".repeat(3),
            80,
            ".fifo",
        );
        assert_eq!(long.len(), 80);
        assert!(long.ends_with(".fifo"));
        let other = physical_name(
            &"p".repeat(40),
            &"VeryLongLogicalIdentifierX".repeat(3),
            80,
            ".fifo",
        );
        assert_ne!(long, other, "hash keeps truncated names distinct");
    }
}
