//! `GET /openapi.yaml`: the OpenAPI description of this API (`openapi.yaml`
//! at the repository's root), built into the binary so a node always serves
//! the description of the code it runs. Open like `/healthz`: it holds no
//! data, and a client needs it before it has a token.

use axum::http::header;
use axum::response::IntoResponse;

/// The description, as the repository holds it.
pub const DESCRIPTION: &str = include_str!("../../../openapi.yaml");

pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], DESCRIPTION)
}

/// The description and the router must name the same operations. axum cannot
/// list a router's routes, so the test reads the router's source: every
/// `.route("PATH", get(..).delete(..))` call in `mod.rs`, where the whole
/// router is assembled (DESIGN.md), against every path and method of
/// `openapi.yaml`. Only `/raft/*` (internal, peers only) and `/debug/*`
/// (routed only with `--test-hooks`) are left out of the description.
#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::DESCRIPTION;

    const ROUTER: &str = include_str!("mod.rs");
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    /// Operations as `METHOD PATH`, e.g. `DELETE /v1/ns/{ns}/keys/{key}`.
    type Operations = BTreeSet<String>;

    fn undescribed(path: &str) -> bool {
        path.starts_with("/raft/") || path.starts_with("/debug/")
    }

    /// The text from an opening parenthesis just before `text` up to its closing one.
    fn call_args(text: &str) -> &str {
        let mut depth = 1usize;
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[..i];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced parentheses after {text:.40}");
    }

    /// Every `.route(..)` call of a router's source. A path that is not a
    /// string literal fails the test: it could not be checked.
    fn routes_in(source: &str) -> Operations {
        let mut ops = Operations::new();
        for (at, _) in source.match_indices(".route(") {
            let args = call_args(&source[at + ".route(".len()..]);
            let (path, handlers) = args.split_once(',').unwrap_or_else(|| panic!("a route without handler: {args}"));
            let path = path.trim().strip_prefix('"').and_then(|p| p.strip_suffix('"'));
            let path = path.unwrap_or_else(|| panic!("a route whose path is not a string literal: {args}"));
            let mut methods = 0;
            // `get(h)`, `get(h).delete(h)`: a method router's name called
            // directly, not a handler's path such as `keys::get`.
            for method in METHODS {
                let call = format!("{method}(");
                let called = handlers.match_indices(&call).any(|(i, _)| {
                    !handlers[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                });
                if called {
                    methods += 1;
                    ops.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
            assert!(methods > 0, "no method router in the route {args}");
        }
        ops.retain(|op| !undescribed(op.split_once(' ').map_or("", |(_, p)| p)));
        ops
    }

    fn described_in(yaml: &str) -> Operations {
        let doc: serde_yaml::Value = serde_yaml::from_str(yaml).expect("openapi.yaml is YAML");
        let paths = doc.get("paths").and_then(|p| p.as_mapping()).expect("openapi.yaml has paths");
        let mut ops = Operations::new();
        for (path, item) in paths {
            let path = path.as_str().expect("a path is a string");
            let item = item.as_mapping().expect("a path item is a mapping");
            for key in item.keys().filter_map(|k| k.as_str()).filter(|k| METHODS.contains(k)) {
                ops.insert(format!("{} {path}", key.to_uppercase()));
            }
        }
        ops
    }

    #[test]
    fn the_description_names_every_route_of_the_router_and_no_other() {
        let routed = routes_in(ROUTER);
        let described = described_in(DESCRIPTION);
        let missing: Vec<_> = routed.difference(&described).collect();
        let extra: Vec<_> = described.difference(&routed).collect();
        assert!(missing.is_empty(), "routed but not in openapi.yaml: {missing:?}");
        assert!(extra.is_empty(), "in openapi.yaml but not routed: {extra:?}");
        assert!(described.iter().all(|op| !undescribed(op.split_once(' ').map_or("", |(_, p)| p))));
    }

    #[test]
    fn the_route_parser_sees_chained_methods_and_leaves_out_internal_paths() {
        let source = r#"Router::new()
            .route("/a/{x}", get(h::a).delete(h::b))
            .route(
                "/b",
                post(c),
            )
            .route("/raft/vote", post(vote))
            .route("/debug/clock-offset", post(debug::clock_offset))"#;
        let expected = ["DELETE /a/{x}", "GET /a/{x}", "POST /b"].map(String::from);
        assert_eq!(routes_in(source), Operations::from(expected));
    }

    #[test]
    #[should_panic(expected = "not a string literal")]
    fn a_route_path_the_test_cannot_read_fails_it() {
        routes_in(r#".route(paths::APPEND, post(append))"#);
    }
}
