//! `GET /events?since=&until=&filters=`: the journal as a stream of JSON
//! objects (one per line, chunked), history for a window then new events,
//! until `until` passes or the client leaves.

use super::http::{peer_gone, Conn, Request};
use super::{ApiError, ApiResult, Service};
use crate::events::{follow, FilterError, Filters, Window};
use std::sync::Arc;

pub fn events(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let filters = match req.q("filters").filter(|f| !f.is_empty()) {
        None => Filters::default(),
        Some(f) => Filters::from_json(f).map_err(|e| match e {
            FilterError::Usage(m) | FilterError::Invalid(m) => ApiError::new(400, m),
        })?,
    };
    let w = Window::parse(req.q("since"), req.q("until"))
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let peer = conn
        .writer
        .try_clone()
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    conn.closed = true;
    let mut body = conn
        .start_chunked(200, "application/json")
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut emit = |ev: &ctrstate::journal::Event| {
        let mut line = serde_json::to_vec(ev).unwrap_or_default();
        line.push(b'\n');
        body.send(&line).is_ok()
    };
    follow(&svc.ctx.root, w, &filters, &mut emit, &mut || {
        peer_gone(&peer)
    });
    let _ = body.finish();
    Ok(())
}
