//! HTTP fetching of feeds: conditional GET, timeouts, redirect and body limits -> `FetchOutcome`.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use thiserror::Error;

/// Limits and identity for the HTTP client; built from config by the caller.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    pub timeout: Duration,
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
    NotModified,
    Fetched(FetchedBody),
}

#[derive(Debug)]
pub struct FetchedBody {
    pub body: Vec<u8>,
    /// The URL after redirects; relative links in the feed resolve against it.
    pub final_url: String,
    pub content_type: Option<String>,
    pub validators: Validators,
}

/// Why a fetch failed; `kind()` names the class recorded on the feed.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("timed out fetching {url}")]
    Timeout { url: String },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error(
        "{url} sent more than {limit} bytes; raise defaults.max_body_bytes if the feed is really that large"
    )]
    TooLarge { url: String, limit: usize },
    #[error("fetching {url} failed: {message}")]
    Other { url: String, message: String },
}

impl FetchError {
    /// A short, stable name for the failure class, stored with the feed's last error.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout { .. } => "timeout",
            FetchError::Connect { .. } => "connect",
            FetchError::Status { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Other { .. } => "fetch",
        }
    }
}

/// A reusable HTTP client for feeds.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_body_bytes: usize,
}

/// The User-Agent kabar sends: portals' bot protection and admins both want to know who polls.
pub const USER_AGENT: &str = concat!(
    "kabar/",
    env!("CARGO_PKG_VERSION"),
    " (Indonesian regional news feed aggregator)"
);

const MAX_REDIRECTS: usize = 5;

impl Fetcher {
    pub fn new(limits: &FetchLimits) -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.timeout)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(|e| FetchError::Other {
                url: String::new(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(Fetcher {
            client,
            max_body_bytes: limits.max_body_bytes,
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
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let final_url = response.url().to_string();
        let headers = response.headers().clone();
        // Count decoded bytes as they stream in, so an oversized or
        // decompression-bomb body is cut off instead of buffered whole.
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
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
        }))
    }
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn classify(url: &str, error: reqwest::Error) -> FetchError {
    let url = url.to_string();
    if error.is_timeout() {
        FetchError::Timeout { url }
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
