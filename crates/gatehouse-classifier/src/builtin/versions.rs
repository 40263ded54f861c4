//! Versioned weights of the built-in model in a deployment's data directory: one file per
//! version, `models/NAME.bin` (e.g. `builtin-lr-v1+r1.bin`, the name also inside the file's header,
//! so every score names the version that gave it), and a `models/current` pointer naming the
//! version in force. Versions are never deleted; switching is rewriting the pointer.
//!
//! *Invariant*: the pointer and version files are written to a temporary file and renamed into
//! place, so a reader (the daemon watching the pointer) sees the old or the new content, never a
//! half-written one; and a version is put in force only after it has loaded successfully.
//!
//! The embedded model is a version too (`builtin-lr-v1`): no pointer, or a pointer naming it,
//! means the embedded weights.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{BuiltinClassifier, EMBEDDED, ModelLoadError};
use crate::Classifier;

/// The directory under the data directory that holds the versions.
pub const MODELS_DIR: &str = "models";
/// The pointer file's name in [`MODELS_DIR`].
pub const CURRENT_FILE: &str = "current";
const EXTENSION: &str = ".bin";

/// Why the store could not do what was asked.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Model {
        path: PathBuf,
        #[source]
        source: ModelLoadError,
    },
    #[error(
        "`{0}` is not a model version name (letters, digits and . _ + - only, at most 100 bytes)"
    )]
    BadName(String),
    #[error("no model version `{name}` in {dir} (see `gatehouse classifier versions`)")]
    Unknown { name: String, dir: PathBuf },
    #[error("{path} holds model `{holds}`, not `{expected}`")]
    Mismatch {
        path: PathBuf,
        holds: String,
        expected: String,
    },
    #[error("{path} already exists with other contents; versions are never overwritten")]
    Exists { path: PathBuf },
}

/// One version in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelVersion {
    pub name: String,
    /// Its weights file; `None` for the embedded model.
    pub path: Option<PathBuf>,
    /// Whether the pointer names it (or, with no pointer, whether it is the embedded model).
    pub current: bool,
}

/// The `models` directory of a data directory.
#[derive(Clone, Debug)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    /// The store in `data_dir/models` (nothing is created until a version is installed).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(MODELS_DIR),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pointer file (`models/current`).
    pub fn pointer(&self) -> PathBuf {
        self.dir.join(CURRENT_FILE)
    }

    /// The name of the embedded model (`builtin-lr-v1`).
    pub fn embedded_name() -> String {
        BuiltinClassifier::embedded()
            .map(|m| m.model().to_owned())
            .unwrap_or_else(|_| "builtin-lr-v1".into())
    }

    /// The version the pointer names, or `None` when there is no pointer (the embedded model).
    ///
    /// # Errors
    /// The pointer cannot be read or does not hold a version name.
    pub fn current_name(&self) -> Result<Option<String>, StoreError> {
        let path = self.pointer();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let name = text.trim();
                check_name(name)?;
                Ok(Some(name.to_owned()))
            }
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// The model in force: the version the pointer names, else the embedded model.
    ///
    /// # Errors
    /// The pointer or the version it names cannot be read or loaded.
    pub fn load_current(&self) -> Result<BuiltinClassifier, StoreError> {
        match self.current_name()? {
            Some(name) => self.load(&name),
            None => BuiltinClassifier::from_bytes(EMBEDDED).map_err(|source| StoreError::Model {
                path: PathBuf::from("(embedded)"),
                source,
            }),
        }
    }

    /// One version by name (the embedded model by its name too). The file must hold a model of
    /// that name.
    ///
    /// # Errors
    /// A bad name, no such version, or a file that does not load or holds another model.
    pub fn load(&self, name: &str) -> Result<BuiltinClassifier, StoreError> {
        check_name(name)?;
        let path = self.path_of(name);
        if !path.exists() && name == Self::embedded_name() {
            return BuiltinClassifier::from_bytes(EMBEDDED).map_err(|source| StoreError::Model {
                path: PathBuf::from("(embedded)"),
                source,
            });
        }
        if !path.exists() {
            return Err(StoreError::Unknown {
                name: name.to_owned(),
                dir: self.dir.clone(),
            });
        }
        let model = BuiltinClassifier::from_file(&path).map_err(|source| StoreError::Model {
            path: path.clone(),
            source,
        })?;
        if model.model() != name {
            return Err(StoreError::Mismatch {
                path,
                holds: model.model().to_owned(),
                expected: name.to_owned(),
            });
        }
        Ok(model)
    }

    /// Every version: the embedded model first, then the files in revision order.
    ///
    /// # Errors
    /// The directory or the pointer cannot be read.
    pub fn versions(&self) -> Result<Vec<ModelVersion>, StoreError> {
        let current = self.current_name()?;
        let embedded = Self::embedded_name();
        let mut files: Vec<String> = Vec::new();
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|source| StoreError::Io {
                        path: self.dir.clone(),
                        source,
                    })?;
                    let file = entry.file_name();
                    let Some(name) = file.to_str().and_then(|f| f.strip_suffix(EXTENSION)) else {
                        continue;
                    };
                    if check_name(name).is_ok() && name != embedded {
                        files.push(name.to_owned());
                    }
                }
            }
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        }
        files.sort_by(|a, b| (base_of(a), revision(a), a).cmp(&(base_of(b), revision(b), b)));
        let mut out = vec![ModelVersion {
            current: current.as_deref().is_none_or(|c| c == embedded),
            name: embedded,
            path: None,
        }];
        for name in files {
            out.push(ModelVersion {
                current: current.as_deref() == Some(name.as_str()),
                path: Some(self.path_of(&name)),
                name,
            });
        }
        Ok(out)
    }

    /// The name the next retrained version of `parent` gets: its base name (before `+`) and one
    /// revision past the highest in the store (`builtin-lr-v1+r1`, `+r2`, ...).
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn next_name(&self, parent: &str) -> Result<String, StoreError> {
        let base = base_of(parent);
        let highest = self
            .versions()?
            .iter()
            .filter(|v| base_of(&v.name) == base)
            .filter_map(|v| revision(&v.name))
            .max()
            .unwrap_or(0)
            .max(revision(parent).unwrap_or(0));
        Ok(format!("{base}+r{}", highest + 1))
    }

    /// Writes `model` as a new version (named by its model name) and puts it in force.
    ///
    /// # Errors
    /// The name is not a version name, a different file of that name exists, or a write fails.
    pub fn install(&self, model: &BuiltinClassifier) -> Result<PathBuf, StoreError> {
        let name = model.model().to_owned();
        check_name(&name)?;
        std::fs::create_dir_all(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.path_of(&name);
        let bytes = model.to_bytes();
        match std::fs::read(&path) {
            Ok(existing) if existing == bytes => {}
            Ok(_) => return Err(StoreError::Exists { path }),
            Err(_) => write_atomically(&path, &bytes)?,
        }
        self.use_version(&name)?;
        Ok(path)
    }

    /// Puts version `name` in force (a rollback when it is an older one). The version is loaded
    /// first: one that does not load is refused and the pointer is left alone.
    ///
    /// # Errors
    /// No such version, it does not load, or the pointer cannot be written.
    pub fn use_version(&self, name: &str) -> Result<(), StoreError> {
        self.load(name)?;
        std::fs::create_dir_all(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.clone(),
            source,
        })?;
        write_atomically(&self.pointer(), format!("{name}\n").as_bytes())
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{EXTENSION}"))
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._+-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadName(name.to_owned()))
    }
}

/// `builtin-lr-v1` of `builtin-lr-v1+r3`.
fn base_of(name: &str) -> &str {
    name.split_once('+').map_or(name, |(base, _)| base)
}

/// `3` of `builtin-lr-v1+r3`.
fn revision(name: &str) -> Option<u64> {
    name.split_once("+r")?.1.parse().ok()
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&temp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&temp, path).map_err(io)?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn store() -> (tempfile::TempDir, ModelStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::in_data_dir(dir.path());
        (dir, store)
    }

    fn renamed(name: &str) -> BuiltinClassifier {
        BuiltinClassifier::embedded()
            .unwrap()
            .with_name(name)
            .unwrap()
    }

    #[test]
    fn with_no_pointer_the_embedded_model_is_current() {
        let (_dir, store) = store();
        assert_eq!(store.current_name().unwrap(), None);
        assert_eq!(store.load_current().unwrap().model(), "builtin-lr-v1");
        let versions = store.versions().unwrap();
        assert_eq!(versions.len(), 1);
        assert!(versions[0].current && versions[0].path.is_none());
        assert_eq!(
            store.next_name("builtin-lr-v1").unwrap(),
            "builtin-lr-v1+r1"
        );
    }

    #[test]
    fn install_writes_a_version_moves_the_pointer_and_keeps_the_old_ones() {
        let (_dir, store) = store();
        store.install(&renamed("builtin-lr-v1+r1")).unwrap();
        assert_eq!(
            store.next_name("builtin-lr-v1+r1").unwrap(),
            "builtin-lr-v1+r2"
        );
        store.install(&renamed("builtin-lr-v1+r2")).unwrap();
        assert_eq!(store.load_current().unwrap().model(), "builtin-lr-v1+r2");
        let names: Vec<(String, bool)> = store
            .versions()
            .unwrap()
            .into_iter()
            .map(|v| (v.name, v.current))
            .collect();
        assert_eq!(
            names,
            [
                ("builtin-lr-v1".to_owned(), false),
                ("builtin-lr-v1+r1".to_owned(), false),
                ("builtin-lr-v1+r2".to_owned(), true)
            ]
        );
        // Rollback, to a file and to the embedded model.
        store.use_version("builtin-lr-v1+r1").unwrap();
        assert_eq!(store.load_current().unwrap().model(), "builtin-lr-v1+r1");
        store.use_version("builtin-lr-v1").unwrap();
        assert_eq!(store.load_current().unwrap().model(), "builtin-lr-v1");
        assert_eq!(
            store.next_name("builtin-lr-v1").unwrap(),
            "builtin-lr-v1+r3"
        );
    }

    #[test]
    fn bad_versions_are_refused_and_the_pointer_stays() {
        let (_dir, store) = store();
        store.install(&renamed("builtin-lr-v1+r1")).unwrap();
        assert!(matches!(
            store.use_version("builtin-lr-v1+r9"),
            Err(StoreError::Unknown { .. })
        ));
        assert!(matches!(
            store.use_version("../etc/passwd"),
            Err(StoreError::BadName(_))
        ));
        // A file whose header names another model, and a corrupt one.
        std::fs::write(
            store.dir().join("builtin-lr-v1+r2.bin"),
            renamed("something-else").to_bytes(),
        )
        .unwrap();
        assert!(matches!(
            store.use_version("builtin-lr-v1+r2"),
            Err(StoreError::Mismatch { .. })
        ));
        std::fs::write(store.dir().join("builtin-lr-v1+r3.bin"), b"GHLR junk").unwrap();
        assert!(matches!(
            store.use_version("builtin-lr-v1+r3"),
            Err(StoreError::Model { .. })
        ));
        assert_eq!(
            store.current_name().unwrap().as_deref(),
            Some("builtin-lr-v1+r1")
        );
        // Installing different bytes under an existing name is refused.
        let other = BuiltinClassifier::embedded().unwrap();
        let (w, b, platt) = other.parameters();
        let changed = other
            .derive(
                "builtin-lr-v1+r1",
                w.to_vec(),
                b + 1.0,
                platt,
                serde_json::json!({}),
            )
            .unwrap();
        assert!(matches!(
            store.install(&changed),
            Err(StoreError::Exists { .. })
        ));
    }
}
