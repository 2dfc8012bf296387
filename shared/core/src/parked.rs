//! The message attributes a parked message carries in its dead-letter queue: the
//! functions write them, the operator CLI (`dishpatch dlq show`) reads them.

pub const FAILURE_CODE: &str = "failureCode";
pub const FAILURE_REASON: &str = "failureReason";
pub const FAILED_FUNCTION: &str = "failedFunction";
pub const FAILED_RECEIVE_COUNT: &str = "failedReceiveCount";
pub const SOURCE_QUEUE: &str = "sourceQueue";

/// Every attribute above, in the order they are written.
pub const ALL: [&str; 5] = [
    FAILURE_CODE,
    FAILURE_REASON,
    FAILED_FUNCTION,
    FAILED_RECEIVE_COUNT,
    SOURCE_QUEUE,
];
