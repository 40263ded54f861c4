//! Tier-2 classifiers: the Classifier trait, the sidecar protocol client and test classifiers.
