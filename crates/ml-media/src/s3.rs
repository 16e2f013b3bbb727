//! `s3://bucket/key` media: a GET presigned with rusty-s3 against the
//! configured endpoint, downloaded through the shared [`Sink`].
//!
//! The endpoint is chosen by the operator, not by the message, so it is
//! exempt from the address policy (it is often a private MinIO or a VPC
//! endpoint); the bucket and key come from the message and are validated by
//! [`crate::MediaSource::parse`].

use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};
use tempfile::TempPath;
use url::{Host, Url};

use crate::config::{MediaArgs, non_empty};
use crate::download::{Sink, suffix_of};
use crate::error::MediaError;

/// How long a presigned GET stays valid; it is used at once.
const PRESIGN_VALIDITY: Duration = Duration::from_secs(15 * 60);
/// Largest error body read for its `<Code>` and `<Message>`.
const ERROR_BODY_MAX: usize = 16 * 1024;

/// Downloads objects from the configured S3 endpoint.
pub(crate) struct S3Fetcher {
    client: reqwest::Client,
    endpoint: Url,
    style: UrlStyle,
    region: String,
    credentials: Option<Credentials>,
    sink: Sink,
}

impl std::fmt::Debug for S3Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Fetcher")
            .field("endpoint", &self.endpoint.as_str())
            .field("style", &self.style)
            .field("region", &self.region)
            .field("signed", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

impl S3Fetcher {
    pub(crate) fn new(args: &MediaArgs, sink: Sink) -> Result<Self, MediaError> {
        let region = args.aws_region.trim().to_owned();
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(MediaError::Config(format!(
                "AWS_REGION {region:?} is not a region name"
            )));
        }
        let endpoint = match non_empty(&args.s3_endpoint) {
            Some(url) => Url::parse(url)
                .map_err(|e| MediaError::Config(format!("S3_ENDPOINT {url:?}: {e}")))?,
            None => Url::parse(&format!("https://s3.{region}.amazonaws.com"))
                .map_err(|e| MediaError::Config(format!("default S3 endpoint: {e}")))?,
        };
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host().is_none() {
            return Err(MediaError::Config(format!(
                "S3_ENDPOINT {} must be an http(s) URL with a host",
                endpoint.as_str()
            )));
        }
        // A bucket cannot be a sub-domain of an IP address.
        let ip_host = matches!(endpoint.host(), Some(Host::Ipv4(_) | Host::Ipv6(_)));
        let style = if args.s3_force_path_style || ip_host {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let key_id = non_empty(&args.aws_access_key_id);
        let secret = non_empty(&args.aws_secret_access_key);
        let credentials = match (key_id, secret) {
            (Some(key), Some(secret)) => Some(match non_empty(&args.aws_session_token) {
                Some(token) => Credentials::new_with_token(key, secret, token),
                None => Credentials::new(key, secret),
            }),
            (None, None) => None,
            _ => {
                return Err(MediaError::Config(
                    "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".to_owned(),
                ));
            }
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(sink.connect_timeout)
            .read_timeout(sink.read_timeout)
            .build()
            .map_err(|e| MediaError::Config(format!("building the S3 HTTP client: {e}")))?;
        Ok(Self {
            client,
            endpoint,
            style,
            region,
            credentials,
            sink,
        })
    }

    /// The presigned GET URL of an object (it carries a signature: never log it).
    fn presign_get(&self, bucket: &str, key: &str) -> Result<Url, MediaError> {
        let bucket = Bucket::new(
            self.endpoint.clone(),
            self.style,
            bucket.to_owned(),
            self.region.clone(),
        )
        .map_err(|e| {
            MediaError::Config(format!(
                "bucket {bucket:?} at S3_ENDPOINT {}: {e:?}",
                self.endpoint.as_str()
            ))
        })?;
        Ok(bucket
            .get_object(self.credentials.as_ref(), key)
            .sign(PRESIGN_VALIDITY))
    }

    /// Downloads `s3://bucket/key` into a temp file.
    pub(crate) async fn fetch(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(TempPath, u64), MediaError> {
        let shown = format!("s3://{bucket}/{key}");
        let url = self.presign_get(bucket, key)?;
        tracing::debug!(source = shown, endpoint = self.endpoint.as_str(), "S3 GET");
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| self.sink.transfer_error(e, &shown))?;
        let status = response.status();
        if !status.is_success() {
            let (code, message) = error_fields(response).await;
            return Err(MediaError::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        self.sink.save(response, &shown, &suffix_of(key)).await
    }
}

/// `<Code>` and `<Message>` of an S3 XML error body, when present.
async fn error_fields(mut response: reqwest::Response) -> (Option<String>, Option<String>) {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&body);
    (xml_field(&text, "Code"), xml_field(&text, "Message"))
}

fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = xml[start..].find(&format!("</{tag}>"))?;
    let value = xml[start..start + len].trim();
    (!value.is_empty()).then(|| value.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_fields() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>\
                   <Message>The specified key does not exist.</Message><Key>a</Key></Error>";
        assert_eq!(xml_field(xml, "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(
            xml_field(xml, "Message").as_deref(),
            Some("The specified key does not exist.")
        );
        assert_eq!(xml_field("not xml", "Code"), None);
    }

    fn sink() -> Sink {
        Sink {
            temp_dir: std::env::temp_dir(),
            max_bytes: 1,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            download_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn styles_and_signatures() -> Result<(), MediaError> {
        let args = MediaArgs {
            s3_endpoint: Some("http://127.0.0.1:9000".into()),
            aws_access_key_id: Some("AKID".into()),
            aws_secret_access_key: Some("secret".into()),
            ..MediaArgs::default()
        };
        let s3 = S3Fetcher::new(&args, sink())?;
        let url = s3.presign_get("bucket", "dir/a b.mp4")?;
        assert!(
            url.as_str()
                .starts_with("http://127.0.0.1:9000/bucket/dir/a%20b.mp4?"),
            "{url}"
        );
        assert!(url.as_str().contains("X-Amz-Signature="));

        let args = MediaArgs {
            s3_endpoint: Some("https://minio.internal".into()),
            ..MediaArgs::default()
        };
        let url = S3Fetcher::new(&args, sink())?.presign_get("bucket", "k.mp4")?;
        assert_eq!(url.as_str(), "https://bucket.minio.internal/k.mp4");

        let half = MediaArgs {
            aws_access_key_id: Some("AKID".into()),
            ..MediaArgs::default()
        };
        assert!(S3Fetcher::new(&half, sink()).is_err());
        Ok(())
    }
}
