//! What the layer stores as a key's result and replays: the status, the
//! chosen headers and the body of the first response, and the request
//! fingerprint that ties a key to one payload.

use bytes::Bytes;
use http::response::Parts;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Marks a response replayed from the store rather than produced now.
pub const REPLAYED: &str = "idempotent-replayed";

/// `sha256:<hex>` over method, path and body, each length-prefixed so no two
/// different requests hash the same bytes.
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [method.as_str().as_bytes(), path.as_bytes(), body] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// UTF-8 text as is, anything else hex-encoded (then `hex` is true).
    pub body: String,
    #[serde(default)]
    pub hex: bool,
}

impl StoredResponse {
    pub fn capture(parts: &Parts, body: &[u8], keep: &[HeaderName]) -> StoredResponse {
        let headers = keep
            .iter()
            .flat_map(|name| parts.headers.get_all(name).iter().map(move |v| (name, v)))
            .filter_map(|(name, v)| Some((name.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let (body, hex) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (hex::encode(body), true),
        };
        StoredResponse { status: parts.status.as_u16(), headers, body, hex }
    }

    /// The stored response marked as a replay; `None` if what is stored is
    /// not a response this layer wrote.
    pub fn replay(&self) -> Option<http::Response<Bytes>> {
        let body = if self.hex { hex::decode(&self.body).ok()? } else { self.body.clone().into_bytes() };
        let mut resp = http::Response::new(Bytes::from(body));
        *resp.status_mut() = StatusCode::from_u16(self.status).ok()?;
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str()).ok()?;
            resp.headers_mut().append(name, HeaderValue::try_from(value.as_str()).ok()?);
        }
        resp.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
        Some(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_separates_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/orders", b"{}");
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64);
        assert_eq!(a, fingerprint(&Method::POST, "/orders", b"{}"));
        assert_ne!(a, fingerprint(&Method::PATCH, "/orders", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/orders/1", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/orders", b"{ }"));
        assert_ne!(fingerprint(&Method::POST, "/ab", b"c"), fingerprint(&Method::POST, "/a", b"bc"));
    }

    #[test]
    fn a_stored_response_replays_status_chosen_headers_and_body() {
        for body in [&b"{\"id\":1}"[..], &[0xff, 0x00, 0x10][..]] {
            let resp = http::Response::builder()
                .status(201)
                .header("content-type", "application/json")
                .header("x-secret", "s")
                .body(())
                .unwrap();
            let (parts, ()) = resp.into_parts();
            let stored = StoredResponse::capture(&parts, body, &[http::header::CONTENT_TYPE]);
            let json = serde_json::to_value(&stored).unwrap();
            let replay = serde_json::from_value::<StoredResponse>(json).unwrap().replay().unwrap();
            assert_eq!(replay.status(), 201);
            assert_eq!(replay.headers()["content-type"], "application/json");
            assert_eq!(replay.headers()[REPLAYED], "true");
            assert!(replay.headers().get("x-secret").is_none());
            assert_eq!(replay.body().as_ref(), body);
        }
    }
}
