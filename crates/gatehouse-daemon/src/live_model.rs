//! The built-in model in force when it comes from the data directory's versioned store
//! (`DATA_DIR/models/current`, written by `gatehouse classifier retrain` and `classifier use`):
//! loaded at start-up, swapped atomically when the pointer changes, so new actions are scored by
//! the newly installed version without a restart (an action already being scored finishes on the
//! model it started with).
//!
//! *Invariant*: a version that does not load never replaces the model in force. The previous
//! model keeps scoring, and the error is logged and reported on `/healthz` until a good version
//! is put in force.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::file_watch::watch_file;
use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use gatehouse_classifier::retraining::{CURRENT_FILE, ModelStore};
use gatehouse_classifier::{BuiltinClassifier, Classifier, ClassifierError, Score, ScoreRequest};

/// A model and its name, interned so [`Classifier::model`] can hand out a `&str`.
struct Loaded {
    model: BuiltinClassifier,
    name: &'static str,
}

#[derive(Debug, Default, Clone)]
pub struct LiveModelStatus {
    /// How many times a new version was put in force since start-up.
    pub reloads: u64,
    /// Why the version the pointer names is not in force, if it is not.
    pub error: Option<String>,
}

pub struct LiveModel {
    store: ModelStore,
    current: ArcSwap<Loaded>,
    status: Mutex<LiveModelStatus>,
    /// Every model name handed out, leaked once each: a handful of short strings (one per
    /// installed version), the price of `Classifier::model` returning `&str`.
    names: Mutex<BTreeSet<&'static str>>,
}

impl std::fmt::Debug for LiveModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveModel")
            .field("dir", &self.store.dir())
            .field("model", &self.current.load().name)
            .finish()
    }
}

impl LiveModel {
    /// The version the store's pointer names, or the embedded model when there is none. A
    /// pointer to a version that does not load is reported (status and log) and the embedded
    /// model scores instead: tier 2 is advisory, so a bad file must not stop the daemon.
    pub fn open(store: ModelStore) -> Result<LiveModel, String> {
        let (model, error) = match store.load_current() {
            Ok(model) => (model, None),
            Err(err) => {
                tracing::error!(%err, "the installed classifier version does not load; scoring with the embedded model");
                (
                    BuiltinClassifier::embedded().map_err(|e| e.to_string())?,
                    Some(err.to_string()),
                )
            }
        };
        let live = LiveModel {
            store,
            current: ArcSwap::from_pointee(Loaded {
                name: "",
                model: model.clone(),
            }),
            status: Mutex::new(LiveModelStatus { reloads: 0, error }),
            names: Mutex::new(BTreeSet::new()),
        };
        live.put_in_force(model);
        Ok(live)
    }

    pub fn status(&self) -> LiveModelStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The model in force now.
    pub fn current(&self) -> BuiltinClassifier {
        self.current.load().model.clone()
    }

    fn intern(&self, name: &str) -> &'static str {
        let Ok(mut names) = self.names.lock() else {
            return "builtin";
        };
        if let Some(known) = names.get(name) {
            return known;
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(leaked);
        leaked
    }

    fn put_in_force(&self, model: BuiltinClassifier) {
        let name = self.intern(model.model());
        self.current.store(Arc::new(Loaded { model, name }));
    }

    /// Reads the pointer again: a version that loads replaces the model in force, one that does
    /// not is refused.
    pub fn reload(&self) {
        let outcome = self.store.load_current();
        let Ok(mut status) = self.status.lock() else {
            return;
        };
        match outcome {
            Ok(model) => {
                let name = model.model().to_owned();
                if name != self.current.load().name {
                    status.reloads += 1;
                    tracing::info!(model = %name, "classifier model version put in force");
                }
                self.put_in_force(model);
                status.error = None;
            }
            Err(err) => {
                tracing::error!(%err, "classifier model change refused; the model in force stays");
                status.error = Some(err.to_string());
            }
        }
    }

    /// Watches the store's directory and reloads when the pointer changes. The watcher lives as
    /// long as the returned guard; the directory is created if missing so it can be watched.
    pub fn watch(self: &Arc<Self>) -> Option<notify::RecommendedWatcher> {
        let dir = self.store.dir().to_owned();
        if let Err(err) = std::fs::create_dir_all(&dir) {
            tracing::warn!(%err, dir = %dir.display(), "cannot create the models directory; classifier hot reload is off");
            return None;
        }
        let live = Arc::downgrade(self);
        // The pointer is renamed into place: let the burst of events settle.
        watch_file(
            &dir,
            CURRENT_FILE.into(),
            Duration::from_millis(50),
            "models directory",
            move || live.upgrade().map(|live| live.reload()).is_some(),
        )
    }
}

impl Classifier for LiveModel {
    fn model(&self) -> &str {
        self.current.load().name
    }

    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        let loaded = self.current.load_full();
        Box::pin(async move { loaded.model.score(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed(name: &str) -> BuiltinClassifier {
        BuiltinClassifier::embedded()
            .unwrap()
            .with_name(name)
            .unwrap()
    }

    #[test]
    fn a_new_version_replaces_the_model_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::in_data_dir(dir.path());
        let live = LiveModel::open(store.clone()).unwrap();
        assert_eq!(live.model(), "builtin-lr-v1");

        store.install(&renamed("builtin-lr-v1+r1")).unwrap();
        live.reload();
        assert_eq!(live.model(), "builtin-lr-v1+r1");
        assert_eq!(live.status().reloads, 1);

        // A pointer to a file that is not a model: refused, the model in force stays.
        std::fs::write(store.dir().join("builtin-lr-v1+r2.bin"), b"junk").unwrap();
        std::fs::write(store.pointer(), "builtin-lr-v1+r2\n").unwrap();
        live.reload();
        assert_eq!(live.model(), "builtin-lr-v1+r1");
        assert!(live.status().error.unwrap().contains("builtin-lr-v1+r2"));

        store.use_version("builtin-lr-v1").unwrap();
        live.reload();
        assert_eq!(live.model(), "builtin-lr-v1");
        assert_eq!(live.status().error, None);
    }

    #[test]
    fn a_bad_pointer_at_start_up_scores_with_the_embedded_model_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::in_data_dir(dir.path());
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::write(store.pointer(), "builtin-lr-v1+r7\n").unwrap();
        let live = LiveModel::open(store).unwrap();
        assert_eq!(live.model(), "builtin-lr-v1");
        assert!(live.status().error.unwrap().contains("builtin-lr-v1+r7"));
    }
}
