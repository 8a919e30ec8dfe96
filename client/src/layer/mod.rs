//! [`IdempotencyLayer`]: the `Idempotency-Key` header for axum services,
//! following the IETF draft (draft-ietf-httpapi-idempotency-key-header) and
//! Stripe's practice, with idem as the store.
//!
//! Never runs a handler unprotected: if the registry cannot be reached the
//! request is answered 503 and the handler is not called.

mod service;
mod stored;

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderName, Method};

use crate::client::Client;
use crate::proto::limits;
pub use service::IdempotencyService;

/// The authenticated principal of a request, set as a request extension by
/// the service's auth layer. The default scope puts it in front of the key so
/// two tenants' keys never collide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

/// Maps a request and its header value to the key claimed in idem.
pub type ScopeFn = Arc<dyn Fn(&Parts, &str) -> String + Send + Sync>;

/// The default scope: `<len>:<principal>:<key>` when a [`Principal`] is set
/// (the length keeps `a:b` + `c` apart from `a` + `b:c`), else `:<key>`.
pub fn default_scope(parts: &Parts, key: &str) -> String {
    match parts.extensions.get::<Principal>() {
        Some(Principal(p)) => format!("{}:{p}:{key}", p.len()),
        None => format!(":{key}"),
    }
}

#[derive(Clone)]
pub struct IdempotencyLayer {
    config: Arc<Config>,
}

pub(crate) struct Config {
    pub client: Client,
    pub namespace: String,
    pub methods: Vec<Method>,
    pub header: HeaderName,
    pub required: bool,
    pub lease: Duration,
    pub retention: Option<Duration>,
    pub max_body_bytes: usize,
    pub scope: ScopeFn,
    pub store_server_errors: bool,
    pub stored_headers: Vec<HeaderName>,
}

impl IdempotencyLayer {
    /// Guards POST and PATCH with an optional `Idempotency-Key`, lease 30 s,
    /// the registry's retention, bodies up to 1 MiB.
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        IdempotencyLayer {
            config: Arc::new(Config {
                client,
                namespace: namespace.into(),
                methods: vec![Method::POST, Method::PATCH],
                header: HeaderName::from_static("idempotency-key"),
                required: false,
                lease: Duration::from_millis(limits::LEASE_MS_DEFAULT),
                retention: None,
                max_body_bytes: 1 << 20,
                scope: Arc::new(default_scope),
                store_server_errors: false,
                stored_headers: vec![http::header::CONTENT_TYPE, http::header::LOCATION],
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::get_mut(&mut self.config).expect("configure the layer before cloning it"));
        self
    }

    /// Methods the layer guards; others pass straight through.
    pub fn methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods = methods.into_iter().collect();
        self.with(|c| c.methods = methods)
    }

    pub fn header_name(self, name: HeaderName) -> Self {
        self.with(|c| c.header = name)
    }

    /// Required: a guarded request without the header is answered 400.
    /// Optional (default): it passes through unguarded.
    pub fn required(self, required: bool) -> Self {
        self.with(|c| c.required = required)
    }

    /// Lease of each claim, renewed by a heartbeat while the handler runs.
    pub fn lease(self, lease: Duration) -> Self {
        self.with(|c| c.lease = lease)
    }

    /// How long stored responses are replayed.
    pub fn retention(self, retention: Duration) -> Self {
        self.with(|c| c.retention = Some(retention))
    }

    /// Largest request body read to fingerprint; larger ones get 413.
    pub fn max_body_bytes(self, n: usize) -> Self {
        self.with(|c| c.max_body_bytes = n)
    }

    pub fn scope(self, f: impl Fn(&Parts, &str) -> String + Send + Sync + 'static) -> Self {
        self.with(|c| c.scope = Arc::new(f))
    }

    /// Store a 5xx answer as the result instead of releasing the key.
    pub fn store_server_errors(self, store: bool) -> Self {
        self.with(|c| c.store_server_errors = store)
    }

    /// Response headers kept with the stored result (default Content-Type, Location).
    pub fn stored_headers(self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        let names = names.into_iter().collect();
        self.with(|c| c.stored_headers = names)
    }
}

impl<S> tower::Layer<S> for IdempotencyLayer {
    type Service = IdempotencyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdempotencyService::new(inner, self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(principal: Option<&str>) -> Parts {
        let mut req = http::Request::new(());
        if let Some(p) = principal {
            req.extensions_mut().insert(Principal(p.to_owned()));
        }
        req.into_parts().0
    }

    #[test]
    fn the_default_scope_keeps_principals_and_keys_apart() {
        let scoped = |p, k| default_scope(&parts(p), k);
        assert_eq!(scoped(None, "k"), ":k");
        assert_eq!(scoped(Some("alice"), "k"), "5:alice:k");
        assert_ne!(scoped(Some("a:b"), "c"), scoped(Some("a"), "b:c"));
        assert_ne!(scoped(None, "5:alice:k"), scoped(Some("alice"), "k"));
    }
}
