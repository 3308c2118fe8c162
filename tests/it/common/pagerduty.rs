//! A real HTTP server on 127.0.0.1 standing in for PagerDuty's Events API
//! or a Slack incoming webhook: it records every request and answers with
//! scripted status codes (429 with `Retry-After: 1`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub body: serde_json::Value,
}

pub struct Receiver {
    pub url: String,
    server: Arc<tiny_http::Server>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind receiver"));
        let port = server.server_addr().to_ip().expect("ip address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let statuses: Arc<Mutex<VecDeque<u16>>> = Arc::new(Mutex::new(VecDeque::new()));
        let (srv, reqs, stats) = (Arc::clone(&server), Arc::clone(&requests), Arc::clone(&statuses));
        let thread = std::thread::spawn(move || {
            for mut request in srv.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                reqs.lock().unwrap().push(Recorded { path: request.url().to_string(), body });
                let status = stats.lock().unwrap().pop_front().unwrap_or(202);
                let answer = if status == 202 {
                    r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#
                } else {
                    r#"{"status":"invalid event","message":"Event object is invalid","errors":["bad"]}"#
                };
                let mut response = tiny_http::Response::from_string(answer).with_status_code(status);
                if status == 429 {
                    // As Slack does; PagerDuty's client backs off on its own.
                    response.add_header(tiny_http::Header::from_bytes("Retry-After", "1").expect("header"));
                }
                let _ = request.respond(response);
            }
        });
        Receiver { url: format!("http://127.0.0.1:{port}"), server, requests, statuses, thread: Some(thread) }
    }

    /// Answer the next requests with these codes (then 202).
    pub fn respond_with(&self, codes: &[u16]) {
        self.statuses.lock().unwrap().extend(codes);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }

    /// Requests with this `event_action` on `/v2/enqueue`.
    pub fn actions(&self, action: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/v2/enqueue" && r.body["event_action"] == action)
            .map(|r| r.body)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
