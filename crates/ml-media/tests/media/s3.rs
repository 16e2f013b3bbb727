//! `s3://` media against a real S3-compatible server: moto in server mode,
//! started by the test from set-up's venv (`~/.cache/ml-workers/venv-s3`).

use anyhow::{Result, bail, ensure};
use ml_media::{MediaArgs, MediaError, MediaFetcher, MediaSource};
use ml_testkit::s3::{KEY_ID, REGION, S3Server, SECRET};

use crate::server::TestServer;
use crate::support::jfk_wav;

/// moto's S3 server, with this crate's settings pointed at it.
struct Moto(S3Server);

impl Moto {
    fn start() -> Result<Self> {
        S3Server::start().map(Self)
    }

    fn args(&self, temp: &tempfile::TempDir) -> MediaArgs {
        MediaArgs {
            media_temp_dir: Some(temp.path().to_owned()),
            s3_endpoint: Some(self.0.endpoint.to_string()),
            s3_force_path_style: true,
            aws_access_key_id: Some(KEY_ID.into()),
            aws_secret_access_key: Some(SECRET.into()),
            aws_region: REGION.into(),
            ..MediaArgs::default()
        }
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        self.0.put(bucket, key, body).await
    }
}

fn left_in(dir: &tempfile::TempDir) -> Result<usize> {
    Ok(std::fs::read_dir(dir.path())?.count())
}

async fn fetch_err(fetcher: &MediaFetcher, url: &str) -> Result<MediaError> {
    match fetcher.fetch(&MediaSource::parse(url)?).await {
        Ok(media) => bail!("{url} fetched to {}", media.path().display()),
        Err(e) => Ok(e),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_are_fetched_from_a_real_s3_server() -> Result<()> {
    let moto = Moto::start()?;
    let bytes = std::fs::read(jfk_wav()?)?;
    moto.put(
        "bookmarkai-media-test",
        "temp/videos/speech clip.wav",
        bytes.clone(),
    )
    .await?;
    let temp = tempfile::tempdir()?;
    // The endpoint is on loopback and no address is allow-listed: the
    // operator-configured S3 endpoint is exempt from the policy.
    let fetcher = MediaFetcher::new(moto.args(&temp))?;

    let media = fetcher
        .fetch(&MediaSource::parse(
            "s3://bookmarkai-media-test/temp/videos/speech clip.wav",
        )?)
        .await?;
    ensure!(media.is_temporary() && media.path().starts_with(temp.path()));
    ensure!(media.path().extension().is_some_and(|e| e == "wav"));
    ensure!(std::fs::read(media.path())? == bytes, "content differs");
    drop(media);
    ensure!(left_in(&temp)? == 0, "temp file survived drop");

    let err = fetch_err(
        &fetcher,
        "s3://bookmarkai-media-test/temp/videos/missing.mp4",
    )
    .await?;
    ensure!(
        err.to_string()
            == "s3://bookmarkai-media-test/temp/videos/missing.mp4: HTTP 404 NoSuchKey: \
                The specified key does not exist.",
        "{err}"
    );
    ensure!(!err.is_transient());
    let err = fetch_err(&fetcher, "s3://no-such-bucket-here/a.mp4").await?;
    ensure!(
        matches!(err, MediaError::S3 { status: 404, .. }) && !err.is_transient(),
        "{err}"
    );
    ensure!(err.to_string().contains("NoSuchBucket"), "{err}");

    // The size cap holds for S3 too.
    let small = MediaFetcher::new(MediaArgs {
        media_max_bytes: 1000,
        ..moto.args(&temp)
    })?;
    let err = fetch_err(
        &small,
        "s3://bookmarkai-media-test/temp/videos/speech clip.wav",
    )
    .await?;
    ensure!(matches!(err, MediaError::TooLarge { .. }), "{err:?}");
    ensure!(left_in(&temp)? == 0, "temp files left after failures");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_or_overloaded_endpoint_is_transient() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let fetcher = MediaFetcher::new(MediaArgs {
        media_temp_dir: Some(temp.path().to_owned()),
        s3_endpoint: Some(format!("http://{closed}")),
        ..MediaArgs::default()
    })?;
    let err = fetch_err(&fetcher, "s3://bucket/a.mp4").await?;
    ensure!(matches!(err, MediaError::Connection { .. }), "{err:?}");
    ensure!(err.is_transient());
    ensure!(
        err.to_string()
            .starts_with("fetching s3://bucket/a.mp4 failed"),
        "{err}"
    );
    ensure!(
        !err.to_string().contains("X-Amz"),
        "signature leaked: {err}"
    );

    let server = TestServer::start(Vec::new()).await?;
    let fetcher = MediaFetcher::new(MediaArgs {
        media_temp_dir: Some(temp.path().to_owned()),
        s3_endpoint: Some(server.url("/s3-unavailable")),
        s3_force_path_style: true,
        aws_access_key_id: Some(KEY_ID.into()),
        aws_secret_access_key: Some(SECRET.into()),
        ..MediaArgs::default()
    })?;
    let err = fetch_err(&fetcher, "s3://bucket/a.mp4").await?;
    ensure!(
        err.to_string() == "s3://bucket/a.mp4: HTTP 503 SlowDown: Please reduce your request rate.",
        "{err}"
    );
    ensure!(err.is_transient());
    ensure!(left_in(&temp)? == 0);
    Ok(())
}
