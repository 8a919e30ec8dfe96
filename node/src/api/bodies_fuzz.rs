//! Fuzz target: the JSON body of every endpoint that takes one, through the
//! real [`JsonBody`] extractor and the same validation ([`resolve`]) the
//! handlers run, on a router that answers 200 where a handler would go on to
//! propose. Invariant: no input panics, and every refusal is a 400 with the
//! API's `bad_request` error body (or, for a body past axum's default limit
//! here, where `read_body` would have answered first, 413 `too_large`);
//! nothing answers 5xx.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use bolero::TypeGenerator;
use idem_client::proto::{
    limits, BatchRequest, CheckpointRequest, ClaimRequest, CompleteRequest, ErrorBody, ErrorCode, ReleaseRequest,
};
use serde_json::{Map, Number, Value};
use tower::ServiceExt;

use super::error::ApiError;
use super::extract::JsonBody;
use super::resolve;
use crate::registry::RecordId;

type Checked = Result<StatusCode, ApiError>;

fn id() -> RecordId {
    RecordId::new("payments", "order-7")
}

/// Each body-taking route with its extractor and validation, and nothing after.
fn router() -> Router {
    Router::new()
        .route(
            "/claim",
            post(|JsonBody(r): JsonBody<ClaimRequest>| async { resolve::claim(id(), r).map(|_| StatusCode::OK) }),
        )
        .route(
            "/checkpoint",
            post(|JsonBody(r): JsonBody<CheckpointRequest>| async {
                resolve::checkpoint(id(), r).map(|_| StatusCode::OK)
            }),
        )
        .route(
            "/complete",
            post(|JsonBody(r): JsonBody<CompleteRequest>| async { resolve::complete(id(), r).map(|_| StatusCode::OK) }),
        )
        .route(
            "/release",
            post(|JsonBody(r): JsonBody<ReleaseRequest>| async move {
                resolve::release(id(), r);
                Checked::Ok(StatusCode::OK)
            }),
        )
        .route(
            "/batch",
            post(|JsonBody(r): JsonBody<BatchRequest>| async move {
                if r.ops.len() > limits::BATCH_MAX_OPS {
                    return Checked::Err(ApiError::BadRequest("too many ops".into()));
                }
                // A refused op answers its own 400 inside a 200; it must not panic.
                for op in r.ops {
                    let _ = resolve::batch_op(op);
                }
                Ok(StatusCode::OK)
            }),
        )
}

const ROUTES: [&str; 5] = ["/claim", "/checkpoint", "/complete", "/release", "/batch"];

/// Field names the bodies know, so generated objects reach the validation
/// and not only the parser.
const FIELDS: [&str; 14] = [
    "token",
    "lease_ms",
    "retention_ms",
    "result",
    "data",
    "stage",
    "fingerprint",
    "owner",
    "claim_id",
    "ops",
    "op",
    "ns",
    "key",
    "wait_ms",
];

#[derive(Debug, TypeGenerator)]
enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Big(u64),
    Float(f64),
    Text(String),
    /// A known operation name, for the `op` of a batch.
    OpName(u8),
}

#[derive(Debug, TypeGenerator)]
enum Field {
    Known(u8),
    Any(String),
}

#[derive(Debug, TypeGenerator)]
enum Inner {
    Leaf(Leaf),
    Array(Vec<Leaf>),
    Object(Vec<(Field, Leaf)>),
}

#[derive(Debug, TypeGenerator)]
enum Input {
    /// Any bytes at all.
    Raw(Vec<u8>),
    /// An object of known and unknown fields, two levels deep, serialized;
    /// `dup` repeats its first field with the other value.
    Object { fields: Vec<(Field, Inner)>, dup: bool },
    /// A batch of such objects.
    Batch(Vec<Vec<(Field, Inner)>>),
    /// Brackets nested this deep.
    Deep(u16),
}

fn leaf(l: &Leaf) -> Value {
    match l {
        Leaf::Null => Value::Null,
        Leaf::Bool(b) => Value::Bool(*b),
        Leaf::Int(i) => Value::from(*i),
        Leaf::Big(u) => Value::from(*u),
        Leaf::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Leaf::Text(s) => Value::String(s.clone()),
        Leaf::OpName(i) => {
            let names = ["claim", "checkpoint", "complete", "release", "delete"];
            Value::from(names[usize::from(*i) % names.len()])
        }
    }
}

fn field(f: &Field) -> String {
    match f {
        Field::Known(i) => FIELDS[usize::from(*i) % FIELDS.len()].to_owned(),
        Field::Any(s) => s.clone(),
    }
}

fn inner(i: &Inner) -> Value {
    match i {
        Inner::Leaf(l) => leaf(l),
        Inner::Array(items) => Value::Array(items.iter().map(leaf).collect()),
        Inner::Object(fields) => Value::Object(fields.iter().map(|(f, l)| (field(f), leaf(l))).collect::<Map<_, _>>()),
    }
}

fn object(fields: &[(Field, Inner)]) -> Value {
    Value::Object(fields.iter().map(|(f, v)| (field(f), inner(v))).collect())
}

fn body(input: &Input) -> Vec<u8> {
    match input {
        Input::Raw(bytes) => bytes.clone(),
        Input::Object { fields, dup } => {
            let mut text = object(fields).to_string();
            if let (true, Some((f, _)), Some((_, other))) = (*dup, fields.first(), fields.last()) {
                // `{"a":1,...}` becomes `{"a":<other>,"a":1,...}`: a duplicate field.
                let head = format!("{{{}:{},", Value::from(field(f)), inner(other));
                text = text.replacen('{', &head, 1).replace(",}", "}");
            }
            text.into_bytes()
        }
        Input::Batch(ops) => {
            serde_json::json!({ "ops": ops.iter().map(|o| object(o)).collect::<Vec<_>>() }).to_string().into_bytes()
        }
        Input::Deep(depth) => {
            let depth = usize::from(*depth);
            format!("{{\"result\":{}{}}}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        }
    }
}

/// The status `route` answers to `body`.
fn status(rt: &tokio::runtime::Runtime, route: &str, body: &[u8]) -> (StatusCode, axum::body::Bytes) {
    let req = Request::post(route).body(Body::from(body.to_vec())).expect("a request");
    let resp = rt.block_on(router().oneshot(req)).expect("infallible");
    let status = resp.status();
    (status, rt.block_on(axum::body::to_bytes(resp.into_body(), usize::MAX)).expect("a body"))
}

/// The harness itself: valid bodies pass, known-bad ones are refused.
#[test]
fn the_routes_accept_valid_bodies_and_refuse_bad_ones() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let ok: [(&str, &str); 5] = [
        ("/claim", ""),
        ("/checkpoint", r#"{"token":1,"stage":"charged"}"#),
        ("/complete", r#"{"token":1,"result":{"ok":true}}"#),
        ("/release", r#"{"token":1}"#),
        ("/batch", r#"{"ops":[{"op":"delete","ns":"a","key":"b"},{"op":"claim","ns":"","key":""}]}"#),
    ];
    for (route, body) in ok {
        assert_eq!(status(&rt, route, body.as_bytes()).0, StatusCode::OK, "{route} {body}");
    }
    for (route, body) in [("/claim", r#"{"lease_ms":-1}"#), ("/complete", "{"), ("/release", "[]")] {
        assert_eq!(status(&rt, route, body.as_bytes()).0, StatusCode::BAD_REQUEST, "{route} {body}");
    }
}

#[test]
fn every_body_is_accepted_or_refused_with_bad_request() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    bolero::check!().with_type::<Input>().for_each(|input| {
        let bytes = body(input);
        for route in ROUTES {
            let (code, text) = status(&rt, route, &bytes);
            match code {
                StatusCode::OK => {}
                StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
                    let err: ErrorBody = serde_json::from_slice(&text).expect("an API error body");
                    let want =
                        if code == StatusCode::BAD_REQUEST { ErrorCode::BadRequest } else { ErrorCode::TooLarge };
                    assert_eq!(err.error.code, want, "{route}");
                }
                other => panic!("{route} answered {other} to {:?}", String::from_utf8_lossy(&bytes)),
            }
        }
    });
}
