//! A thin JSON-over-HTTP helper for tests: status, headers and body of every answer.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// One HTTP answer: status, headers, and the body parsed as JSON (`Null` if it is not).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of an error body.
    pub fn code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }

    pub fn token(&self) -> u64 {
        self.body["token"].as_u64().unwrap_or_else(|| panic!("no token in {}", self.body))
    }
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

impl Api {
    pub fn new() -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("http client");
        Api { http }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn call(&self, method: Method, url: &str, body: Option<Value>) -> reqwest::Result<Answer> {
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, headers, body })
    }

    /// As [`Api::call`], panicking on transport errors (the test is about answers).
    pub async fn must(&self, method: Method, url: &str, body: Option<Value>) -> Answer {
        let what = format!("{method} {url}");
        self.call(method, url, body).await.unwrap_or_else(|e| panic!("{what}: {e}"))
    }
}
