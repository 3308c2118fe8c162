//! Alerts for chat channels, as plain JSON: the custom notification Amazon Q
//! Developer in chat applications (formerly AWS Chatbot) shows in Slack and
//! Microsoft Teams (it drops SNS messages it does not recognise), and Slack
//! Block Kit for an incoming webhook. Both carry what the SNS text and the
//! PagerDuty page carry: what, age and window (or silence), who, operation,
//! lock ID, account and region, and the exact fix commands.
//!
//! Everything from a lock is untrusted: already cleaned and capped by the
//! message builders, it is shown here only inside code spans or code blocks
//! (where chat markdown is not interpreted), with the characters that could
//! close them or start a mention replaced, and every field is capped to the
//! limits below whatever the lock holds.

use serde_json::{json, Value};

use crate::alert::text::cap;
use crate::alert::{AlertKind, Event, Message, Severity};
use crate::lock::SourceKind;

/// Field limits of a custom notification. The service documents the schema;
/// these caps are kept below what Slack and Teams render in one message
/// (Slack: 3000 characters in a section), so nothing is cut by the channel.
pub const TITLE_MAX: usize = 250;
pub const DESCRIPTION_MAX: usize = 2900;
pub const NEXT_STEPS_MAX: usize = 5;
pub const NEXT_STEP_MAX: usize = 900;
pub const KEYWORDS_MAX: usize = 5;
pub const KEYWORD_MAX: usize = 64;
pub const SUMMARY_MAX: usize = 250;

/// An https URL with a host (http only to loopback, for local receivers):
/// what a chat webhook may be.
pub fn valid_webhook_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| match u.scheme() {
        "https" => u.host().is_some(),
        "http" => matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    })
}

/// Untrusted text for a code span: no backtick (it would close the span),
/// no angle brackets (`<!here>`, `<@U…>` and links).
fn code_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '`' => '\'',
            '\n' | '\r' => ' ',
            '<' => '‹',
            '>' => '›',
            c => c,
        })
        .collect()
}

/// `value` as an inline code span.
fn code(s: &str) -> String {
    format!("`{}`", code_safe(s))
}

/// A command as a code block; a command that could close the block (three
/// backticks in a hostile ID) is not shown in chat: the SNS text and the
/// PagerDuty page carry it.
fn code_block(command: &str) -> Option<String> {
    (!command.contains("```")).then(|| format!("```{command}```"))
}

fn emoji(m: &Message) -> &'static str {
    match (m.event, m.severity) {
        (Event::Resolve, _) => ":white_check_mark:",
        (Event::Info, _) => ":wastebasket:",
        (Event::Trigger, Severity::Critical) => ":rotating_light:",
        (Event::Trigger, Severity::Error) => ":red_circle:",
        (Event::Trigger, Severity::Warning) => ":warning:",
        (Event::Trigger, Severity::Info) => ":information_source:",
    }
}

fn detail<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
    m.details.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// What the message is about, for the title: the state path, else the source.
fn about(m: &Message) -> String {
    match (&m.lock_key, &m.source_name, m.kind) {
        (Some(path), _, _) => path.clone(),
        (None, Some(source), AlertKind::StaleGroup) => format!("{source} (grouped)"),
        (None, Some(source), _) => source.clone(),
        (None, None, _) => "tf-lock-reaper".to_string(),
    }
}

fn headline(m: &Message) -> &'static str {
    match (m.event, m.kind) {
        (Event::Resolve, _) => "Resolved",
        (Event::Info, _) => "Deleted stale Terraform lock",
        (Event::Trigger, AlertKind::LockStale) if detail(m, "liveness").is_some_and(|l| l.starts_with("dead")) => {
            "Dead Terraform lock"
        }
        (Event::Trigger, AlertKind::LockStale) => "Stale Terraform lock",
        (Event::Trigger, AlertKind::StaleGroup) => "Stale Terraform locks",
        (Event::Trigger, AlertKind::BreakerTripped) => "Breaker tripped",
        (Event::Trigger, AlertKind::ScanFailed) => "Lock source unreadable",
        (Event::Trigger, AlertKind::UnreadableItems) => "Unreadable lock items",
        (Event::Trigger, AlertKind::TtlDisabled) => "TTL not enabled",
        (Event::Trigger, AlertKind::DiscoveryFailed) => "Lock table discovery failed",
    }
}

/// `(label, value)` facts of the message, values as code spans.
fn facts(m: &Message) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut push = |label, key: &str| {
        if let Some(v) = detail(m, key) {
            out.push((label, code(v)));
        }
    };
    push("State path", "state_path");
    push("Age", "age");
    push("Window", "stale_window");
    push("Liveness", "liveness");
    push("Who", "who");
    push("Operation", "operation");
    push("Lock ID", "lock_id");
    push("Workspace", "workspace");
    push("Table", "table");
    push("Lockfile", "lockfile");
    push("Bucket", "bucket");
    push("Account", "account");
    push("Region", "region");
    push("Oldest", "oldest_age");
    push("Error", "error");
    if let Some(n) = m.details.get("count").and_then(Value::as_u64) {
        out.push(("Count", code(&n.to_string())));
    }
    out
}

/// What the reaper did, or what on-call should do, in one line.
fn action(m: &Message) -> &'static str {
    match (m.event, m.kind) {
        (Event::Info, _) => "deleted by tf-lock-reaper (unchanged since it was read)",
        (Event::Resolve, _) => "the condition cleared",
        (Event::Trigger, AlertKind::LockStale | AlertKind::StaleGroup) => {
            "every plan/apply on this state fails until the lock is released"
        }
        (Event::Trigger, AlertKind::BreakerTripped) => "nothing deleted this run",
        (Event::Trigger, AlertKind::ScanFailed) => "stale locks there are neither reported nor cleared",
        (Event::Trigger, AlertKind::UnreadableItems) => "reported, never touched: inspect and remove them by hand",
        (Event::Trigger, AlertKind::TtlDisabled) => "TTL writes do nothing until TTL is enabled",
        (Event::Trigger, AlertKind::DiscoveryFailed) => {
            "stale locks in those accounts are neither reported nor cleared"
        }
    }
}

/// The fix commands, as the SNS text and the PagerDuty page carry them.
fn commands(m: &Message) -> Vec<String> {
    if m.event != Event::Trigger {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(c) = m.details.get("commands") {
        // Safest first, as `domain::commands` ranks them.
        for key in crate::commands::RANKING {
            out.extend(c.get(*key).and_then(Value::as_str).map(str::to_string));
        }
    }
    if let Some(locks) = m.details.get("locks").and_then(Value::as_array) {
        out.extend(locks.iter().filter_map(|l| l.get("command").and_then(Value::as_str)).map(str::to_string));
    }
    out.extend(detail(m, "fix").map(str::to_string));
    let list = |flag: &str| format!("tf-lock-reaper list --{flag} {}", m.source_name.as_deref().unwrap_or(""));
    match (m.kind, m.source_kind) {
        (AlertKind::StaleGroup, Some(kind)) => out.insert(0, list(kind.as_str())),
        (AlertKind::BreakerTripped, _) => out.push("tf-lock-reaper list".to_string()),
        (AlertKind::ScanFailed, Some(SourceKind::Table)) => out.push(list("table")),
        _ => {}
    }
    out
}

/// The table or bucket the alert is about, as an ARN where it can be told:
/// buckets always; tables named by ARN.
fn related_resources(m: &Message) -> Vec<String> {
    let Some(name) = m.source_name.as_deref() else { return Vec::new() };
    match m.source_kind {
        Some(SourceKind::Bucket) => {
            let bucket = name.split(['/', '@']).next().unwrap_or(name);
            vec![format!("arn:aws:s3:::{bucket}")]
        }
        Some(SourceKind::Table) if name.starts_with("arn:aws") => vec![name.to_string()],
        Some(SourceKind::Table) => match (detail(m, "region"), detail(m, "account")) {
            (Some(region), Some(account)) => vec![format!("arn:aws:dynamodb:{region}:{account}:table/{name}")],
            _ => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// The runbook link `with_runbook` put on a trigger: an http(s) URL without
/// the characters that could break out of a link.
fn runbook(m: &Message) -> Option<&str> {
    let link = detail(m, "runbook")?;
    let safe = (link.starts_with("https://") || link.starts_with("http://"))
        && !link.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '|' | '`'));
    (m.event == Event::Trigger && safe).then_some(link)
}

/// The custom notification for `m` (`CHAT_TOPIC_ARN`): `threadId` is the
/// alert key, so a lock's trigger, reminders and resolve thread together.
pub fn custom_notification(m: &Message) -> Value {
    let title = cap(&format!("{} {}: {}", emoji(m), headline(m), code(&about(m))), TITLE_MAX);
    let mut description = format!("{}\n", code(&m.summary));
    for (label, value) in facts(m) {
        description.push_str(&format!("*{label}:* {value}\n"));
    }
    description.push_str(&format!("*Action:* {}\n", action(m)));
    if let Some(link) = runbook(m) {
        description.push_str(&format!("*Runbook:* {link}\n"));
    }
    let next_steps: Vec<String> = commands(m)
        .iter()
        .filter_map(|c| code_block(c))
        .filter(|c| c.chars().count() <= NEXT_STEP_MAX)
        .take(NEXT_STEPS_MAX)
        .collect();
    let mut keywords = vec![m.severity.as_str().to_string()];
    keywords.extend(m.source_name.clone());
    keywords.extend(detail(m, "account").map(str::to_string));
    let keywords: Vec<String> = keywords.iter().map(|k| cap(k, KEYWORD_MAX)).take(KEYWORDS_MAX).collect();
    json!({
        "version": "1.0",
        "source": "custom",
        "id": format!("{}-{}-{}", m.alert_key, m.event.as_str(), m.timestamp.timestamp()),
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": cap(&description, DESCRIPTION_MAX),
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": m.alert_key,
            "summary": cap(&m.summary, SUMMARY_MAX),
            "eventType": format!("tf-lock-reaper.{}.{}", m.kind.as_str(), m.event.as_str()),
            "relatedResources": related_resources(m),
            "additionalContext": {
                "alert_key": m.alert_key,
                "severity": m.severity.as_str(),
                "lock_id": m.lock_id,
            },
        },
    })
}

/// Slack Block Kit for an incoming webhook: a header, the facts as fields,
/// the fix in a code block, a context line. `text` is the notification's
/// fallback. Slack limits: header 150, a field 2000, a section 3000, ten
/// fields.
pub fn slack_blocks(m: &Message) -> Value {
    let header = cap(&format!("{} {}: {}", emoji(m), headline(m), code_safe(&about(m))), 150);
    let fields: Vec<Value> = facts(m)
        .into_iter()
        .take(10)
        .map(|(label, value)| json!({"type": "mrkdwn", "text": cap(&format!("*{label}*\n{value}"), 2000)}))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cap(&format!("{}\n*Action:* {}", code(&m.summary), action(m)), 3000)},
        }),
    ];
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let fix: Vec<String> = commands(m).iter().filter(|c| !c.contains("```")).take(NEXT_STEPS_MAX).cloned().collect();
    if !fix.is_empty() {
        let text = cap(&format!("```{}```", fix.join("\n")), 2990);
        let text = if text.ends_with("```") { text } else { format!("{}```", cap(&text, 2985)) };
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if let Some(link) = runbook(m) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("<{link}|Runbook: {}>", m.kind.as_str())}}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cap(&format!(
        "tf-lock-reaper · {} · {} · alert {}",
        m.kind.as_str(),
        m.event.as_str(),
        m.alert_key
    ), 300)}]}));
    json!({"text": cap(&format!("{} {}", headline(m), code_safe(&m.summary)), 3000), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn message(event: Event, who: &str) -> Message {
        Message {
            event,
            alert_key: "tflr-abc".into(),
            kind: AlertKind::LockStale,
            severity: Severity::Warning,
            subject: "s".into(),
            body: "b".into(),
            summary: format!("Stale Terraform lock on tfstate/app held 5h by {who}"),
            source: "locks".into(),
            source_name: Some("locks".into()),
            source_kind: Some(SourceKind::Table),
            lock_key: Some("tfstate/app/terraform.tfstate".into()),
            lock_id: Some("id-1".into()),
            component: "c".into(),
            group: "g".into(),
            timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            details: json!({"who": who, "age": "5h00m", "lock_id": "id-1", "operation": "OperationTypeApply",
                "commands": {"tf_lock_reaper_unlock": "tf-lock-reaper unlock 'id-1' --table 'locks'",
                             "terraform_force_unlock": "terraform force-unlock 'id-1'"}}),
        }
    }

    #[test]
    fn a_trigger_carries_the_fix_and_threads_by_alert_key() {
        let n = custom_notification(&message(Event::Trigger, "ci@runner"));
        assert_eq!((n["version"].as_str(), n["source"].as_str()), (Some("1.0"), Some("custom")));
        assert_eq!(n["metadata"]["threadId"], "tflr-abc");
        assert_eq!(n["content"]["title"], ":warning: Stale Terraform lock: `tfstate/app/terraform.tfstate`");
        assert_eq!(n["content"]["nextSteps"][0], "```tf-lock-reaper unlock 'id-1' --table 'locks'```");
        assert!(n["content"]["description"].as_str().unwrap().contains("*Who:* `ci@runner`"));
        let resolve = custom_notification(&message(Event::Resolve, "ci@runner"));
        assert_eq!(resolve["metadata"]["threadId"], n["metadata"]["threadId"], "one thread");
        assert!(resolve["content"]["nextSteps"].as_array().unwrap().is_empty());
    }

    #[test]
    fn hostile_text_cannot_break_out_of_its_code_span() {
        let n = custom_notification(&message(Event::Trigger, "x` *bold* <!here> ```\n"));
        let d = n["content"]["description"].as_str().unwrap();
        let who = d.lines().find(|l| l.starts_with("*Who:*")).unwrap();
        assert_eq!(who.matches('`').count(), 2, "one span: {who}");
        assert!(!d.contains("<!here>"));
        let slack = slack_blocks(&message(Event::Trigger, "x` <!channel>"));
        assert!(!slack.to_string().contains("<!channel>"));
    }
}
