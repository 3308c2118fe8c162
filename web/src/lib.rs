//! `explain` for the web page: the core's `domain::explain`, compiled to
//! WebAssembly. The page passes the time (`Date.now()`: the browser's clock,
//! and the answer says so) because the core reads no clock. A panic goes to
//! the browser's console (and the page says something went wrong) instead
//! of dying silently.

use chrono::{DateTime, Utc};
use tf_lock_reaper_core::explain::{explain as explain_core, Options};
use wasm_bindgen::prelude::wasm_bindgen;

/// The answer for `input` as JSON: the explanation (`locks`, `findings`,
/// `commands`, `backend_fix`), or `{"error": "…"}` when nothing was recognised.
#[wasm_bindgen]
pub fn explain(input: &str, now_ms: f64, stale_after_secs: f64, redact: bool) -> String {
    console_error_panic_hook::set_once();
    explain_json(input, now_ms, stale_after_secs, redact)
}

/// The same, callable off the browser (tests).
pub fn explain_json(input: &str, now_ms: f64, stale_after_secs: f64, redact: bool) -> String {
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms as i64);
    let stale_after =
        std::time::Duration::from_secs(if stale_after_secs >= 1.0 { stale_after_secs as u64 } else { 7200 });
    let options = Options { now, clock: "this browser's clock".into(), stale_after, redact };
    match explain_core(input, &options) {
        Ok(answer) => serde_json::to_string(&answer).unwrap_or_else(|e| error(&e.to_string())),
        Err(e) => error(&e.to_string()),
    }
}

fn error(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_gets_the_cli_answer_or_one_error_line() {
        let out: serde_json::Value = serde_json::from_str(&explain_json("nothing", 0.0, 7200.0, false)).unwrap();
        assert!(out["error"].as_str().unwrap().starts_with("nothing recognised"));
        let input = "Lock Info:\n  ID: a-1\n  Path: tfstate/k\n  Created: 2026-11-26 11:19:00 +0000 UTC\n";
        let out: serde_json::Value =
            serde_json::from_str(&explain_json(input, 1_764_166_740_000.0, 3600.0, false)).unwrap();
        assert_eq!(out["locks"][0]["id"], "a-1");
        assert!(out["clock"].as_str().unwrap().starts_with("this browser's clock"));
    }
}
