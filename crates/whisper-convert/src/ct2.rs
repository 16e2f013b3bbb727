//! Reader for CTranslate2 `model.bin` files (binary version 6), the format of
//! faster-whisper models.
//!
//! Layout (little-endian): `u32` binary version, the spec name, `u32` spec
//! revision, `u32` variable count, then per variable: name, `u8` rank, `rank`
//! × `u32` dims, `u8` dtype, `u32` byte count, the data; then `u32` alias
//! count and per alias: alias name, target name. Strings are a `u16` length
//! (counting a trailing NUL), the UTF-8 bytes and the NUL.
//!
//! Only the index is read up front; tensor data is read on demand.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};

/// The binary version this reader supports.
pub const SUPPORTED_VERSION: u32 = 6;

/// The spec name of Whisper models.
pub const WHISPER_SPEC: &str = "WhisperSpec";

/// A CTranslate2 element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float (code 0).
    F32,
    /// 8-bit integer (code 1).
    I8,
    /// 16-bit integer (code 2).
    I16,
    /// 32-bit integer (code 3).
    I32,
    /// 16-bit IEEE float (code 4).
    F16,
    /// bfloat16 (code 5).
    BF16,
}

impl DType {
    /// The type for a CTranslate2 dtype code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// The CTranslate2 dtype code.
    pub fn code(self) -> u8 {
        match self {
            Self::F32 => 0,
            Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 => 3,
            Self::F16 => 4,
            Self::BF16 => 5,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    /// CTranslate2's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
        }
    }
}

/// One variable (tensor) of the model: its index entry, not its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Its name, e.g. `encoder/layer_0/self_attention/linear_0/weight`.
    pub name: String,
    /// Its shape, outermost dimension first (row-major); empty for a scalar.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: DType,
    offset: u64,
    nbytes: usize,
}

impl Variable {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Size of the data in bytes.
    pub fn nbytes(&self) -> usize {
        self.nbytes
    }
}

/// An open CTranslate2 model: the index of its variables and a reader for
/// their data.
#[derive(Debug)]
pub struct Ct2Model<R> {
    reader: R,
    /// The spec name (`WhisperSpec` for Whisper).
    pub spec: String,
    /// The spec revision.
    pub revision: u32,
    variables: BTreeMap<String, Variable>,
    aliases: BTreeMap<String, String>,
}

impl Ct2Model<BufReader<File>> {
    /// Opens `path` and reads its index.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Self::from_reader(BufReader::with_capacity(1 << 20, file))
    }
}

impl<R: Read + Seek> Ct2Model<R> {
    /// Reads the index from `reader` (positioned at the start of the model).
    pub fn from_reader(mut reader: R) -> Result<Self> {
        let len = reader
            .seek(SeekFrom::End(0))
            .and_then(|len| reader.seek(SeekFrom::Start(0)).map(|_| len))
            .map_err(|e| Error::read("CTranslate2 model", e))?;

        let version = read_u32(&mut reader, "binary version")?;
        if version != SUPPORTED_VERSION {
            return Err(Error::Ct2Version {
                found: version,
                expected: SUPPORTED_VERSION,
            });
        }
        let spec = read_string(&mut reader, "spec name")?;
        if spec != WHISPER_SPEC {
            return Err(Error::Ct2Spec { found: spec });
        }
        let revision = read_u32(&mut reader, "spec revision")?;
        let count = read_u32(&mut reader, "variable count")?;

        let mut variables = BTreeMap::new();
        for index in 0..count {
            let name = read_string(&mut reader, &format!("name of variable {index}"))?;
            let rank = read_u8(&mut reader, &name)?;
            let mut shape = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                shape.push(read_u32(&mut reader, &name)? as usize);
            }
            let code = read_u8(&mut reader, &name)?;
            let dtype = DType::from_code(code).ok_or_else(|| {
                Error::Ct2Format(format!("variable `{name}` has unknown dtype code {code}"))
            })?;
            let nbytes = read_u32(&mut reader, &name)? as usize;
            let numel: usize = shape.iter().product();
            if numel.checked_mul(dtype.size()) != Some(nbytes) {
                return Err(Error::Ct2Format(format!(
                    "variable `{name}`: {nbytes} bytes of data for shape {shape:?} of {}",
                    dtype.name()
                )));
            }
            let offset = reader
                .stream_position()
                .map_err(|e| Error::read("CTranslate2 model", e))?;
            if offset + nbytes as u64 > len {
                return Err(Error::Ct2Format(format!(
                    "variable `{name}` ends at byte {} but the file has {len} (truncated?)",
                    offset + nbytes as u64
                )));
            }
            reader
                .seek(SeekFrom::Current(nbytes as i64))
                .map_err(|e| Error::read("CTranslate2 model", e))?;
            let variable = Variable {
                name: name.clone(),
                shape,
                dtype,
                offset,
                nbytes,
            };
            if variables.insert(name.clone(), variable).is_some() {
                return Err(Error::Ct2Format(format!("variable `{name}` appears twice")));
            }
        }

        let mut aliases = BTreeMap::new();
        let alias_count = read_u32(&mut reader, "alias count")?;
        for _ in 0..alias_count {
            let alias = read_string(&mut reader, "alias name")?;
            let target = read_string(&mut reader, &format!("target of alias `{alias}`"))?;
            aliases.insert(alias, target);
        }

        Ok(Self {
            reader,
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// All variables, by name.
    pub fn variables(&self) -> impl Iterator<Item = &Variable> {
        self.variables.values()
    }

    /// The aliases (alias name → variable name).
    pub fn aliases(&self) -> &BTreeMap<String, String> {
        &self.aliases
    }

    /// Whether a variable (or alias) named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    fn resolve(&self, name: &str) -> Option<&Variable> {
        self.variables.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|target| self.variables.get(target))
        })
    }

    /// The variable `name` (aliases resolved), or [`Error::MissingTensor`].
    pub fn variable(&self, name: &str) -> Result<&Variable> {
        self.resolve(name)
            .ok_or_else(|| Error::MissingTensor(name.to_owned()))
    }

    /// The raw (little-endian) data of the variable `name`.
    pub fn read_bytes(&mut self, name: &str) -> Result<Vec<u8>> {
        let variable = self.variable(name)?.clone();
        let mut data = vec![0u8; variable.nbytes];
        self.reader
            .seek(SeekFrom::Start(variable.offset))
            .and_then(|_| self.reader.read_exact(&mut data))
            .map_err(|e| Error::read(format!("CTranslate2 tensor `{name}`"), e))?;
        Ok(data)
    }

    /// The value of the integer scalar `name`, or `None` when it is absent.
    pub fn read_int_scalar(&mut self, name: &str) -> Result<Option<i64>> {
        let Some(variable) = self.resolve(name).cloned() else {
            return Ok(None);
        };
        if variable.numel() != 1 {
            return Err(Error::Ct2Format(format!(
                "`{name}` should be a scalar but has shape {:?}",
                variable.shape
            )));
        }
        let data = self.read_bytes(name)?;
        let value = match (variable.dtype, data.as_slice()) {
            (DType::I8, [a]) => i64::from(i8::from_le_bytes([*a])),
            (DType::I16, [a, b]) => i64::from(i16::from_le_bytes([*a, *b])),
            (DType::I32, [a, b, c, d]) => i64::from(i32::from_le_bytes([*a, *b, *c, *d])),
            (dtype, _) => {
                return Err(Error::Ct2Format(format!(
                    "`{name}` should be an integer scalar but is {}",
                    dtype.name()
                )));
            }
        };
        Ok(Some(value))
    }
}

fn read_exact<R: Read, const N: usize>(reader: &mut R, what: &str) -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    reader
        .read_exact(&mut buf)
        .map_err(|e| Error::read(format!("CTranslate2 model ({what})"), e))?;
    Ok(buf)
}

fn read_u8<R: Read>(reader: &mut R, what: &str) -> Result<u8> {
    Ok(read_exact::<R, 1>(reader, what)?[0])
}

fn read_u32<R: Read>(reader: &mut R, what: &str) -> Result<u32> {
    Ok(u32::from_le_bytes(read_exact(reader, what)?))
}

fn read_string<R: Read>(reader: &mut R, what: &str) -> Result<String> {
    let len = u16::from_le_bytes(read_exact(reader, what)?);
    let mut buf = vec![0u8; usize::from(len)];
    reader
        .read_exact(&mut buf)
        .map_err(|e| Error::read(format!("CTranslate2 model ({what})"), e))?;
    if buf.pop() != Some(0) {
        return Err(Error::Ct2Format(format!(
            "{what}: string not NUL-terminated"
        )));
    }
    String::from_utf8(buf).map_err(|_| Error::Ct2Format(format!("{what}: not UTF-8")))
}

/// Writes CTranslate2 files (version 6): for tests and fixtures.
#[derive(Debug, Default)]
pub struct Ct2Writer {
    variables: Vec<(String, Vec<usize>, DType, Vec<u8>)>,
    aliases: Vec<(String, String)>,
}

impl Ct2Writer {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a variable with raw little-endian `data`.
    pub fn variable(&mut self, name: &str, shape: &[usize], dtype: DType, data: Vec<u8>) {
        self.variables
            .push((name.to_owned(), shape.to_vec(), dtype, data));
    }

    /// Adds an alias.
    pub fn alias(&mut self, alias: &str, target: &str) {
        self.aliases.push((alias.to_owned(), target.to_owned()));
    }

    /// The file's bytes, with binary version `version` and spec `spec`.
    pub fn to_bytes_with(&self, version: u32, spec: &str) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            let len = u16::try_from(s.len() + 1).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&version.to_le_bytes());
        string(&mut out, spec);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.variables.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in &self.variables {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for dim in shape {
                out.extend_from_slice(&(*dim as u32).to_le_bytes());
            }
            out.push(dtype.code());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
        for (alias, target) in &self.aliases {
            string(&mut out, alias);
            string(&mut out, target);
        }
        out
    }

    /// The file's bytes (version 6, `WhisperSpec`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with(SUPPORTED_VERSION, WHISPER_SPEC)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn f16_bytes(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect()
    }

    fn sample() -> Ct2Writer {
        let mut w = Ct2Writer::new();
        w.variable(
            "a/weight",
            &[2, 3],
            DType::F16,
            f16_bytes(&[1., 2., 3., 4., 5., 6.]),
        );
        w.variable("a/num_heads", &[], DType::I16, 6i16.to_le_bytes().to_vec());
        w.variable("a/flag", &[], DType::I8, vec![1]);
        w.variable(
            "b/bias",
            &[2],
            DType::F32,
            [0.5f32, -1.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        );
        w.alias("a/projection", "a/weight");
        w
    }

    #[test]
    fn reads_index_data_scalars_and_aliases() -> Result<()> {
        let mut model = Ct2Model::from_reader(Cursor::new(sample().to_bytes()))?;
        assert_eq!(model.spec, "WhisperSpec");
        assert_eq!(model.revision, 3);
        let names: Vec<_> = model.variables().map(|v| v.name.clone()).collect();
        assert_eq!(names, ["a/flag", "a/num_heads", "a/weight", "b/bias"]);
        let weight = model.variable("a/weight")?;
        assert_eq!(weight.shape, [2, 3]);
        assert_eq!(weight.dtype, DType::F16);
        assert_eq!(weight.nbytes(), 12);
        assert_eq!(
            model.read_bytes("a/weight")?,
            f16_bytes(&[1., 2., 3., 4., 5., 6.])
        );
        // An alias reads its target.
        assert_eq!(
            model.read_bytes("a/projection")?,
            model.read_bytes("a/weight")?
        );
        assert_eq!(model.read_int_scalar("a/num_heads")?, Some(6));
        assert_eq!(model.read_int_scalar("a/flag")?, Some(1));
        assert_eq!(model.read_int_scalar("a/absent")?, None);
        assert!(matches!(
            model.read_int_scalar("b/bias"),
            Err(Error::Ct2Format(_))
        ));
        assert!(matches!(model.variable("nope"), Err(Error::MissingTensor(n)) if n == "nope"));
        Ok(())
    }

    #[test]
    fn rejects_other_versions_and_specs() {
        let w = sample();
        let err = Ct2Model::from_reader(Cursor::new(w.to_bytes_with(5, WHISPER_SPEC)));
        assert!(matches!(
            err,
            Err(Error::Ct2Version {
                found: 5,
                expected: 6
            })
        ));
        // Not a CTranslate2 file at all: the "version" is garbage.
        let err = Ct2Model::from_reader(Cursor::new(b"\x67\x67\x6d\x6c rest".to_vec()));
        assert!(matches!(err, Err(Error::Ct2Version { .. })));
        let err = Ct2Model::from_reader(Cursor::new(w.to_bytes_with(6, "TransformerSpec")));
        assert!(matches!(err, Err(Error::Ct2Spec { found }) if found == "TransformerSpec"));
    }

    #[test]
    fn rejects_truncated_files_and_bad_dtypes() {
        let bytes = sample().to_bytes();
        for cut in [3, 10, 40, bytes.len() - 30, bytes.len() - 1] {
            let err = Ct2Model::from_reader(Cursor::new(bytes[..cut].to_vec()));
            assert!(
                matches!(err, Err(Error::Read { .. } | Error::Ct2Format(_))),
                "cut at {cut}: {err:?}"
            );
        }

        let mut w = Ct2Writer::new();
        w.variable("x", &[1], DType::F32, vec![0; 4]);
        let mut bytes = w.to_bytes();
        // The dtype byte sits right before the u32 byte count and the data.
        let dtype_at = bytes.len() - 4 /* aliases */ - 4 /* data */ - 4 /* count */ - 1;
        bytes[dtype_at] = 9;
        let err = Ct2Model::from_reader(Cursor::new(bytes));
        assert!(
            matches!(&err, Err(Error::Ct2Format(m)) if m.contains("dtype code 9")),
            "{err:?}"
        );

        let mut w = Ct2Writer::new();
        w.variable("x", &[3], DType::F32, vec![0; 8]);
        let err = Ct2Model::from_reader(Cursor::new(w.to_bytes()));
        assert!(
            matches!(&err, Err(Error::Ct2Format(m)) if m.contains("8 bytes")),
            "{err:?}"
        );
    }
}
