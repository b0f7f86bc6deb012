//! One rendered output held ready to serve: compressed once, answered with
//! validators (304), content-coding negotiation and HEAD.

use std::io::Write;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};

/// gzip level 9: the body is compressed once per change and served many
/// times, and on a ~800 KB feed level 9 costs well under 0.1 s, no more than 6.
const GZIP_LEVEL: u32 = 9;
/// Brotli quality 9: on a ~800 KB feed it is ~15% smaller than gzip in about
/// 0.25 s. Quality 11 saves a further ~8% but takes ~2 s, too long to repeat
/// on every new item on a small shared machine.
const BROTLI_QUALITY: i32 = 9;
/// 4 MiB window, brotli's default, which every browser decoder accepts.
const BROTLI_WINDOW: i32 = 22;

/// A rendered output (Atom, JSON Feed, OPML) with its compressed forms and validators.
///
/// Building one compresses the body twice (a few hundred milliseconds for a
/// large feed), so async callers should build it in `spawn_blocking`.
/// Serving one copies nothing: the `Bytes` are shared.
#[derive(Debug, Clone)]
pub struct CachedOutput {
    pub body: Bytes,
    pub gzip: Bytes,
    pub brotli: Bytes,
    /// Strong, quoted entity tag of `body`, from its SHA-256. The compressed
    /// forms get the same tag with `-gzip` / `-br` appended, because a strong
    /// tag names one exact byte sequence (RFC 9110 §8.8.3).
    pub etag: String,
    /// The newest entry change, as the caller gave it.
    pub last_modified: DateTime<Utc>,
    pub content_type: &'static str,
    /// What every answer repeats, made once here so that serving a 304 or a
    /// body allocates nothing but the response itself.
    ready: ReadyHeaders,
}

/// Header values of a cached output, ready to send.
#[derive(Debug, Clone)]
struct ReadyHeaders {
    /// Entity tags in `Coding` order: br, gzip, identity.
    etags: [HeaderValue; 3],
    last_modified: HeaderValue,
    /// `Last-Modified` as sent, for `If-Modified-Since`.
    last_modified_at: SystemTime,
}

/// The content codings held ready, in order of preference when a client
/// weighs them equally: smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    const ALL: [Coding; 3] = [Coding::Brotli, Coding::Gzip, Coding::Identity];

    fn index(self) -> usize {
        self as usize
    }

    fn token(self) -> Option<&'static str> {
        match self {
            Coding::Brotli => Some("br"),
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }
}

impl CachedOutput {
    /// Compresses `body` and derives its entity tag. `last_modified` is the
    /// newest change of what the body shows (not the render time), so that
    /// re-rendering unchanged entries keeps the validators.
    pub fn new(
        body: impl Into<Bytes>,
        content_type: &'static str,
        last_modified: DateTime<Utc>,
    ) -> CachedOutput {
        let body = body.into();
        let digest = Sha256::digest(&body);
        // 128 bits of the digest are plenty to tell bodies apart, and keep the header short.
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let etag = format!("\"{hex}\"");
        let last_modified_at = http_last_modified(last_modified);
        let ready = ReadyHeaders {
            etags: Coding::ALL.map(|coding| header_value(&etag_for(&etag, coding))),
            last_modified: header_value(&httpdate::fmt_http_date(last_modified_at)),
            last_modified_at,
        };
        CachedOutput {
            gzip: gzip(&body).into(),
            brotli: brotli(&body).into(),
            body,
            etag,
            last_modified,
            content_type,
            ready,
        }
    }

    /// Answers a GET or HEAD for this output.
    ///
    /// `If-None-Match` is evaluated when present, `If-Modified-Since` only
    /// otherwise (RFC 9110 §13.2.2); either can give 304. Other methods get
    /// 405. `Vary: Accept-Encoding` is on every answer, since the body (and so
    /// the tag) depends on it. `cache_control` is made once by the caller
    /// (see [`cache_control`]), not per request.
    pub fn respond(
        &self,
        request: &HeaderMap,
        method: &Method,
        cache_control: &HeaderValue,
    ) -> Response {
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if *method != Method::GET && *method != Method::HEAD {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response(StatusCode::METHOD_NOT_ALLOWED, headers, Body::empty());
        }

        let coding = negotiate(request);
        let etag = &self.ready.etags[coding.index()];
        headers.insert(header::ETAG, etag.clone());
        headers.insert(header::LAST_MODIFIED, self.ready.last_modified.clone());
        headers.insert(header::CACHE_CONTROL, cache_control.clone());

        let etag = etag.to_str().expect("made from visible ASCII");
        let not_modified = match if_none_match(request, etag) {
            Some(matched) => matched,
            None => {
                if_modified_since(request).is_some_and(|since| self.ready.last_modified_at <= since)
            }
        };
        if not_modified {
            // A 304 carries the validators and caching fields only (RFC 9110 §15.4.5).
            return response(StatusCode::NOT_MODIFIED, headers, Body::empty());
        }

        let bytes = match coding {
            Coding::Brotli => &self.brotli,
            Coding::Gzip => &self.gzip,
            Coding::Identity => &self.body,
        };
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        if let Some(token) = coding.token() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
        }
        let body = if *method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(bytes.clone())
        };
        response(StatusCode::OK, headers, body)
    }

    #[cfg(test)]
    fn etag_for(&self, coding: Coding) -> String {
        etag_for(&self.etag, coding)
    }
}

/// The `Cache-Control` of an output served for `max_age`.
pub fn cache_control(max_age: Duration) -> HeaderValue {
    header_value(&format!("public, max-age={}", max_age.as_secs()))
}

/// The entity tag of the body in `coding`: the body's tag with `-gzip` or
/// `-br` inside the quotes.
fn etag_for(etag: &str, coding: Coding) -> String {
    match coding.token() {
        Some(token) => format!("{}-{token}\"", &etag[..etag.len() - 1]),
        None => etag.to_string(),
    }
}

/// `last_modified` as an HTTP-date can carry it: whole seconds, not before
/// 1970 (which the format cannot express), and not after the render, since a
/// server must not claim a future modification (RFC 9110 §8.8.2.1) and
/// portals do publish future-dated items. Fixed at render time, so that a
/// client's `If-Modified-Since` matches it on the next request.
fn http_last_modified(last_modified: DateTime<Utc>) -> SystemTime {
    let t = last_modified
        .min(Utc::now())
        .max(DateTime::<Utc>::UNIX_EPOCH)
        .trunc_subsecs(0);
    SystemTime::from(t)
}

fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("tags, dates and numbers are visible ASCII")
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(GZIP_LEVEL),
    );
    encoder
        .write_all(body)
        .expect("compressing into a Vec cannot fail");
    encoder
        .finish()
        .expect("compressing into a Vec cannot fail")
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: BROTLI_QUALITY,
        lgwin: BROTLI_WINDOW,
        size_hint: body.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(body.len() / 4);
    brotli::BrotliCompress(&mut &body[..], &mut out, &params)
        .expect("compressing into a Vec cannot fail");
    out
}

/// Weights are thousandths, as `q` has at most three decimals.
type Weight = u16;

/// Picks the coding to send from `Accept-Encoding` (RFC 9110 §12.5.3): the
/// highest weight wins, ties go to the smaller body (br, then gzip). Without
/// the header, identity, which every client reads. When the client refuses
/// everything, identity too: a 406 would help no feed reader.
fn negotiate(request: &HeaderMap) -> Coding {
    let values = request.get_all(header::ACCEPT_ENCODING);
    if values.iter().next().is_none() {
        return Coding::Identity;
    }
    let (mut br, mut gzip, mut identity, mut any) = (None, None, None, None);
    for value in values {
        let Ok(value) = value.to_str() else { continue };
        for member in value.split(',') {
            let mut parts = member.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let mut weight = Some(1000);
            for param in parts {
                if let Some((name, q)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    weight = parse_q(q.trim());
                }
            }
            // A member with a malformed weight says nothing we can rely on.
            let Some(weight) = weight else { continue };
            let slot = match coding.as_str() {
                "br" => &mut br,
                // RFC 9110 §8.4.1.3: x-gzip is gzip.
                "gzip" | "x-gzip" => &mut gzip,
                "identity" => &mut identity,
                "*" => &mut any,
                _ => continue,
            };
            *slot = Some(slot.map_or(weight, |w: Weight| w.max(weight)));
        }
    }
    // `*` stands for every coding not named. Identity is acceptable unless
    // refused, but a client that lists codings prefers them, so unnamed it
    // gets the lowest positive weight.
    let candidates = [
        (Coding::Brotli, br.or(any).unwrap_or(0)),
        (Coding::Gzip, gzip.or(any).unwrap_or(0)),
        (Coding::Identity, identity.or(any).unwrap_or(1)),
    ];
    let mut best = (Coding::Identity, 0);
    for (coding, weight) in candidates {
        if weight > best.1 {
            best = (coding, weight);
        }
    }
    best.0
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_q(text: &str) -> Option<Weight> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: Weight = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`); `None` when the request
/// has no such header, so that If-Modified-Since decides. `W/` is ignored:
/// GET and HEAD use the weak comparison (RFC 9110 §13.1.2).
fn if_none_match(request: &HeaderMap, etag: &str) -> Option<bool> {
    let mut values = request.get_all(header::IF_NONE_MATCH).iter().peekable();
    values.peek()?;
    let opaque = &etag[1..etag.len() - 1];
    for value in values {
        // Not visible ASCII: no tag of ours can match it.
        let Ok(value) = value.to_str() else { continue };
        if value.trim() == "*" || entity_tags(value).any(|tag| tag == opaque) {
            return Some(true);
        }
    }
    Some(false)
}

/// The opaque parts (inside the quotes) of a list of entity tags. Not split on
/// commas alone: a comma is allowed inside the quotes. Stops at the first
/// malformed member.
fn entity_tags(mut list: &str) -> impl Iterator<Item = &str> {
    std::iter::from_fn(move || {
        list = list.trim_start_matches([' ', '\t', ',']);
        let rest = list.strip_prefix("W/").unwrap_or(list);
        let rest = rest.strip_prefix('"')?;
        let end = rest.find('"')?;
        list = &rest[end + 1..];
        Some(&rest[..end])
    })
}

/// `If-Modified-Since`, when it is one valid HTTP-date; anything else is
/// ignored, as RFC 9110 §13.1.3 requires.
fn if_modified_since(request: &HeaderMap) -> Option<SystemTime> {
    let mut values = request.get_all(header::IF_MODIFIED_SINCE).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const MAX_AGE: Duration = Duration::from_secs(300);
    const BODY: &str = "<feed>kabar kabar kabar kabar kabar kabar kabar</feed>\n";

    fn output() -> CachedOutput {
        let changed = DateTime::parse_from_rfc3339("2024-03-15T01:15:00.750Z")
            .unwrap()
            .with_timezone(&Utc);
        CachedOutput::new(BODY, "application/atom+xml; charset=utf-8", changed)
    }

    fn request(headers: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn get(headers: &[(&'static str, &str)]) -> Response {
        output().respond(&request(headers), &Method::GET, &cache_control(MAX_AGE))
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    /// The body as the client reads it after undoing `Content-Encoding`.
    async fn decoded_body(response: Response) -> String {
        let encoding = header(&response, "content-encoding").map(str::to_string);
        let bytes = body(response).await;
        let mut text = String::new();
        match encoding.as_deref() {
            None => text = String::from_utf8(bytes).unwrap(),
            Some("gzip") => {
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut text)
                    .unwrap();
            }
            Some("br") => {
                brotli::Decompressor::new(&bytes[..], 4096)
                    .read_to_string(&mut text)
                    .unwrap();
            }
            Some(other) => panic!("unexpected coding {other}"),
        }
        text
    }

    fn check_coding(accept_encoding: &str, expected: Option<&str>) {
        let response = get(&[("accept-encoding", accept_encoding)]);
        assert_eq!(
            header(&response, "content-encoding"),
            expected,
            "Accept-Encoding: {accept_encoding}"
        );
    }

    #[test]
    fn etag_is_strong_quoted_and_depends_on_the_body() {
        let a = output();
        assert!(
            a.etag.starts_with('"') && a.etag.ends_with('"'),
            "{}",
            a.etag
        );
        assert_eq!(a.etag.len(), 34);
        assert_eq!(a.etag, output().etag);
        let b = CachedOutput::new("other", "text/plain", a.last_modified);
        assert_ne!(a.etag, b.etag);
        assert_eq!(
            a.etag_for(Coding::Gzip),
            format!("{}-gzip\"", &a.etag[..33])
        );
    }

    #[tokio::test]
    async fn plain_get_has_every_header_and_the_body() {
        let response = get(&[]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type"),
            Some("application/atom+xml; charset=utf-8")
        );
        assert_eq!(header(&response, "etag"), Some(output().etag.as_str()));
        assert_eq!(
            header(&response, "last-modified"),
            Some("Fri, 15 Mar 2024 01:15:00 GMT")
        );
        assert_eq!(
            header(&response, "cache-control"),
            Some("public, max-age=300")
        );
        assert_eq!(header(&response, "vary"), Some("accept-encoding"));
        assert_eq!(header(&response, "content-encoding"), None);
        assert_eq!(
            header(&response, "content-length"),
            Some(BODY.len().to_string().as_str())
        );
        assert_eq!(decoded_body(response).await, BODY);
    }

    #[tokio::test]
    async fn not_modified_by_etag() {
        let etag = output().etag;
        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x,y\", \"other\" ,{etag}"),
            "*".to_string(),
        ] {
            let response = get(&[("if-none-match", &inm)]);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{inm}");
            assert_eq!(header(&response, "etag"), Some(etag.as_str()));
            assert!(header(&response, "last-modified").is_some());
            assert_eq!(
                header(&response, "cache-control"),
                Some("public, max-age=300")
            );
            assert_eq!(header(&response, "vary"), Some("accept-encoding"));
            assert_eq!(header(&response, "content-length"), None);
            assert!(body(response).await.is_empty());
        }
    }

    #[test]
    fn etag_of_another_coding_does_not_match() {
        let gzip_tag = output().etag_for(Coding::Gzip);
        let response = get(&[("if-none-match", &gzip_tag)]);
        assert_eq!(response.status(), StatusCode::OK);
        let response = get(&[("if-none-match", &gzip_tag), ("accept-encoding", "gzip")]);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&response, "etag"), Some(gzip_tag.as_str()));
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let response = get(&[
            ("if-none-match", "\"stale\""),
            ("if-modified-since", "Fri, 15 Mar 2024 01:15:00 GMT"),
        ]);
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn not_modified_by_date_at_second_precision() {
        for since in [
            "Fri, 15 Mar 2024 01:15:00 GMT",
            "Sat, 16 Mar 2024 00:00:00 GMT",
            "Friday, 15-Mar-24 01:15:00 GMT",
        ] {
            let response = get(&[("if-modified-since", since)]);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{since}");
            assert_eq!(header(&response, "vary"), Some("accept-encoding"));
        }
    }

    #[test]
    fn modified_since_or_unreadable_date_gives_the_body() {
        for since in [
            "Fri, 15 Mar 2024 01:14:59 GMT",
            "yesterday",
            "Fri, 15 Mar 2024 01:15:00 GMT, Fri, 15 Mar 2024 01:15:00 GMT",
        ] {
            let response = get(&[("if-modified-since", since)]);
            assert_eq!(response.status(), StatusCode::OK, "{since}");
        }
    }

    #[test]
    fn future_change_is_not_announced_as_last_modified() {
        let future = Utc::now() + chrono::Duration::days(1);
        let output = CachedOutput::new(BODY, "text/plain", future);
        let response = output.respond(&HeaderMap::new(), &Method::GET, &cache_control(MAX_AGE));
        let sent = httpdate::parse_http_date(header(&response, "last-modified").unwrap()).unwrap();
        assert!(sent <= SystemTime::now());
    }

    #[test]
    fn a_future_change_answers_304_to_the_last_modified_it_sent() {
        let future = Utc::now() + chrono::Duration::days(1);
        let output = CachedOutput::new(BODY, "text/plain", future);
        let first = output.respond(&HeaderMap::new(), &Method::GET, &cache_control(MAX_AGE));
        let sent = header(&first, "last-modified").unwrap().to_string();
        // A reader polls again later; the date it was given still validates.
        std::thread::sleep(Duration::from_millis(1100));
        let again = output.respond(
            &request(&[("if-modified-since", &sent)]),
            &Method::GET,
            &cache_control(MAX_AGE),
        );
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, "last-modified"), Some(sent.as_str()));
    }

    #[tokio::test]
    async fn gzip_chosen() {
        let response = get(&[("accept-encoding", "gzip, deflate")]);
        assert_eq!(header(&response, "content-encoding"), Some("gzip"));
        assert_eq!(header(&response, "vary"), Some("accept-encoding"));
        assert_eq!(
            header(&response, "content-length"),
            Some(output().gzip.len().to_string().as_str())
        );
        assert_eq!(decoded_body(response).await, BODY);
    }

    #[tokio::test]
    async fn brotli_chosen() {
        let response = get(&[("accept-encoding", "gzip, deflate, br, zstd")]);
        assert_eq!(header(&response, "content-encoding"), Some("br"));
        assert_eq!(
            header(&response, "etag"),
            Some(output().etag_for(Coding::Brotli).as_str())
        );
        assert_eq!(decoded_body(response).await, BODY);
    }

    #[test]
    fn weights_decide() {
        check_coding("br;q=0.5, gzip", Some("gzip"));
        check_coding("br;q=1.0, gzip;q=1", Some("br"));
        check_coding("gzip;q=0.8, br;q=0.800", Some("br"));
        check_coding("identity;q=1, gzip;q=0.5", None);
        check_coding("gzip;q=0.5", Some("gzip"));
        check_coding("x-gzip", Some("gzip"));
        check_coding("GZIP ; Q=0.9", Some("gzip"));
        check_coding("*", Some("br"));
        check_coding("*;q=0.5, br;q=0", Some("gzip"));
        check_coding("identity;q=0, gzip;q=0.2", Some("gzip"));
        check_coding("deflate, zstd", None);
        check_coding("", None);
        // A malformed weight voids its member only.
        check_coding("br;q=2, gzip", Some("gzip"));
        check_coding("br;q=0.5555", None);
    }

    #[tokio::test]
    async fn refusals_fall_back_to_identity() {
        for accept in [
            "gzip;q=0",
            "br;q=0, gzip;q=0",
            "*;q=0",
            "identity;q=0, *;q=0",
        ] {
            let response = get(&[("accept-encoding", accept)]);
            assert_eq!(header(&response, "content-encoding"), None, "{accept}");
            assert_eq!(header(&response, "vary"), Some("accept-encoding"));
            assert_eq!(decoded_body(response).await, BODY);
        }
    }

    #[test]
    fn accept_encoding_across_several_lines() {
        let response = get(&[("accept-encoding", "gzip;q=0.1"), ("accept-encoding", "br")]);
        assert_eq!(header(&response, "content-encoding"), Some("br"));
    }

    #[tokio::test]
    async fn head_has_the_headers_and_no_body() {
        let output = output();
        for (accept, length) in [("identity", output.body.len()), ("br", output.brotli.len())] {
            let response = output.respond(
                &request(&[("accept-encoding", accept)]),
                &Method::HEAD,
                &cache_control(MAX_AGE),
            );
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                header(&response, "content-length"),
                Some(length.to_string().as_str())
            );
            assert_eq!(header(&response, "vary"), Some("accept-encoding"));
            assert!(header(&response, "etag").is_some());
            assert!(body(response).await.is_empty());
        }
    }

    #[test]
    fn other_methods_are_not_allowed() {
        let response = output().respond(&HeaderMap::new(), &Method::POST, &cache_control(MAX_AGE));
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
        assert_eq!(header(&response, "vary"), Some("accept-encoding"));
    }
}
