//! Wallet operations counted by type and result (`WalletOperations`): what moved money
//! in or out of a wallet, or was refused for the wallet's sake (funds, limit,
//! currency). Duplicates and replays count nothing.

use dishpatch::emf::metrics::WALLET_OPERATIONS;
use dishpatch::emf::Line;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// An order paid from the wallet.
    Capture,
    /// An order's wallet payment given back.
    Refund,
    /// A paid top-up credited.
    TopUp,
    /// An ADMIN credit.
    Credit,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Capture => "CAPTURE",
            Operation::Refund => "REFUND",
            Operation::TopUp => "TOP_UP",
            Operation::Credit => "CREDIT",
        }
    }
}

/// Emits one `operation` on `customer_id`'s wallet: done (`OK`) or refused (`REJECTED`).
pub fn record(operation: Operation, ok: bool, customer_id: &str) {
    let result = if ok { "OK" } else { "REJECTED" };
    Line::new()
        .count(&WALLET_OPERATIONS, [operation.as_str(), result])
        .property("customerId", customer_id)
        .emit();
}
