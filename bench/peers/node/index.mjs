// The start-up a typical Node team would ship for one of these functions: Powertools
// Logger, Metrics, idempotency on DynamoDB and an SQS batch processor, plus AWS SDK v3
// clients for DynamoDB, SQS and SNS, all at module scope. Bundled with esbuild.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SNSClient } from '@aws-sdk/client-sns';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';

const logger = new Logger({ serviceName: 'dishpatch-peer' });
const metrics = new Metrics({ namespace: 'dishpatch', serviceName: 'dishpatch-peer' });
const dynamodb = new DynamoDBClient({});
const sqs = new SQSClient({});
const sns = new SNSClient({});
const persistenceStore = new DynamoDBPersistenceLayer({
  tableName: process.env.IDEMPOTENCY_TABLE,
  awsSdkV3Client: dynamodb,
});
const config = new IdempotencyConfig({ eventKeyJmesPath: 'messageId' });
const processor = new BatchProcessor(EventType.SQS);

const handleMessage = makeIdempotent(async (record) => ({ messageId: record.messageId }), {
  persistenceStore,
  config,
});

export const handler = async (event, context) => {
  logger.addContext(context);
  config.registerLambdaContext(context);
  try {
    if (Array.isArray(event.Records)) {
      return await processPartialResponse(event, handleMessage, processor, { context });
    }
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'ok', clients: [sqs, sns].length }),
    };
  } finally {
    metrics.publishStoredMetrics();
  }
};
