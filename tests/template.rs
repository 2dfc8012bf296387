//! template.yaml passes both validators the deploy path uses, and what it deploys is
//! hardened: scoped roles, retained state, encryption, access logs, concurrency limits.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var("DISHPATCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".venv"));
    let bin = venv.join("bin").join(tool);
    assert!(
        bin.exists(),
        "{} is missing: run scripts/setup",
        bin.display()
    );
    bin
}

fn run(tool: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(venv_bin(tool))
        .args(args)
        .current_dir(root())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("validator runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn cfn_lint_passes() {
    let (ok, out) = run("cfn-lint", &["template.yaml"]);
    assert!(ok, "cfn-lint found problems:\n{out}");
}

#[test]
fn sam_validate_lint_passes() {
    let (ok, out) = run(
        "sam",
        &["validate", "--lint", "--template", "template.yaml"],
    );
    assert!(
        ok && out.contains("is a valid SAM Template"),
        "sam validate --lint:\n{out}"
    );
}

/// Values neither validator checks: a typo here deploys and then fails at runtime.
#[test]
fn response_types_and_runtimes_are_real_values() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Runtime:") {
            assert_eq!(v.trim(), "provided.al2023", "{line}");
        }
        if line.starts_with("- ") && line.to_lowercase().contains("batchitemfailures") {
            assert_eq!(line, "- ReportBatchItemFailures", "{line}");
        }
    }
    assert!(text.contains("FunctionResponseTypes"));
}

// ------------------------------------------------ the template after the SAM transform

/// template.yaml as CloudFormation receives it: SAM's generated roles, mappings and
/// stages included (`tests/template/translate.py`, run once per test binary).
fn translated() -> &'static Value {
    static TRANSLATED: OnceLock<Value> = OnceLock::new();
    TRANSLATED.get_or_init(|| {
        let out = Command::new(venv_bin("python"))
            .args(["tests/template/translate.py", "template.yaml"])
            .current_dir(root())
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .expect("translate.py runs");
        assert!(
            out.status.success(),
            "SAM transform failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("translate.py prints JSON")
    })
}

fn resources() -> &'static serde_json::Map<String, Value> {
    translated()["Resources"]
        .as_object()
        .expect("translated template has Resources")
}

fn of_type(ty: &str) -> Vec<(&'static String, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

/// `{"Fn::GetAtt": [X, _]}` or `{"Ref": X}` -> X.
fn target(v: &Value) -> Option<&str> {
    v.get("Fn::GetAtt")
        .and_then(|a| a.get(0))
        .or_else(|| v.get("Ref"))
        .and_then(Value::as_str)
}

fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Actions AWS only grants on `"*"` (they name no resource). Nothing else may be.
const ALLOWED_ON_ANY_RESOURCE: &[&str] = &[
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "cloudwatch:PutMetricData",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
];

/// Every IAM statement of the stack's roles and policies, as (where, statement).
fn iam_statements() -> Vec<(String, &'static Value)> {
    let mut out = Vec::new();
    for (id, r) in resources() {
        let p = &r["Properties"];
        let docs: Vec<(String, &Value)> = match r["Type"].as_str() {
            Some("AWS::IAM::Role") => one_or_many(&p["Policies"])
                .into_iter()
                .map(|pol| {
                    (
                        format!("{id}/{}", pol["PolicyName"].as_str().unwrap_or("?")),
                        &pol["PolicyDocument"],
                    )
                })
                .collect(),
            Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") => {
                vec![(id.clone(), &p["PolicyDocument"])]
            }
            _ => continue,
        };
        for (name, doc) in docs {
            for s in one_or_many(&doc["Statement"]) {
                out.push((name.clone(), s));
            }
        }
    }
    out
}

#[test]
fn roles_grant_nothing_on_every_resource() {
    let roles = of_type("AWS::IAM::Role");
    assert!(roles.len() >= 6, "expected a role per function: {roles:?}");
    let mut problems = Vec::new();
    for (id, r) in &roles {
        // An AWS managed policy cannot be read offline, and SAM's (AWSLambdaSQSQueueExecutionRole,
        // AWSLambdaDynamoDBExecutionRole) grant reads on every queue and stream.
        let managed = one_or_many(&r["Properties"]["ManagedPolicyArns"]);
        if !managed.is_empty() {
            problems.push(format!("{id}: managed policies {managed:?}"));
        }
    }
    for (name, s) in iam_statements() {
        if s["Effect"] != "Allow" {
            continue;
        }
        let actions: Vec<&str> = one_or_many(&s["Action"])
            .into_iter()
            .filter_map(Value::as_str)
            .collect();
        for a in &actions {
            if *a == "*" || a.ends_with(":*") {
                problems.push(format!("{name}: every action of a service: {a}"));
            }
        }
        if s.get("NotResource").is_some() || s.get("NotAction").is_some() {
            problems.push(format!("{name}: NotResource/NotAction: {s}"));
        }
        let on_any = one_or_many(&s["Resource"])
            .iter()
            .any(|r| r.as_str() == Some("*"));
        if on_any {
            for a in actions
                .iter()
                .filter(|a| !ALLOWED_ON_ANY_RESOURCE.contains(a))
            {
                problems.push(format!("{name}: {a} on Resource \"*\""));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Each function's role lets its event-source mappings read what they poll, and lets it
/// write its logs: the scoped statements are not missing anything Lambda needs.
#[test]
fn roles_cover_their_functions_event_sources_and_logs() {
    let role_of = |function: &str| -> String {
        let f = &resources()[function];
        target(&f["Properties"]["Role"])
            .unwrap_or_else(|| panic!("{function}: Role is not a GetAtt of a stack role"))
            .to_owned()
    };
    let grants = |role: &str, action: &str, resource: &Value| -> bool {
        let prefix = format!("{role}/");
        iam_statements().into_iter().any(|(name, s)| {
            name.starts_with(&prefix)
                && one_or_many(&s["Action"]).contains(&&Value::from(action))
                && one_or_many(&s["Resource"]).contains(&resource)
        })
    };
    let mut problems = Vec::new();
    for (id, m) in of_type("AWS::Lambda::EventSourceMapping") {
        let p = &m["Properties"];
        let function = target(&p["FunctionName"]).expect("FunctionName is a Ref");
        let role = role_of(function);
        let source = &p["EventSourceArn"];
        let needed: &[&str] = match source["Fn::GetAtt"][1].as_str() {
            Some("Arn") => &[
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ],
            Some("StreamArn") => &[
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
            ],
            other => panic!("{id}: unexpected event source {other:?}"),
        };
        for a in needed {
            if !grants(&role, a, source) {
                problems.push(format!("{id}: {role} lacks {a} on {source}"));
            }
        }
        if let Some(dest) = p.pointer("/DestinationConfig/OnFailure/Destination") {
            if !grants(&role, "sqs:SendMessage", dest) {
                problems.push(format!("{id}: {role} cannot send failures to {dest}"));
            }
        }
    }
    for (id, f) in of_type("AWS::Lambda::Function") {
        let group = &f["Properties"]["LoggingConfig"]["LogGroup"];
        let log_group = target(group).unwrap_or_else(|| panic!("{id}: no LoggingConfig.LogGroup"));
        let arn = serde_json::json!({"Fn::GetAtt": [log_group, "Arn"]});
        let role = role_of(id);
        for a in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            if !grants(&role, a, &arn) {
                problems.push(format!("{id}: {role} lacks {a} on {log_group}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn stateful_resources_survive_stack_deletion_and_replacement() {
    // Orders, stock, money and deliveries.
    for id in [
        "OrdersTable",
        "InventoryTable",
        "PaymentsTable",
        "DeliveryTable",
    ] {
        let t = &resources()[id];
        assert_eq!(t["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(t["UpdateReplacePolicy"], "Retain", "{id}");
        assert_eq!(t["Properties"]["DeletionProtectionEnabled"], true, "{id}");
    }
    let tables = of_type("AWS::DynamoDB::Table");
    assert!(tables.len() >= 6, "{tables:?}");
    for (id, t) in tables {
        assert_eq!(
            t["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{id}: point-in-time recovery"
        );
    }
    let pool = &resources()["UserPool"];
    assert_eq!(pool["DeletionPolicy"], "Retain");
    assert_eq!(pool["UpdateReplacePolicy"], "Retain");
    assert_eq!(pool["Properties"]["DeletionProtection"], "ACTIVE");
}

#[test]
fn topics_and_queues_are_encrypted_and_the_api_logs_access() {
    for (id, t) in of_type("AWS::SNS::Topic") {
        assert!(
            !t["Properties"]["KmsMasterKeyId"].is_null(),
            "{id}: no KmsMasterKeyId"
        );
    }
    for (id, q) in of_type("AWS::SQS::Queue") {
        let p = &q["Properties"];
        assert!(
            p["SqsManagedSseEnabled"] == true || !p["KmsMasterKeyId"].is_null(),
            "{id}: not encrypted"
        );
    }
    let stages = of_type("AWS::ApiGatewayV2::Stage");
    assert!(!stages.is_empty());
    for (id, s) in stages {
        let settings = &s["Properties"]["AccessLogSettings"];
        let group = target(&settings["DestinationArn"])
            .unwrap_or_else(|| panic!("{id}: no access log group: {settings}"));
        assert_eq!(resources()[group]["Type"], "AWS::Logs::LogGroup", "{id}");
        let format = settings["Format"].as_str().unwrap_or_default();
        assert!(format.contains("$context.requestId"), "{id}: {format}");
    }
    for (id, g) in of_type("AWS::Logs::LogGroup") {
        assert!(
            g["Properties"]["RetentionInDays"].as_u64().is_some(),
            "{id}: no RetentionInDays"
        );
    }
}

/// Every function has its own concurrency: a queue backlog cannot take order-api's, and
/// a queue's mapping never invokes past its function's reservation (a throttled batch
/// comes back and counts a receive toward maxReceiveCount).
#[test]
fn reserved_concurrency_bounds_every_function() {
    let mut total = 0;
    for (id, f) in of_type("AWS::Lambda::Function") {
        let reserved = f["Properties"]["ReservedConcurrentExecutions"]
            .as_u64()
            .unwrap_or_else(|| panic!("{id}: no ReservedConcurrentExecutions"));
        assert!(reserved > 0, "{id}");
        total += reserved;
    }
    assert!(
        resources()["OrderApiFunction"]["Properties"]["ReservedConcurrentExecutions"]
            .as_u64()
            .unwrap()
            >= 50
    );
    // The default account quota is 1000, of which AWS keeps 100 unreserved.
    assert!(total <= 900, "reserved {total} in all");
    for (id, m) in of_type("AWS::Lambda::EventSourceMapping") {
        let p = &m["Properties"];
        if p["EventSourceArn"]["Fn::GetAtt"][1] != "Arn" {
            continue;
        }
        let function = target(&p["FunctionName"]).unwrap();
        let reserved = resources()[function]["Properties"]["ReservedConcurrentExecutions"]
            .as_u64()
            .unwrap();
        let max = p["ScalingConfig"]["MaximumConcurrency"]
            .as_u64()
            .unwrap_or_else(|| panic!("{id}: no ScalingConfig.MaximumConcurrency"));
        assert!(max <= reserved, "{id}: {max} > {function}'s {reserved}");
    }
}

/// AWS's rule for SQS event sources: a message must stay invisible for six runs of the
/// function plus the batching window, or it is received again while being processed.
#[test]
fn visibility_timeouts_cover_six_runs_and_the_batching_window() {
    let mut checked = 0;
    for (id, m) in of_type("AWS::Lambda::EventSourceMapping") {
        let p = &m["Properties"];
        if p["EventSourceArn"]["Fn::GetAtt"][1] != "Arn" {
            continue;
        }
        let queue = target(&p["EventSourceArn"]).unwrap();
        let function = target(&p["FunctionName"]).unwrap();
        let timeout = resources()[function]["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or(3);
        let window = p["MaximumBatchingWindowInSeconds"].as_u64().unwrap_or(0);
        let visibility = resources()[queue]["Properties"]["VisibilityTimeout"]
            .as_u64()
            .unwrap_or(30);
        assert!(
            visibility >= 6 * timeout + window,
            "{id}: {queue} VisibilityTimeout {visibility} < 6 x {timeout} + {window}"
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn psp_base_url_must_be_https() {
    let pattern = translated()["Parameters"]["PspBaseUrl"]["AllowedPattern"]
        .as_str()
        .expect("PspBaseUrl has an AllowedPattern");
    // CloudFormation matches the whole value.
    let matches = |value: &str| {
        Command::new(venv_bin("python"))
            .args([
                "-c",
                "import re, sys; sys.exit(0 if re.fullmatch(sys.argv[1], sys.argv[2]) else 1)",
                pattern,
                value,
            ])
            .status()
            .expect("python runs")
            .success()
    };
    for ok in ["https://psp.example.com", "https://api.psp.example/v1/"] {
        assert!(matches(ok), "{pattern} rejects {ok}");
    }
    for bad in [
        "http://psp.example.com",
        "https://",
        "ftp://psp.example.com",
        "https://psp example.com",
        " https://psp.example.com",
    ] {
        assert!(!matches(bad), "{pattern} accepts {bad:?}");
    }
}

/// checkov's CloudFormation checks (it reads SAM resources too): every finding is fixed
/// or skipped in the template's `Metadata.checkov.skip` with a reason.
#[test]
fn checkov_finds_nothing_unsuppressed() {
    let venv = venv_bin("python");
    let checkov = venv.parent().unwrap().join("../checkov/bin/checkov");
    assert!(
        checkov.exists(),
        "{} is missing: run scripts/setup",
        checkov.display()
    );
    let out = Command::new(checkov)
        .args([
            "-f",
            "template.yaml",
            "--framework",
            "cloudformation",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ])
        .current_dir(root())
        .output()
        .expect("checkov runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov did not print JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let reports = one_or_many(&report);
    assert!(!reports.is_empty());
    let mut problems = Vec::new();
    let mut passed = 0;
    for r in reports {
        let results = &r["results"];
        passed += one_or_many(&results["passed_checks"]).len();
        for e in one_or_many(&results["parsing_errors"]) {
            problems.push(format!("parsing error: {e}"));
        }
        for f in one_or_many(&results["failed_checks"]) {
            problems.push(format!(
                "{} {}: {}",
                f["check_id"], f["resource"], f["check_name"]
            ));
        }
        for s in one_or_many(&results["skipped_checks"]) {
            let why = s["check_result"]["suppress_comment"].as_str().unwrap_or("");
            if why.trim().is_empty() || why.contains("No comment provided") {
                problems.push(format!(
                    "{} {}: skipped without a reason",
                    s["check_id"], s["resource"]
                ));
            }
        }
    }
    assert!(passed > 0, "checkov checked nothing");
    assert!(problems.is_empty(), "checkov:\n{problems:#?}");
}

/// The queues messages are parked in: every queue's redrive target and every
/// event-source mapping's failure destination.
fn dead_letter_queues() -> std::collections::BTreeSet<&'static str> {
    let redrive = of_type("AWS::SQS::Queue")
        .into_iter()
        .filter_map(|(_, q)| target(&q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]));
    let on_failure = of_type("AWS::Lambda::EventSourceMapping")
        .into_iter()
        .filter_map(|(_, m)| {
            target(&m["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])
        });
    redrive.chain(on_failure).collect()
}

fn alarms() -> Vec<(&'static String, &'static Value)> {
    of_type("AWS::CloudWatch::Alarm")
}

/// Each alarm's single-metric dimension `name`, as the resource it names.
fn alarm_dimension<'a>(alarm: &'a Value, name: &str) -> Option<&'a Value> {
    one_or_many(&alarm["Properties"]["Dimensions"])
        .into_iter()
        .find(|d| d["Name"] == name)
        .map(|d| &d["Value"])
}

/// An operator hears of every parked message, failing or throttled function and open
/// breaker: each has an alarm, and every alarm pages ops-alerts and says when it clears.
#[test]
fn every_dlq_and_function_has_an_alarm_and_every_alarm_pages_ops() {
    let alarms = alarms();
    let dlqs = dead_letter_queues();
    assert!(dlqs.len() >= 6, "{dlqs:?}");
    for dlq in &dlqs {
        let watched = alarms.iter().any(|(_, a)| {
            let p = &a["Properties"];
            p["Namespace"] == "AWS/SQS"
                && p["MetricName"] == "ApproximateNumberOfMessagesVisible"
                && p["Threshold"] == 0
                && p["ComparisonOperator"] == "GreaterThanThreshold"
                && alarm_dimension(a, "QueueName").and_then(target) == Some(*dlq)
        });
        assert!(watched, "{dlq}: no alarm on its depth");
    }
    for (function, _) in of_type("AWS::Lambda::Function") {
        for metric in ["Errors", "Throttles"] {
            let watched = alarms.iter().any(|(_, a)| {
                a["Properties"]["MetricName"] == metric
                    && alarm_dimension(a, "FunctionName").and_then(target)
                        == Some(function.as_str())
            });
            assert!(watched, "{function}: no {metric} alarm");
        }
    }
    // The topic is encrypted: CloudWatch must be let use its key, or no alarm arrives.
    let topic = &resources()["OpsAlertsTopic"]["Properties"];
    let key = target(&topic["KmsMasterKeyId"]).expect("ops-alerts is encrypted");
    let lets_cloudwatch = one_or_many(&resources()[key]["Properties"]["KeyPolicy"]["Statement"])
        .into_iter()
        .any(|s| {
            let actions = one_or_many(&s["Action"]);
            s["Effect"] == "Allow"
                && s["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                && ["kms:Decrypt", "kms:GenerateDataKey*"]
                    .iter()
                    .all(|a| actions.iter().any(|x| x.as_str() == Some(a)))
        });
    assert!(
        lets_cloudwatch,
        "{key}: CloudWatch alarms cannot use the topic's key"
    );
    for (id, a) in &alarms {
        let p = &a["Properties"];
        for actions in ["AlarmActions", "OKActions"] {
            let to: Vec<_> = one_or_many(&p[actions])
                .into_iter()
                .filter_map(target)
                .collect();
            assert_eq!(to, ["OpsAlertsTopic"], "{id}: {actions}");
        }
        assert!(
            p["TreatMissingData"] == "notBreaching",
            "{id}: no data is no incident"
        );
    }
}

/// Every `dishpatch` metric an alarm or the dashboard names is one the code emits
/// (`dishpatch_core::metrics::ALL`), with exactly its dimensions: a renamed metric or
/// dimension cannot leave an alarm watching nothing.
#[test]
fn alarms_and_dashboard_name_only_metrics_the_code_emits() {
    use dishpatch_core::metrics::{by_name, METRICS_NAMESPACE};
    let check = |place: &str, name: &str, dims: Vec<&str>| {
        let metric = by_name(name).unwrap_or_else(|| panic!("{place}: {name} is not emitted"));
        let mut want = metric.dimensions.to_vec();
        let mut got = dims;
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{place}: dimensions of {name}");
    };
    let mut named = 0;
    for (id, a) in alarms() {
        let p = &a["Properties"];
        let mut stats: Vec<&Value> = vec![p];
        stats.extend(
            one_or_many(&p["Metrics"])
                .into_iter()
                .map(|m| &m["MetricStat"]["Metric"]),
        );
        for m in stats {
            if m["Namespace"] == METRICS_NAMESPACE {
                let dims = one_or_many(&m["Dimensions"])
                    .into_iter()
                    .filter_map(|d| d["Name"].as_str())
                    .collect();
                check(id, m["MetricName"].as_str().unwrap_or_default(), dims);
                named += 1;
            }
        }
    }
    let dashboards = of_type("AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1, "one operations dashboard");
    let body = dashboards[0].1["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody is one Fn::Sub string");
    let body: Value = serde_json::from_str(body).expect("the dashboard body is JSON");
    let widgets = body["widgets"].as_array().expect("widgets");
    assert!(widgets.len() >= 8, "{}", widgets.len());
    for w in widgets {
        let title = w["properties"]["title"].as_str().unwrap_or("?");
        for m in one_or_many(&w["properties"]["metrics"]) {
            let parts: Vec<&Value> = one_or_many(m);
            if parts.first().and_then(|v| v.as_str()) != Some(METRICS_NAMESPACE) {
                continue;
            }
            // [namespace, name, dim, value, dim, value, ..., {options}?]
            let strings: Vec<&str> = parts.iter().filter_map(|v| v.as_str()).collect();
            let dims = strings[2..].iter().step_by(2).copied().collect();
            check(title, strings[1], dims);
            named += 1;
        }
    }
    assert!(named >= 20, "only {named} dishpatch metrics named");
    for panel in [
        "Breaker",
        "success rate",
        "retries",
        "p99",
        "funnel",
        "Dead-letter",
    ] {
        assert!(
            widgets.iter().any(|w| w["properties"]["title"]
                .as_str()
                .unwrap_or("")
                .contains(panel)),
            "no {panel} panel"
        );
    }
}

/// Functions log JSON at levels Lambda filters (INFO for the application, WARN for the
/// platform) and are traced.
#[test]
fn functions_log_json_with_levels_and_are_traced() {
    for (id, f) in of_type("AWS::Lambda::Function") {
        let p = &f["Properties"];
        let logging = &p["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{id}");
        assert_eq!(logging["ApplicationLogLevel"], "INFO", "{id}");
        assert_eq!(logging["SystemLogLevel"], "WARN", "{id}");
        assert!(
            target(&logging["LogGroup"]).is_some(),
            "{id}: own log group"
        );
        assert_eq!(p["TracingConfig"]["Mode"], "Active", "{id}");
    }
}
