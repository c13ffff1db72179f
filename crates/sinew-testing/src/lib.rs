//! # sinew-testing
//!
//! Test support shared by sinew's crates (a dev-dependency only, never published):
//! reading PyTorch's golden fixtures in `tests/fixtures/` (see its README for the
//! format) into tensors ([`golden`]), and the table of the ops those fixtures test,
//! shared by the tensor and autograd parity tests ([`ops`]; `Var` support behind the
//! `autograd` feature).
//!
//! ```
//! use sinew_tensor::DType;
//! use sinew_testing::golden;
//! let json = r#"{"cases": [{"name": "c", "output": {"shape": [2], "data": [1.0, 2.0]}}]}"#;
//! let cases = golden::cases(json);
//! let out = golden::tensor_of(&cases[0]["output"], DType::F32);
//! assert_eq!(out.to_vec::<f32>(), vec![1.0, 2.0]);
//! ```

pub use serde_json::Value;

pub mod ops;

/// Readers for the golden JSON files.
pub mod golden {
    use serde_json::Value;
    use sinew_tensor::{DType, Tensor};

    /// The `cases` of a golden file.
    ///
    /// # Panics
    /// If the text is not a golden file.
    #[track_caller]
    pub fn cases(json: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(json).expect("fixture parses");
        v["cases"].as_array().expect("fixture has cases").clone()
    }

    /// A case's name.
    #[track_caller]
    pub fn name_of(case: &Value) -> &str {
        case["name"].as_str().expect("case name")
    }

    /// The `shape` of a `{shape, data}` entry.
    #[track_caller]
    pub fn shape_of(v: &Value) -> Vec<usize> {
        v["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dimension") as usize)
            .collect()
    }

    /// The `data` of a `{shape, data}` entry, as `f64`.
    #[track_caller]
    pub fn data_of(v: &Value) -> Vec<f64> {
        v["data"].as_array().expect("data").iter().map(|d| d.as_f64().expect("number")).collect()
    }

    /// A `{shape, data}` entry as a tensor: `i64` when its `dtype` says so, else float
    /// data converted to `dtype`.
    #[track_caller]
    pub fn tensor_of(v: &Value, dtype: DType) -> Tensor {
        let shape = shape_of(v);
        if v["dtype"] == "i64" {
            let data: Vec<i64> =
                v["data"].as_array().expect("data").iter().map(|d| d.as_i64().expect("int")).collect();
            return Tensor::from_vec(data, &shape).expect("shape matches data");
        }
        Tensor::from_vec(data_of(v), &shape).expect("shape matches data").to_dtype(dtype)
    }

    /// Asserts that `got` has the shape of the `{shape, data}` entry `want` and its values
    /// within `rtol` relative (absolute below 1), naming `what` and the first element off.
    #[track_caller]
    pub fn assert_close(what: &str, got: &Tensor, want: &Value, rtol: f64) {
        assert_eq!(got.dims(), &shape_of(want)[..], "{what}: shape");
        let want = data_of(want);
        let got = got.to_vec::<f64>();
        assert_eq!(got.len(), want.len(), "{what}: element count");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let tol = rtol * w.abs().max(1.0);
            assert!((g - w).abs() <= tol, "{what} ({rtol}): element {i} is {g}, PyTorch says {w}");
        }
    }

    /// The input called `name` of a case.
    #[track_caller]
    pub fn input_spec<'a>(case: &'a Value, name: &str) -> &'a Value {
        let found = case["inputs"].as_array().expect("inputs").iter().find(|i| i["name"] == name);
        found.unwrap_or_else(|| panic!("{}: no input {name}", name_of(case)))
    }
}
