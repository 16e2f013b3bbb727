//! The whisper.cpp ggml model file (the legacy, pre-GGUF layout its loader
//! reads), little-endian:
//!
//! 1. magic `0x67676d6c` (`i32`);
//! 2. 11 `i32` hyper-parameters ([`HParams`]);
//! 3. mel filters: `i32` n_mel, `i32` n_fft, `n_mel × n_fft` `f32`;
//! 4. vocabulary: `i32` count, then per token `i32` length and its bytes, in
//!    rank order (whisper.cpp adds the special tokens itself);
//! 5. tensors until the end: `i32` n_dims, `i32` name length, `i32` type
//!    (0 = F32, 1 = F16), n_dims × `i32` dims innermost first, the name, the data.

use std::io::{self, Read, Write};

/// The ggml file magic (`"ggml"`).
pub const MAGIC: u32 = 0x6767_6d6c;

/// Whisper hyper-parameters, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HParams {
    /// Vocabulary size including special tokens (51864 English-only, 51865+ multilingual).
    pub n_vocab: i32,
    /// Encoder positions (1500).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions (448).
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands (80, or 128 for large-v3).
    pub n_mels: i32,
    /// Type of the big tensors: 0 = F32, 1 = F16.
    pub ftype: i32,
}

impl HParams {
    /// The values in file order.
    pub fn to_array(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    /// From the values in file order.
    pub fn from_array(a: [i32; 11]) -> Self {
        Self {
            n_vocab: a[0],
            n_audio_ctx: a[1],
            n_audio_state: a[2],
            n_audio_head: a[3],
            n_audio_layer: a[4],
            n_text_ctx: a[5],
            n_text_state: a[6],
            n_text_head: a[7],
            n_text_layer: a[8],
            n_mels: a[9],
            ftype: a[10],
        }
    }

    /// Whether whisper.cpp treats the model as multilingual.
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51_865
    }

    /// whisper.cpp's name for the model size (from the encoder layer count).
    pub fn model_type(&self) -> &'static str {
        match self.n_audio_layer {
            4 => "tiny",
            6 => "base",
            12 => "small",
            24 => "medium",
            32 => "large",
            _ => "unknown",
        }
    }
}

/// A tensor element type in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit float (0).
    F32,
    /// 16-bit IEEE float (1).
    F16,
}

impl GgmlType {
    /// The type code in the file.
    pub fn code(self) -> i32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
        }
    }

    /// The type for a code in the file.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(Self::F32),
            1 => Some(Self::F16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
}

/// Writes a ggml file section by section, counting the bytes.
#[derive(Debug)]
pub struct GgmlWriter<W> {
    out: W,
    written: u64,
}

impl<W: Write> GgmlWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> Self {
        Self { out, written: 0 }
    }

    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn i32(&mut self, value: i32) -> io::Result<()> {
        self.bytes(&value.to_le_bytes())
    }

    fn len(&mut self, value: usize) -> io::Result<()> {
        let value = i32::try_from(value)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length over i32"))?;
        self.i32(value)
    }

    /// Magic and hyper-parameters.
    pub fn header(&mut self, hparams: &HParams) -> io::Result<()> {
        self.bytes(&MAGIC.to_le_bytes())?;
        for value in hparams.to_array() {
            self.i32(value)?;
        }
        Ok(())
    }

    /// The mel filter bank, `n_mel × n_fft` row-major.
    pub fn mel_filters(&mut self, n_mel: usize, n_fft: usize, data: &[f32]) -> io::Result<()> {
        if data.len() != n_mel * n_fft {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mel filter data does not match its shape",
            ));
        }
        self.len(n_mel)?;
        self.len(n_fft)?;
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.bytes(&bytes)
    }

    /// The vocabulary, tokens in rank order.
    pub fn vocab(&mut self, tokens: &[Vec<u8>]) -> io::Result<()> {
        self.len(tokens.len())?;
        for token in tokens {
            self.len(token.len())?;
            self.bytes(token)?;
        }
        Ok(())
    }

    /// One tensor. `shape` is outermost first (PyTorch order); the file
    /// stores it innermost first. `data` holds the elements as `ty`.
    pub fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        ty: GgmlType,
        data: &[u8],
    ) -> io::Result<()> {
        let numel: usize = shape.iter().product();
        if data.len() != numel * ty.size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tensor {name}: {} bytes for shape {shape:?}", data.len()),
            ));
        }
        self.len(shape.len())?;
        self.len(name.len())?;
        self.i32(ty.code())?;
        for dim in shape.iter().rev() {
            self.len(*dim)?;
        }
        self.bytes(name.as_bytes())?;
        self.bytes(data)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A tensor's entry in a ggml file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Its name.
    pub name: String,
    /// Its dims as stored (innermost first, like ggml's `ne`).
    pub ne: Vec<usize>,
    /// Its type.
    pub ty: GgmlType,
    /// Offset of its data from the start of the file.
    pub offset: u64,
}

/// The parsed structure of a ggml whisper file (tensor data not kept).
#[derive(Debug, Clone)]
pub struct GgmlIndex {
    /// Hyper-parameters.
    pub hparams: HParams,
    /// Mel filter shape (n_mel, n_fft).
    pub mel_shape: (usize, usize),
    /// The mel filter values.
    pub mel: Vec<f32>,
    /// The vocabulary in file order.
    pub vocab: Vec<Vec<u8>>,
    /// The tensors in file order.
    pub tensors: Vec<TensorEntry>,
}

/// Parses a whole ggml whisper file from `reader` (checking it is
/// well-formed to the end).
pub fn read_index<R: Read>(mut reader: R) -> io::Result<GgmlIndex> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let mut offset = 0u64;
    let read_i32 = |reader: &mut R, offset: &mut u64| -> io::Result<i32> {
        let mut b = [0u8; 4];
        reader.read_exact(&mut b)?;
        *offset += 4;
        Ok(i32::from_le_bytes(b))
    };
    let to_usize = |v: i32, what: &str| {
        usize::try_from(v).map_err(|_| invalid(format!("negative {what}: {v}")))
    };

    let magic = read_i32(&mut reader, &mut offset)? as u32;
    if magic != MAGIC {
        return Err(invalid(format!("bad magic {magic:#x}")));
    }
    let mut values = [0i32; 11];
    for value in &mut values {
        *value = read_i32(&mut reader, &mut offset)?;
    }
    let hparams = HParams::from_array(values);

    let n_mel = to_usize(read_i32(&mut reader, &mut offset)?, "n_mel")?;
    let n_fft = to_usize(read_i32(&mut reader, &mut offset)?, "n_fft")?;
    let mut mel_bytes = vec![0u8; n_mel * n_fft * 4];
    reader.read_exact(&mut mel_bytes)?;
    offset += mel_bytes.len() as u64;
    let mel = mel_bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();

    let n_vocab = to_usize(read_i32(&mut reader, &mut offset)?, "vocabulary size")?;
    let mut vocab = Vec::with_capacity(n_vocab);
    for _ in 0..n_vocab {
        let len = to_usize(read_i32(&mut reader, &mut offset)?, "token length")?;
        let mut token = vec![0u8; len];
        reader.read_exact(&mut token)?;
        offset += len as u64;
        vocab.push(token);
    }

    let mut tensors = Vec::new();
    loop {
        let mut first = [0u8; 4];
        match reader.read(&mut first)? {
            0 => break,
            4 => {}
            n => reader.read_exact(&mut first[n..])?,
        }
        offset += 4;
        let n_dims = to_usize(i32::from_le_bytes(first), "n_dims")?;
        let name_len = to_usize(read_i32(&mut reader, &mut offset)?, "name length")?;
        let code = read_i32(&mut reader, &mut offset)?;
        let ty = GgmlType::from_code(code).ok_or_else(|| invalid(format!("tensor type {code}")))?;
        let mut ne = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            ne.push(to_usize(read_i32(&mut reader, &mut offset)?, "dim")?);
        }
        let mut name = vec![0u8; name_len];
        reader.read_exact(&mut name)?;
        offset += name_len as u64;
        let name = String::from_utf8(name).map_err(|_| invalid("tensor name not UTF-8".into()))?;
        let nbytes = ne.iter().product::<usize>() * ty.size();
        let skipped = io::copy(&mut (&mut reader).take(nbytes as u64), &mut io::sink())?;
        if skipped != nbytes as u64 {
            return Err(invalid(format!("tensor {name}: data truncated")));
        }
        tensors.push(TensorEntry {
            name,
            ne,
            ty,
            offset,
        });
        offset += nbytes as u64;
    }

    Ok(GgmlIndex {
        hparams,
        mel_shape: (n_mel, n_fft),
        mel,
        vocab,
        tensors,
    })
}
