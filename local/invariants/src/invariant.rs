//! Which invariant a violation breaks: stable names and their number in `docs/architecture.md`.

use std::fmt;

/// Which invariant a [`Violation`] breaks. [`Invariant::name`] is stable (tests and
/// dashboards match on it); [`Invariant::design`] is the invariant (1–8) of `docs/architecture.md` it proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    /// `available + reserved + sold == stocked` for a menu item.
    StockConservation,
    /// A stock counter is negative.
    StockNonNegative,
    /// The RESERVED reservations' lines add up to the item's `reserved` (quiescent).
    StockReservedMatchesReservations,
    /// The SOLD reservations' lines add up to the item's `sold` (quiescent).
    StockSoldMatchesReservations,
    /// A reservation holds other lines than its order.
    ReservationMatchesOrder,
    /// A DELIVERED order's reservation is SOLD (quiescent).
    DeliveredStockSold,
    /// A CANCELLED order's reservation is not RESERVED (nor SOLD) (quiescent).
    CancelledStockReleased,
    /// Every order is terminal (quiescent).
    OrderTerminal,
    /// Every COMPENSATION_FAILED order was alerted on the ops topic (quiescent).
    CompensationFailedAlerted,
    /// No message waits in a dead-letter queue, except one of a COMPENSATION_FAILED
    /// order (quiescent, [`Checker`] only).
    NoDeadLetters,
    /// Nothing moves any more (no message visible or in flight) within the deadline of
    /// [`Checker::check_at_quiescence`].
    StackQuiescent,
    /// A payment's amount, currency and customer are its order's.
    PaymentMatchesOrder,
    /// Money is captured only for an order that is past RESERVED and not CANCELLED
    /// (the CANCELLED half at quiescence: a late capture is refunded in flight).
    ChargedOnlyIfNotCancelled,
    /// A DELIVERED order paid by wallet has a CAPTURED payment (quiescent).
    DeliveredCharged,
    /// A delivered order (the order or its delivery record DELIVERED) is neither
    /// refunded nor CANCELLED: a courier never completes a cancelled order.
    DeliveredNotRefunded,
    /// A wallet balance is never negative.
    WalletNonNegative,
    /// `balance == initial − captured` per customer (quiescent, with initial balances).
    WalletConservation,
    /// A wallet's balance equals the sum of its ledger entries.
    WalletMatchesLedger,
    /// Every wallet capture and refund has its one ledger entry, and every entry of that
    /// kind its payment, of the same amount.
    LedgerMatchesPayments,
    /// Money enters a wallet only by a paid top-up (one entry per CREDITED top-up, each
    /// against its own provider charge, matching the provider's record when it is
    /// known), an ADMIN credit with a reason, or the refund of a capture.
    MoneyEntersOnlyByChargeOrReason,
    /// No top-up is left PENDING at rest: a charge during an outage is settled from the
    /// payment queue or by the customer's retry (quiescent).
    TopUpSettled,
    /// A courier's own item is consistent: AVAILABLE has `gsi1pk` and no
    /// `activeOrderId`; BUSY has an `activeOrderId` and no `gsi1pk`.
    CourierStateConsistent,
    /// No courier is on two DISPATCHED deliveries (quiescent).
    CourierSingleDelivery,
    /// A courier is BUSY iff exactly one DISPATCHED delivery names it, and its
    /// `activeOrderId` is that order (quiescent).
    CourierBusyMatchesDelivery,
    /// A CANCELLED order's delivery is not DISPATCHED (quiescent).
    CancelledCourierReleased,
    /// A DELIVERED order's delivery record is DELIVERED (quiescent).
    DeliveredRecorded,
    /// A reservation, payment or delivery belongs to an existing order.
    RecordHasOrder,
    /// An item the checker could not read.
    RecordReadable,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        use Invariant::*;
        match self {
            StockConservation => "stock.conservation",
            StockNonNegative => "stock.non-negative",
            StockReservedMatchesReservations => "stock.reserved-matches-reservations",
            StockSoldMatchesReservations => "stock.sold-matches-reservations",
            ReservationMatchesOrder => "stock.reservation-matches-order",
            DeliveredStockSold => "stock.delivered-sold",
            CancelledStockReleased => "stock.cancelled-released",
            OrderTerminal => "order.terminal",
            CompensationFailedAlerted => "order.compensation-failed-alerted",
            NoDeadLetters => "messages.no-dead-letters",
            StackQuiescent => "messages.quiescent",
            PaymentMatchesOrder => "money.payment-matches-order",
            ChargedOnlyIfNotCancelled => "money.charged-only-if-not-cancelled",
            DeliveredCharged => "money.delivered-charged",
            DeliveredNotRefunded => "money.delivered-not-refunded",
            WalletNonNegative => "money.wallet-non-negative",
            WalletConservation => "money.wallet-conservation",
            WalletMatchesLedger => "money.wallet-matches-ledger",
            LedgerMatchesPayments => "money.ledger-matches-payments",
            MoneyEntersOnlyByChargeOrReason => "money.enters-only-by-charge-or-reason",
            TopUpSettled => "money.top-up-settled",
            CourierStateConsistent => "courier.state-consistent",
            CourierSingleDelivery => "courier.single-delivery",
            CourierBusyMatchesDelivery => "courier.busy-matches-delivery",
            CancelledCourierReleased => "courier.cancelled-released",
            DeliveredRecorded => "courier.delivered-recorded",
            RecordHasOrder => "records.have-order",
            RecordReadable => "records.readable",
        }
    }

    /// The invariant (1–8) of `docs/architecture.md` this check proves.
    pub fn design(self) -> u8 {
        use Invariant::*;
        match self {
            OrderTerminal | CompensationFailedAlerted | NoDeadLetters | StackQuiescent => 1,
            PaymentMatchesOrder
            | ChargedOnlyIfNotCancelled
            | DeliveredCharged
            | DeliveredNotRefunded
            | WalletNonNegative
            | WalletConservation => 2,
            WalletMatchesLedger
            | LedgerMatchesPayments
            | MoneyEntersOnlyByChargeOrReason
            | TopUpSettled => 6,
            StockConservation
            | StockNonNegative
            | StockReservedMatchesReservations
            | StockSoldMatchesReservations
            | ReservationMatchesOrder
            | DeliveredStockSold
            | CancelledStockReleased => 3,
            CourierStateConsistent
            | CourierSingleDelivery
            | CourierBusyMatchesDelivery
            | CancelledCourierReleased
            | DeliveredRecorded => 4,
            RecordHasOrder | RecordReadable => 5,
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
