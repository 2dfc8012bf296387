//! The courier pool: a courier's own record, on shift (free, or on one delivery) or off
//! shift, and the port that moves it between shifts.

use dishpatch::error::StoreError;
use serde::{Deserialize, Serialize};

/// A courier as stored: on shift (AVAILABLE, or BUSY with `activeOrderId`) or OFF_SHIFT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Courier {
    #[serde(default)]
    pub courier_id: String,
    pub status: CourierStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_order_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CourierStatus {
    Available,
    Busy,
    OffShift,
}

impl CourierStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CourierStatus::Available => "AVAILABLE",
            CourierStatus::Busy => "BUSY",
            CourierStatus::OffShift => "OFF_SHIFT",
        }
    }

    pub fn on_shift(self) -> bool {
        self != CourierStatus::OffShift
    }
}

/// What going off shift did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffShift {
    /// Off shift now (or already; or never on: no courier record, nothing written).
    Done(Option<Courier>),
    /// On a delivery: stays on shift until it is done.
    OnDelivery(Courier),
}

/// Shifts: a courier's own record.
#[async_trait::async_trait]
pub trait CourierStore: Send + Sync {
    /// The courier (strongly consistent).
    async fn courier(&self, courier_id: &str) -> Result<Option<Courier>, StoreError>;
    /// OFF_SHIFT (or no record yet: it is created) -> AVAILABLE, listed as free. A courier
    /// already on shift is left as it is. The courier as it is afterwards.
    async fn go_on_shift(&self, courier_id: &str) -> Result<Courier, StoreError>;
    /// AVAILABLE -> OFF_SHIFT, out of the free index; refused while BUSY.
    async fn go_off_shift(&self, courier_id: &str) -> Result<OffShift, StoreError>;
}
