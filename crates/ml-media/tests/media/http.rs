//! HTTP(S) fetches against a real local server: address policy, redirects,
//! size cap, timeouts, status mapping, and temp files always cleaned up.

use anyhow::{Result, bail, ensure};
use ml_media::{MediaArgs, MediaError, MediaFetcher, MediaSource};

use crate::server::{BIG, TestServer};
use crate::support::{fixture_media_url, jfk_wav};

/// A fetcher whose temp files go to a folder of its own.
struct Setup {
    fetcher: MediaFetcher,
    temp: tempfile::TempDir,
}

impl Setup {
    fn new(allow_loopback: bool, tune: impl FnOnce(&mut MediaArgs)) -> Result<Self> {
        let temp = tempfile::tempdir()?;
        let mut args = MediaArgs {
            media_temp_dir: Some(temp.path().to_owned()),
            media_connect_timeout_secs: 2,
            media_read_timeout_secs: 2,
            ..MediaArgs::default()
        };
        if allow_loopback {
            args.media_allow_addresses = "127.0.0.1, ::1".parse().map_err(anyhow::Error::msg)?;
        }
        tune(&mut args);
        Ok(Self {
            fetcher: MediaFetcher::new(args)?,
            temp,
        })
    }

    async fn fetch_err(&self, url: &str) -> Result<MediaError> {
        match self.fetcher.fetch(&MediaSource::parse(url)?).await {
            Ok(media) => bail!("{url} fetched to {}", media.path().display()),
            Err(e) => {
                self.assert_no_temp_files()?;
                Ok(e)
            }
        }
    }

    fn assert_no_temp_files(&self) -> Result<()> {
        let left: Vec<_> = std::fs::read_dir(self.temp.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        ensure!(left.is_empty(), "temp files left behind: {left:?}");
        Ok(())
    }
}

async fn server() -> Result<(TestServer, Vec<u8>)> {
    let bytes = std::fs::read(jfk_wav()?)?;
    Ok((TestServer::start(bytes.clone()).await?, bytes))
}

#[tokio::test]
async fn an_allow_listed_server_is_downloaded_into_a_temp_file_removed_on_drop() -> Result<()> {
    let (server, bytes) = server().await?;
    let setup = Setup::new(true, |_| {})?;
    for url in [
        server.url("/media/speech.wav"),
        server.url("/redirect-to-file"),
        server.url("/chain/4"),
        format!("http://localhost:{}/media/speech.wav", server.addr.port()),
    ] {
        let media = setup.fetcher.fetch(&MediaSource::parse(&url)?).await?;
        ensure!(media.is_temporary());
        ensure!(
            media.path().starts_with(setup.temp.path()),
            "{}",
            media.path().display()
        );
        ensure!(media.path().extension().is_some_and(|e| e == "wav"));
        ensure!(
            std::fs::read(media.path())? == bytes,
            "{url}: content differs"
        );
        ensure!(media.len() == bytes.len() as u64);
        let path = media.path().to_owned();
        drop(media);
        ensure!(!path.exists(), "{} survived drop", path.display());
    }
    setup.assert_no_temp_files()
}

#[tokio::test]
async fn loopback_is_refused_before_any_request_without_the_allow_list() -> Result<()> {
    let (server, _) = server().await?;
    let setup = Setup::new(false, |_| {})?;
    let err = setup.fetch_err(&server.url("/media/speech.wav")).await?;
    ensure!(
        err.to_string()
            == "address 127.0.0.1 is loopback: refused (allow it with MEDIA_ALLOW_ADDRESSES)",
        "{err}"
    );
    // A name resolving to loopback is refused by the resolver.
    let err = setup
        .fetch_err(&format!(
            "http://localhost:{}/media/speech.wav",
            server.addr.port()
        ))
        .await?;
    ensure!(matches!(err, MediaError::AddressRefused { .. }), "{err:?}");
    ensure!(
        err.to_string()
            .contains("(of localhost) is loopback: refused"),
        "{err}"
    );
    ensure!(!err.is_transient());
    ensure!(
        server.requests() == 0,
        "the server saw {} requests",
        server.requests()
    );
    Ok(())
}

#[tokio::test]
async fn redirects_to_internal_addresses_and_other_schemes_are_refused() -> Result<()> {
    let (server, _) = server().await?;
    let setup = Setup::new(true, |_| {})?;
    let err = setup.fetch_err(&server.url("/redirect-metadata")).await?;
    ensure!(
        err.to_string()
            .starts_with("address 169.254.169.254 is link-local/metadata: refused"),
        "{err}"
    );
    let err = setup.fetch_err(&server.url("/redirect-private")).await?;
    ensure!(
        err.to_string()
            .starts_with("address 10.0.0.1 is private (RFC 1918): refused"),
        "{err}"
    );
    let err = setup.fetch_err(&server.url("/redirect-scheme")).await?;
    ensure!(matches!(err, MediaError::BadRedirect { .. }), "{err:?}");
    ensure!(
        err.to_string()
            .contains("target scheme file:// is not accepted"),
        "{err}"
    );
    ensure!(!err.is_transient());
    Ok(())
}

#[tokio::test]
async fn redirect_loops_and_long_chains_are_refused() -> Result<()> {
    let (server, _) = server().await?;
    let setup = Setup::new(true, |a| a.media_max_redirects = 3)?;
    let err = setup.fetch_err(&server.url("/loop-a")).await?;
    ensure!(err.to_string().contains("redirect loop back to"), "{err}");
    let err = setup.fetch_err(&server.url("/chain/5")).await?;
    ensure!(
        matches!(err, MediaError::TooManyRedirects { limit: 3, .. }),
        "{err:?}"
    );
    // Exactly the limit is fine.
    let ok = setup
        .fetcher
        .fetch(&MediaSource::parse(&server.url("/chain/2"))?)
        .await?;
    drop(ok);
    setup.assert_no_temp_files()
}

#[tokio::test]
async fn bodies_over_the_size_cap_are_refused_with_or_without_content_length() -> Result<()> {
    let (server, _) = server().await?;
    let cap = (BIG / 2) as u64;
    let setup = Setup::new(true, |a| a.media_max_bytes = cap)?;
    let err = setup.fetch_err(&server.url("/big")).await?;
    ensure!(
        matches!(err, MediaError::TooLarge { declared: Some(n), limit, .. } if n == BIG as u64 && limit == cap),
        "{err:?}"
    );
    let err = setup.fetch_err(&server.url("/big-chunked")).await?;
    ensure!(
        matches!(err, MediaError::TooLarge { declared: None, .. }),
        "{err:?}"
    );
    ensure!(
        err.to_string()
            .contains("is larger than the 1572864-byte cap"),
        "{err}"
    );
    ensure!(!err.is_transient());
    Ok(())
}

#[tokio::test]
async fn a_stalled_download_times_out_transiently() -> Result<()> {
    let (server, _) = server().await?;
    let setup = Setup::new(true, |a| a.media_read_timeout_secs = 1)?;
    let started = std::time::Instant::now();
    let err = setup.fetch_err(&server.url("/slow")).await?;
    ensure!(
        matches!(
            err,
            MediaError::Timeout {
                phase: "reading from",
                ..
            }
        ),
        "{err:?}"
    );
    ensure!(err.is_transient());
    ensure!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_dripping_download_ends_at_the_whole_download_deadline() -> Result<()> {
    let (server, _) = server().await?;
    let setup = Setup::new(true, |a| a.media_download_timeout_secs = 2)?;
    let err = setup.fetch_err(&server.url("/drip")).await?;
    ensure!(
        matches!(
            err,
            MediaError::Timeout {
                phase: "downloading",
                ..
            }
        ),
        "{err:?}"
    );
    ensure!(err.to_string().contains("/drip (after 2s)"), "{err}");
    ensure!(err.is_transient());
    Ok(())
}

#[tokio::test]
async fn statuses_map_to_permanent_or_transient() -> Result<()> {
    let (server, _) = server().await?;
    let setup = Setup::new(true, |_| {})?;
    for (status, transient) in [
        (404, false),
        (403, false),
        (410, false),
        (503, true),
        (500, true),
        (429, true),
    ] {
        let err = setup
            .fetch_err(&server.url(&format!("/status/{status}")))
            .await?;
        ensure!(
            matches!(err, MediaError::HttpStatus { status: s, .. } if s == status),
            "{err:?}"
        );
        ensure!(err.is_transient() == transient, "{status}: {err}");
    }
    // Nobody listening: a connection error, worth retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let err = setup.fetch_err(&format!("http://{closed}/a.mp4")).await?;
    ensure!(matches!(err, MediaError::Connection { .. }), "{err:?}");
    ensure!(err.is_transient());
    Ok(())
}

#[tokio::test]
async fn the_bad_media_fixtures_are_refused() -> Result<()> {
    let setup = Setup::new(false, |_| {})?;
    let url = fixture_media_url("bad-media-private-address.json")?;
    let err = setup.fetch_err(&url).await?;
    ensure!(
        err.to_string()
            .starts_with("address 169.254.169.254 is link-local/metadata: refused"),
        "{err}"
    );
    let url = fixture_media_url("bad-media-scheme.json")?;
    match MediaSource::parse(&url) {
        Ok(source) => bail!("{url} parsed as {source:?}"),
        Err(e) => ensure!(
            e.to_string().contains("scheme file:// is not accepted") && !e.is_transient(),
            "{e}"
        ),
    }
    let url = fixture_media_url("bad-media-outside-root.json")?;
    let err = setup.fetch_err(&url).await?;
    ensure!(
        err.to_string()
            == "media path /etc/passwd is outside the media roots [/tmp/bookmarkai-videos]",
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_cancelled_download_leaves_no_temp_file() -> Result<()> {
    let (server, _) = server().await?;
    let setup = Setup::new(true, |a| a.media_read_timeout_secs = 30)?;
    let source = MediaSource::parse(&server.url("/slow"))?;
    let fetch = setup.fetcher.fetch(&source);
    // The download is under way (first chunk written) when it is dropped.
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(500), fetch).await;
    ensure!(timed_out.is_err(), "the slow download finished");
    ensure!(server.requests() == 1);
    setup.assert_no_temp_files()
}
