//! `GET /v1/ns/{ns}/keys`: a namespace's records, a page at a time or as
//! one stream that pages by itself.

use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::path::ns_path;
use crate::proto::{Invalid, ListPage, ListQuery, Record};

impl Client {
    /// One page of the records `query` selects; pass its `next` as the
    /// query's `after` for the page that follows.
    pub async fn list_page(&self, ns: &str, query: &ListQuery) -> Result<ListPage, Error> {
        query.validate()?;
        let query_string = serde_urlencoded::to_string(query).map_err(|e| Invalid(e.to_string()))?;
        let path = format!("{}/keys?{query_string}", ns_path(ns)?);
        self.send::<()>(Method::GET, &path, None, Duration::ZERO).await?.decode(&[200])
    }

    /// Every record `query` selects from its `after` on, in key order, asking
    /// for each page when the one before is used up. Records that exist
    /// throughout the walk come exactly once, whatever is written meanwhile.
    /// Boxed, so a caller can `try_next` it without pinning it first.
    pub fn list(&self, ns: &str, query: ListQuery) -> BoxStream<'static, Result<Record, Error>> {
        let (client, ns) = (self.clone(), ns.to_owned());
        let pages = stream::try_unfold(Some(query), move |query| {
            let (client, ns) = (client.clone(), ns.clone());
            async move {
                let Some(mut query) = query else { return Ok::<_, Error>(None) };
                let page = client.list_page(&ns, &query).await?;
                query.after = page.next;
                let more = query.after.is_some().then_some(query);
                Ok(Some((stream::iter(page.records.into_iter().map(Ok)), more)))
            }
        });
        pages.try_flatten().boxed()
    }
}
