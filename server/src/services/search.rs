//! Full-text search over the messages a person can read: parses and checks the query (the
//! database never sees what was typed as syntax), then asks the store for a page.

use super::parse_id;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Search;
use protocol::{
    parse_query, MessageId, RoomId, SearchHit, SearchQuery, User, UserId, DEFAULT_SEARCH_PAGE,
    MAX_SEARCH_PAGE,
};

/// A page of results, newest first, only from rooms `me` is a member of.
pub async fn search(state: &AppState, me: &User, q: &SearchQuery) -> ApiResult<Vec<SearchHit>> {
    let terms = parse_query(&q.q).map_err(|e| ApiError::bad(e.code(), e.message()))?;
    let limit = match q.limit {
        None => DEFAULT_SEARCH_PAGE,
        Some(n) if (1..=MAX_SEARCH_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_SEARCH_PAGE}"),
            ))
        }
    };
    let room_id: Option<RoomId> = q
        .room_id
        .as_ref()
        .map(|id| parse_id(id, "room"))
        .transpose()?;
    let author_id: Option<UserId> = q.from.as_ref().map(|id| parse_id(id, "user")).transpose()?;
    let before: Option<MessageId> = q
        .before
        .as_ref()
        .map(|id| parse_id(id, "message"))
        .transpose()?;
    let found = state
        .store
        .search(Search {
            user_id: &me.id,
            terms: &terms,
            room_id: room_id.as_deref(),
            author_id: author_id.as_deref(),
            before: before.as_deref(),
            limit,
        })
        .await?;
    let reader = Some(me.id.as_str());
    Ok(found
        .into_iter()
        .map(|(message, snippet)| SearchHit {
            message: message.seen_by(reader),
            snippet,
        })
        .collect())
}
