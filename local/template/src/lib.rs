//! `dishpatch-template`: reads `template.yaml` (SAM) into the topology it describes —
//! tables, topics, queues, subscriptions, queue policies, functions with their events,
//! the HTTP API — and names the resources the way the local stack provisions them.
//!
//! The local stack provisions from it; the invariant checker and the operator CLI read
//! it to find a stack's tables and queues. So it depends on no AWS SDK, no emulator and
//! no function crate: YAML and JSON only.
//!
//! The template uses long-form intrinsics only (`Ref`, `Fn::GetAtt`, `Fn::Sub`, ...),
//! so a plain YAML parser reads it. Values that depend on provisioned resources are
//! kept as raw JSON and resolved later with [`Bindings`].
//!
//! * [`document`]: the [`Template`] as a whole, and lookups by logical id;
//! * [`tables`], [`messaging`], [`functions`], [`http_api`]: each kind of resource;
//! * [`bindings`]: resolving intrinsics against provisioned resources;
//! * [`names`]: physical names under a prefix, and [`StackNames`];
//! * `props`: reading scalars, lists, `Ref` and `Fn::GetAtt` out of the JSON.

pub mod bindings;
pub mod document;
pub mod error;
pub mod functions;
pub mod http_api;
pub mod messaging;
pub mod names;
mod props;
pub mod tables;

pub use bindings::Bindings;
pub use document::Template;
pub use error::TemplateError;
pub use functions::{
    embedded_binaries, rate_interval, EventDef, FunctionDef, ScheduleEventDef, SqsEventDef,
    StreamEventDef,
};
pub use http_api::{CorsDef, HttpApiDef, HttpRouteDef, RouteAuth};
pub use messaging::{
    QueueDef, QueuePolicyDef, RedriveDef, SubscriptionDef, SubscriptionEndpoint, TopicDef,
};
pub use names::{physical_name, StackNames, TopicName};
pub use props::{get_att_target, ref_target};
pub use tables::{AttributeDef, IndexDef, KeyElement, TableDef};

/// The repository's `template.yaml`, embedded at build time so the binary works from any
/// directory and always matches the code it was built with.
pub const EMBEDDED_TEMPLATE: &str = include_str!("../../../template.yaml");
