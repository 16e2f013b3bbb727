//! [`MediaArgs`]: every setting of media acquisition and decoding, as clap
//! arguments with their environment names, flattened into a worker's CLI.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::ArgAction;
use clap::builder::BoolishValueParser;
use ipnet::IpNet;

use crate::decode::DecodeOptions;

/// Default of `MEDIA_ROOTS`: the folder the gateway writes downloads into.
pub const DEFAULT_MEDIA_ROOT: &str = "/tmp/bookmarkai-videos";
/// Default of `MEDIA_MAX_BYTES`: 2 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// Default of `MEDIA_MAX_DURATION_SECS`: 2 hours.
pub const DEFAULT_MAX_DURATION_SECS: u64 = 2 * 60 * 60;
/// Default of `AWS_REGION`.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Settings of media acquisition (local roots, HTTP(S), S3) and decoding.
///
/// Flatten it into a worker's `Config` with `#[command(flatten)]`. Secrets
/// (`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) are hidden from `--help`
/// and redacted from `Debug`, so logging the struct is safe.
/// [`Default`] gives the same values as an empty environment.
#[derive(Clone, clap::Args)]
pub struct MediaArgs {
    /// Folders that local media paths must resolve inside (symlinks followed), comma-separated.
    #[arg(long, env = "MEDIA_ROOTS", value_delimiter = ',', default_value = DEFAULT_MEDIA_ROOT)]
    pub media_roots: Vec<PathBuf>,

    /// Largest media download in bytes; bigger is refused (checked from Content-Length and while streaming).
    #[arg(long, env = "MEDIA_MAX_BYTES", default_value_t = DEFAULT_MAX_BYTES)]
    pub media_max_bytes: u64,

    /// Seconds to wait for a TCP/TLS connection to a media server.
    #[arg(long, env = "MEDIA_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    pub media_connect_timeout_secs: u64,

    /// Seconds to wait for each read from a media server (a stalled download fails transiently).
    #[arg(long, env = "MEDIA_READ_TIMEOUT_SECS", default_value_t = 60)]
    pub media_read_timeout_secs: u64,

    /// Seconds a whole download may take, however steadily data comes (a
    /// server dripping a byte every few seconds never trips the read
    /// timeout); past it the download fails transiently.
    #[arg(long, env = "MEDIA_DOWNLOAD_TIMEOUT_SECS", default_value_t = 300)]
    pub media_download_timeout_secs: u64,

    /// Most HTTP redirects followed per fetch; each hop's address is checked again.
    #[arg(long, env = "MEDIA_MAX_REDIRECTS", default_value_t = 5)]
    pub media_max_redirects: usize,

    /// Addresses or CIDRs (comma-separated) that HTTP(S) fetches may reach although they are
    /// loopback, private, link-local, ... (e.g. `10.1.0.0/16,127.0.0.1`). Empty: only public addresses.
    #[arg(long, env = "MEDIA_ALLOW_ADDRESSES", default_value = "", hide_default_value = true,
          value_parser = AddressList::from_str)]
    pub media_allow_addresses: AddressList,

    /// Folder for the temporary copies of downloaded media (default: the system temp folder).
    #[arg(long, env = "MEDIA_TEMP_DIR")]
    pub media_temp_dir: Option<PathBuf>,

    /// Longest media accepted, in seconds; longer media is refused (checked from the container, then while decoding).
    #[arg(long, env = "MEDIA_MAX_DURATION_SECS", default_value_t = DEFAULT_MAX_DURATION_SECS)]
    pub media_max_duration_secs: u64,

    /// ffmpeg program, for codecs symphonia cannot decode (e.g. Opus); a bare name is looked up on PATH.
    #[arg(long, env = "FFMPEG_PATH", default_value = "ffmpeg")]
    pub ffmpeg_path: PathBuf,

    /// Seconds an ffmpeg decode may run before it is killed.
    #[arg(long, env = "FFMPEG_TIMEOUT_SECS", default_value_t = 600)]
    pub ffmpeg_timeout_secs: u64,

    /// S3 endpoint URL for `s3://bucket/key` media (unset or empty: AWS's regional endpoint).
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Address buckets as `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint host>/<key>`
    /// (needed by most S3-compatible servers; implied when the endpoint host is an IP address).
    #[arg(long, env = "S3_FORCE_PATH_STYLE", action = ArgAction::Set, default_value = "false",
          value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub s3_force_path_style: bool,

    /// S3 access key id (no credentials: unsigned requests).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<String>,

    /// S3 secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,

    /// S3 session token, for temporary credentials.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub aws_session_token: Option<String>,

    /// S3 region (part of every request signature).
    #[arg(long, env = "AWS_REGION", default_value = DEFAULT_REGION)]
    pub aws_region: String,
}

/// `MEDIA_ALLOW_ADDRESSES`: networks HTTP(S) fetches may reach although
/// they are not public. Parsed from a comma-separated list of CIDRs
/// (`10.0.0.0/8`) and single addresses (`127.0.0.1`, `::1`); an empty
/// string (as an empty ConfigMap entry gives) is an empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressList(pub Vec<IpNet>);

impl FromStr for AddressList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{entry:?} is neither an IP address nor a CIDR like 10.0.0.0/8")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// `Some` unless unset or blank (deployments often export empty variables).
pub(crate) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl MediaArgs {
    /// Connect timeout as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.media_connect_timeout_secs)
    }

    /// Read timeout as a [`Duration`].
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.media_read_timeout_secs)
    }

    /// Whole-download timeout as a [`Duration`].
    pub fn download_timeout(&self) -> Duration {
        Duration::from_secs(self.media_download_timeout_secs.max(1))
    }

    /// The folder temporary downloads go to.
    pub fn temp_dir(&self) -> PathBuf {
        self.media_temp_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
    }

    /// Decoding options from these settings; `normalize` comes from the task.
    pub fn decode_options(&self, normalize: bool) -> DecodeOptions {
        DecodeOptions {
            max_duration: Duration::from_secs(self.media_max_duration_secs),
            normalize,
            ffmpeg: Some(self.ffmpeg_path.clone()),
            ffmpeg_timeout: Duration::from_secs(self.ffmpeg_timeout_secs),
        }
    }
}

impl Default for MediaArgs {
    fn default() -> Self {
        Self {
            media_roots: vec![PathBuf::from(DEFAULT_MEDIA_ROOT)],
            media_max_bytes: DEFAULT_MAX_BYTES,
            media_connect_timeout_secs: 10,
            media_read_timeout_secs: 60,
            media_download_timeout_secs: 300,
            media_max_redirects: 5,
            media_allow_addresses: AddressList::default(),
            media_temp_dir: None,
            media_max_duration_secs: DEFAULT_MAX_DURATION_SECS,
            ffmpeg_path: PathBuf::from("ffmpeg"),
            ffmpeg_timeout_secs: 600,
            s3_endpoint: None,
            s3_force_path_style: false,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            aws_region: DEFAULT_REGION.to_owned(),
        }
    }
}

impl fmt::Debug for MediaArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |set: bool| if set { "<redacted>" } else { "<unset>" };
        f.debug_struct("MediaArgs")
            .field("media_roots", &self.media_roots)
            .field("media_max_bytes", &self.media_max_bytes)
            .field(
                "media_connect_timeout_secs",
                &self.media_connect_timeout_secs,
            )
            .field("media_read_timeout_secs", &self.media_read_timeout_secs)
            .field(
                "media_download_timeout_secs",
                &self.media_download_timeout_secs,
            )
            .field("media_max_redirects", &self.media_max_redirects)
            .field("media_allow_addresses", &self.media_allow_addresses)
            .field("media_temp_dir", &self.media_temp_dir)
            .field("media_max_duration_secs", &self.media_max_duration_secs)
            .field("ffmpeg_path", &self.ffmpeg_path)
            .field("ffmpeg_timeout_secs", &self.ffmpeg_timeout_secs)
            .field(
                "s3_endpoint",
                &self.s3_endpoint.as_deref().map(crate::source::redact),
            )
            .field("s3_force_path_style", &self.s3_force_path_style)
            .field("aws_access_key_id", &self.aws_access_key_id)
            .field(
                "aws_secret_access_key",
                &redacted(self.aws_secret_access_key.is_some()),
            )
            .field(
                "aws_session_token",
                &redacted(self.aws_session_token.is_some()),
            )
            .field("aws_region", &self.aws_region)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        media: MediaArgs,
    }

    #[test]
    fn flags_parse_and_defaults_match_default() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from([
            "w",
            "--media-roots",
            "/a,/b",
            "--media-allow-addresses",
            "127.0.0.1,10.0.0.0/8,::1",
            "--s3-force-path-style",
        ])?;
        assert_eq!(
            cli.media.media_roots,
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(cli.media.media_allow_addresses.0.len(), 3);
        assert!(cli.media.s3_force_path_style);
        assert_eq!(
            cli.media.media_max_bytes,
            MediaArgs::default().media_max_bytes
        );
        assert!(Cli::try_parse_from(["w", "--media-allow-addresses", "nope"]).is_err());
        let blank =
            Cli::try_parse_from(["w", "--media-allow-addresses", " ", "--s3-endpoint", ""])?;
        assert!(blank.media.media_allow_addresses.0.is_empty());
        assert_eq!(non_empty(&blank.media.s3_endpoint), None);
        let none = Cli::try_parse_from(["w"])?;
        assert_eq!(none.media.media_allow_addresses, AddressList::default());
        assert_eq!(none.media.media_roots, MediaArgs::default().media_roots);
        Ok(())
    }

    #[test]
    fn debug_redacts_secrets() {
        let args = MediaArgs {
            aws_secret_access_key: Some("hunter2".into()),
            aws_session_token: Some("tok3n".into()),
            ..MediaArgs::default()
        };
        let text = format!("{args:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("tok3n"),
            "{text}"
        );
        assert!(text.contains("<redacted>"));
    }
}
