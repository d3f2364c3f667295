//! Sending one report per DESIGN.md's protocol: `multipart/form-data` with the dump
//! in `upload_file_minidump` and annotations as text parts, the whole body gzipped
//! (`Content-Encoding: gzip`), retried with exponential backoff and jitter on
//! network errors and `5xx`, `429 Retry-After` and `StopSendingReportsFor=` honoured.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use mayday_report::upload::{MINIDUMP_FIELD, SubmitReceipt};
use rand::Rng;
use reqwest::blocking::multipart::{Form, Part};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};

use crate::config::RetryPolicy;
use crate::error::Error;

/// What became of one upload.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server stored the report; `stop` when it also asked the client not to
    /// send more for a while (`StopSendingReportsFor=`).
    Accepted {
        receipt: SubmitReceipt,
        stop: Option<Duration>,
    },
    /// The server refused the report for good (`400`, `413`): it is dropped.
    Discarded { status: u16, reason: String },
    /// The server asked the client to wait longer than it waits within one call.
    Throttled { until: time::OffsetDateTime },
    /// Not sent this time (network, `5xx` after the retries, another `4xx`): the
    /// report stays pending.
    Failed(Error),
}

/// The request body, gzipped, and its content type.
pub(crate) struct Body {
    pub(crate) gzipped: Vec<u8>,
    pub(crate) content_type: String,
}

/// Builds the gzipped multipart body.
pub(crate) fn build_body(
    dump: Vec<u8>,
    annotations: &BTreeMap<String, String>,
) -> Result<Body, Error> {
    let mut form = Form::new();
    for (k, v) in annotations {
        form = form.text(k.clone(), v.clone());
    }
    let part = Part::bytes(dump)
        .file_name("upload_file_minidump.dmp")
        .mime_str("application/octet-stream")
        .map_err(|e| Error::Network(e.to_string()))?;
    form = form.part(MINIDUMP_FIELD, part);
    let content_type = format!("multipart/form-data; boundary={}", form.boundary());
    let mut raw = Vec::new();
    form.into_reader()
        .read_to_end(&mut raw)
        .map_err(|e| Error::Network(format!("building the request body: {e}")))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw)
        .map_err(|e| Error::Network(format!("compressing the request body: {e}")))?;
    let gzipped = gz
        .finish()
        .map_err(|e| Error::Network(format!("compressing the request body: {e}")))?;
    Ok(Body {
        gzipped,
        content_type,
    })
}

/// The delay before retry number `attempt` (0 for the first retry): exponential,
/// capped, with jitter (a random point in the upper half).
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt.min(20)));
    let capped = exp.min(policy.max_delay);
    let half = capped / 2;
    let jitter = rand::rng().random_range(0.0..=1.0);
    half + half.mul_f64(jitter)
}

/// Reads `Retry-After`: delta seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let when = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let delta = when - crate::fsutil::now();
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

/// `StopSendingReportsFor=<hours>` in a reply body (as Mozilla's crash reporter
/// reads it).
pub(crate) fn stop_sending_for(body: &str) -> Option<Duration> {
    body.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "StopSendingReportsFor")
            .then(|| v.trim().parse::<f64>().ok())
            .flatten()
            .filter(|h| h.is_finite() && *h > 0.0)
            .map(|h| Duration::from_secs_f64(h * 3600.0))
    })
}

pub(crate) fn until(d: Duration) -> time::OffsetDateTime {
    crate::fsutil::now() + time::Duration::try_from(d).unwrap_or(time::Duration::DAY)
}

fn snippet(body: &str) -> String {
    body.chars().take(200).collect::<String>().trim().to_owned()
}

/// Posts `body` to `url`, retrying per `policy`.
pub(crate) fn send(
    http: &reqwest::blocking::Client,
    url: &str,
    body: &Body,
    policy: &RetryPolicy,
) -> Outcome {
    let attempts = policy.attempts.max(1);
    let mut last = Error::Network("no attempt made".into());
    // The wait before the next attempt: the server's Retry-After, else backoff.
    let mut retry_after_wait = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            let wait = retry_after_wait
                .take()
                .unwrap_or_else(|| backoff(policy, attempt - 1));
            std::thread::sleep(wait);
        }
        let response = http
            .post(url)
            .header(CONTENT_TYPE, &body.content_type)
            .header(CONTENT_ENCODING, "gzip")
            .body(body.gzipped.clone())
            .send();
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(attempt, error = %e, "upload failed, will retry");
                last = Error::Network(e.to_string());
                continue;
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = response.text().unwrap_or_default();
        let stop = stop_sending_for(&text);
        if let Some(stop) = stop {
            tracing::info!(?stop, status, "server asked to stop sending reports");
            if !(200..300).contains(&status) {
                return Outcome::Throttled { until: until(stop) };
            }
        }
        match status {
            200..=299 => {
                return match SubmitReceipt::parse_text(&text) {
                    Ok(receipt) => Outcome::Accepted { receipt, stop },
                    Err(_) if stop.is_some() => Outcome::Throttled {
                        until: until(stop.unwrap_or_default()),
                    },
                    Err(_) => Outcome::Failed(Error::BadReceipt),
                };
            }
            400 | 413 => {
                return Outcome::Discarded {
                    status,
                    reason: snippet(&text),
                };
            }
            429 => {
                let wait = retry_after.unwrap_or(policy.base_delay);
                if wait > policy.max_delay {
                    return Outcome::Throttled { until: until(wait) };
                }
                last = Error::Server {
                    status,
                    body: snippet(&text),
                };
                retry_after_wait = Some(wait);
            }
            500..=599 => {
                tracing::debug!(attempt, status, "server error, will retry");
                last = Error::Server {
                    status,
                    body: snippet(&text),
                };
            }
            _ => {
                return Outcome::Failed(Error::Server {
                    status,
                    body: snippet(&text),
                });
            }
        }
    }
    Outcome::Failed(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d0 = backoff(&p, 0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d3 = backoff(&p, 3);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
            let d9 = backoff(&p, 9);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1));
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn stop_sending_is_hours() {
        assert_eq!(
            stop_sending_for("Discarded=throttled\nStopSendingReportsFor=2\n"),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(stop_sending_for("CrashID=bp-1\n"), None);
        assert_eq!(stop_sending_for("StopSendingReportsFor=-1\n"), None);
    }

    #[test]
    fn body_is_gzipped_multipart_with_the_dump_and_annotations() {
        let annotations = BTreeMap::from([("ProductName".to_owned(), "crashy".to_owned())]);
        let body = build_body(b"MDMP....".to_vec(), &annotations).unwrap();
        let mut raw = String::new();
        flate2::read::GzDecoder::new(&body.gzipped[..])
            .read_to_string(&mut raw)
            .unwrap();
        let boundary = body
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert!(raw.contains(boundary));
        assert!(raw.contains("name=\"upload_file_minidump\""));
        assert!(raw.contains("MDMP...."));
        assert!(raw.contains("name=\"ProductName\""));
        assert!(raw.contains("crashy"));
    }
}
