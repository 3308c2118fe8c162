//! `SOURCES_URI`: the sources in a JSON document in S3 instead of the
//! function's environment, past Lambda's 4 KB: 300 lock tables listed
//! there are all scanned and reaped; a bad entry is a configuration error
//! that names the document; a document that cannot be read says so.

use std::process::{Command, Output};

use crate::common::*;

const KEY: &str = "tfstate/app/terraform.tfstate";

async fn put_document(moto: &Moto, key: &str, body: &str) {
    let s3 = moto.s3().await;
    s3.put_object().bucket("config").key(key).body(body.as_bytes().to_vec().into()).send().await.expect("put document");
}

fn reaper(moto: &Moto, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hundred_tables_from_a_sources_document_are_all_reaped() {
    let moto = Moto::start();
    moto.create_bucket("config").await;
    let client = moto.dynamo().await;
    let names: Vec<String> = (0..300).map(|i| format!("team-{i:03}-terraform-state-locks")).collect();
    for name in &names {
        create_lock_table(&client, name).await;
        put_lock(&client, name, KEY, &format!("orphan-{name}"), hours(10)).await;
    }
    let document = serde_json::json!({ "LOCK_TABLES": names }).to_string();
    assert!(document.len() > 4096, "more than Lambda's environment could hold: {} bytes", document.len());
    put_document(&moto, "tf-lock-reaper/sources.json", &document).await;

    let env = [
        ("SOURCES_URI", "s3://config/tf-lock-reaper/sources.json"),
        ("DELETE_AFTER", "4h"),
        ("MAX_DELETES_PER_RUN", "300"),
        ("SOURCE_CONCURRENCY", "16"),
        ("RUN_BUDGET", "5m"),
    ];
    let out = reaper(&moto, &env, &["run", "--action", "delete", "--no-notify", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sources = report["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 300);
    assert!(sources.iter().all(|s| s["counts"]["deleted"] == 1), "every orphan reaped");
    for name in [&names[0], &names[150], &names[299]] {
        assert!(get_item(&client, name, KEY).await.is_none(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_document_is_a_configuration_error_that_names_it() {
    let moto = Moto::start();
    moto.create_bucket("config").await;
    put_document(&moto, "bad.json", r#"{"LOCK_TABLES": ["locks", "not a table!"], "ACTION": "delete"}"#).await;
    let out = reaper(&moto, &[("SOURCES_URI", "s3://config/bad.json")], &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SOURCES_URI s3://config/bad.json: ACTION"), "an entry a document may not hold: {err}");
    put_document(&moto, "bad.json", r#"{"LOCK_TABLES": ["locks", "not a table!"]}"#).await;
    let out = reaper(&moto, &[("SOURCES_URI", "s3://config/bad.json")], &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SOURCES_URI s3://config/bad.json: LOCK_TABLES=\"not a table!\""), "{err}");
    let out = reaper(&moto, &[("SOURCES_URI", "s3://config/missing.json")], &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot read the sources document SOURCES_URI s3://config/missing.json"), "{err}");
    let out = reaper(&moto, &[("SOURCES_URI", "https://example.com/sources.json")], &["list"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
