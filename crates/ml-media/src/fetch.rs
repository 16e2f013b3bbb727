//! [`MediaFetcher`]: turns a [`MediaSource`] into a file on this machine,
//! [`FetchedMedia`], which deletes downloaded copies when dropped.

use std::path::{Path, PathBuf};

use tempfile::TempPath;

use crate::config::MediaArgs;
use crate::download::Sink;
use crate::error::MediaError;
use crate::http::HttpFetcher;
use crate::local::MediaRoots;
use crate::policy::AddressPolicy;
use crate::s3::S3Fetcher;
use crate::source::MediaSource;

/// Acquires media from local roots, HTTP(S) and S3. Cheap to share: build
/// one per worker and call [`MediaFetcher::fetch`] from any task.
#[derive(Debug)]
pub struct MediaFetcher {
    roots: MediaRoots,
    http: HttpFetcher,
    s3: S3Fetcher,
    /// `MEDIA_MAX_BYTES` for local files, as downloads check it.
    sink: Sink,
}

/// A media file ready to decode.
///
/// For local sources it is the canonical path inside a media root, never
/// deleted. For remote sources it owns a temporary file that is deleted when
/// this value is dropped (also when a task fails or is cancelled).
#[derive(Debug)]
pub struct FetchedMedia {
    file: MediaFile,
    len: u64,
}

#[derive(Debug)]
enum MediaFile {
    Local(PathBuf),
    Temporary(TempPath),
}

impl FetchedMedia {
    /// The file to decode.
    pub fn path(&self) -> &Path {
        match &self.file {
            MediaFile::Local(path) => path,
            MediaFile::Temporary(path) => path,
        }
    }

    /// Size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// `true` when the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `true` when this is a downloaded copy that is deleted on drop.
    pub fn is_temporary(&self) -> bool {
        matches!(self.file, MediaFile::Temporary(_))
    }
}

impl MediaFetcher {
    /// Builds a fetcher from the settings.
    ///
    /// # Errors
    ///
    /// [`MediaError::Config`] for a relative media root, a missing temp
    /// folder, an unusable S3 endpoint or region, half-set credentials, or
    /// when the HTTP client cannot be built.
    pub fn new(config: MediaArgs) -> Result<Self, MediaError> {
        let roots = MediaRoots::new(config.media_roots.clone())?;
        let temp_dir = config.temp_dir();
        if !temp_dir.is_dir() {
            return Err(MediaError::Config(format!(
                "MEDIA_TEMP_DIR {} is not a folder",
                temp_dir.display()
            )));
        }
        let sink = Sink {
            temp_dir,
            max_bytes: config.media_max_bytes,
            connect_timeout: config.connect_timeout(),
            read_timeout: config.read_timeout(),
            download_timeout: config.download_timeout(),
        };
        let http = HttpFetcher::new(
            AddressPolicy::new(config.media_allow_addresses.0.clone()),
            config.media_max_redirects,
            sink.clone(),
        )?;
        let s3 = S3Fetcher::new(&config, sink.clone())?;
        Ok(Self {
            roots,
            http,
            s3,
            sink,
        })
    }

    /// Makes `source` available as a local file.
    ///
    /// # Errors
    ///
    /// A [`MediaError`]; [`MediaError::is_transient`] says whether retrying
    /// can help. Nothing is left in the temp folder on error.
    #[tracing::instrument(skip_all, fields(source = %source))]
    pub async fn fetch(&self, source: &MediaSource) -> Result<FetchedMedia, MediaError> {
        let fetched = match source {
            MediaSource::Local(path) => {
                let (path, len) = self.roots.resolve(path).await?;
                self.sink.check_len(len, &path.display().to_string())?;
                FetchedMedia {
                    file: MediaFile::Local(path),
                    len,
                }
            }
            MediaSource::Http(url) => {
                let (path, len) = self.http.fetch(url).await?;
                FetchedMedia {
                    file: MediaFile::Temporary(path),
                    len,
                }
            }
            MediaSource::S3 { bucket, key } => {
                let (path, len) = self.s3.fetch(bucket, key).await?;
                FetchedMedia {
                    file: MediaFile::Temporary(path),
                    len,
                }
            }
        };
        tracing::debug!(path = %fetched.path().display(), bytes = fetched.len, "media ready");
        Ok(fetched)
    }
}
