//! us-east-1 on-demand prices used for the cost per million orders (USD), each with
//! where it was read. Free tiers are ignored: at a million orders they are noise.

/// One price.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Price {
    pub item: &'static str,
    pub usd: f64,
    pub per: &'static str,
    pub source: &'static str,
}

pub const DYNAMODB_WRITE: Price = Price {
    item: "DynamoDB on-demand write request unit",
    usd: 0.625,
    per: "million WRU",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/ (Standard table class, after the November 2024 reduction)",
};
pub const DYNAMODB_READ: Price = Price {
    item: "DynamoDB on-demand read request unit",
    usd: 0.125,
    per: "million RRU",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
};
pub const DYNAMODB_STREAMS: Price = Price {
    item: "DynamoDB Streams GetRecords by a Lambda trigger",
    usd: 0.0,
    per: "million requests",
    source:
        "https://aws.amazon.com/dynamodb/pricing/on-demand/ (reads by Lambda triggers are free)",
};
pub const SQS_REQUEST: Price = Price {
    item: "SQS standard queue request (per 64 KB chunk)",
    usd: 0.40,
    per: "million requests",
    source: "https://aws.amazon.com/sqs/pricing/ (first 100 billion requests a month)",
};
pub const SNS_PUBLISH: Price = Price {
    item: "SNS standard topic publish (per 64 KB chunk)",
    usd: 0.50,
    per: "million requests",
    source: "https://aws.amazon.com/sns/pricing/",
};
pub const SNS_TO_SQS: Price = Price {
    item: "SNS delivery to an SQS queue",
    usd: 0.0,
    per: "million deliveries",
    source: "https://aws.amazon.com/sns/pricing/ (no charge for deliveries to SQS)",
};
pub const LAMBDA_REQUEST: Price = Price {
    item: "Lambda request",
    usd: 0.20,
    per: "million requests",
    source: "https://aws.amazon.com/lambda/pricing/",
};
pub const LAMBDA_ARM_GB_SECOND: Price = Price {
    item: "Lambda duration, arm64",
    usd: 0.000_013_333_4,
    per: "GB-second",
    source: "https://aws.amazon.com/lambda/pricing/ (first 7.5 billion GB-s a month)",
};
pub const HTTP_API_REQUEST: Price = Price {
    item: "API Gateway HTTP API request (per 512 KB)",
    usd: 1.00,
    per: "million requests",
    source: "https://aws.amazon.com/api-gateway/pricing/ (first 300 million a month)",
};
pub const LOGS_INGESTION: Price = Price {
    item: "CloudWatch Logs ingestion, Standard class",
    usd: 0.50,
    per: "GB",
    source: "https://aws.amazon.com/cloudwatch/pricing/ (first 10 TB a month of Lambda logs)",
};

pub const ALL: &[Price] = &[
    DYNAMODB_WRITE,
    DYNAMODB_READ,
    DYNAMODB_STREAMS,
    SQS_REQUEST,
    SNS_PUBLISH,
    SNS_TO_SQS,
    LAMBDA_REQUEST,
    LAMBDA_ARM_GB_SECOND,
    HTTP_API_REQUEST,
    LOGS_INGESTION,
];
