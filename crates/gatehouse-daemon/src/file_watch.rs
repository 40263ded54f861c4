//! Watching one file for changes (the policy file, the classifier's `models/current` pointer).
//!
//! Editors and `rename`-into-place writers replace a file rather than edit it, so the file's
//! directory is watched and events are filtered by name; a burst of events is settled into one
//! call of the change handler.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// Calls `changed` on the tokio runtime after `name` in `dir` changes, once per burst of events
/// (after `settle`). `changed` returns `false` when its owner is gone, which ends the task. The
/// watch lasts as long as the returned watcher; `None` (with a warning naming `what`) if the
/// directory cannot be watched.
pub(crate) fn watch_file(
    dir: &Path,
    name: OsString,
    settle: Duration,
    what: &'static str,
    changed: impl Fn() -> bool + Send + 'static,
) -> Option<notify::RecommendedWatcher> {
    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()))
            && !event.kind.is_access()
        {
            let _ = tx.send(());
        }
    })
    .map_err(|err| tracing::warn!(%err, "cannot watch the {what}; hot reload is off"))
    .ok()?;
    if let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        tracing::warn!(%err, dir = %dir.display(), "cannot watch the {what}'s directory; hot reload is off");
        return None;
    }
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            tokio::time::sleep(settle).await;
            while changes.try_recv().is_ok() {}
            if !changed() {
                return;
            }
        }
    });
    Some(watcher)
}
