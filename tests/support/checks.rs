//! Assertions shared by the test binaries.

/// `Err(what)` unless `cond`: for tests that return their failure (a
/// libtest-mimic test's `Failed` takes it with `?`).
pub fn ensure(cond: bool, what: impl std::fmt::Display) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// The validator of docs/result.schema.json, the JSON result's schema.
pub fn result_schema() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(super::repo().join("docs/result.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).expect("docs/result.schema.json is a valid JSON Schema")
}

/// `result` follows docs/result.schema.json; else every error, where it is.
pub fn assert_schema_valid(result: &serde_json::Value) {
    let errors: Vec<String> = result_schema()
        .iter_errors(result)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
