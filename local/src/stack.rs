//! [`LocalStack`]: provision + seed + functions + gateway + pollers, as one handle.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use dishpatch::runtime::Function;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::awsproxy::{AwsProxy, AwsProxyConfig};
use crate::esm::{self, EsmConfig, SqsSource, StreamSource};
use crate::functions::{self, InvokeError, LocalFunction};
use crate::gateway::{Gateway, Route};
use crate::invariants::{AlertTap, Checker};
use crate::provision::{self, Stack};
use crate::schedule::{self, ScheduleSource};
use crate::template::Template;
use crate::{sdk, seed, Error, Result};

/// How to start a [`LocalStack`].
#[derive(Clone)]
pub struct LocalStackOptions {
    /// Emulator endpoint; `None`: `AWS_ENDPOINT_URL`, else `http://127.0.0.1:5000`.
    pub endpoint: Option<String>,
    /// Prefix of every physical name (`{prefix}-{LogicalId}`): one per stack sharing an
    /// emulator.
    pub prefix: String,
    pub host: IpAddr,
    /// Gateway port; 0 picks a free one (see [`LocalStack::addr`]).
    pub port: u16,
    /// Write the demo data ([`crate::seed`]).
    pub seed: bool,
    /// Event-source mapping knobs (retry delay, duplicate deliveries, batching cap...).
    pub esm: EsmConfig,
    /// Start the SQS / stream pollers and the schedules (off: drive functions by hand
    /// with [`LocalStack::invoke`]).
    pub pollers: bool,
    /// Run every `Schedule` event at this period instead of its `rate(...)`; `None`:
    /// `DISHPATCH_SCHEDULE_INTERVAL_MS`, else the template's ([`crate::schedule`]).
    pub schedule_interval: Option<Duration>,
    /// A template file; `None`: the `template.yaml` embedded at build time.
    pub template: Option<PathBuf>,
    /// Replacement handlers, by function logical id or binary name (tests).
    pub overrides: HashMap<String, Arc<dyn Function>>,
    /// Wrappers around handlers (the real one or an override), by function logical id
    /// or binary name: fault injection in tests.
    pub wrappers: HashMap<String, FunctionWrapper>,
    /// Environment variables set on top of the template's, by function logical id,
    /// binary name or `*` (e.g. shorter saga timeouts in tests).
    pub env: HashMap<String, BTreeMap<String, String>>,
    /// Subscribe a queue to `OpsAlertsTopic` ([`AlertTap`]) so alerts can be read back
    /// (on by default; the invariant checker uses it).
    pub ops_alerts_tap: bool,
    /// Start the sandbox card provider and point the payment function at it.
    pub psp: bool,
    /// Put an [`AwsProxy`] between the functions (and pollers) and the emulator: call
    /// counts, DynamoDB units, AWS fault injection. Off by default.
    pub aws_proxy: Option<AwsProxyConfig>,
}

/// Wraps a function's handler: gets the handler the stack would use, returns the one
/// it serves.
pub type FunctionWrapper = Arc<dyn Fn(Arc<dyn Function>) -> Arc<dyn Function> + Send + Sync>;

impl std::fmt::Debug for LocalStackOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStackOptions")
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("seed", &self.seed)
            .field("esm", &self.esm)
            .field("pollers", &self.pollers)
            .field("schedule_interval", &self.schedule_interval)
            .field("template", &self.template)
            .field("overrides", &self.overrides.keys().collect::<Vec<_>>())
            .field("wrappers", &self.wrappers.keys().collect::<Vec<_>>())
            .field("env", &self.env)
            .field("ops_alerts_tap", &self.ops_alerts_tap)
            .field("aws_proxy", &self.aws_proxy)
            .finish()
    }
}

impl Default for LocalStackOptions {
    fn default() -> Self {
        LocalStackOptions {
            endpoint: None,
            prefix: "dishpatch".to_owned(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            seed: true,
            esm: EsmConfig::default(),
            pollers: true,
            schedule_interval: None,
            template: None,
            overrides: HashMap::new(),
            wrappers: HashMap::new(),
            env: HashMap::new(),
            ops_alerts_tap: true,
            psp: true,
            aws_proxy: None,
        }
    }
}

impl LocalStackOptions {
    pub fn new(prefix: impl Into<String>) -> Self {
        LocalStackOptions {
            prefix: prefix.into(),
            ..Default::default()
        }
    }
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    pub fn seed(mut self, on: bool) -> Self {
        self.seed = on;
        self
    }
    pub fn retry_delay(mut self, d: Duration) -> Self {
        self.esm.retry_delay = d;
        self
    }
    pub fn duplicate_deliveries(mut self, on: bool) -> Self {
        self.esm.duplicate_deliveries = on;
        self
    }
    /// Deliver SQS messages out of order (held back, scrambled; see [`crate::esm`]).
    pub fn shuffle_deliveries(mut self, on: bool) -> Self {
        self.esm.shuffle_deliveries = on;
        self
    }
    /// Seed of the shuffle (default: `DISHPATCH_SHUFFLE_SEED`, else random; logged and
    /// kept in [`LocalStack::shuffle_seed`]).
    pub fn shuffle_seed(mut self, seed: u64) -> Self {
        self.esm.shuffle_seed = Some(seed);
        self
    }
    pub fn psp(mut self, on: bool) -> Self {
        self.psp = on;
        self
    }
    /// Route the functions' AWS calls through an [`AwsProxy`] ([`LocalStack::aws_proxy`]).
    pub fn aws_proxy(mut self, config: AwsProxyConfig) -> Self {
        self.aws_proxy = Some(config);
        self
    }

    pub fn ops_alerts_tap(mut self, on: bool) -> Self {
        self.ops_alerts_tap = on;
        self
    }
    pub fn pollers(mut self, on: bool) -> Self {
        self.pollers = on;
        self
    }
    /// Run every `Schedule` event at `period` (tests: a sweep every second, say).
    pub fn schedule_interval(mut self, period: Duration) -> Self {
        self.schedule_interval = Some(period);
        self
    }
    pub fn template(mut self, path: impl Into<PathBuf>) -> Self {
        self.template = Some(path.into());
        self
    }
    /// Serve `id_or_binary` (e.g. `PaymentFunction` or `payment`) with `handler`.
    pub fn override_function(mut self, id_or_binary: &str, handler: Arc<dyn Function>) -> Self {
        self.overrides.insert(id_or_binary.to_owned(), handler);
        self
    }
    /// Set the environment variable `name` of function `id_or_binary` (logical id,
    /// binary name, or `*` for every function, like the template's `Globals`), over the
    /// template's value.
    pub fn function_env(mut self, id_or_binary: &str, name: &str, value: &str) -> Self {
        self.env
            .entry(id_or_binary.to_owned())
            .or_default()
            .insert(name.to_owned(), value.to_owned());
        self
    }
    /// Serve `id_or_binary` with `wrap(handler)`, where `handler` is the real one (or
    /// its override): e.g. a wrapper that drops or delays some messages.
    pub fn wrap_function(
        mut self,
        id_or_binary: &str,
        wrap: impl Fn(Arc<dyn Function>) -> Arc<dyn Function> + Send + Sync + 'static,
    ) -> Self {
        self.wrappers
            .insert(id_or_binary.to_owned(), Arc::new(wrap));
        self
    }
}

/// A running local stack. Dropping it (or [`LocalStack::shutdown`]) stops the gateway
/// and pollers; the emulator's resources stay (prefix-scoped).
pub struct LocalStack {
    pub stack: Arc<Stack>,
    pub sdk: SdkConfig,
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// Functions by logical id.
    pub functions: BTreeMap<String, LocalFunction>,
    /// The seed of the shuffled deliveries, when they are on.
    pub shuffle_seed: Option<u64>,
    /// The queue collecting `OpsAlertsTopic` alerts, when on.
    pub alert_tap: Option<AlertTap>,
    /// The sandbox card provider, when on (tests drive its faults through it).
    pub psp: Option<dishpatch_psp_sandbox::Sandbox>,
    aws_proxy: Option<AwsProxy>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LocalStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStack")
            .field("prefix", &self.stack.prefix)
            .field("addr", &self.addr)
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("shuffle_seed", &self.shuffle_seed)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl LocalStack {
    /// Provisions (create-if-missing), seeds, builds the functions, binds the gateway and
    /// starts the pollers.
    pub async fn start(mut opts: LocalStackOptions) -> Result<LocalStack> {
        let shuffle_seed = opts.esm.shuffle_deliveries.then(|| {
            let seed = opts.esm.shuffle_seed.unwrap_or_else(|| {
                std::env::var("DISHPATCH_SHUFFLE_SEED")
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0)
            });
            tracing::info!(
                prefix = %opts.prefix, seed,
                "shuffled SQS deliveries (DISHPATCH_SHUFFLE_SEED={seed} replays the decisions)"
            );
            seed
        });
        opts.esm.shuffle_seed = shuffle_seed.or(opts.esm.shuffle_seed);
        let template = Arc::new(match &opts.template {
            Some(p) => Template::from_path(p)?,
            None => Template::embedded()?,
        });
        let sdk = sdk::emulator_config(opts.endpoint.as_deref()).await;
        // The emulator has no CloudWatch Logs to turn EMF lines into metrics.
        crate::cloudwatch::forward_emf(&sdk);
        let mut stack = provision::provision(&sdk, template.clone(), &opts.prefix).await?;
        // The card provider: the payment function reads its key from the environment
        // here, from SSM Parameter Store in AWS.
        let psp = if opts.psp {
            let sandbox = dishpatch_psp_sandbox::start(Default::default()).await?;
            for info in stack
                .functions
                .values_mut()
                .filter(|f| f.binary == "payment")
            {
                info.set_variable("PSP_BASE_URL", &sandbox.url());
                info.set_variable("PSP_API_KEY", dishpatch_psp_sandbox::DEFAULT_API_KEY);
            }
            Some(sandbox)
        } else {
            None
        };
        for (id, vars) in &opts.env {
            let mut matched = false;
            for info in stack.functions.values_mut() {
                if id == "*" || info.logical_id == *id || info.binary == *id {
                    matched = true;
                    for (k, v) in vars {
                        info.set_variable(k, v);
                    }
                }
            }
            if !matched {
                return Err(Error::Other(format!("function_env: no function {id}")));
            }
        }
        let stack = Arc::new(stack);
        if opts.seed {
            seed::seed(&stack, &sdk).await?;
        }
        // Before anything runs, so no alert is missed.
        let alert_tap = if opts.ops_alerts_tap {
            AlertTap::subscribe(&sdk, &stack).await?
        } else {
            None
        };

        // Functions and pollers talk to the emulator through the proxy when it is on;
        // everything above and the checker keep the direct configuration.
        let aws_proxy = match &opts.aws_proxy {
            Some(c) => {
                Some(AwsProxy::start(&sdk::endpoint(opts.endpoint.as_deref()), c.clone()).await?)
            }
            None => None,
        };
        let (function_sdk, poller_sdk) = match &aws_proxy {
            Some(p) => (p.function_sdk(&sdk), p.event_source_sdk(&sdk)),
            None => (sdk.clone(), sdk.clone()),
        };

        let mut functions = BTreeMap::new();
        for f in &template.functions {
            let info = &stack.functions[&f.logical_id];
            let handler = match opts
                .overrides
                .get(&f.logical_id)
                .or_else(|| opts.overrides.get(&f.binary))
            {
                Some(h) => h.clone(),
                None => functions::build(&f.binary, &function_sdk, &info.env).await?,
            };
            let handler = match opts
                .wrappers
                .get(&f.logical_id)
                .or_else(|| opts.wrappers.get(&f.binary))
            {
                Some(wrap) => wrap(handler),
                None => handler,
            };
            functions.insert(f.logical_id.clone(), LocalFunction::new(info, handler));
        }

        let mut tasks = Vec::new();
        let routes = template
            .http_routes()
            .into_iter()
            .map(|(f, r)| {
                Route::new(
                    r.clone(),
                    template.http_api.requires_auth(r),
                    functions[&f.logical_id].clone(),
                )
            })
            .collect();
        let console = dishpatch_console::Console::of_stack(&sdk, template.clone(), &stack.prefix);
        let gateway = Arc::new(
            Gateway::new(routes, template.http_api.cors.clone(), &stack.account_id)
                .mount(dishpatch_console::PREFIX, console.handler())
                .mount(crate::apidocs::SPEC_PATH, crate::apidocs::handler())
                .mount(crate::apidocs::DOCS_PATH, crate::apidocs::handler())
                .mount(
                    crate::traces::PREFIX,
                    crate::traces::Traces::new(aws_proxy.as_ref().map(AwsProxy::call_log))
                        .handler(),
                ),
        );
        let listener = tokio::net::TcpListener::bind((opts.host, opts.port)).await?;
        let addr = listener.local_addr()?;
        tasks.push(gateway.serve(listener));

        if opts.pollers {
            for f in &template.functions {
                let function = &functions[&f.logical_id];
                for e in f.sqs_events().filter(|e| e.enabled) {
                    let q = stack.queues.get(&e.queue).ok_or_else(|| {
                        Error::Other(format!(
                            "{}.{}: queue {} not provisioned",
                            f.logical_id, e.name, e.queue
                        ))
                    })?;
                    let source = SqsSource {
                        name: e.queue.clone(),
                        queue_url: q.url.clone(),
                        queue_arn: q.arn.clone(),
                        region: stack.region.clone(),
                        batch_size: e.batch_size.max(1) as usize,
                        batching_window: Duration::from_secs(
                            e.maximum_batching_window_seconds.into(),
                        ),
                        report_batch_item_failures: e.report_batch_item_failures,
                    };
                    tasks.push(esm::spawn_sqs_poller(
                        &poller_sdk,
                        source,
                        function.clone(),
                        opts.esm.clone(),
                    ));
                }
                for e in f.stream_events().filter(|e| e.enabled) {
                    let t = stack.tables.get(&e.table).ok_or_else(|| {
                        Error::Other(format!(
                            "{}.{}: table {} not provisioned",
                            f.logical_id, e.name, e.table
                        ))
                    })?;
                    let stream_arn = t.stream_arn.clone().ok_or_else(|| {
                        Error::Other(format!(
                            "{}.{}: table {} has no stream",
                            f.logical_id, e.name, e.table
                        ))
                    })?;
                    let source = StreamSource {
                        stream_arn,
                        region: stack.region.clone(),
                        batch_size: e.batch_size.max(1) as usize,
                        starting_position: e.starting_position.clone(),
                        maximum_retry_attempts: e
                            .maximum_retry_attempts
                            .map(|n| n.clamp(0, 10_000) as u32),
                        bisect_batch_on_function_error: e.bisect_batch_on_function_error,
                        report_batch_item_failures: e.report_batch_item_failures,
                        on_failure_queue_url: e
                            .on_failure_queue
                            .as_ref()
                            .and_then(|q| stack.queues.get(q))
                            .map(|q| q.url.clone()),
                    };
                    tasks.push(esm::spawn_stream_poller(
                        &poller_sdk,
                        source,
                        function.clone(),
                        opts.esm.clone(),
                    ));
                }
                for e in f.schedule_events().filter(|e| e.enabled) {
                    let period = opts
                        .schedule_interval
                        .or_else(schedule::interval_from_env)
                        .or(e.interval);
                    let Some(interval) = period else {
                        tracing::warn!(function = %f.logical_id, event = %e.name,
                            expression = %e.expression, "schedule not run locally (only rate(...))");
                        continue;
                    };
                    let source = ScheduleSource {
                        rule_arn: format!(
                            "arn:aws:events:{}:{}:rule/{}-{}-{}",
                            stack.region, stack.account_id, stack.prefix, f.logical_id, e.name
                        ),
                        region: stack.region.clone(),
                        account_id: stack.account_id.clone(),
                        interval,
                    };
                    tasks.push(schedule::spawn_scheduler(source, function.clone()));
                }
            }
        }
        tracing::info!(prefix = %stack.prefix, %addr, tasks = tasks.len(), "local stack started");
        Ok(LocalStack {
            stack,
            sdk,
            addr,
            functions,
            shuffle_seed,
            alert_tap,
            psp,
            aws_proxy,
            tasks,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A function by logical id or binary name.
    pub fn function(&self, id_or_binary: &str) -> Option<&LocalFunction> {
        let id = self.stack.function(id_or_binary)?.logical_id.as_str();
        self.functions.get(id)
    }

    /// Invokes a function directly with a raw Lambda event.
    pub async fn invoke(
        &self,
        id_or_binary: &str,
        event: Value,
    ) -> std::result::Result<Value, InvokeError> {
        match self.function(id_or_binary) {
            Some(f) => f.invoke(event).await,
            None => Err(InvokeError::Failed(format!("no function {id_or_binary}"))),
        }
    }

    /// The AWS proxy, when [`LocalStackOptions::aws_proxy`] is on.
    pub fn aws_proxy(&self) -> Option<&AwsProxy> {
        self.aws_proxy.as_ref()
    }

    /// The invariant checker of this stack ([`crate::invariants`]).
    pub fn checker(&self) -> Checker {
        Checker::for_stack(&self.sdk, &self.stack).with_alert_tap(self.alert_tap.clone())
    }

    /// The sandbox provider's charges, as the invariant checker matches top-ups against
    /// them (`None` without the sandbox).
    pub fn provider_charges(&self) -> Option<Vec<crate::invariants::ProviderCharge>> {
        let sandbox = self.psp.as_ref()?;
        Some(
            sandbox
                .charges()
                .into_iter()
                .map(|c| crate::invariants::ProviderCharge {
                    charge_id: c.charge_id,
                    reference: c.reference,
                    amount: c.amount,
                    refunded_amount: c.refunded_amount,
                })
                .collect(),
        )
    }

    /// Order ids alerted on `OpsAlertsTopic` so far (empty without the tap).
    pub async fn alerted_orders(&self) -> Result<std::collections::BTreeSet<String>> {
        match &self.alert_tap {
            Some(t) => Ok(t.alerted_orders().await?),
            None => Ok(Default::default()),
        }
    }

    /// Stops the gateway and every poller.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.stop();
    }
}
