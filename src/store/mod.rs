//! PostgreSQL persistence: the only module with SQL, behind a narrow set of domain operations.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use thiserror::Error;

use crate::domain::{
    Cursor, EntryFilter, EntrySource, FeedMeta, FeedSource, Item, ItemKey, StoredEntry,
};
use crate::fetch::Validators;

/// The LISTEN/NOTIFY channel on which stored items are announced as changed.
pub const ITEMS_CHANGED_CHANNEL: &str = "kabar_items_changed";

/// Separates list elements when a poll's items are sent as column arrays.
/// A control character, so cleaned text can never contain it (XML forbids it).
const LIST_SEPARATOR: char = '\u{1F}';

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("applying database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error while {action}: {source}")]
    Query {
        action: &'static str,
        source: sqlx::Error,
    },
    #[error("feed {0:?} is not in the database; was it added to the config after start?")]
    UnknownFeed(String),
}

impl StoreError {
    /// PostgreSQL aborted the statement to break a deadlock; it may simply be retried.
    fn is_deadlock(&self) -> bool {
        match self {
            StoreError::Query {
                source: sqlx::Error::Database(db),
                ..
            } => db.code().as_deref() == Some("40P01"),
            _ => false,
        }
    }
}

/// Runs a transaction again (up to three times in all) when PostgreSQL
/// aborted it to break a deadlock: it rolled back whole, so repeating it is safe.
async fn retry_deadlocks<T, F, Fut>(mut transaction: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(e) if e.is_deadlock() && attempt < 3 => attempt += 1,
            result => return result,
        }
    }
}

fn query_error(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { action, source }
}

/// What the store knows about one feed before it is polled.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedState {
    pub id: i64,
    pub name: String,
    pub validators: Validators,
    pub last_success_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    /// Why the feed is disabled; `None` while it is polled.
    pub disabled_reason: Option<String>,
    /// No poll before this time (backoff, Retry-After, publisher hints).
    pub not_before: Option<DateTime<Utc>>,
    /// When the current run of failures began.
    pub failing_since: Option<DateTime<Utc>>,
}

impl FeedState {
    pub fn is_disabled(&self) -> bool {
        self.disabled_reason.is_some()
    }
}

/// The full recorded state of a feed, for status reports (`kabar status --json`).
/// A due feed this instance now holds the lease on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub feed_id: i64,
    pub name: String,
    pub host: String,
    pub due: Option<DateTime<Utc>>,
    /// Another instance spoke to this host last: leave it a quiet interval first.
    pub host_changed_hands: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeedStatus {
    pub name: String,
    pub url: String,
    pub region: String,
    /// Still in the config.
    pub active: bool,
    /// `active` or `disabled`.
    pub state: String,
    pub disabled_reason: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub skipped_ticks: i64,
    pub items_last_24h: i64,
    #[serde(rename = "last_poll")]
    pub last_polled_at: Option<DateTime<Utc>>,
    #[serde(rename = "last_success")]
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error_kind: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: i32,
    pub next_due: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub validators: Validators,
    #[serde(rename = "items")]
    pub item_count: i64,
    /// The `kabar run` instance polling the feed right now, if any (host:pid:start).
    pub polling_instance: Option<String>,
}

/// Which page of an output to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The first page: the newest entries.
    Newest,
    /// Entries older than the cursor (RFC 5005 `next`).
    Before(Cursor),
    /// Entries newer than the cursor (RFC 5005 `prev`), still returned newest first.
    After(Cursor),
}

/// A stored item's raw form, for re-cleaning.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    pub key: ItemKey,
    pub url: String,
    pub raw: crate::domain::RawItem,
}

/// A failed poll, as recorded on its feed.
#[derive(Debug, Clone)]
pub struct FailureRecord<'a> {
    pub polled_at: DateTime<Utc>,
    pub kind: &'a str,
    pub message: &'a str,
    pub next_due: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
    /// Disables the feed with this reason.
    pub disable: Option<&'a str>,
}

/// Counts from storing one poll's items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub new: usize,
    pub duplicate: usize,
}

/// A successful poll, to be written in one transaction.
#[derive(Debug)]
pub struct PollSuccess<'a> {
    pub polled_at: DateTime<Utc>,
    pub meta: &'a FeedMeta,
    pub items: &'a [Item],
    pub validators: &'a Validators,
    pub next_due: Option<DateTime<Utc>>,
    /// Earliest next poll the publisher's hints allow.
    pub not_before: Option<DateTime<Utc>>,
}

/// A 304 to record on a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotModifiedRecord {
    pub feed_id: i64,
    pub polled_at: DateTime<Utc>,
    pub next_due: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects a pool to `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: crate::config::redact_password(url),
                source,
            })?;
        Ok(Store { pool })
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations in `migrations/` (embedded at build time).
    /// sqlx takes an advisory lock, so instances starting together are safe.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Makes the feeds table match the config: inserts new feeds, updates
    /// changed ones by name, and marks feeds no longer configured inactive
    /// (their items stay, so entries never vanish from under readers).
    pub async fn sync_feeds(&self, feeds: &[FeedSource]) -> Result<(), StoreError> {
        // Rows are locked in name order, as by every instance; and should
        // another instance's statement still lock them in another order (and
        // PostgreSQL break the deadlock by failing this one), try again.
        let mut sorted: Vec<&FeedSource> = feeds.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        retry_deadlocks(|| self.sync_feeds_once(&sorted)).await
    }

    async fn sync_feeds_once(&self, feeds: &[&FeedSource]) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_error("syncing feeds"))?;
        // One statement for all feeds: a config of thousands of feeds syncs in
        // one round trip, and rows that did not change are not rewritten.
        let names: Vec<&str> = feeds.iter().map(|f| f.name.as_str()).collect();
        let urls: Vec<&str> = feeds.iter().map(|f| f.url.as_str()).collect();
        let regions: Vec<&str> = feeds.iter().map(|f| f.region.as_str()).collect();
        let tags: Vec<String> = feeds.iter().map(|f| join_list(&f.tags)).collect();
        let hosts: Vec<String> = feeds.iter().map(|f| f.host_key()).collect();
        sqlx::query(
            "INSERT INTO feeds (name, url, region, tags, active, host)
             SELECT n, u, r, string_to_array(t, chr(31)), TRUE, h
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                  AS x(n, u, r, t, h)
             ON CONFLICT (name) DO UPDATE
             SET url = EXCLUDED.url, region = EXCLUDED.region, tags = EXCLUDED.tags,
                 active = TRUE, host = EXCLUDED.host,
                 -- a new URL is a new conversation with a server: forget old validators
                 etag = CASE WHEN feeds.url = EXCLUDED.url THEN feeds.etag END,
                 last_modified = CASE WHEN feeds.url = EXCLUDED.url THEN feeds.last_modified END,
                 -- a disabled feed (410, failing for days) is enabled again by a new url
                 state = CASE WHEN feeds.url = EXCLUDED.url THEN feeds.state ELSE 'active' END,
                 disabled_reason = CASE WHEN feeds.url = EXCLUDED.url THEN feeds.disabled_reason END,
                 not_before = CASE WHEN feeds.url = EXCLUDED.url THEN feeds.not_before END,
                 failing_since = CASE WHEN feeds.url = EXCLUDED.url THEN feeds.failing_since END,
                 consecutive_failures = CASE WHEN feeds.url = EXCLUDED.url
                                             THEN feeds.consecutive_failures ELSE 0 END
             WHERE (feeds.url, feeds.region, feeds.tags, feeds.active, feeds.host)
                   IS DISTINCT FROM
                   (EXCLUDED.url, EXCLUDED.region, EXCLUDED.tags, TRUE, EXCLUDED.host)",
        )
        .bind(&names)
        .bind(&urls)
        .bind(&regions)
        .bind(&tags)
        .bind(&hosts)
        .execute(&mut *tx)
        .await
        .map_err(query_error("syncing feeds"))?;
        sqlx::query("UPDATE feeds SET active = FALSE WHERE active AND NOT (name = ANY($1))")
            .bind(&names)
            .execute(&mut *tx)
            .await
            .map_err(query_error("syncing feeds"))?;
        tx.commit().await.map_err(query_error("syncing feeds"))?;
        Ok(())
    }

    /// The stored state of the feed called `name`.
    pub async fn feed_state(&self, name: &str) -> Result<FeedState, StoreError> {
        self.feed_states(&[name])
            .await?
            .remove(name)
            .ok_or_else(|| StoreError::UnknownFeed(name.to_string()))
    }

    /// The stored states of the feeds called `names`, by name, in one query;
    /// names not in the database are left out.
    pub async fn feed_states(
        &self,
        names: &[&str],
    ) -> Result<HashMap<String, FeedState>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, etag, last_modified, last_success_at, consecutive_failures,
                    CASE WHEN state = 'disabled' THEN COALESCE(disabled_reason, 'disabled') END
                        AS disabled_reason,
                    not_before, failing_since
             FROM feeds WHERE name = ANY($1)",
        )
        .bind(names)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("reading feed state"))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let state = FeedState {
                    id: row.get("id"),
                    name: row.get("name"),
                    validators: Validators {
                        etag: row.get("etag"),
                        last_modified: row.get("last_modified"),
                    },
                    last_success_at: row.get("last_success_at"),
                    consecutive_failures: row.get("consecutive_failures"),
                    disabled_reason: row.get("disabled_reason"),
                    not_before: row.get("not_before"),
                    failing_since: row.get("failing_since"),
                };
                (state.name.clone(), state)
            })
            .collect())
    }

    /// Stores a successful poll: its items (deduplicated by key against
    /// everything stored) and the feed's new state, in one transaction. If any
    /// part fails nothing is recorded, so the next poll fetches everything again.
    pub async fn record_success(
        &self,
        feed_id: i64,
        poll: PollSuccess<'_>,
    ) -> Result<StoreCounts, StoreError> {
        // Inserts are ordered so polls do not deadlock each other; should some
        // other statement still make PostgreSQL break a deadlock by failing
        // this transaction, it rolled back whole and is simply run again.
        retry_deadlocks(|| self.record_success_once(feed_id, &poll)).await
    }

    async fn record_success_once(
        &self,
        feed_id: i64,
        poll: &PollSuccess<'_>,
    ) -> Result<StoreCounts, StoreError> {
        let action = "storing a poll's items";
        let mut tx = self.pool.begin().await.map_err(query_error(action))?;
        let new = insert_items(&mut tx, feed_id, poll.polled_at, poll.items)
            .await
            .map_err(query_error(action))?;
        sqlx::query(
            "UPDATE feeds SET
                site_title = COALESCE($2, site_title),
                site_link = COALESCE($3, site_link),
                site_id = COALESCE($4, site_id),
                site_updated = COALESCE($5, site_updated),
                etag = $6, last_modified = $7,
                last_polled_at = $8, last_success_at = $8,
                last_error_kind = NULL, last_error = NULL, last_error_at = NULL,
                consecutive_failures = 0, failing_since = NULL, next_due = $9, not_before = $10
             WHERE id = $1",
        )
        .bind(feed_id)
        .bind(&poll.meta.title)
        .bind(&poll.meta.site_link)
        .bind(&poll.meta.id)
        .bind(poll.meta.updated)
        .bind(&poll.validators.etag)
        .bind(&poll.validators.last_modified)
        .bind(poll.polled_at)
        .bind(poll.next_due)
        .bind(poll.not_before)
        .execute(&mut *tx)
        .await
        .map_err(query_error(action))?;
        if new > 0 {
            // Delivered at commit to every listening kabar (other instances,
            // a daemon while `kabar poll` runs), whose cached outputs are now stale.
            notify_items_changed(&mut *tx)
                .await
                .map_err(query_error(action))?;
        }
        tx.commit().await.map_err(query_error(action))?;
        Ok(StoreCounts {
            new,
            duplicate: poll.items.len() - new,
        })
    }

    /// Records 304s: the feeds are healthy and unchanged. One statement for
    /// any number of feeds.
    pub async fn record_not_modified(
        &self,
        records: &[NotModifiedRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = records.iter().map(|r| r.feed_id).collect();
        let polled: Vec<DateTime<Utc>> = records.iter().map(|r| r.polled_at).collect();
        let due: Vec<Option<DateTime<Utc>>> = records.iter().map(|r| r.next_due).collect();
        let not_before: Vec<Option<DateTime<Utc>>> = records.iter().map(|r| r.not_before).collect();
        sqlx::query(
            "UPDATE feeds f SET last_polled_at = x.polled, last_success_at = x.polled,
                last_error_kind = NULL, last_error = NULL, last_error_at = NULL,
                consecutive_failures = 0, failing_since = NULL,
                next_due = x.due, not_before = x.not_before
             FROM UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[])
                  AS x(id, polled, due, not_before)
             -- A batch written late must not undo a newer poll's record (its backoff).
             WHERE f.id = x.id AND (f.last_polled_at IS NULL OR f.last_polled_at <= x.polled)",
        )
        .bind(&ids)
        .bind(&polled)
        .bind(&due)
        .bind(&not_before)
        .execute(&self.pool)
        .await
        .map_err(query_error("recording not-modified polls"))?;
        Ok(())
    }

    /// Records a failed poll; validators and items are left as they were.
    pub async fn record_failure(
        &self,
        feed_id: i64,
        failure: &FailureRecord<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE feeds SET last_polled_at = $2, last_error_at = $2,
                last_error_kind = $3, last_error = $4,
                consecutive_failures = consecutive_failures + 1,
                failing_since = COALESCE(failing_since, $2),
                next_due = $5, not_before = $6,
                state = CASE WHEN $7::text IS NULL THEN state ELSE 'disabled' END,
                disabled_reason = COALESCE($7, disabled_reason)
             WHERE id = $1",
        )
        .bind(feed_id)
        .bind(failure.polled_at)
        .bind(failure.kind)
        .bind(failure.message)
        .bind(failure.next_due)
        .bind(failure.not_before)
        .bind(failure.disable)
        .execute(&self.pool)
        .await
        .map_err(query_error("recording a failed poll"))?;
        Ok(())
    }

    /// Counts a scheduled tick that was skipped because the feed was not yet allowed.
    pub async fn record_skipped_tick(&self, feed_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE feeds SET skipped_ticks = skipped_ticks + 1 WHERE id = $1")
            .bind(feed_id)
            .execute(&self.pool)
            .await
            .map_err(query_error("counting a skipped tick"))?;
        Ok(())
    }

    /// Gives each feed a due time from its schedule: `due` when it has none,
    /// or when `due` is earlier (its schedule was made more frequent). A due
    /// time in the past stays, so a feed missed while no instance ran is
    /// polled at once; a feed another instance planned keeps its plan.
    pub async fn plan_due(&self, plans: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        let (names, dues): (Vec<&str>, Vec<DateTime<Utc>>) = plans
            .iter()
            .map(|(name, due)| (name.as_str(), *due))
            .unzip();
        sqlx::query(
            "UPDATE feeds f SET next_due = LEAST(COALESCE(f.next_due, p.due), p.due)
             FROM UNNEST($1::text[], $2::timestamptz[]) AS p (name, due)
             WHERE f.name = p.name",
        )
        .bind(&names)
        .bind(&dues)
        .execute(&self.pool)
        .await
        .map_err(query_error("planning due times"))?;
        Ok(())
    }

    /// Claims up to `limit` of the feeds named in `names` that are due and not
    /// leased, for `owner`, for `lease`. A feed is claimed only together with
    /// its host: a host held by another live instance keeps its feeds for that
    /// instance, so one instance at a time speaks to each host and per-host
    /// politeness holds across instances. Rows another instance is claiming
    /// right now are skipped, not waited for.
    pub async fn claim_due(
        &self,
        owner: &str,
        names: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        let rows = sqlx::query(
            "WITH due AS (
                 SELECT f.id, f.host, f.next_due
                 FROM feeds f
                 -- Not `active`: that flag follows whichever instance synced
                 -- last; each instance polls the feeds of its own config.
                 WHERE f.name = ANY($2) AND f.next_due <= now()
                   AND (f.leased_until IS NULL OR f.leased_until < now())
                   AND NOT EXISTS (
                       SELECT 1 FROM host_leases h
                       WHERE h.host = f.host AND h.owner <> $1 AND h.leased_until >= now())
                 ORDER BY f.next_due
                 LIMIT $3
                 FOR UPDATE OF f SKIP LOCKED
             ),
             hosts AS (
                 -- The unique host key decides a race between instances: the loser's
                 -- update finds the winner's live lease and returns nothing.
                 INSERT INTO host_leases AS h (host, owner, leased_until)
                 -- In host order, as every instance does: no deadlock between them.
                 SELECT DISTINCT host, $1, now() + make_interval(secs => $4) FROM due
                 ORDER BY host
                 ON CONFLICT (host) DO UPDATE
                     SET owner = EXCLUDED.owner, leased_until = EXCLUDED.leased_until,
                         previous_owner = h.owner
                     WHERE h.owner = EXCLUDED.owner OR h.leased_until < now()
                 RETURNING h.host, h.previous_owner
             )
             UPDATE feeds f SET lease_owner = $1, leased_until = now() + make_interval(secs => $4)
             FROM due JOIN hosts ON hosts.host = due.host
             WHERE f.id = due.id
             RETURNING f.id, f.name, f.host, due.next_due,
                       COALESCE(hosts.previous_owner <> $1, FALSE) AS host_changed_hands",
        )
        .bind(owner)
        .bind(names)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("claiming due feeds"))?;
        let mut claims: Vec<Claim> = rows
            .into_iter()
            .map(|row| Claim {
                feed_id: row.get("id"),
                name: row.get("name"),
                host: row.get("host"),
                due: row.get("next_due"),
                host_changed_hands: row.get("host_changed_hands"),
            })
            .collect();
        claims.sort_by_key(|c| c.due);
        Ok(claims)
    }

    /// Extends `owner`'s leases on the feeds it is polling and on their hosts.
    /// Returns the feeds whose lease was renewed: one missing was claimed by
    /// another instance after this one's lease ran out.
    pub async fn renew_leases(
        &self,
        owner: &str,
        feed_ids: &[i64],
        hosts: &[String],
        lease: Duration,
    ) -> Result<Vec<i64>, StoreError> {
        let action = "renewing leases";
        let mut tx = self.pool.begin().await.map_err(query_error(action))?;
        let renewed: Vec<i64> = sqlx::query_scalar(
            "UPDATE feeds SET leased_until = now() + make_interval(secs => $3)
             WHERE lease_owner = $1 AND id = ANY($2)
             RETURNING id",
        )
        .bind(owner)
        .bind(feed_ids)
        .bind(lease.as_secs_f64())
        .fetch_all(&mut *tx)
        .await
        .map_err(query_error(action))?;
        sqlx::query(
            "UPDATE host_leases SET leased_until = now() + make_interval(secs => $3)
             WHERE owner = $1 AND host = ANY($2)",
        )
        .bind(owner)
        .bind(hosts)
        .bind(lease.as_secs_f64())
        .execute(&mut *tx)
        .await
        .map_err(query_error(action))?;
        tx.commit().await.map_err(query_error(action))?;
        Ok(renewed)
    }

    /// Ends `owner`'s lease on a feed whose poll is over, and sets when it is
    /// next due. The host lease is left to run out: the host's next feeds are
    /// likely due soon and this instance keeps its place with that host.
    pub async fn release_lease(
        &self,
        owner: &str,
        feed_id: i64,
        next_due: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE feeds SET lease_owner = NULL, leased_until = NULL, next_due = $3
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(feed_id)
        .bind(owner)
        .bind(next_due)
        .execute(&self.pool)
        .await
        .map_err(query_error("releasing a feed lease"))?;
        Ok(())
    }

    /// Gives up every lease `owner` holds, feeds and hosts, without touching
    /// due times: feeds whose polls were cancelled stay due for whoever comes next.
    pub async fn release_all_leases(&self, owner: &str) -> Result<(), StoreError> {
        let action = "releasing leases";
        let mut tx = self.pool.begin().await.map_err(query_error(action))?;
        sqlx::query(
            "UPDATE feeds SET lease_owner = NULL, leased_until = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(query_error(action))?;
        // Expired, not deleted: whoever takes the host next still sees that it
        // changed hands and leaves it a quiet interval first.
        sqlx::query("UPDATE host_leases SET leased_until = now() WHERE owner = $1")
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(query_error(action))?;
        tx.commit().await.map_err(query_error(action))?;
        Ok(())
    }

    /// The newest `limit` items of all feeds, newest first, with their source feed.
    pub async fn newest_entries(&self, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        self.entries(&EntryFilter::default(), Page::Newest, limit)
            .await
    }

    /// One page of an output: items matching `filter`, newest first, keyed
    /// by (published, key) so pages stay stable while new items arrive.
    pub async fn entries(
        &self,
        filter: &EntryFilter,
        page: Page,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        const SELECT: &str = "SELECT i.key, i.url, i.title, i.published, i.updated, i.summary,
                    i.content_html, i.authors, i.contributor, i.categories,
                    f.name AS feed_name, f.url AS feed_url, f.region, f.tags, f.site_title,
                    f.site_link, f.site_id, f.site_updated
             FROM items i JOIN feeds f ON f.id = i.feed_id
             WHERE (cardinality($1::text[]) = 0 OR f.region = ANY($1))
               AND (cardinality($2::text[]) = 0 OR f.tags && $2)
               AND (cardinality($3::text[]) = 0 OR f.name = ANY($3))
               AND (cardinality($4::text[]) = 0
                    OR (i.title || ' ' || i.content_html) ILIKE ANY($4))
               AND NOT ((i.title || ' ' || i.content_html) ILIKE ANY($5))";
        let sql = match page {
            Page::Newest => format!("{SELECT} ORDER BY i.published DESC, i.key DESC LIMIT $6"),
            Page::Before(_) => format!(
                "{SELECT} AND (i.published, i.key) < ($7, $8)
                 ORDER BY i.published DESC, i.key DESC LIMIT $6"
            ),
            // The page just newer than the cursor: read upwards, then turn around.
            Page::After(_) => format!(
                "{SELECT} AND (i.published, i.key) > ($7, $8)
                 ORDER BY i.published ASC, i.key ASC LIMIT $6"
            ),
        };
        let like = |words: &[String]| -> Vec<String> {
            words
                .iter()
                .map(|w| {
                    let escaped = w
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_");
                    format!("%{escaped}%")
                })
                .collect()
        };
        let mut query = sqlx::query(&sql)
            .bind(&filter.regions)
            .bind(&filter.tags)
            .bind(&filter.feeds)
            .bind(like(&filter.include))
            .bind(like(&filter.exclude))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Page::Before(cursor) | Page::After(cursor) = page {
            query = query.bind(cursor.published).bind(cursor.key.0.to_vec());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("reading entries"))?;
        let mut entries = rows
            .into_iter()
            .map(|row| {
                let key_bytes: Vec<u8> = row.get("key");
                Ok(StoredEntry {
                    key: ItemKey::from_slice(&key_bytes).ok_or(StoreError::Query {
                        action: "reading entries",
                        source: sqlx::Error::Decode("item key is not 32 bytes".into()),
                    })?,
                    url: row.get("url"),
                    title: row.get("title"),
                    published: row.get("published"),
                    updated: row.get("updated"),
                    summary: row.get("summary"),
                    content_html: row.get("content_html"),
                    authors: row.get("authors"),
                    contributor: row.get("contributor"),
                    categories: row.get("categories"),
                    source: EntrySource {
                        feed_name: row.get("feed_name"),
                        feed_url: row.get("feed_url"),
                        region: row.get("region"),
                        tags: row.get("tags"),
                        title: row.get("site_title"),
                        site_link: row.get("site_link"),
                        id: row.get("site_id"),
                        updated: row.get("site_updated"),
                    },
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if matches!(page, Page::After(_)) {
            entries.reverse();
        }
        Ok(entries)
    }

    /// Every feed's recorded state, active feeds first, by name.
    pub async fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.name, f.url, f.region, f.active, f.last_polled_at, f.last_success_at,
                    f.last_error_kind, f.last_error, f.consecutive_failures, f.next_due,
                    f.etag, f.last_modified, f.state, f.disabled_reason, f.not_before,
                    f.skipped_ticks,
                    CASE WHEN f.leased_until > now() THEN f.lease_owner END AS polling_instance,
                    (SELECT count(*) FROM items i WHERE i.feed_id = f.id) AS item_count,
                    (SELECT count(*) FROM items i
                      WHERE i.feed_id = f.id AND i.first_seen > now() - interval '24 hours')
                        AS items_last_24h
             FROM feeds f ORDER BY f.active DESC, f.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("reading feed statuses"))?;
        Ok(rows
            .into_iter()
            .map(|row| FeedStatus {
                name: row.get("name"),
                url: row.get("url"),
                region: row.get("region"),
                active: row.get("active"),
                state: row.get("state"),
                disabled_reason: row.get("disabled_reason"),
                not_before: row.get("not_before"),
                skipped_ticks: row.get("skipped_ticks"),
                items_last_24h: row.get("items_last_24h"),
                last_polled_at: row.get("last_polled_at"),
                last_success_at: row.get("last_success_at"),
                last_error_kind: row.get("last_error_kind"),
                last_error: row.get("last_error"),
                consecutive_failures: row.get("consecutive_failures"),
                next_due: row.get("next_due"),
                validators: Validators {
                    etag: row.get("etag"),
                    last_modified: row.get("last_modified"),
                },
                item_count: row.get("item_count"),
                polling_instance: row.get("polling_instance"),
            })
            .collect())
    }

    /// One page of stored items with their raw form, for re-cleaning: items
    /// of `feed` (or all), published at or after `since`, with keys after
    /// `after` in key order. Items stored before raw forms were kept are left out.
    pub async fn raw_items_page(
        &self,
        feed: Option<&str>,
        since: Option<DateTime<Utc>>,
        after: Option<ItemKey>,
        limit: usize,
    ) -> Result<Vec<RawRecord>, StoreError> {
        let action = "reading stored items to re-clean";
        let rows = sqlx::query(
            "SELECT i.key, i.url, i.raw::text AS raw
             FROM items i JOIN feeds f ON f.id = i.feed_id
             WHERE i.raw IS NOT NULL
               AND ($1::text IS NULL OR f.name = $1)
               AND ($2::timestamptz IS NULL OR i.published >= $2)
               AND ($3::bytea IS NULL OR i.key > $3)
             ORDER BY i.key
             LIMIT $4",
        )
        .bind(feed)
        .bind(since)
        .bind(after.map(|k| k.0.to_vec()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error(action))?;
        rows.into_iter()
            .map(|row| {
                let key_bytes: Vec<u8> = row.get("key");
                let raw_text: String = row.get("raw");
                let decode = |message: String| StoreError::Query {
                    action,
                    source: sqlx::Error::Decode(message.into()),
                };
                Ok(RawRecord {
                    key: ItemKey::from_slice(&key_bytes)
                        .ok_or_else(|| decode("item key is not 32 bytes".into()))?,
                    url: row.get("url"),
                    raw: serde_json::from_str(&raw_text)
                        .map_err(|e| decode(format!("stored raw item is unreadable: {e}")))?,
                })
            })
            .collect()
    }

    /// Writes re-cleaned items. Only rows whose cleaned form differs are
    /// touched, and only those get a new `updated` time; returns how many changed.
    pub async fn update_cleaned(
        &self,
        items: &[Item],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if items.is_empty() {
            return Ok(0);
        }
        let join = |list: &[String]| join_list(list);
        let keys: Vec<Vec<u8>> = items.iter().map(|i| i.key.0.to_vec()).collect();
        let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
        let summaries: Vec<Option<&str>> = items.iter().map(|i| i.summary.as_deref()).collect();
        let contents: Vec<&str> = items.iter().map(|i| i.content_html.as_str()).collect();
        let authors: Vec<String> = items.iter().map(|i| join(&i.authors)).collect();
        let contributors: Vec<Option<&str>> =
            items.iter().map(|i| i.contributor.as_deref()).collect();
        let source_notes: Vec<Option<&str>> =
            items.iter().map(|i| i.source_note.as_deref()).collect();
        let original_urls: Vec<Option<&str>> =
            items.iter().map(|i| i.original_url.as_deref()).collect();
        let datelines: Vec<Option<&str>> = items.iter().map(|i| i.dateline.as_deref()).collect();
        let changed = sqlx::query(
            "UPDATE items SET title = x.t, summary = x.s, content_html = x.c,
                    authors = string_to_array(x.a, chr(31)), contributor = x.ctb,
                    source_note = x.src, original_url = x.orig, dateline = x.dl,
                    updated = GREATEST(items.updated, $10)
             FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[])
                  AS x(k, t, s, c, a, ctb, src, orig, dl)
             WHERE items.key = x.k
               AND (items.title, items.summary, items.content_html,
                    items.authors, items.contributor, items.source_note,
                    items.original_url, items.dateline)
                   IS DISTINCT FROM
                   (x.t, x.s, x.c, string_to_array(x.a, chr(31)), x.ctb, x.src, x.orig, x.dl)",
        )
        .bind(&keys)
        .bind(&titles)
        .bind(&summaries)
        .bind(&contents)
        .bind(&authors)
        .bind(&contributors)
        .bind(&source_notes)
        .bind(&original_urls)
        .bind(&datelines)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(query_error("writing re-cleaned items"))?
        .rows_affected();
        if changed > 0 {
            // Cached outputs of every listening kabar now show stale text.
            notify_items_changed(&self.pool)
                .await
                .map_err(query_error("announcing re-cleaned items"))?;
        }
        Ok(changed as usize)
    }

    /// Deletes items first seen before `older_than` and items beyond the
    /// newest `max_per_feed` of their feed, leaving a tombstone for each so a
    /// feed that still lists them does not bring them back; tombstones older
    /// than `forget_before` are dropped. One transaction; returns how many
    /// items were pruned.
    pub async fn prune(
        &self,
        older_than: Option<DateTime<Utc>>,
        max_per_feed: Option<i64>,
        forget_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let action = "pruning old items";
        let mut tx = self.pool.begin().await.map_err(query_error(action))?;
        let pruned = sqlx::query(
            "WITH doomed AS (
                 SELECT key FROM items WHERE $1::timestamptz IS NOT NULL AND first_seen < $1
                 UNION
                 SELECT key FROM (
                     SELECT key, row_number() OVER (PARTITION BY feed_id
                                                    ORDER BY published DESC, key DESC) AS n
                     FROM items) ranked
                 WHERE $2::bigint IS NOT NULL AND n > $2
             ), gone AS (
                 DELETE FROM items i USING doomed d WHERE i.key = d.key RETURNING i.key
             )
             INSERT INTO tombstones (key) SELECT key FROM gone
             ON CONFLICT (key) DO UPDATE SET pruned_at = now()",
        )
        .bind(older_than)
        .bind(max_per_feed)
        .execute(&mut *tx)
        .await
        .map_err(query_error(action))?
        .rows_affected();
        sqlx::query("DELETE FROM tombstones WHERE pruned_at < $1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await
            .map_err(query_error(action))?;
        if pruned > 0 {
            // Delivered at commit: cached outputs elsewhere still list the pruned items.
            notify_items_changed(&mut *tx)
                .await
                .map_err(query_error(action))?;
        }
        tx.commit().await.map_err(query_error(action))?;
        Ok(pruned)
    }

    /// How many tombstones are kept.
    pub async fn tombstone_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM tombstones")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("counting tombstones"))
    }

    /// Items per day over the last `days` days (oldest first) for every feed,
    /// for the status page's sparklines.
    pub async fn daily_counts(&self, days: i32) -> Result<Vec<(String, Vec<u32>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.name,
                    array_agg(COALESCE(c.n, 0) ORDER BY d.day) AS counts
             FROM feeds f
             CROSS JOIN generate_series(current_date - ($1 - 1), current_date, interval '1 day') AS d(day)
             LEFT JOIN (
                 SELECT feed_id, first_seen::date AS day, count(*)::int AS n
                 FROM items WHERE first_seen >= current_date - ($1 - 1)
                 GROUP BY feed_id, first_seen::date
             ) c ON c.feed_id = f.id AND c.day = d.day::date
             GROUP BY f.name ORDER BY f.name",
        )
        .bind(days)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("counting items per day"))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let counts: Vec<i32> = row.get("counts");
                (
                    row.get("name"),
                    counts.into_iter().map(|n| n.max(0) as u32).collect(),
                )
            })
            .collect())
    }

    /// Calls `on_change` whenever any kabar connected to this database stores
    /// new items, re-cleans or prunes; reconnects after a lost connection
    /// (calling `on_change` then too, since a notification may have been missed).
    pub async fn listen_for_changes(&self, on_change: impl Fn() + Send) {
        let mut reconnecting = false;
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!("cannot listen for item changes: {e}; retrying in 10 s");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(ITEMS_CHANGED_CHANNEL).await {
                tracing::warn!("cannot listen for item changes: {e}; retrying in 10 s");
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
            if reconnecting {
                on_change();
            }
            reconnecting = true;
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => on_change(),
                    // The connection was lost and re-established: something may have been missed.
                    Ok(None) => on_change(),
                    Err(e) => {
                        tracing::warn!("lost the item-change listener: {e}");
                        break;
                    }
                }
            }
        }
    }

    /// Records (or with `None` clears) a note for admins under `topic`.
    pub async fn set_daemon_note(
        &self,
        topic: &str,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        let action = "recording a note for admins";
        match message {
            Some(message) => {
                sqlx::query(
                    "INSERT INTO daemon_notes (topic, message) VALUES ($1, $2)
                 ON CONFLICT (topic) DO UPDATE SET message = EXCLUDED.message, at = now()",
                )
                .bind(topic)
                .bind(message)
                .execute(&self.pool)
                .await
            }
            None => {
                sqlx::query("DELETE FROM daemon_notes WHERE topic = $1")
                    .bind(topic)
                    .execute(&self.pool)
                    .await
            }
        }
        .map_err(query_error(action))?;
        Ok(())
    }

    /// Every note a daemon left for admins: (topic, message, when).
    pub async fn daemon_notes(&self) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query("SELECT topic, message, at FROM daemon_notes ORDER BY at")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("reading notes for admins"))?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get("topic"), row.get("message"), row.get("at")))
            .collect())
    }

    /// Whether the database answers; for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(query_error("checking the connection"))?;
        Ok(())
    }
}

/// Tells every listening kabar that stored items changed; inside a
/// transaction it is delivered at commit.
async fn notify_items_changed<'e>(executor: impl sqlx::PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(ITEMS_CHANGED_CHANNEL)
        .execute(executor)
        .await?;
    Ok(())
}

/// A list as one text for `string_to_array(…, chr(31))` in SQL.
fn join_list(list: &[String]) -> String {
    list.iter()
        .map(|s| s.replace(LIST_SEPARATOR, ""))
        .collect::<Vec<_>>()
        .join(&LIST_SEPARATOR.to_string())
}

/// Inserts a poll's items with one statement (column arrays through UNNEST);
/// the primary key on `key` does the deduplication. Returns how many were new.
async fn insert_items(
    tx: &mut Transaction<'_, Postgres>,
    feed_id: i64,
    polled_at: DateTime<Utc>,
    items: &[Item],
) -> Result<usize, sqlx::Error> {
    if items.is_empty() {
        return Ok(0);
    }
    let join = |list: &[String]| join_list(list);
    let keys: Vec<Vec<u8>> = items.iter().map(|i| i.key.0.to_vec()).collect();
    let urls: Vec<&str> = items.iter().map(|i| i.url.as_str()).collect();
    let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
    let guids: Vec<Option<&str>> = items.iter().map(|i| i.guid.as_deref()).collect();
    let published: Vec<Option<DateTime<Utc>>> = items.iter().map(|i| i.published).collect();
    let updated: Vec<Option<DateTime<Utc>>> = items.iter().map(|i| i.updated).collect();
    let summaries: Vec<Option<&str>> = items.iter().map(|i| i.summary.as_deref()).collect();
    let contents: Vec<&str> = items.iter().map(|i| i.content_html.as_str()).collect();
    let authors: Vec<String> = items.iter().map(|i| join(&i.authors)).collect();
    let categories: Vec<String> = items.iter().map(|i| join(&i.categories)).collect();
    let images: Vec<Option<&str>> = items.iter().map(|i| i.image.as_deref()).collect();
    let contributors: Vec<Option<&str>> = items.iter().map(|i| i.contributor.as_deref()).collect();
    let source_notes: Vec<Option<&str>> = items.iter().map(|i| i.source_note.as_deref()).collect();
    let original_urls: Vec<Option<&str>> =
        items.iter().map(|i| i.original_url.as_deref()).collect();
    let datelines: Vec<Option<&str>> = items.iter().map(|i| i.dateline.as_deref()).collect();
    let raws: Vec<String> = items
        .iter()
        .map(|i| serde_json::to_string(&i.raw).expect("a RawItem always serializes"))
        .collect();
    let inserted = sqlx::query(
        "INSERT INTO items (key, url, title, guid, published, published_by_feed, updated,
                            summary, content_html, authors, categories, image_url,
                            contributor, source_note, original_url, dateline, raw,
                            feed_id, first_seen)
         SELECT k, u, t, g, COALESCE(p, $17), p IS NOT NULL, COALESCE(up, p, $17),
                s, c, string_to_array(a, chr(31)), string_to_array(cat, chr(31)), img,
                ctb, src, orig, dl, r::jsonb,
                $18, $17
         FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[],
                     $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                     $16::text[])
              AS x(k, u, t, g, p, up, s, c, a, cat, img, ctb, src, orig, dl, r)
         WHERE NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.key = x.k)
         -- Every poll inserts in key order: two polls sharing items (the same
         -- story in two feeds) then wait for each other, never deadlock.
         ORDER BY x.k
         ON CONFLICT (key) DO NOTHING
         RETURNING key",
    )
    .bind(&keys)
    .bind(&urls)
    .bind(&titles)
    .bind(&guids)
    .bind(&published)
    .bind(&updated)
    .bind(&summaries)
    .bind(&contents)
    .bind(&authors)
    .bind(&categories)
    .bind(&images)
    .bind(&contributors)
    .bind(&source_notes)
    .bind(&original_urls)
    .bind(&datelines)
    .bind(&raws)
    .bind(polled_at)
    .bind(feed_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(inserted.len())
}
