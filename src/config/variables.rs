//! The catalogue of every environment variable the reaper reads. The README
//! table, the infra wiring test and the reader all derive from it.

/// One environment variable the reaper reads.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// Default as the user would write it; empty when there is none.
    pub default: &'static str,
    pub meaning: &'static str,
}

/// A variable's default from the catalogue (empty when it has none): the
/// one place defaults are written, so the README, the module and the code
/// cannot disagree.
pub fn default_of(name: &str) -> &'static str {
    VARIABLES.iter().chain(CLI_VARIABLES).find(|v| v.name == name).map_or("", |v| v.default)
}

/// Every variable the reaper reads, in README order.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "LOCK_TABLES",
        default: "",
        meaning: "Comma-separated DynamoDB lock tables to scan: a bare name (the reaper's own account and region) \
            or a table ARN, which selects its region and account. At least one of `LOCK_TABLES` and `LOCK_BUCKETS` \
            is required.",
    },
    Variable {
        name: "LOCK_BUCKETS",
        default: "",
        meaning: "Comma-separated state buckets whose `*.tflock` lockfiles to scan (`use_lockfile = true`), each \
            `bucket[/prefix][@region[:account]]`, e.g. `tfstate/teams@eu-west-1:111111111111`; without `@` the \
            reaper's own region and account.",
    },
    Variable {
        name: "SOURCES_URI",
        default: "",
        meaning: "`s3://bucket/key` of a JSON document with more `LOCK_TABLES`, `LOCK_BUCKETS`, `ASSUME_ROLES`, \
            `ORGANIZATION_*` and `MEMBER_ROLE_NAME` entries (each a string or a list of strings), for sources past \
            Lambda's 4 KB environment without reading Organizations. Its lists are added to the environment's; \
            a bad entry is a configuration error naming the document. Read once per `DISCOVER_EVERY`.",
    },
    Variable {
        name: "ORGANIZATION_ACCOUNTS",
        default: "",
        meaning: "Discover lock tables in AWS Organizations member accounts: `all`, or comma-separated root \
            (`r-…`), OU (`ou-…-…`, counted recursively) and account IDs. Only `ACTIVE` accounts; the reaper's own \
            account is searched with its own credentials, every other through `MEMBER_ROLE_NAME`. Works beside \
            `LOCK_TABLES`/`LOCK_BUCKETS` (deduplicated). An account or region that fails is named in the report and \
            holds up nothing else.",
    },
    Variable {
        name: "ORGANIZATION_SKIP",
        default: "",
        meaning: "Comma-separated OU and account IDs to leave out of `ORGANIZATION_ACCOUNTS`, recursively.",
    },
    Variable {
        name: "ORGANIZATION_ROLE_ARN",
        default: "",
        meaning: "A role to read Organizations through (`ListRoots`, `ListOrganizationalUnitsForParent`, \
            `ListAccountsForParent`), when the reaper's account is neither the management account nor a delegated \
            administrator.",
    },
    Variable {
        name: "MEMBER_ROLE_NAME",
        default: "",
        meaning: "The role assumed in each member account `ORGANIZATION_ACCOUNTS` finds (`arn:<partition>:iam::\
            <account>:role/<name>`, with `ASSUME_ROLE_EXTERNAL_ID` when set). Required with \
            `ORGANIZATION_ACCOUNTS`.",
    },
    Variable {
        name: "DISCOVER_REGIONS",
        default: "",
        meaning: "Comma-separated regions discovery looks in (default: the reaper's own).",
    },
    Variable {
        name: "DISCOVER_TABLES",
        default: "",
        meaning: "Which tables discovery keeps: every table whose only key is `LockID` (S), Terraform's, whatever \
            its name; comma-separated name globs narrow it, e.g. `terraform-*,*-locks`. Also used by `list`, \
            `run`, `unlock` and `doctor` given no source at all (no `--table`/`--bucket`, no `LOCK_TABLES`/\
            `LOCK_BUCKETS`, no `ORGANIZATION_ACCOUNTS`): they search their own account and region.",
    },
    Variable {
        name: "DISCOVER_BUCKETS",
        default: "",
        meaning: "Which buckets of the accounts `ORGANIZATION_ACCOUNTS` finds hold lockfiles: comma-separated name \
            globs, each with an optional key prefix (`tfstate-*/teams/` keeps the `bucket/prefix` form), or \
            `tag:KEY=VALUE`; only buckets in the regions searched. Unset: no bucket.",
    },
    Variable {
        name: "DISCOVER_EVERY",
        default: "1h",
        meaning: "The Lambda discovers once per this long per warm container (a cold start discovers afresh); the \
            CLI discovers on every command.",
    },
    Variable {
        name: "STALE_AFTER",
        default: "2h",
        meaning: "Apply window: a lock older than this is stale (alerted on, eligible for action).",
    },
    Variable {
        name: "STALE_AFTER_OVERRIDES",
        default: "",
        meaning: "Per-path windows, `glob=duration` pairs over the state path (LockID; `<bucket>/<key>` for \
            lockfiles), first match wins, e.g. `tfstate/prod/*=6h,*/sandbox/*=30m`. `*` also matches `/`.",
    },
    Variable {
        name: "EXCLUDE",
        default: "",
        meaning: "Comma-separated globs over the state path (LockID; `<bucket>/<key>` for lockfiles): matching \
            locks are reported but never written to.",
    },
    Variable {
        name: "ACTION",
        default: "report",
        meaning: "`report` (write nothing), `ttl` (backfill a TTL attribute on stale locks) or `delete` (delete \
            stale locks older than `DELETE_AFTER`).",
    },
    Variable {
        name: "DRY_RUN",
        default: "false",
        meaning: "`true` shows what `ttl`/`delete` would do and writes nothing.",
    },
    Variable {
        name: "DELETE_AFTER",
        default: "",
        meaning: "Age at which `ACTION=delete` deletes a stale lock. Required for `delete`; must be at least every \
            stale window.",
    },
    Variable {
        name: "TTL_AFTER",
        default: "",
        meaning: "`ACTION=ttl` sets the TTL attribute to `Created + TTL_AFTER`. Required for `ttl`; must be at \
            least every stale window.",
    },
    Variable {
        name: "TTL_ATTRIBUTE",
        default: "ExpiresAt",
        meaning: "Name of the table's TTL attribute (epoch seconds).",
    },
    Variable {
        name: "HEARTBEAT_TIMEOUT",
        default: "10m",
        meaning: "The silence after which a heartbeating holder counts as dead. `exec` writes it on its lock as the \
            lock's liveness contract (unset, `exec` writes 90s in CI and 10m on a terminal); the reaper uses it for \
            a heartbeating lock that names no contract. Alive: never stale, never alerted on, never written to, \
            however old. Dead: stale at once, released by `RELEASE_DEAD_HEARTBEATS`, deleted at once with \
            `ACTION=delete`. Locks without a heartbeat are judged by age.",
    },
    Variable {
        name: "HEARTBEAT_TIMEOUT_MIN",
        default: "60s",
        meaning: "The shortest liveness contract honoured: a lock whose contract is shorter is judged by this \
            (the reaper, and a blocked `exec`).",
    },
    Variable {
        name: "HEARTBEAT_TIMEOUT_MAX",
        default: "1h",
        meaning: "The longest liveness contract honoured: a lock whose contract is longer is judged by this.",
    },
    Variable {
        name: "RELEASE_DEAD_HEARTBEATS",
        default: "true",
        meaning: "`true`: a lock whose holder heartbeated and then went silent past its contract is deleted in \
            every `ACTION` (conditioned on its exact `Info` and the heartbeat read; dry run, `EXCLUDE` and the \
            breaker still apply). The holder opted in by heartbeating; age alone deletes only with \
            `ACTION=delete`. `false`: dead heartbeats follow `ACTION`.",
    },
    Variable {
        name: "HEARTBEAT_ATTRIBUTE",
        default: "Heartbeat",
        meaning: "Lock-item attribute (epoch seconds) `exec` writes its heartbeat to, with the contract (seconds) \
            in `<HEARTBEAT_ATTRIBUTE>Timeout` beside it; lockfiles carry the object tags \
            `tf-lock-reaper-heartbeat` and `tf-lock-reaper-heartbeat-timeout` instead.",
    },
    Variable {
        name: "MAX_DELETES_PER_RUN",
        default: "5",
        meaning: "Breaker: a run that would delete more locks than this deletes none and reports the breaker \
            tripped.",
    },
    Variable {
        name: "ASSUME_ROLES",
        default: "",
        meaning: "Comma-separated role ARNs (`arn:aws:iam::<account>:role/<name>`), at most one per account: \
            sources in that account (a table ARN naming it, or `bucket@region:account`) are read and written with \
            that role (STS AssumeRole, session `tf-lock-reaper`, cached and refreshed). Sources in the reaper's own \
            account, or shared by a resource-based policy, need none.",
    },
    Variable {
        name: "ASSUME_ROLE_EXTERNAL_ID",
        default: "",
        meaning: "External ID passed to every AssumeRole of `ASSUME_ROLES`, when the member roles require one.",
    },
    Variable {
        name: "SOURCE_CONCURRENCY",
        default: "8",
        meaning: "Sources (tables and buckets) scanned at once (1-64). Each source's scan also ends at the pass's \
            deadline, so an unreachable account fails only its own sources.",
    },
    Variable { name: "SCAN_SEGMENTS", default: "1", meaning: "Parallel Scan segments per table (1-1000)." },
    Variable {
        name: "RUN_BUDGET",
        default: "50s",
        meaning: "Time budget of one pass: every AWS call gets a connect timeout of 3s, a per-attempt timeout of a \
            quarter of it (at most 10s) and a per-operation timeout of half of it (at most 30s), so a hung \
            dependency fails its source or notification and the pass still ends. The Lambda also uses it when the \
            invocation deadline is unknown (local emulators send one in 1970).",
    },
    Variable { name: "METRICS_NAMESPACE", default: "TerraformLocks", meaning: "CloudWatch namespace of the metrics." },
    Variable {
        name: "METRICS_SINK",
        default: "emf (Lambda), none (CLI)",
        meaning: "`emf` (Embedded Metric Format lines on stdout), `api` (PutMetricData) or `none`.",
    },
    Variable {
        name: "SNS_TOPIC_ARN",
        default: "",
        meaning: "Publish alerts to this SNS topic (subject, plain-text body, attributes `event`, `severity`, \
            `kind`, `alert_key`, `table` or `bucket`, `lock_id`).",
    },
    Variable {
        name: "CHAT_TOPIC_ARN",
        default: "",
        meaning: "Publish every alert event to this SNS topic as an Amazon Q Developer in chat applications \
            (formerly AWS Chatbot) custom notification, for Slack and Microsoft Teams channels: title, description, \
            the fix commands as next steps, threaded per alert (`threadId` = the alert key).",
    },
    Variable {
        name: "SLACK_WEBHOOK_URL_SECRET_ARN",
        default: "",
        meaning: "Secrets Manager secret holding a Slack incoming webhook URL, bare or as `{\"url\": \"...\"}`: \
            every alert event is posted there as Block Kit; read once per container.",
    },
    Variable {
        name: "SLACK_WEBHOOK_URL",
        default: "",
        meaning: "The webhook URL itself, for local use (prefer the secret in AWS). Set one of the two, not both.",
    },
    Variable {
        name: "PAGERDUTY_ROUTING_KEY_SECRET_ARN",
        default: "",
        meaning: "Secrets Manager secret holding the PagerDuty Events v2 routing key, bare or as `{\"routing_key\": \
            \"...\"}`; read once per container.",
    },
    Variable {
        name: "PAGERDUTY_ROUTING_KEY",
        default: "",
        meaning: "The routing key itself, for local use (prefer the secret in AWS). Set one of the two, not both.",
    },
    Variable {
        name: "PAGERDUTY_EVENTS_URL",
        default: "https://events.pagerduty.com",
        meaning: "PagerDuty Events API base URL (`/v2/enqueue` and `/v2/change/enqueue` are appended).",
    },
    Variable {
        name: "PAGERDUTY_SEVERITY",
        default: "warning",
        meaning: "Severity of a stale-lock alert: `critical`, `error`, `warning` or `info`. A lock past \
            `DELETE_AFTER` that is still there is always `critical`.",
    },
    Variable {
        name: "NOTIFY_STATE_TABLE",
        default: "",
        meaning: "DynamoDB table (hash key `AlertKey` (S), TTL on `ExpiresAt`) that makes alerts notify once and \
            resolve; without it the reaper is stateless.",
    },
    Variable {
        name: "RUNBOOK_URL",
        default: "https://tf-lock-reaper.github.io/tf-lock-reaper/runbook.html",
        meaning: "The runbook every alert links to, at its kind's section (`#lock-stale`, `#breaker-tripped`, …): \
            PagerDuty `links` and `custom_details.runbook`, the SNS text, chat and Slack. Point it at your own copy \
            of the page; empty: no link.",
    },
    Variable {
        name: "ALERT_GROUP_OVER",
        default: "10",
        meaning: "When more stale locks than this would open alerts in one source in one run, open one grouped \
            alert for that source instead (count, oldest age, the 20 oldest with their fix commands); it resolves \
            when none of them is stale, and new stale locks alert on their own again once that backlog is no longer \
            above this (0-100000).",
    },
    Variable {
        name: "RENOTIFY_AFTER",
        default: "",
        meaning: "With a state table: re-send an open alert as a reminder this long after it was last sent. Unset: \
            never remind.",
    },
];

/// Variables only the CLI reads (`exec`): the scheduled reaper never reads
/// them, so the Terraform module does not set them.
pub const CLI_VARIABLES: &[Variable] = &[
    Variable {
        name: "HEARTBEAT_EVERY",
        default: "30s",
        meaning: "`exec`: how often to heartbeat the lock the command holds, at most half of `HEARTBEAT_TIMEOUT`. \
        Unset: 15s in CI (`CI=true`, `GITHUB_ACTIONS`, `GITLAB_CI`, `BUILDKITE`, `JENKINS_URL`, `TF_BUILD`, \
        `CODEBUILD_BUILD_ID` or `CIRCLECI` set), 30s on a terminal, and at most a quarter of `HEARTBEAT_TIMEOUT`.",
    },
    Variable {
        name: "TF_LOCK_REAPER_JOB_RECORDS",
        default: "",
        meaning: "`exec` and `release --job`: an absolute directory where each `exec` of a CI job notes where it \
            recorded its locks, so one `release --job` at the end releases them all, whatever directory each \
            command ran in. The GitHub Action sets it. Unset: each record is found from its own directory only.",
    },
];
