//! Conversions of small synthetic models built in the test: hyper-parameters,
//! whisper.cpp's tensor names/shapes/types, the splitting of fused tensors,
//! the mel and vocabulary sections, errors, and the atomic file output.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use common::{Dims, SMALL, Synthetic, mel_npz, tiktoken, value};
use whisper_convert::ct2::{Ct2Model, DType};
use whisper_convert::ggml::{GgmlIndex, GgmlType, read_index};
use whisper_convert::npz::read_npz_array;
use whisper_convert::{Error, ModelConfig, Paths, convert, convert_files};

struct Converted {
    bytes: Vec<u8>,
    index: GgmlIndex,
    model: Synthetic,
}

impl Converted {
    fn tensor(&self, name: &str) -> (&whisper_convert::ggml::TensorEntry, &[u8]) {
        let Some(t) = self.index.tensors.iter().find(|t| t.name == name) else {
            panic!("no tensor {name}");
        };
        let start = t.offset as usize;
        let len = t.ne.iter().product::<usize>() * t.ty.size();
        (t, &self.bytes[start..start + len])
    }

    /// The tensor's values (all of them), widened to f32.
    fn values(&self, name: &str) -> Vec<f32> {
        let (t, data) = self.tensor(name);
        match t.ty {
            GgmlType::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            GgmlType::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        }
    }
}

fn try_convert(
    model: Synthetic,
    vocab: usize,
    config: Option<&ModelConfig>,
) -> Result<Converted, Error> {
    let (ct2, model) = model.build();
    let mut ct2 = Ct2Model::from_reader(Cursor::new(ct2))?;
    let npz = mel_npz(&[model.dims.n_mels, 2]);
    let mel = |n: usize| read_npz_array(Cursor::new(npz.clone()), &format!("mel_{n}"));
    let tokens = whisper_convert::tiktoken::parse(&tiktoken(vocab))?;
    let (summary, bytes) = convert(&mut ct2, &mel, &tokens, config, Vec::new())?;
    assert_eq!(summary.bytes, bytes.len() as u64);
    let index = match read_index(bytes.as_slice()) {
        Ok(index) => index,
        Err(e) => panic!("the output does not parse: {e}"),
    };
    assert_eq!(summary.tensors, index.tensors.len());
    Ok(Converted {
        bytes,
        index,
        model,
    })
}

fn converted(dims: Dims) -> Converted {
    match try_convert(Synthetic::new(dims), 10, None) {
        Ok(c) => c,
        Err(e) => panic!("conversion failed: {e}"),
    }
}

/// What whisper.cpp's `whisper_model_load` declares for each tensor: `ne`
/// (innermost first) and type (F16 = wtype/vtype for an F16 model).
fn whisper_cpp_tensors(d: Dims) -> BTreeMap<String, (Vec<usize>, GgmlType)> {
    use GgmlType::{F16, F32};
    let s = d.d;
    let mut m = BTreeMap::new();
    let mut add = |name: String, ne: &[usize], ty| {
        m.insert(name, (ne.to_vec(), ty));
    };
    add(
        "encoder.positional_embedding".into(),
        &[s, d.audio_ctx],
        F32,
    );
    add("encoder.conv1.weight".into(), &[3, d.n_mels, s], F16);
    add("encoder.conv1.bias".into(), &[1, s], F32);
    add("encoder.conv2.weight".into(), &[3, s, s], F16);
    add("encoder.conv2.bias".into(), &[1, s], F32);
    add("encoder.ln_post.weight".into(), &[s], F32);
    add("encoder.ln_post.bias".into(), &[s], F32);
    let block = |add: &mut dyn FnMut(String, &[usize], GgmlType), p: String| {
        add(format!("{p}.mlp_ln.weight"), &[s], F32);
        add(format!("{p}.mlp_ln.bias"), &[s], F32);
        add(format!("{p}.mlp.0.weight"), &[s, 4 * s], F16);
        add(format!("{p}.mlp.0.bias"), &[4 * s], F32);
        add(format!("{p}.mlp.2.weight"), &[4 * s, s], F16);
        add(format!("{p}.mlp.2.bias"), &[s], F32);
        for attn in ["attn", "cross_attn"] {
            if attn == "cross_attn" && p.starts_with("encoder") {
                continue;
            }
            add(format!("{p}.{attn}_ln.weight"), &[s], F32);
            add(format!("{p}.{attn}_ln.bias"), &[s], F32);
            add(format!("{p}.{attn}.query.weight"), &[s, s], F16);
            add(format!("{p}.{attn}.query.bias"), &[s], F32);
            add(format!("{p}.{attn}.key.weight"), &[s, s], F16);
            add(format!("{p}.{attn}.value.weight"), &[s, s], F16);
            add(format!("{p}.{attn}.value.bias"), &[s], F32);
            add(format!("{p}.{attn}.out.weight"), &[s, s], F16);
            add(format!("{p}.{attn}.out.bias"), &[s], F32);
        }
    };
    for i in 0..d.enc_layers {
        block(&mut add, format!("encoder.blocks.{i}"));
    }
    add("decoder.positional_embedding".into(), &[s, d.text_ctx], F32);
    add(
        "decoder.token_embedding.weight".into(),
        &[s, d.n_vocab],
        F16,
    );
    add("decoder.ln.weight".into(), &[s], F32);
    add("decoder.ln.bias".into(), &[s], F32);
    for i in 0..d.dec_layers {
        block(&mut add, format!("decoder.blocks.{i}"));
    }
    m
}

#[test]
fn header_has_the_hyper_parameters_from_the_shapes() {
    let c = converted(SMALL);
    let hp = c.index.hparams;
    assert_eq!(
        hp.to_array(),
        [12, 6, 8, 2, 2, 5, 8, 2, 1, 4, 1],
        "n_vocab, audio ctx/state/head/layer, text ctx/state/head/layer, n_mels, ftype"
    );
    // The magic, then 11 i32.
    assert_eq!(&c.bytes[..4], &0x6767_6d6cu32.to_le_bytes());
}

#[test]
fn tensors_have_whisper_cpp_names_shapes_and_types() {
    for dims in [
        SMALL,
        Dims {
            enc_layers: 4,
            dec_layers: 4,
            ..SMALL
        },
    ] {
        let c = converted(dims);
        let expected = whisper_cpp_tensors(dims);
        let got: BTreeMap<String, (Vec<usize>, GgmlType)> = c
            .index
            .tensors
            .iter()
            .map(|t| (t.name.clone(), (t.ne.clone(), t.ty)))
            .collect();
        assert_eq!(got.len(), c.index.tensors.len(), "a tensor name repeats");
        assert_eq!(got, expected);
        // whisper.cpp's count: 11 + 15 per encoder layer + 24 per decoder layer.
        assert_eq!(got.len(), 11 + 15 * dims.enc_layers + 24 * dims.dec_layers);
    }
}

#[test]
fn tensors_are_in_pytorch_state_dict_order() {
    let c = converted(SMALL);
    let names: Vec<&str> = c.index.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names[..5],
        [
            "encoder.positional_embedding",
            "encoder.conv1.weight",
            "encoder.conv1.bias",
            "encoder.conv2.weight",
            "encoder.conv2.bias"
        ]
    );
    let block0: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("encoder.blocks.0."))
        .collect();
    assert_eq!(
        block0,
        [
            "attn.query.weight",
            "attn.query.bias",
            "attn.key.weight",
            "attn.value.weight",
            "attn.value.bias",
            "attn.out.weight",
            "attn.out.bias",
            "attn_ln.weight",
            "attn_ln.bias",
            "mlp.0.weight",
            "mlp.0.bias",
            "mlp.2.weight",
            "mlp.2.bias",
            "mlp_ln.weight",
            "mlp_ln.bias",
        ]
    );
    let dec = names
        .iter()
        .position(|n| *n == "decoder.positional_embedding");
    assert_eq!(
        dec,
        Some(5 + 15 * 2 + 2),
        "decoder after the encoder and ln_post"
    );
    assert_eq!(
        names[names.len() - 2..],
        ["decoder.ln.weight", "decoder.ln.bias"]
    );
    let cross: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("decoder.blocks.0."))
        .skip(9)
        .take(9)
        .collect();
    assert_eq!(cross[0], "cross_attn.query.weight");
    assert_eq!(cross[8], "cross_attn_ln.bias");
}

#[test]
fn fused_attention_tensors_are_split() {
    let c = converted(SMALL);
    let m = &c.model;
    let all = |name: &str, expected: f32| {
        let values = c.values(name);
        assert!(!values.is_empty());
        assert!(
            values.iter().all(|v| *v == expected),
            "{name}: {values:?} != {expected}"
        );
    };
    for side in ["encoder", "decoder"] {
        let w = m.id(&format!("{side}/layer_0/self_attention/linear_0/weight"));
        let b = m.id(&format!("{side}/layer_0/self_attention/linear_0/bias"));
        let p = format!("{side}.blocks.0.attn");
        all(&format!("{p}.query.weight"), value(w, 0));
        all(&format!("{p}.key.weight"), value(w, 1));
        all(&format!("{p}.value.weight"), value(w, 2));
        all(&format!("{p}.query.bias"), value(b, 0));
        all(&format!("{p}.value.bias"), value(b, 2));
        let out = m.id(&format!("{side}/layer_0/self_attention/linear_1/weight"));
        all(&format!("{p}.out.weight"), value(out, 0));
    }
    let q = m.id("decoder/layer_0/attention/linear_0/weight");
    let kv = m.id("decoder/layer_0/attention/linear_1/weight");
    let kv_bias = m.id("decoder/layer_0/attention/linear_1/bias");
    all("decoder.blocks.0.cross_attn.query.weight", value(q, 0));
    all("decoder.blocks.0.cross_attn.key.weight", value(kv, 0));
    all("decoder.blocks.0.cross_attn.value.weight", value(kv, 1));
    all("decoder.blocks.0.cross_attn.value.bias", value(kv_bias, 1));
    all(
        "decoder.blocks.0.cross_attn.out.weight",
        value(m.id("decoder/layer_0/attention/linear_2/weight"), 0),
    );
    // Renamed tensors keep their values (and widen to f32 where whisper.cpp wants it).
    all(
        "encoder.ln_post.weight",
        value(m.id("encoder/layer_norm/gamma"), 0),
    );
    all("decoder.ln.bias", value(m.id("decoder/layer_norm/beta"), 0));
    all(
        "decoder.blocks.0.cross_attn_ln.weight",
        value(m.id("decoder/layer_0/attention/layer_norm/gamma"), 0),
    );
    all(
        "decoder.blocks.0.mlp.2.weight",
        value(m.id("decoder/layer_0/ffn/linear_1/weight"), 0),
    );
    all("encoder.conv1.bias", value(m.id("encoder/conv1/bias"), 0));
    all(
        "encoder.positional_embedding",
        value(m.id("encoder/position_encodings/encodings"), 0),
    );
    all(
        "decoder.token_embedding.weight",
        value(m.id("decoder/embeddings/weight"), 0),
    );
}

#[test]
fn mel_filters_and_vocabulary_follow_the_header() {
    let c = converted(SMALL);
    assert_eq!(c.index.mel_shape, (4, 201), "mel_4 chosen by n_mels");
    let close = |i: usize, v: f32| (c.index.mel[i] - v).abs() < 1e-6;
    assert!(close(0, 0.0) && close(201 + 5, 1.005) && close(3 * 201 + 200, 3.2));
    // Rank order, whatever the file order.
    let vocab: Vec<String> = c
        .index
        .vocab
        .iter()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    assert_eq!(vocab, (0..10).map(|i| format!("t{i}")).collect::<Vec<_>>());
    // Sizes: magic + 11 i32, 2 i32 + mel f32, count + (4 + 2 or 3 bytes) per token.
    let vocab_bytes = 4 + 10 * 4 + 10 * 2;
    let first_tensor = 48 + 8 + 4 * 201 * 4 + vocab_bytes;
    let (entry, _) = c.tensor("encoder.positional_embedding");
    let name_len = "encoder.positional_embedding".len();
    assert_eq!(entry.offset as usize, first_tensor + 12 + 2 * 4 + name_len);
}

#[test]
fn float32_and_bfloat16_sources_convert() {
    let mut model = Synthetic::new(SMALL);
    model.dtype_override = vec![
        ("encoder/conv2/weight".into(), DType::F32),
        ("encoder/layer_norm/gamma".into(), DType::BF16),
    ];
    let c = match try_convert(model, 10, None) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    // Zero-filled sources: zeros, in the types whisper.cpp wants.
    assert_eq!(c.tensor("encoder.conv2.weight").0.ty, GgmlType::F16);
    assert!(c.values("encoder.conv2.weight").iter().all(|v| *v == 0.0));
    assert_eq!(c.tensor("encoder.ln_post.weight").0.ty, GgmlType::F32);
}

#[test]
fn quantized_tensors_are_refused() {
    let mut model = Synthetic::new(SMALL);
    model.dtype_override = vec![("decoder/layer_0/ffn/linear_0/weight".into(), DType::I8)];
    let err = try_convert(model, 10, None).err();
    assert!(
        matches!(&err, Some(Error::UnsupportedDtype { name, dtype }) if name == "decoder/layer_0/ffn/linear_0/weight" && dtype == "int8"),
        "{err:?}"
    );
    assert!(err.is_some_and(|e| e.to_string().contains("quantized")));
}

#[test]
fn a_missing_tensor_is_named() {
    for missing in [
        "decoder/layer_norm/gamma",
        "encoder/conv1/weight",
        "decoder/layer_0/attention/linear_1/bias",
    ] {
        let mut model = Synthetic::new(SMALL);
        model.skip = vec![missing.to_owned()];
        let err = try_convert(model, 10, None).err();
        assert!(
            matches!(&err, Some(Error::MissingTensor(name)) if name == missing),
            "{missing}: {err:?}"
        );
    }
}

#[test]
fn a_wrong_shape_is_refused() {
    let mut model = Synthetic::new(SMALL);
    model.shape_override = vec![("encoder/layer_1/ffn/linear_0/weight".into(), vec![16, 8])];
    let err = try_convert(model, 10, None).err();
    assert!(
        matches!(&err, Some(Error::BadShape { name, found, expected }) if name == "encoder/layer_1/ffn/linear_0/weight" && found == &[16, 8] && expected == &[32, 8]),
        "{err:?}"
    );
}

#[test]
fn a_non_zero_key_bias_is_refused() {
    let mut model = Synthetic::new(SMALL);
    model.nonzero_key_bias = true;
    let err = try_convert(model, 10, None).err();
    assert!(matches!(err, Some(Error::NonZeroKeyBias { .. })), "{err:?}");
}

#[test]
fn the_vocabulary_must_fit_the_model() {
    // Bigger than n_vocab.
    let err = try_convert(Synthetic::new(SMALL), 13, None).err();
    assert!(
        matches!(&err, Some(Error::Vocab(m)) if m.contains("n_vocab 12")),
        "{err:?}"
    );

    // Real vocabulary sizes: English-only needs gpt2.tiktoken's 50256 tokens,
    // multilingual needs multilingual.tiktoken's 50257.
    let english = Dims {
        n_vocab: 51_864,
        ..SMALL
    };
    assert!(try_convert(Synthetic::new(english), 50_256, None).is_ok());
    let err = try_convert(Synthetic::new(english), 50_257, None).err();
    assert!(
        matches!(&err, Some(Error::Vocab(m)) if m.contains("gpt2.tiktoken")),
        "{err:?}"
    );
    let multilingual = Dims {
        n_vocab: 51_865,
        ..SMALL
    };
    let err = try_convert(Synthetic::new(multilingual), 50_256, None).err();
    assert!(
        matches!(&err, Some(Error::Vocab(m)) if m.contains("multilingual.tiktoken")),
        "{err:?}"
    );

    // config.json's language list must agree with whisper.cpp's count.
    let ok = ModelConfig {
        lang_ids: Some((0..99).collect()),
    };
    assert!(try_convert(Synthetic::new(multilingual), 50_257, Some(&ok)).is_ok());
    let bad = ModelConfig {
        lang_ids: Some((0..100).collect()),
    };
    let err = try_convert(Synthetic::new(multilingual), 50_257, Some(&bad)).err();
    assert!(
        matches!(&err, Some(Error::Config(m)) if m.contains("100 languages")),
        "{err:?}"
    );
}

#[test]
fn unsupported_decoder_options_are_refused() {
    let (mut bytes, _) = Synthetic::new(SMALL).build();
    // Flip decoder/scale_embeddings (an i8 scalar right after its header).
    let name = b"decoder/scale_embeddings\0";
    let at = bytes.windows(name.len()).position(|w| w == name).map(
        |p| p + name.len() + 1 /* rank */ + 1 /* dtype */ + 4, /* count */
    );
    let Some(at) = at else {
        panic!("no scale_embeddings")
    };
    bytes[at] = 1;
    let mut model = match Ct2Model::from_reader(Cursor::new(bytes)) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let npz = mel_npz(&[4]);
    let mel = |n: usize| read_npz_array(Cursor::new(npz.clone()), &format!("mel_{n}"));
    let tokens = whisper_convert::tiktoken::parse(&tiktoken(10)).unwrap_or_default();
    let err = convert(&mut model, &mel, &tokens, None, Vec::new()).err();
    assert!(
        matches!(&err, Some(Error::Model(m)) if m.contains("scale_embeddings")),
        "{err:?}"
    );
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        panic!("{}: {e}", path.display());
    }
}

fn temp_dir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    }
}

fn file_inputs(dir: &Path, model: Synthetic) -> Paths {
    let (ct2, model) = model.build();
    write(&dir.join("model.bin"), &ct2);
    write(&dir.join("mel_filters.npz"), &mel_npz(&[model.dims.n_mels]));
    write(&dir.join("vocab.tiktoken"), &tiktoken(10));
    Paths {
        ct2: dir.join("model.bin"),
        mel_filters: dir.join("mel_filters.npz"),
        vocab: dir.join("vocab.tiktoken"),
        config: None,
        out: dir.join("out/ggml-model.bin"),
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn files_are_written_atomically() {
    let dir = temp_dir();
    let out_dir = dir.path().join("out");
    assert!(std::fs::create_dir(&out_dir).is_ok());
    let paths = file_inputs(dir.path(), Synthetic::new(SMALL));
    let summary = match convert_files(&paths) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        listing(&out_dir),
        ["ggml-model.bin"],
        "no temporary file left"
    );
    let bytes = std::fs::read(&paths.out).unwrap_or_default();
    assert_eq!(bytes.len() as u64, summary.bytes);
    assert_eq!(summary.hparams.n_audio_layer, 2);

    // A failing conversion leaves the previous output alone and no temporary file.
    let mut broken = Synthetic::new(SMALL);
    broken.skip = vec!["decoder/layer_norm/beta".into()];
    let paths = file_inputs(dir.path(), broken);
    let err = convert_files(&paths).err();
    assert!(matches!(&err, Some(Error::MissingTensor(_))), "{err:?}");
    assert_eq!(listing(&out_dir), ["ggml-model.bin"]);
    assert_eq!(std::fs::read(&paths.out).unwrap_or_default(), bytes);
}

#[test]
fn config_json_next_to_the_model_is_checked() {
    let dir = temp_dir();
    assert!(std::fs::create_dir(dir.path().join("out")).is_ok());
    let paths = file_inputs(dir.path(), Synthetic::new(SMALL));
    write(&dir.path().join("config.json"), b"{ not json");
    let err = convert_files(&paths).err();
    assert!(
        matches!(&err, Some(Error::Config(m)) if m.contains("config.json")),
        "{err:?}"
    );
    write(
        &dir.path().join("config.json"),
        br#"{"lang_ids": [50259], "suppress_ids": []}"#,
    );
    assert!(
        convert_files(&paths).is_ok(),
        "an English-only model ignores lang_ids"
    );
}

#[test]
fn missing_input_files_are_named() {
    let dir = temp_dir();
    let paths = Paths {
        ct2: dir.path().join("absent.bin"),
        mel_filters: dir.path().join("m.npz"),
        vocab: dir.path().join("v.tiktoken"),
        config: None,
        out: dir.path().join("o.bin"),
    };
    let err = convert_files(&paths).err();
    assert!(
        matches!(&err, Some(Error::Io { path, .. }) if path.ends_with("absent.bin")),
        "{err:?}"
    );
}

#[test]
fn the_cli_converts_and_reports_errors() {
    let dir = temp_dir();
    assert!(std::fs::create_dir(dir.path().join("out")).is_ok());
    let paths = file_inputs(dir.path(), Synthetic::new(SMALL));
    let run = |ct2: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_whisper-convert"))
            .arg("--ct2")
            .arg(ct2)
            .arg("--mel-filters")
            .arg(&paths.mel_filters)
            .arg("--vocab")
            .arg(&paths.vocab)
            .arg("--out")
            .arg(&paths.out)
            .output()
    };
    let out = match run(&paths.ct2) {
        Ok(out) => out,
        Err(e) => panic!("running whisper-convert: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("wrote"), "progress is logged: {stderr}");
    assert!(paths.out.is_file());

    // A ggml file is not a CTranslate2 model.
    let out = match run(&paths.out) {
        Ok(out) => out,
        Err(e) => panic!("running whisper-convert: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("binary version") && stderr.contains("expected 6"),
        "{stderr}"
    );
}
