//! A thin JSON-over-HTTP helper for tests: status, headers and body of every answer.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::Security;

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
        Self::for_cluster(None)
    }
}

impl Api {
    /// A client for a cluster: with `security`, it trusts the cluster's CA and
    /// sends its admin token (the token named `admin`).
    pub fn for_cluster(security: Option<&Security>) -> Self {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(20));
        if let Some(s) = security {
            let pem = std::fs::read(s.ca()).expect("the cluster CA");
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"));
            let mut headers = HeaderMap::new();
            let bearer = format!("Bearer {}", s.token("admin"));
            headers.insert(AUTHORIZATION, HeaderValue::from_str(&bearer).expect("a header value"));
            builder = builder.default_headers(headers);
        }
        Api { http: builder.build().expect("http client") }
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
