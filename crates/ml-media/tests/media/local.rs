//! Local media paths: inside a root works (also through symlinks), anything
//! that leads outside is refused, and local files are never deleted.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use anyhow::{Result, bail, ensure};
use ml_media::{MediaArgs, MediaError, MediaFetcher, MediaSource};

struct Roots {
    fetcher: MediaFetcher,
    root: tempfile::TempDir,
    /// The root's canonical path (the temp folder may sit behind a symlink).
    canonical: PathBuf,
}

fn roots() -> Result<Roots> {
    let root = tempfile::tempdir()?;
    let canonical = root.path().canonicalize()?;
    let fetcher = MediaFetcher::new(MediaArgs {
        media_roots: vec![root.path().to_owned()],
        ..MediaArgs::default()
    })?;
    Ok(Roots {
        fetcher,
        root,
        canonical,
    })
}

async fn refused(fetcher: &MediaFetcher, path: &str) -> Result<MediaError> {
    match fetcher.fetch(&MediaSource::parse(path)?).await {
        Ok(media) => bail!("{path} accepted as {}", media.path().display()),
        Err(e) => Ok(e),
    }
}

#[tokio::test]
async fn a_file_inside_a_root_is_used_in_place_and_never_deleted() -> Result<()> {
    let r = roots()?;
    std::fs::create_dir(r.root.path().join("videos"))?;
    let file = r.root.path().join("videos/clip.mp4");
    std::fs::write(&file, b"not really a video")?;
    // A symlink inside the root to a file inside the root is fine.
    symlink(&file, r.root.path().join("link.mp4"))?;

    for path in [
        file.clone(),
        r.root.path().join("link.mp4"),
        r.root.path().join("videos/./../videos/clip.mp4"),
    ] {
        let text = path.to_str().unwrap_or_default();
        let media = r.fetcher.fetch(&MediaSource::parse(text)?).await?;
        ensure!(!media.is_temporary());
        ensure!(
            media.path() == r.canonical.join("videos/clip.mp4"),
            "{}",
            media.path().display()
        );
        ensure!(media.len() == 18);
        drop(media);
        ensure!(file.exists(), "dropping deleted the local file");
    }
    Ok(())
}

#[tokio::test]
async fn a_local_file_over_the_size_cap_is_refused() -> Result<()> {
    let root = tempfile::tempdir()?;
    let fetcher = MediaFetcher::new(MediaArgs {
        media_roots: vec![root.path().to_owned()],
        media_max_bytes: 1000,
        ..MediaArgs::default()
    })?;
    let (small, large) = (root.path().join("small.mp4"), root.path().join("large.mp4"));
    std::fs::write(&small, vec![0u8; 1000])?;
    std::fs::write(&large, vec![0u8; 1001])?;
    let media = fetcher
        .fetch(&MediaSource::parse(small.to_str().unwrap_or_default())?)
        .await?;
    ensure!(media.len() == 1000);
    let err = refused(&fetcher, large.to_str().unwrap_or_default()).await?;
    ensure!(
        matches!(
            err,
            MediaError::TooLarge {
                limit: 1000,
                declared: Some(1001),
                ..
            }
        ),
        "{err:?}"
    );
    ensure!(
        err.to_string()
            .ends_with("large.mp4 is larger than the 1000-byte cap (MEDIA_MAX_BYTES): 1001 bytes"),
        "{err}"
    );
    ensure!(!err.is_transient(), "{err}");
    Ok(())
}

#[tokio::test]
async fn paths_leading_outside_the_roots_are_refused() -> Result<()> {
    let r = roots()?;
    let root = r.root.path().to_str().unwrap_or_default().to_owned();

    let err = refused(&r.fetcher, "/etc/passwd").await?;
    ensure!(matches!(err, MediaError::OutsideRoots { .. }), "{err:?}");
    ensure!(
        err.to_string() == format!("media path /etc/passwd is outside the media roots [{root}]"),
        "{err}"
    );

    // `..` climbing out of the root.
    let err = refused(&r.fetcher, &format!("{root}/../../../../etc/passwd")).await?;
    ensure!(matches!(err, MediaError::OutsideRoots { .. }), "{err:?}");

    // A symlink inside the root pointing outside it.
    symlink("/etc/passwd", r.root.path().join("innocent.mp4"))?;
    let err = refused(&r.fetcher, &format!("{root}/innocent.mp4")).await?;
    ensure!(
        err.to_string()
            .starts_with("media path /etc/passwd is outside the media roots"),
        "{err}"
    );
    // A symlinked folder inside the root pointing outside it.
    symlink("/etc", r.root.path().join("etc"))?;
    let err = refused(&r.fetcher, &format!("{root}/etc/passwd")).await?;
    ensure!(matches!(err, MediaError::OutsideRoots { .. }), "{err:?}");

    // A sibling whose name merely starts like the root.
    let sibling = format!("{root}-evil/a.mp4");
    let err = refused(&r.fetcher, &sibling).await?;
    ensure!(matches!(err, MediaError::OutsideRoots { .. }), "{err:?}");

    // Relative paths never get this far.
    match MediaSource::parse("videos/clip.mp4") {
        Ok(source) => bail!("relative path parsed as {source:?}"),
        Err(e) => ensure!(e.to_string().contains("relative path"), "{e}"),
    }
    Ok(())
}

#[tokio::test]
async fn missing_files_and_folders_are_clear_permanent_errors() -> Result<()> {
    let r = roots()?;
    let root = r.root.path().to_str().unwrap_or_default().to_owned();
    let err = refused(&r.fetcher, &format!("{root}/missing.mp4")).await?;
    ensure!(matches!(err, MediaError::NotFound { .. }), "{err:?}");
    ensure!(
        err.to_string().ends_with("missing.mp4 does not exist"),
        "{err}"
    );
    let err = refused(&r.fetcher, &root).await?;
    ensure!(matches!(err, MediaError::NotAFile { .. }), "{err:?}");
    symlink(
        r.root.path().join("nowhere"),
        r.root.path().join("dangling.mp4"),
    )?;
    let err = refused(&r.fetcher, &format!("{root}/dangling.mp4")).await?;
    ensure!(matches!(err, MediaError::NotFound { .. }), "{err:?}");
    ensure!(!err.is_transient());
    Ok(())
}
