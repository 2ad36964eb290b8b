//! Experiment manifests (TOML): schema, validation into an explicit ExperimentPlan
