//! Sending one report per DESIGN.md's protocol: `multipart/form-data` with the dump
//! in `upload_file_minidump` and annotations as text parts, the whole body gzipped
//! (`Content-Encoding: gzip`), retried with exponential backoff and jitter on
//! network errors and `5xx`, `429 Retry-After` and `StopSendingReportsFor=` honoured,
//! and a `200 Discarded=…` (a throttle rule refused it, as Antenna answers) dropped.
//! Before the dump, a crash-site summary may ask whether the server wants it
//! ([`ask`], JSON to `/api/v1/crash-sites`), with the same retries.
//!
//! Every reply is untrusted: at most [`MAX_REPLY_BYTES`] of a body are read (a
//! longer reply is malformed), a wait the server asks for is clamped to
//! [`MAX_SERVER_WAIT`], a value that is not a number is ignored, and a receipt
//! whose CrashID or DeletionToken has the wrong shape is refused (the report stays
//! pending) before anything of it is stored or used in a path or URL.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use mayday_report::crash_site::{CrashSiteAnswer, CrashSiteSummary};
use mayday_report::upload::{MINIDUMP_FIELD, SubmitReceipt};
use rand::Rng;
use reqwest::blocking::multipart::{Form, Part};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};

use crate::config::RetryPolicy;
use crate::error::Error;

/// The most bytes of a reply body the client reads. Mayday's and Socorro's
/// replies are a few lines; a longer reply is treated as malformed.
pub(crate) const MAX_REPLY_BYTES: usize = 64 * 1024;

/// The longest wait a server can impose through `Retry-After` or
/// `StopSendingReportsFor=`: 30 days, the default age at which pending reports are
/// deleted anyway. Longer values are clamped to it.
pub(crate) const MAX_SERVER_WAIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// What became of one upload.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server stored the report; `stop` when it also asked the client not to
    /// send more for a while (`StopSendingReportsFor=`).
    Accepted {
        receipt: SubmitReceipt,
        stop: Option<Duration>,
    },
    /// The server refused the report for good (`400`, `413`, or `200` with a
    /// `Discarded=` line): it is dropped.
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

/// Reads `Retry-After`: delta seconds or an HTTP date, clamped to
/// [`MAX_SERVER_WAIT`]. Anything else (negative, fractional, not a number) is
/// ignored.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_SERVER_WAIT));
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64: far beyond the cap.
        return Some(MAX_SERVER_WAIT);
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let when = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let delta = when - crate::fsutil::now();
    Some(
        Duration::try_from(delta)
            .unwrap_or(Duration::ZERO)
            .min(MAX_SERVER_WAIT),
    )
}

/// The `Discarded=<reason>` line of a reply body: a server (Antenna, Mayday's
/// throttle rules) that answers `200` to a report it dropped says so.
pub(crate) fn discarded(body: &str) -> Option<&str> {
    body.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "Discarded").then(|| v.trim())
    })
}

/// `StopSendingReportsFor=<hours>` in a reply body (as Mozilla's crash reporter
/// reads it), clamped to [`MAX_SERVER_WAIT`]. A value that is not a finite
/// positive number (`-1`, `NaN`, `inf`) is ignored.
pub(crate) fn stop_sending_for(body: &str) -> Option<Duration> {
    body.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "StopSendingReportsFor")
            .then(|| v.trim().parse::<f64>().ok())
            .flatten()
            .filter(|h| h.is_finite() && *h > 0.0)
            .map(|h| Duration::from_secs_f64((h * 3600.0).min(MAX_SERVER_WAIT.as_secs_f64())))
    })
}

/// The time `d` from now, `d` clamped to [`MAX_SERVER_WAIT`].
pub(crate) fn until(d: Duration) -> time::OffsetDateTime {
    let d = time::Duration::try_from(d.min(MAX_SERVER_WAIT)).unwrap_or(time::Duration::DAY);
    crate::fsutil::now().saturating_add(d)
}

/// The first characters of a reply for an error message, control characters
/// (terminal escapes) replaced by spaces.
pub(crate) fn snippet(body: &str) -> String {
    body.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A reply body, read up to [`MAX_REPLY_BYTES`].
pub(crate) struct Reply {
    /// The body (invalid UTF-8 replaced), at most [`MAX_REPLY_BYTES`] of it.
    pub(crate) text: String,
    /// Whether that is the whole body: false when it was longer or could not be
    /// read to its end.
    pub(crate) complete: bool,
}

/// Reads at most [`MAX_REPLY_BYTES`] of `response`'s body, never more into memory.
pub(crate) fn read_reply(response: reqwest::blocking::Response) -> Reply {
    let limit = MAX_REPLY_BYTES as u64 + 1;
    let mut buf = Vec::new();
    let read = response.take(limit).read_to_end(&mut buf);
    let complete = read.is_ok() && buf.len() <= MAX_REPLY_BYTES;
    buf.truncate(MAX_REPLY_BYTES);
    Reply {
        text: String::from_utf8_lossy(&buf).into_owned(),
        complete,
    }
}

/// A reply the server gave, not one to retry.
pub(crate) struct Answered {
    /// Its status.
    pub(crate) status: u16,
    /// Its body, at most [`MAX_REPLY_BYTES`] of it.
    pub(crate) reply: Reply,
    /// `StopSendingReportsFor=` in a complete `2xx` body.
    pub(crate) stop: Option<Duration>,
}

/// What came of a request sent with retries.
pub(crate) enum Posted {
    /// A reply (`2xx`, or a `4xx` other than `429`).
    Answered(Answered),
    /// The server asked the client to wait longer than it waits within one call.
    Throttled { until: time::OffsetDateTime },
    /// Network errors or `5xx` (or short `429`s) until the attempts ran out.
    Failed(Error),
}

/// Sends the request `request` builds, retrying per `policy` on network errors,
/// `5xx` and a `429` whose wait fits in a call; honours `Retry-After` and a
/// `StopSendingReportsFor=` on a refusal.
pub(crate) fn post_with_retries(
    policy: &RetryPolicy,
    request: impl Fn() -> reqwest::blocking::RequestBuilder,
) -> Posted {
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
        let response = match request().send() {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(attempt, error = %e, "request failed, will retry");
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
        let reply = read_reply(response);
        // Of a malformed (overlong) reply only the status and headers count.
        let stop = reply
            .complete
            .then(|| stop_sending_for(&reply.text))
            .flatten();
        if let Some(stop) = stop {
            tracing::info!(?stop, status, "server asked to stop sending reports");
            if !(200..300).contains(&status) {
                return Posted::Throttled { until: until(stop) };
            }
        }
        match status {
            429 => {
                let wait = retry_after.unwrap_or(policy.base_delay);
                if wait > policy.max_delay {
                    return Posted::Throttled { until: until(wait) };
                }
                last = Error::Server {
                    status,
                    body: snippet(&reply.text),
                };
                retry_after_wait = Some(wait);
            }
            500..=599 => {
                tracing::debug!(attempt, status, "server error, will retry");
                last = Error::Server {
                    status,
                    body: snippet(&reply.text),
                };
            }
            _ => {
                return Posted::Answered(Answered {
                    status,
                    reply,
                    stop,
                });
            }
        }
    }
    Posted::Failed(last)
}

/// Posts `body` to `url`, retrying per `policy`.
pub(crate) fn send(
    http: &reqwest::blocking::Client,
    url: &str,
    body: &Body,
    policy: &RetryPolicy,
) -> Outcome {
    let posted = post_with_retries(policy, || {
        http.post(url)
            .header(CONTENT_TYPE, &body.content_type)
            .header(CONTENT_ENCODING, "gzip")
            .body(body.gzipped.clone())
    });
    let Answered {
        status,
        reply,
        stop,
    } = match posted {
        Posted::Answered(answered) => answered,
        Posted::Throttled { until } => return Outcome::Throttled { until },
        Posted::Failed(e) => return Outcome::Failed(e),
    };
    let text = reply.text;
    match status {
        200..=299 => {
            let receipt = if reply.complete {
                SubmitReceipt::parse_text(&text).map_err(|e| e.to_string())
            } else {
                Err(format!("reply longer than {MAX_REPLY_BYTES} bytes"))
            };
            match receipt {
                Ok(receipt) => Outcome::Accepted { receipt, stop },
                Err(_) if stop.is_some() => Outcome::Throttled {
                    until: until(stop.unwrap_or_default()),
                },
                Err(reason) => match discarded(&text) {
                    Some(discarded) => Outcome::Discarded {
                        status,
                        reason: snippet(discarded),
                    },
                    None => {
                        tracing::warn!(status, %reason, "the server's reply is not a receipt");
                        Outcome::Failed(Error::BadReceipt)
                    }
                },
            }
        }
        400 | 413 => Outcome::Discarded {
            status,
            reason: snippet(&text),
        },
        _ => Outcome::Failed(Error::Server {
            status,
            body: snippet(&text),
        }),
    }
}

/// What the server said to a crash-site summary.
#[derive(Debug)]
pub(crate) enum SummaryReply {
    /// Its answer.
    Answer(CrashSiteAnswer),
    /// The server has no such route, or did not understand the summary (an older
    /// server, another kind of server): the dump is sent as it always was.
    NoAnswer,
    /// Not answered: a throttle rule refused it (`200 Discarded=`, dropped as its
    /// upload would be), the server asked to wait, or it could not be reached
    /// ([`Outcome::Discarded`], [`Outcome::Throttled`], [`Outcome::Failed`]).
    Refused(Outcome),
}

/// Sends `summary` to `url` (JSON), retrying per `policy`, and reads the answer.
pub(crate) fn ask(
    http: &reqwest::blocking::Client,
    url: &str,
    summary: &CrashSiteSummary,
    policy: &RetryPolicy,
) -> SummaryReply {
    let body = match serde_json::to_vec(summary) {
        Ok(body) => body,
        Err(e) => {
            let e = Error::Network(format!("encoding the summary: {e}"));
            return SummaryReply::Refused(Outcome::Failed(e));
        }
    };
    let posted = post_with_retries(policy, || {
        http.post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
    });
    let Answered { status, reply, .. } = match posted {
        Posted::Answered(answered) => answered,
        Posted::Throttled { until } => return SummaryReply::Refused(Outcome::Throttled { until }),
        Posted::Failed(e) => return SummaryReply::Refused(Outcome::Failed(e)),
    };
    if (200..300).contains(&status) && reply.complete {
        if let Ok(answer) = serde_json::from_str::<CrashSiteAnswer>(&reply.text) {
            return SummaryReply::Answer(answer);
        }
        if let Some(reason) = discarded(&reply.text) {
            return SummaryReply::Refused(Outcome::Discarded {
                status,
                reason: snippet(reason),
            });
        }
    }
    tracing::debug!(
        status,
        "no answer to the crash-site summary; sending the dump"
    );
    SummaryReply::NoAnswer
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
    fn waits_the_server_asks_for_are_clamped_or_ignored() {
        let stop = |v: &str| stop_sending_for(&format!("StopSendingReportsFor={v}\n"));
        assert_eq!(stop("1e300"), Some(MAX_SERVER_WAIT));
        assert_eq!(stop("1e308"), Some(MAX_SERVER_WAIT));
        for ignored in ["NaN", "inf", "-inf", "1e400", "-1", "0", "soon", ""] {
            assert_eq!(stop(ignored), None, "{ignored:?}");
        }
        assert_eq!(
            parse_retry_after("9223372036854775807"),
            Some(MAX_SERVER_WAIT)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999999"),
            Some(MAX_SERVER_WAIT)
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(MAX_SERVER_WAIT)
        );
        for ignored in ["-1", "1e300", "NaN", "1.5", "+", ""] {
            assert_eq!(parse_retry_after(ignored), None, "{ignored:?}");
        }
        let now = crate::fsutil::now();
        let far = until(Duration::MAX);
        assert!(far > now && far <= now + MAX_SERVER_WAIT + time::Duration::MINUTE);
    }

    #[test]
    fn snippets_carry_no_control_characters() {
        assert_eq!(snippet("bad\u{1b}[2J\r\nrequest\n"), "bad [2J  request");
        assert_eq!(snippet(&"x".repeat(1000)).len(), 200);
    }

    #[test]
    fn a_discarded_line_is_read() {
        assert_eq!(discarded("Discarded=rule_old\n"), Some("rule_old"));
        assert_eq!(discarded("CrashID=bp-1\nDeletionToken=x\n"), None);
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
