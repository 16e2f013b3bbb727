//! Local media: an absolute path that must lie inside a media root, both as
//! written (so nothing outside is even looked at) and once its symlinks are
//! followed (so a link inside a root cannot lead out of it).

use std::path::{Component, Path, PathBuf};

use crate::error::MediaError;

/// The configured media roots.
#[derive(Debug, Clone)]
pub(crate) struct MediaRoots {
    roots: Vec<PathBuf>,
}

impl MediaRoots {
    pub(crate) fn new(roots: Vec<PathBuf>) -> Result<Self, MediaError> {
        if let Some(bad) = roots.iter().find(|r| !r.is_absolute()) {
            return Err(MediaError::Config(format!(
                "media root {} is not an absolute path",
                bad.display()
            )));
        }
        Ok(Self {
            roots: roots.iter().map(|r| lexical_normal(r)).collect(),
        })
    }

    fn listed(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn outside(&self, path: &Path) -> MediaError {
        MediaError::OutsideRoots {
            path: path.to_owned(),
            roots: self.listed(),
        }
    }

    /// The roots as configured plus their canonical forms (a root may itself
    /// be a symlink, e.g. to a mounted volume). Roots that do not exist are
    /// kept as written: nothing can resolve inside them.
    async fn canonical_roots(&self) -> Vec<PathBuf> {
        let mut all = self.roots.clone();
        for root in &self.roots {
            if let Ok(canonical) = tokio::fs::canonicalize(root).await {
                all.push(canonical);
            }
        }
        all
    }

    /// Resolves `path` (symlinks followed) and checks it is a regular file
    /// inside a root.
    ///
    /// # Errors
    ///
    /// [`MediaError::OutsideRoots`] when the path, as written or resolved, is
    /// outside every root; [`MediaError::NotFound`] / [`MediaError::NotAFile`]
    /// otherwise when it is not a readable file.
    pub(crate) async fn resolve(&self, path: &Path) -> Result<(PathBuf, u64), MediaError> {
        if !path.is_absolute() {
            return Err(MediaError::InvalidSource {
                url: path.display().to_string(),
                reason: "relative path: media paths must be absolute".to_owned(),
            });
        }
        let roots = self.canonical_roots().await;
        let written = lexical_normal(path);
        if !roots.iter().any(|root| written.starts_with(root)) {
            return Err(self.outside(path));
        }
        let canonical = tokio::fs::canonicalize(path).await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                MediaError::NotFound {
                    path: path.to_owned(),
                }
            } else {
                MediaError::Io {
                    action: "resolving",
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        if !roots.iter().any(|root| canonical.starts_with(root)) {
            tracing::warn!(path = %path.display(), resolved = %canonical.display(), "media path leads outside the roots");
            return Err(self.outside(&canonical));
        }
        let meta = tokio::fs::metadata(&canonical)
            .await
            .map_err(|source| MediaError::Io {
                action: "reading",
                path: canonical.clone(),
                source,
            })?;
        if !meta.is_file() {
            return Err(MediaError::NotAFile { path: canonical });
        }
        Ok((canonical, meta.len()))
    }
}

/// `path` with `.` and `..` resolved by text alone (no file system access);
/// `..` never climbs above `/`.
fn lexical_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_normalisation() {
        assert_eq!(
            lexical_normal(Path::new("/tmp/bookmarkai-videos/../../etc/passwd")),
            PathBuf::from("/etc/passwd")
        );
        assert_eq!(
            lexical_normal(Path::new("/a/./b/../c")),
            PathBuf::from("/a/c")
        );
        assert_eq!(lexical_normal(Path::new("/../..")), PathBuf::from("/"));
    }

    #[tokio::test]
    async fn etc_passwd_is_outside_the_default_root() -> Result<(), MediaError> {
        let roots = MediaRoots::new(vec!["/tmp/bookmarkai-videos".into()])?;
        let err = roots.resolve(Path::new("/etc/passwd")).await.err();
        assert_eq!(
            err.map(|e| e.to_string()).unwrap_or_default(),
            "media path /etc/passwd is outside the media roots [/tmp/bookmarkai-videos]"
        );
        assert!(MediaRoots::new(vec!["relative".into()]).is_err());
        Ok(())
    }
}
