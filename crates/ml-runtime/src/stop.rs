//! Asking a running handler to stop: the token its task's soft time limit
//! cancels. A handler that can end early (a model loop, a download) takes
//! [`token`] and watches it, also on its blocking threads, which do not
//! inherit the task-local.

use std::future::Future;

use tokio_util::sync::CancellationToken;

tokio::task_local! {
    static STOP: CancellationToken;
}

/// The running task's stop token; outside a task, one never cancelled.
pub fn token() -> CancellationToken {
    STOP.try_with(Clone::clone).unwrap_or_default()
}

/// Runs `work` with `token` as the task's stop token.
pub(crate) async fn scope<F: Future>(token: CancellationToken, work: F) -> F::Output {
    STOP.scope(token, work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_token_is_the_scopes_and_none_outside() {
        let stop = CancellationToken::new();
        stop.cancel();
        assert!(scope(stop, async { token().is_cancelled() }).await);
        assert!(!token().is_cancelled());
    }
}
