//! WebSub publishing: tells the configured hub which outputs changed, so subscribers get them pushed.

use std::time::Duration;

use tracing::{debug, warn};

/// Pings `hub` once per topic (`hub.mode=publish`, `hub.url=TOPIC`), the
/// form hubs have accepted since PubSubHubbub. Failures are logged: a hub that
/// is down must not hold up polling, and the next change pings again.
pub async fn publish(client: &reqwest::Client, hub: &str, topics: &[String]) -> usize {
    let mut delivered = 0;
    for topic in topics {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("hub.mode", "publish")
            .append_pair("hub.url", topic)
            .finish();
        let sent = client
            .post(hub)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(Duration::from_secs(10))
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                delivered += 1;
                debug!(topic = %topic, "pinged the WebSub hub");
            }
            Ok(response) => {
                warn!(topic = %topic, status = %response.status(), "the WebSub hub refused a ping")
            }
            Err(e) => warn!(topic = %topic, "cannot ping the WebSub hub: {e}"),
        }
    }
    delivered
}
