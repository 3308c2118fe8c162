//! The one place that builds adapters from a [`Config`] and an SDK
//! configuration, and the pipeline over them. Both entrypoints call it. The
//! SDK reads `AWS_REGION`, `AWS_ENDPOINT_URL` and the usual credential
//! chain itself.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use aws_credential_types::provider::ProvideCredentials;

use crate::adapters::aws_error::{credentials_cause, CREDENTIAL_CHAIN};
use crate::adapters::clock_probe::ClockProbe;
use crate::adapters::cloudwatch::ApiSink;
use crate::adapters::dynamodb_alert_state::DynamoAlertState;
use crate::adapters::dynamodb_inspect::DynamoTableInspector;
use crate::adapters::dynamodb_locks::DynamoLockTables;
use crate::adapters::emf::EmfSink;
use crate::adapters::organizations::OrganizationsReader;
use crate::adapters::pagerduty::{PagerDutyNotifier, RetryPolicy};
use crate::adapters::routing::{route_of, Route, Router};
use crate::adapters::s3_inspect::S3BucketInspector;
use crate::adapters::s3_lockfiles::S3LockfileBuckets;
use crate::adapters::secrets_manager::{read_routing_key, read_webhook_url, SecretError};
use crate::adapters::slack::SlackNotifier;
use crate::adapters::sns::SnsNotifier;
use crate::adapters::tokio_timer::TokioTimer;
use crate::config::document::parse_uri;
use crate::config::notify::{NotifyConfig, RoutingKeySource, WebhookSource};
use crate::config::{AssumeRole, Config, ConfigError, DoctorSettings, EntrypointDefaults, MetricsSinkKind, Problem};
use crate::discovery::Discovered;
use crate::domain::alert::AlertSettings;
use crate::domain::backend::BackendConnection;
use crate::domain::decision::Action;
use crate::domain::discovery::{FoundTables, NameFilter};
use crate::domain::source::SourceAddress;
use crate::exec::holder::Stores;
use crate::pipeline::notify::Dispatcher;
use crate::pipeline::preconditions::TtlPrecondition;
use crate::pipeline::Reaper;
use crate::ports::alert_state::AlertState;
use crate::ports::clock::{AwsClock, Clock, SystemClock};
use crate::ports::discovery::{BucketCatalog, Catalogs, TableCatalog};
use crate::ports::inspect::{BucketInspector, TableInspector};
use crate::ports::lock_tables::LockTables;
use crate::ports::lockfiles::LockfileBuckets;
use crate::ports::metrics::{MetricsSink, NoMetrics};
use crate::ports::notifier::Notifier;
use crate::ports::SourceError;
use crate::support::secret::Secret;

/// Why the adapters could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// A variable names something that cannot be used (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client for PagerDuty or Slack could not be built (TLS setup); no
    /// variable is at fault.
    #[error("cannot build the HTTP client for PagerDuty or Slack: {0}")]
    HttpClient(String),
    /// `SOURCES_URI` names a document that cannot be read (the text says why).
    #[error("{0}")]
    SourcesDocument(String),
}

impl WiringError {
    /// Exit status: 2 for bad configuration, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            WiringError::Config(_) => 2,
            WiringError::HttpClient(_) | WiringError::SourcesDocument(_) => 1,
        }
    }
}

/// The SDK configuration: the standard retry policy, and timeouts derived
/// from the pass's time budget (see [`timeouts`]).
pub(crate) async fn sdk_config(budget: Duration) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(budget))
        .http_client(https_client())
        .identity_cache(IdentityCache::lazy().max_partitions(ROLES_CACHED).build())
        .load()
        .await
}

/// Credentials kept at once: one set per role (each member account's) and
/// the reaper's own. The SDK keeps 64 by default and evicts past that, so
/// an organisation of hundreds of accounts assumed each role again for
/// every client and every pass (646 AssumeRole calls for 201 accounts);
/// an entry is a few hundred bytes.
const ROLES_CACHED: usize = 20_000;

/// One HTTPS client (its connection pool and TLS roots) for every SDK
/// client built from one configuration: left to each, an organisation's
/// hundreds of routes would each load their own. As the SDK's default:
/// rustls on aws-lc, the proxy from the environment.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, runtime_components| {
        if settings.is_none() && runtime_components.is_none() {
            // The SDK's check at every client's construction, whose connector
            // it throws away (it only wants the TLS roots loaded early). A
            // real connector parses every root certificate: a quarter of an
            // organisation pass's CPU went there, once per client. The
            // connectors requests use are built below, once per timeout
            // setting, and cached by the HTTP client.
            return ConnectorBuilder::default().build_http();
        }
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Every AWS call ends in time, whatever the other side does: a server that
/// accepts the connection and never answers fails that call (and with it
/// that source or notification), not the whole pass. A per-attempt timeout
/// leaves room for the SDK's retries inside the per-operation one.
pub fn timeouts(budget: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3).min(budget))
        .operation_attempt_timeout((budget / 4).min(Duration::from_secs(10)))
        .operation_timeout((budget / 2).min(Duration::from_secs(30)))
        .build()
}

/// This process's reading of AWS's clock: one machine, one offset, measured
/// by every client below from the responses it receives anyway.
static AWS_CLOCK: std::sync::LazyLock<AwsClock> = std::sync::LazyLock::new(AwsClock::default);

/// AWS's clock as this process measures it (the pipeline's, `exec`'s and `doctor`'s).
pub(crate) fn aws_clock() -> AwsClock {
    AWS_CLOCK.clone()
}

/// The interceptor that feeds [`aws_clock`]; every client gets one.
fn probe() -> ClockProbe {
    ClockProbe::new(Arc::clone(AWS_CLOCK.offset()))
}

/// DynamoDB client that measures the clock, on the regional endpoint.
/// The SDK's default, account-based endpoints, give each account its own
/// host (`<account>.ddb.<region>.amazonaws.com`) and so its own TLS
/// connection: a pass over an organisation's hundreds of member accounts
/// would open and handshake one per account and region, each costing more
/// CPU than the calls it carries, where the regional host keeps a few
/// connections per region for all of them.
fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
        .account_id_endpoint_mode(aws_types::endpoint_config::AccountIdEndpointMode::Disabled)
        .interceptor(probe())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// S3 client: path-style addressing when an endpoint override is set (local
/// servers such as moto cannot do virtual-hosted buckets), AWS's default otherwise.
pub(crate) fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .interceptor(probe())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn sns_client(sdk: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(aws_sdk_sns::config::Builder::from(sdk).interceptor(probe()).build())
}

fn secrets_client(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::from(sdk).interceptor(probe()).build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// The lock stores of a Terraform backend, as `exec` and `release` reach
/// it: the backend's region, profile and endpoint overrides (what
/// Terraform itself uses), credentials from the environment's chain.
pub(crate) async fn backend_stores(connection: &BackendConnection, budget: Duration) -> Stores {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts(budget));
    if let Some(region) = &connection.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &connection.profile {
        loader = loader.profile_name(profile);
    }
    let sdk = loader.load().await;
    let mut dynamo = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(probe());
    if let Some(url) = &connection.dynamodb_endpoint {
        dynamo = dynamo.endpoint_url(url);
    }
    let s3_endpoint = connection.s3_endpoint.as_deref().or(sdk.endpoint_url());
    let mut s3 = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(connection.use_path_style || sdk.endpoint_url().is_some())
        .interceptor(probe());
    if let Some(url) = s3_endpoint {
        s3 = s3.endpoint_url(url);
    }
    let dynamo_url = connection.dynamodb_endpoint.as_deref().or(sdk.endpoint_url());
    Stores {
        tables: Arc::new(
            DynamoLockTables::new(aws_sdk_dynamodb::Client::from_conf(dynamo.build())).with_endpoint_url(dynamo_url),
        ),
        lockfiles: Arc::new(
            S3LockfileBuckets::new(aws_sdk_s3::Client::from_conf(s3.build())).with_endpoint_url(s3_endpoint),
        ),
    }
}

/// What `doctor` reads tables and buckets with: one client per (region,
/// role) its sources need, like a run's.
pub(crate) async fn inspectors(
    settings: &DoctorSettings,
    clients: &RouteClients,
) -> (Arc<dyn TableInspector>, Arc<dyn BucketInspector>) {
    let sources = Sources {
        tables: &settings.tables,
        buckets: &settings.buckets,
        roles: &settings.assume_roles,
        external_id: settings.assume_role_external_id.as_deref(),
    };
    let clients = SourceClients::build(&sources, clients).await;
    (Arc::new(clients.inspectors), Arc::new(clients.bucket_inspectors))
}

/// That the SDK's credential chain yields credentials, checked once before
/// any source is read: without them every source would fail alike. The
/// error is one readable line naming the providers tried.
pub(crate) async fn check_credentials(sdk: &SdkConfig) -> Result<(), String> {
    let Some(provider) = sdk.credentials_provider() else {
        return Err(format!("no AWS credentials provider is configured (the SDK tries {CREDENTIAL_CHAIN})"));
    };
    provider.provide_credentials().await.map(|_| ()).map_err(|e| {
        tracing::debug!(error = ?e, "loading credentials failed");
        credentials_cause(&e)
    })
}

/// Every adapter a pass uses, built once (per container in the Lambda).
#[derive(Clone)]
pub(crate) struct Adapters {
    pub tables: Arc<dyn LockTables>,
    pub lockfiles: Arc<dyn LockfileBuckets>,
    pub metrics: Arc<dyn MetricsSink>,
    pub dispatcher: Arc<Dispatcher>,
    /// With `ACTION=ttl`: the TTL check, remembered across runs.
    pub ttl_precondition: Option<Arc<TtlPrecondition>>,
    /// The SDK clients behind the sources, for the next sources.
    pub clients: RouteClients,
}

impl Adapters {
    /// The lock sources only: no metrics, no notifications (`list`, `unlock`).
    pub(crate) async fn sources_only(config: &Config, clients: &RouteClients) -> Self {
        Adapters::over(config, clients, Arc::new(NoMetrics), Arc::new(Dispatcher::disabled()), false).await
    }

    /// Everything a scheduled pass needs; `notify: false` sends nothing
    /// (`run --no-notify`). Reads the PagerDuty routing key secret here, once.
    pub(crate) async fn for_run(config: &Config, clients: &RouteClients, notify: bool) -> Result<Self, WiringError> {
        let sdk = clients.sdk();
        let dispatcher = if notify {
            // The state table shares the reaper's own DynamoDB client with its lock tables.
            dispatcher(&config.notify, sdk, &clients.dynamodb(&Route::own(), None).await).await?
        } else {
            Dispatcher::disabled()
        };
        let metrics = metrics_sink(config.metrics_sink, sdk);
        Ok(Adapters::over(config, clients, metrics, Arc::new(dispatcher), true).await)
    }

    /// The same notifications and metrics over other sources (the Lambda
    /// after a discovery): the PagerDuty key and webhook are not read again,
    /// and the SDK clients of routes already served are reused.
    pub(crate) async fn with_sources(&self, config: &Config) -> Adapters {
        let (metrics, dispatcher) = (Arc::clone(&self.metrics), Arc::clone(&self.dispatcher));
        Adapters::over(config, &self.clients, metrics, dispatcher, true).await
    }

    /// The configuration's sources over `clients`; with `ACTION=ttl` and
    /// `ttl_check`, the TTL check over them.
    async fn over(
        config: &Config,
        clients: &RouteClients,
        metrics: Arc<dyn MetricsSink>,
        dispatcher: Arc<Dispatcher>,
        ttl_check: bool,
    ) -> Adapters {
        let sources = SourceClients::build(&Sources::of(config), clients).await;
        let inspectors = sources.inspectors;
        let ttl_precondition = (ttl_check && config.action == Action::Ttl)
            .then(|| Arc::new(TtlPrecondition::new(Arc::new(inspectors), &config.ttl_attribute)));
        Adapters {
            tables: Arc::new(sources.tables),
            lockfiles: Arc::new(sources.lockfiles),
            metrics,
            dispatcher,
            ttl_precondition,
            clients: clients.clone(),
        }
    }

    /// The pipeline over these adapters, for one configuration.
    pub(crate) fn reaper(&self, config: Config) -> Reaper {
        let reaper = Reaper::new(config, Arc::clone(&self.tables), Arc::clone(&self.lockfiles))
            .with_metrics(Arc::clone(&self.metrics))
            .with_dispatcher(Arc::clone(&self.dispatcher))
            .with_timer(Arc::new(TokioTimer))
            .with_clock(Arc::new(aws_clock()));
        match &self.ttl_precondition {
            Some(p) => reaper.with_ttl_precondition(Arc::clone(p)),
            None => reaper,
        }
    }
}

/// The sources and roles clients are built for.
struct Sources<'a> {
    tables: &'a [SourceAddress],
    buckets: &'a [SourceAddress],
    roles: &'a [AssumeRole],
    external_id: Option<&'a str>,
}

impl<'a> Sources<'a> {
    fn of(config: &'a Config) -> Self {
        Sources {
            tables: &config.tables,
            buckets: &config.buckets,
            roles: &config.assume_roles,
            external_id: config.assume_role_external_id.as_deref(),
        }
    }
}

/// One client per (region, credentials) the sources need, built once (per
/// container), behind routers that implement the ports.
struct SourceClients {
    tables: Router<DynamoLockTables>,
    lockfiles: Router<S3LockfileBuckets>,
    inspectors: Router<DynamoTableInspector>,
    bucket_inspectors: Router<S3BucketInspector>,
}

impl SourceClients {
    async fn build(sources: &Sources<'_>, clients: &RouteClients) -> Self {
        let roles: HashMap<String, String> = sources.roles.iter().map(|r| (r.account.clone(), r.arn.clone())).collect();
        // A DynamoDB client only where tables are, an S3 client only where
        // buckets are: an organisation's hundreds of routes stay small.
        let table_routes: BTreeSet<Route> = sources.tables.iter().map(|at| route_of(&roles, at)).collect();
        let bucket_routes: BTreeSet<Route> = sources.buckets.iter().map(|at| route_of(&roles, at)).collect();
        let mut routes: BTreeSet<Route> = BTreeSet::from([Route::own()]);
        routes.extend(table_routes.iter().chain(&bucket_routes).cloned());
        let (mut tables, mut lockfiles, mut inspectors, mut bucket_inspectors) =
            (HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new());
        let url = clients.sdk().endpoint_url();
        for route in routes {
            let own = route == Route::own();
            if own || table_routes.contains(&route) {
                let dynamodb = clients.dynamodb(&route, sources.external_id).await;
                tables.insert(route.clone(), DynamoLockTables::new(dynamodb.clone()).with_endpoint_url(url));
                inspectors.insert(route.clone(), DynamoTableInspector::new(dynamodb).with_endpoint_url(url));
            }
            if own || bucket_routes.contains(&route) {
                let s3 = clients.s3(&route, sources.external_id).await;
                bucket_inspectors.insert(route.clone(), S3BucketInspector::new(s3.clone()).with_endpoint_url(url));
                lockfiles.insert(route, S3LockfileBuckets::new(s3).with_endpoint_url(url));
            }
        }
        SourceClients {
            tables: Router::new(tables, roles.clone()),
            lockfiles: Router::new(lockfiles, roles.clone()),
            inspectors: Router::new(inspectors, roles.clone()),
            bucket_inspectors: Router::new(bucket_inspectors, roles),
        }
    }
}

/// The SDK clients of one base configuration, one per (route, service),
/// built on first use and shared from then on: by discovery and the pass
/// after it, by every pass of a warm container, and by the notify-once
/// state table (the reaper's own DynamoDB client). An organisation has
/// hundreds of routes, and building a client is not free. A route naming
/// the reaper's own region is the route without one: the same client.
#[derive(Clone)]
pub(crate) struct RouteClients(Arc<RouteClientsInner>);

/// A route and the external ID its role is assumed with.
type RouteKey = (Route, Option<String>);

struct RouteClientsInner {
    sdk: SdkConfig,
    dynamodb: std::sync::Mutex<HashMap<RouteKey, aws_sdk_dynamodb::Client>>,
    s3: std::sync::Mutex<HashMap<RouteKey, aws_sdk_s3::Client>>,
}

impl RouteClients {
    pub(crate) fn new(sdk: &SdkConfig) -> Self {
        RouteClients(Arc::new(RouteClientsInner {
            sdk: sdk.clone(),
            dynamodb: Default::default(),
            s3: Default::default(),
        }))
    }

    /// The base configuration: the reaper's own region and credentials.
    pub(crate) fn sdk(&self) -> &SdkConfig {
        &self.0.sdk
    }

    /// The key of a route's clients: its own region spelt out is no region,
    /// and the external ID counts only where a role is assumed (the
    /// reaper's own credentials get one client, the state table's too).
    fn key(&self, route: &Route, external_id: Option<&str>) -> RouteKey {
        let own_region = self.0.sdk.region().map(|r| r.as_ref());
        let region = route.region.clone().filter(|r| Some(r.as_str()) != own_region);
        let external_id = route.role.as_ref().and(external_id).map(str::to_string);
        (Route { region, role: route.role.clone() }, external_id)
    }

    /// The DynamoDB client of `route` (see [`dynamodb_client`]).
    pub(crate) async fn dynamodb(&self, route: &Route, external_id: Option<&str>) -> aws_sdk_dynamodb::Client {
        self.client(&self.0.dynamodb, route, external_id, dynamodb_client).await
    }

    /// The S3 client of `route` (see [`s3_client`]).
    pub(crate) async fn s3(&self, route: &Route, external_id: Option<&str>) -> aws_sdk_s3::Client {
        self.client(&self.0.s3, route, external_id, s3_client).await
    }

    /// `route`'s client from `clients`, built with `build` the first time.
    async fn client<C: Clone>(
        &self,
        clients: &std::sync::Mutex<HashMap<RouteKey, C>>,
        route: &Route,
        external_id: Option<&str>,
        build: fn(&SdkConfig) -> C,
    ) -> C {
        let key = self.key(route, external_id);
        if let Some(client) = crate::support::sync::locked(clients).get(&key) {
            return client.clone();
        }
        let client = build(&route_sdk(&self.0.sdk, &key.0, key.1.as_deref()).await);
        crate::support::sync::locked(clients).entry(key).or_insert(client).clone()
    }
}

/// The SDK configuration of one route: its region, and the role's
/// credentials (STS AssumeRole, session `tf-lock-reaper`, cached and
/// refreshed by the SDK).
async fn route_sdk(sdk: &SdkConfig, route: &Route, external_id: Option<&str>) -> SdkConfig {
    let mut conf = sdk.to_builder();
    if let Some(region) = &route.region {
        conf.set_region(Some(aws_config::Region::new(region.clone())));
    }
    if let Some(role) = &route.role {
        conf.set_credentials_provider(Some(role_credentials(sdk, role, external_id).await));
    }
    conf.build()
}

/// Who a role's credentials are for: the role, the external ID, and the
/// STS endpoint they come from.
type RoleKey = (String, Option<String>, Option<String>);

/// One credentials provider per role for the whole process: every region's
/// clients of an account, discovery's and the pass's, share it, and with it
/// the SDK's identity cache (shared by every configuration derived from the
/// base one), so a role is assumed once until its credentials expire, not
/// once per client.
static ROLE_CREDENTIALS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<RoleKey, aws_credential_types::provider::SharedCredentialsProvider>>,
> = std::sync::LazyLock::new(Default::default);

async fn role_credentials(
    sdk: &SdkConfig,
    role: &str,
    external_id: Option<&str>,
) -> aws_credential_types::provider::SharedCredentialsProvider {
    let key = (role.to_string(), external_id.map(str::to_string), sdk.endpoint_url().map(str::to_string));
    if let Some(p) = crate::support::sync::locked(&ROLE_CREDENTIALS).get(&key) {
        return p.clone();
    }
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(role).session_name("tf-lock-reaper").configure(sdk);
    if let Some(id) = external_id {
        provider = provider.external_id(id);
    }
    let shared = aws_credential_types::provider::SharedCredentialsProvider::new(provider.build().await);
    crate::support::sync::locked(&ROLE_CREDENTIALS).entry(key).or_insert(shared).clone()
}

/// The configuration from `vars`, with the sources document merged in when
/// `SOURCES_URI` names one (read with the reaper's own credentials).
pub async fn load_config(vars: &HashMap<String, String>, defaults: EntrypointDefaults) -> Result<Config, WiringError> {
    let uri = vars.get("SOURCES_URI").map(|u| u.trim()).filter(|u| !u.is_empty());
    let Some((uri, (bucket, key))) = uri.and_then(|u| parse_uri(u).map(|parsed| (u, parsed))) else {
        // No document, or a URI the configuration reports as a problem.
        return Ok(Config::from_vars(vars, defaults)?);
    };
    let budget = vars
        .get("RUN_BUDGET")
        .and_then(|b| humantime::parse_duration(b.trim()).ok())
        .filter(|b| !b.is_zero())
        .unwrap_or(Duration::from_secs(50));
    let sdk = sdk_config(budget).await;
    let client = s3_client(&sdk);
    let read = client.get_object().bucket(&bucket).key(&key).send().await;
    let text = match read {
        Ok(out) => out
            .body
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.into_bytes()).into_owned())
            .map_err(|e| e.to_string()),
        Err(e) => Err(crate::adapters::aws_error::Origin::new(
            "s3",
            sdk.region().map(|r| r.as_ref()),
            sdk.timeout_config(),
            None,
        )
        .with_endpoint_url(sdk.endpoint_url())
        .explain("GetObject", "s3:GetObject", uri, &e)
        .message),
    };
    let text = text.map_err(|why| {
        WiringError::SourcesDocument(format!("cannot read the sources document SOURCES_URI {uri}: {why}"))
    })?;
    Ok(Config::with_sources_document(vars, uri, &text, defaults)?)
}

/// The lock tables of the SDK configuration's own account and region,
/// found by their key schema (`list`, `run`, `unlock` and `doctor` given
/// no source).
pub(crate) async fn own_lock_tables(sdk: &SdkConfig, filter: &NameFilter) -> Result<FoundTables, SourceError> {
    let catalog = DynamoTableInspector::new(dynamodb_client(sdk)).with_endpoint_url(sdk.endpoint_url());
    crate::discovery::lock_tables(&catalog, filter).await
}

/// Discovery's view of AWS: who the reaper is, and a table catalog per
/// (role, region), over the route clients the pass then reads the sources
/// found with.
struct DiscoveryClients {
    clients: RouteClients,
    external_id: Option<String>,
}

#[async_trait::async_trait]
impl Catalogs for DiscoveryClients {
    async fn whoami(&self) -> Result<(String, String), SourceError> {
        let conf = aws_sdk_sts::config::Builder::from(self.clients.sdk()).interceptor(probe()).build();
        crate::adapters::organizations::whoami(&aws_sdk_sts::Client::from_conf(conf)).await
    }

    fn own_region(&self) -> Option<String> {
        self.clients.sdk().region().map(|r| r.to_string())
    }

    async fn catalog(&self, role: Option<&str>, region: &str) -> Box<dyn TableCatalog> {
        let route = Route { region: Some(region.to_string()), role: role.map(str::to_string) };
        let client = self.clients.dynamodb(&route, self.external_id.as_deref()).await;
        Box::new(DynamoTableInspector::new(client).with_endpoint_url(self.clients.sdk().endpoint_url()))
    }

    async fn buckets(&self, role: Option<&str>) -> Box<dyn BucketCatalog> {
        let route = Route { region: None, role: role.map(str::to_string) };
        let client = self.clients.s3(&route, self.external_id.as_deref()).await;
        Box::new(S3BucketInspector::new(client).with_endpoint_url(self.clients.sdk().endpoint_url()))
    }
}

/// Discover lock tables across the organisation, when the configuration
/// asks for it: the organisation is read through `ORGANIZATION_ROLE_ARN`
/// when set, each member account through `MEMBER_ROLE_NAME`.
pub(crate) async fn discover(config: &Config, clients: &RouteClients) -> Option<Discovered> {
    let org = config.organization.as_ref()?;
    let external_id = config.assume_role_external_id.clone();
    let reader_route = Route { region: None, role: org.organization_role_arn.clone() };
    let reader_sdk = route_sdk(clients.sdk(), &reader_route, external_id.as_deref()).await;
    let conf = aws_sdk_organizations::config::Builder::from(&reader_sdk).interceptor(probe()).build();
    let reader = OrganizationsReader::new(aws_sdk_organizations::Client::from_conf(conf))
        .with_endpoint_url(reader_sdk.endpoint_url());
    let catalogs = DiscoveryClients { clients: clients.clone(), external_id };
    let mut found = crate::discovery::organization(org, &reader, &catalogs).await;
    found.summary.discovered_at = aws_clock().aws_now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Some(found)
}

/// The metrics sink the configuration asks for.
pub(crate) fn metrics_sink(kind: MetricsSinkKind, sdk: &SdkConfig) -> Arc<dyn MetricsSink> {
    match kind {
        MetricsSinkKind::Emf => Arc::new(EmfSink::new(std::io::stdout())),
        MetricsSinkKind::Api => {
            let conf = aws_sdk_cloudwatch::config::Builder::from(sdk).interceptor(probe()).build();
            Arc::new(ApiSink::new(aws_sdk_cloudwatch::Client::from_conf(conf)).with_endpoint_url(sdk.endpoint_url()))
        }
        MetricsSinkKind::None => Arc::new(NoMetrics),
    }
}

/// The routing key held by a Secrets Manager secret. Failure is a
/// configuration error naming the variable (the key itself is never echoed).
pub async fn routing_key_from_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<Secret, ConfigError> {
    routing_key_via(client, None, arn).await
}

/// [`routing_key_from_secret`], naming an endpoint override in its errors.
async fn routing_key_via(
    client: &aws_sdk_secretsmanager::Client,
    endpoint_url: Option<&str>,
    arn: &str,
) -> Result<Secret, ConfigError> {
    read_routing_key(client, endpoint_url, arn)
        .await
        .map_err(|e| secret_problem("PAGERDUTY_ROUTING_KEY_SECRET_ARN", arn, e))
}

/// A secret that cannot be read or used: a configuration error naming the
/// variable and the secret ARN (never the value).
fn secret_problem(variable: &str, arn: &str, e: SecretError) -> ConfigError {
    ConfigError { problems: vec![Problem { variable: variable.into(), value: arn.to_string(), expected: e.0 }] }
}

/// Each request to the Slack webhook (connect included).
const SLACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The notification channels and state the configuration asks for.
async fn dispatcher(
    n: &NotifyConfig,
    sdk: &SdkConfig,
    dynamodb: &aws_sdk_dynamodb::Client,
) -> Result<Dispatcher, WiringError> {
    let mut notifiers: Vec<Box<dyn Notifier>> = Vec::new();
    if let Some(arn) = &n.sns_topic_arn {
        let sns = SnsNotifier::new(sns_client(sdk), arn.clone()).with_endpoint_url(sdk.endpoint_url());
        notifiers.push(Box::new(sns));
    }
    if let Some(arn) = &n.chat_topic_arn {
        let chat = SnsNotifier::chat(sns_client(sdk), arn.clone()).with_endpoint_url(sdk.endpoint_url());
        notifiers.push(Box::new(chat));
    }
    if let Some(source) = &n.slack_webhook {
        let url = match source {
            WebhookSource::Plain(url) => url.clone(),
            WebhookSource::SecretArn(arn) => {
                let client = secrets_client(sdk);
                read_webhook_url(&client, sdk.endpoint_url(), arn)
                    .await
                    .map_err(|e| secret_problem("SLACK_WEBHOOK_URL_SECRET_ARN", arn, e))?
            }
        };
        let slack = SlackNotifier::new(url, RetryPolicy::default(), SLACK_TIMEOUT, Box::new(SystemClock))
            .map_err(|e| WiringError::HttpClient(e.0))?;
        notifiers.push(Box::new(slack));
    }
    if let Some(pd) = &n.pagerduty {
        let key = match &pd.routing_key {
            RoutingKeySource::Plain(k) => k.clone(),
            RoutingKeySource::SecretArn(arn) => routing_key_via(&secrets_client(sdk), sdk.endpoint_url(), arn).await?,
        };
        let notifier = PagerDutyNotifier::new(&pd.events_url, key, RetryPolicy::default(), Box::new(SystemClock))
            .map_err(|e| WiringError::HttpClient(e.0))?;
        notifiers.push(Box::new(notifier));
    }
    let state: Option<Box<dyn AlertState>> = n.state_table.as_ref().map(|t| {
        let state = DynamoAlertState::new(dynamodb.clone(), t.clone()).with_endpoint_url(sdk.endpoint_url());
        Box::new(state) as Box<dyn AlertState>
    });
    Ok(Dispatcher {
        notifiers,
        state,
        renotify_after: n.renotify_after,
        settings: AlertSettings { severity: n.severity, group_over: n.group_over, runbook_url: n.runbook_url.clone() },
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_credential_types::Credentials;
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;

    use super::*;

    /// Records the URL a request would go to and stops it there: no
    /// network. (An SDK-level capture: which endpoint the SDK resolves for
    /// real AWS is not observable against a local server, which overrides
    /// the endpoint.)
    #[derive(Debug, Clone, Default)]
    struct Destination(Arc<Mutex<Option<String>>>);

    impl Intercept for Destination {
        fn name(&self) -> &'static str {
            "Destination"
        }
        fn read_before_transmit(
            &self,
            ctx: &BeforeTransmitInterceptorContextRef<'_>,
            _rc: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            *crate::support::sync::locked(&self.0) = Some(ctx.request().uri().to_string());
            Err("captured".into())
        }
    }

    /// The host a `ListTables` of `client` goes to.
    async fn host_of(client: &aws_sdk_dynamodb::Client) -> String {
        let seen = Destination::default();
        let conf = client.config().to_builder().interceptor(seen.clone()).build();
        let _ = aws_sdk_dynamodb::Client::from_conf(conf).list_tables().send().await;
        let url = crate::support::sync::locked(&seen.0).clone().expect("a request was made");
        url.split('/').nth(2).unwrap_or_default().to_string()
    }

    /// An account's credentials (as AssumeRole returns them: with the
    /// account ID) in eu-west-1, no endpoint override.
    async fn as_account(account: &str) -> SdkConfig {
        let credentials = Credentials::builder()
            .access_key_id("AKIDEXAMPLE")
            .secret_access_key("secret")
            .account_id(account)
            .provider_name("test")
            .build();
        let mut conf = sdk_config(Duration::from_secs(5)).await.to_builder();
        conf.set_endpoint_url(None);
        conf.set_region(Some(aws_config::Region::new("eu-west-1")));
        conf.set_credentials_provider(Some(SharedCredentialsProvider::new(credentials)));
        conf.build()
    }

    #[tokio::test]
    async fn every_account_reaches_dynamodb_through_one_regional_host() {
        for account in ["111111111111", "222222222222"] {
            let conf = as_account(account).await;
            assert_eq!(host_of(&dynamodb_client(&conf)).await, "dynamodb.eu-west-1.amazonaws.com");
            // The SDK's default would give each account a host (and a TLS connection) of its own.
            let default = aws_sdk_dynamodb::Client::new(&conf);
            assert_eq!(host_of(&default).await, format!("{account}.ddb.eu-west-1.amazonaws.com"));
        }
    }
}
