//! HTTP fetching of feeds: conditional GET, timeouts (connect, total, stall), redirect and body limits -> `FetchOutcome`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, ETAG, EXPIRES, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
    RETRY_AFTER,
};
use thiserror::Error;
use tracing::warn;

/// Limits and identity for the HTTP client; built from config by the caller.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Longest wait for the next bytes of a body before giving up.
    pub stall_timeout: Duration,
    /// Cap on the decoded body, in bytes: a compressed bomb is cut off here.
    pub max_body_bytes: usize,
}

/// What the server last told us about a feed, sent back for a conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The result of one successful HTTP exchange.
#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: nothing changed since the validators we sent.
    NotModified {
        cache_hint: Option<Duration>,
    },
    Fetched(FetchedBody),
}

#[derive(Debug)]
pub struct FetchedBody {
    pub body: Vec<u8>,
    /// The URL after redirects; relative links in the feed resolve against it.
    pub final_url: String,
    pub content_type: Option<String>,
    pub validators: Validators,
    /// How long the server says the response stays fresh (`Cache-Control:
    /// max-age`, else `Expires`): a publisher's hint not to ask again sooner.
    pub cache_hint: Option<Duration>,
}

/// Why a fetch failed; `kind()` names the class recorded on the feed.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("timed out fetching {url}")]
    Timeout { url: String },
    #[error("{url} stopped sending data for {seconds} s")]
    Stall { url: String, seconds: u64 },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{url} answered HTTP {status}{}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        /// From a `Retry-After` header (seconds or an HTTP date).
        retry_after: Option<Duration>,
    },
    #[error(
        "{url} sent more than {limit} bytes; raise defaults.max_body_bytes if the feed is really that large"
    )]
    TooLarge { url: String, limit: usize },
    #[error("redirects from {url} went wrong: {message}")]
    Redirect { url: String, message: String },
    #[error("fetching {url} failed: {message}")]
    Other { url: String, message: String },
}

impl FetchError {
    /// A short, stable name for the failure class, stored with the feed's last error.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout { .. } => "timeout",
            FetchError::Stall { .. } => "stall",
            FetchError::Connect { .. } => "connect",
            FetchError::Status { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Redirect { .. } => "redirect",
            FetchError::Other { .. } => "fetch",
        }
    }
}

/// A reusable HTTP client for feeds.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_body_bytes: usize,
    stall_timeout: Duration,
}

/// The User-Agent kabar sends: portals' bot protection and admins both want to know who polls.
pub const USER_AGENT: &str = concat!(
    "kabar/",
    env!("CARGO_PKG_VERSION"),
    " (Indonesian regional news feed aggregator)"
);

pub const MAX_REDIRECTS: usize = 5;

/// Follows at most `MAX_REDIRECTS` redirects, refuses loops, and logs permanent
/// redirects so the admin can update the config instead of paying for them forever.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        if attempt.previous().iter().any(|seen| seen == attempt.url()) {
            let url = attempt.url().to_string();
            return attempt.error(format!("redirect loop back to {url}"));
        }
        if matches!(
            attempt.status(),
            StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
        ) {
            let from = attempt
                .previous()
                .last()
                .map(|u| u.to_string())
                .unwrap_or_default();
            warn!(
                from = %from,
                to = %attempt.url(),
                "permanent redirect: update the feed's url in the config to the new address"
            );
        }
        attempt.follow()
    })
}

impl Fetcher {
    pub fn new(limits: &FetchLimits) -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.timeout)
            .redirect(redirect_policy())
            .build()
            .map_err(|e| FetchError::Other {
                url: String::new(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(Fetcher {
            client,
            max_body_bytes: limits.max_body_bytes,
            stall_timeout: limits.stall_timeout,
        })
    }

    /// GETs `url`, conditionally when validators are known, reading at most the body cap.
    pub async fn fetch(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let mut request = self.client.get(url);
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, modified);
        }
        let response = request.send().await.map_err(|e| classify(url, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified {
                cache_hint: cache_hint(&headers, Utc::now()),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                retry_after: retry_after(&headers, Utc::now()),
            });
        }
        let final_url = response.url().to_string();
        // Count decoded bytes as they stream in, so an oversized or
        // decompression-bomb body is cut off instead of buffered whole; and
        // give up on a server that stops sending in the middle.
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        loop {
            let next = tokio::time::timeout(self.stall_timeout, stream.next())
                .await
                .map_err(|_| FetchError::Stall {
                    url: url.to_string(),
                    seconds: self.stall_timeout.as_secs(),
                })?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| classify(url, e))?;
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
                    limit: self.max_body_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fetched(FetchedBody {
            body,
            final_url,
            content_type: header_text(&headers, reqwest::header::CONTENT_TYPE),
            validators: Validators {
                etag: header_text(&headers, ETAG),
                last_modified: header_text(&headers, LAST_MODIFIED),
            },
            cache_hint: cache_hint(&headers, Utc::now()),
        }))
    }
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = header_text(headers, RETRY_AFTER)?;
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or_default())
}

/// Freshness the server grants: `Cache-Control: max-age` (unless `no-cache`
/// or `no-store`), else `Expires`.
pub fn cache_hint(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(control) = header_text(headers, CACHE_CONTROL) {
        let lower = control.to_ascii_lowercase();
        if lower.contains("no-cache") || lower.contains("no-store") {
            return None;
        }
        let max_age = lower.split(',').find_map(|directive| {
            directive
                .trim()
                .strip_prefix("max-age=")
                .and_then(|v| v.trim_matches('"').parse::<u64>().ok())
        });
        if let Some(seconds) = max_age {
            return Some(Duration::from_secs(seconds));
        }
    }
    let expires = header_text(headers, EXPIRES)?;
    let at = DateTime::parse_from_rfc2822(expires.trim())
        .ok()?
        .with_timezone(&Utc);
    (at - now).to_std().ok()
}

fn classify(url: &str, error: reqwest::Error) -> FetchError {
    let url = url.to_string();
    if error.is_timeout() {
        FetchError::Timeout { url }
    } else if error.is_redirect() {
        FetchError::Redirect {
            url,
            message: error_chain(&error),
        }
    } else if error.is_connect() {
        FetchError::Connect {
            url,
            message: error_chain(&error),
        }
    } else {
        FetchError::Other {
            url,
            message: error_chain(&error),
        }
    }
}

/// reqwest's top-level message is vague ("error sending request"); the causes say what happened.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn headers(pairs: &[(reqwest::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(
            retry_after(&headers(&[(RETRY_AFTER, "120")]), now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(
                &headers(&[(RETRY_AFTER, "Fri, 27 Nov 2026 10:05:00 GMT")]),
                now()
            ),
            Some(Duration::from_secs(300))
        );
        assert_eq!(retry_after(&headers(&[(RETRY_AFTER, "soon")]), now()), None);
    }

    #[test]
    fn cache_hints() {
        assert_eq!(
            cache_hint(&headers(&[(CACHE_CONTROL, "public, max-age=600")]), now()),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            cache_hint(&headers(&[(CACHE_CONTROL, "no-cache, max-age=600")]), now()),
            None
        );
        assert_eq!(
            cache_hint(
                &headers(&[(EXPIRES, "Fri, 27 Nov 2026 11:00:00 GMT")]),
                now()
            ),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(cache_hint(&HeaderMap::new(), now()), None);
    }
}
