//! AWS adapters behind the narrow ports the functions use. SDK types stop here.

pub mod dynamo;
pub mod publisher;

pub use publisher::{Publisher, SnsSqsPublisher};
