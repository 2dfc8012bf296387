//! The outbox relay: every order write carries the messages it causes, and the
//! table stream delivers that write here at least once, so nothing is lost between
//! the write and the publish. Duplicates are expected downstream.

use dishpatch::aws::publisher::Publisher;
use dishpatch::orders::OutboxImage;
use dishpatch::runtime::MessageError;

pub async fn publish_outbox(
    publisher: &dyn Publisher,
    record: &aws_lambda_events::dynamodb::EventRecord,
) -> Result<(), MessageError> {
    if record.event_name == "REMOVE" {
        return Ok(());
    }
    let image: OutboxImage =
        serde_dynamo::from_item(record.change.new_image.clone()).map_err(|e| {
            MessageError::Decode(dishpatch::envelope::DecodeError::Malformed(e.to_string()))
        })?;
    for m in &image.outbox {
        let envelope = &m.envelope;
        publisher.deliver(envelope, &m.delivery).await?;
        tracing::debug!(message_type = %envelope.kind, message_id = %envelope.id, "relayed");
    }
    Ok(())
}
