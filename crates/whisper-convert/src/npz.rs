//! Mel filter banks from openai-whisper's `mel_filters.npz`: a zip of numpy
//! `.npy` arrays (`mel_80.npy`, `mel_128.npy`), each `float32 [n_mels, n_fft]`.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use crate::error::{Error, Result};

/// A 2-D `float32` array from a `.npy` file, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Array2 {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows × cols` values, row after row.
    pub data: Vec<f32>,
}

/// Parses a `.npy` file holding a 2-D little-endian `f4` or `f8` array in C
/// order (`f8` is narrowed to `f32`).
pub fn parse_npy(bytes: &[u8]) -> Result<Array2> {
    let bad = |m: String| Error::MelFilters(m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy array (bad magic)".into()));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad(format!(".npy format version {major} is not supported"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad(".npy header truncated".into()))?;
    let header = std::str::from_utf8(header).map_err(|_| bad(".npy header is not text".into()))?;

    let descr = header_value(header, "descr")
        .and_then(|v| v.strip_prefix('\'').and_then(|v| v.split('\'').next()))
        .ok_or_else(|| bad(format!(".npy header without descr: {header}")))?;
    let fortran = header_value(header, "fortran_order")
        .ok_or_else(|| bad(format!(".npy header without fortran_order: {header}")))?;
    if fortran.starts_with("True") {
        return Err(bad("Fortran-ordered .npy arrays are not supported".into()));
    }
    let shape = header_value(header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| bad(format!(".npy header without shape: {header}")))?;
    let shape: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| bad(format!("bad .npy shape `{shape}`")))
        })
        .collect::<Result<_>>()?;
    let [rows, cols] = shape[..] else {
        return Err(bad(format!("expected a 2-D array, got shape {shape:?}")));
    };

    let data = &bytes[start + header_len..];
    let values: Vec<f32> = match descr {
        "<f4" => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "<f8" => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => {
            return Err(bad(format!(
                "element type `{other}` is not supported (expected <f4 or <f8)"
            )));
        }
    };
    if values.len() != rows * cols {
        return Err(bad(format!(
            "{} values for shape ({rows}, {cols})",
            values.len()
        )));
    }
    Ok(Array2 {
        rows,
        cols,
        data: values,
    })
}

/// The text after `'key':` in a `.npy` header dict, leading spaces trimmed.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = &header[at + key.len() + 2..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

/// Reads the array `name` (without `.npy`) from the `.npz` in `reader`.
pub fn read_npz_array<R: Read + Seek>(reader: R, name: &str) -> Result<Array2> {
    let bad = |m: String| Error::MelFilters(m);
    let mut zip =
        zip::ZipArchive::new(reader).map_err(|e| bad(format!("not a valid .npz (zip): {e}")))?;
    let member = format!("{name}.npy");
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.into_owned())
        .collect();
    if !names.contains(&member) {
        return Err(bad(format!(
            "no `{member}` in the .npz (it has: {})",
            names.join(", ")
        )));
    }
    let mut file = zip
        .by_name(&member)
        .map_err(|e| bad(format!("{member}: {e}")))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| bad(format!("{member}: {e}")))?;
    parse_npy(&bytes).map_err(|e| match e {
        Error::MelFilters(m) => bad(format!("{member}: {m}")),
        other => other,
    })
}

/// The mel filter bank for `n_mels` bands (`mel_{n_mels}` in the `.npz` at
/// `path`).
pub fn read_mel_filters(path: &Path, n_mels: usize) -> Result<Array2> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let filters =
        read_npz_array(BufReader::new(file), &format!("mel_{n_mels}")).map_err(|e| match e {
            Error::MelFilters(m) => Error::MelFilters(format!("{}: {m}", path.display())),
            other => other,
        })?;
    if filters.rows != n_mels {
        return Err(Error::MelFilters(format!(
            "{}: mel_{n_mels} has {} rows, expected {n_mels}",
            path.display(),
            filters.rows
        )));
    }
    Ok(filters)
}

/// Builds a `.npy` (version 1) holding a 2-D `<f4` array: for tests.
pub fn npy_bytes(rows: usize, cols: usize, data: &[f32]) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Pad so that the data starts at a multiple of 64, newline-terminated.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    fn npz(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            assert!(zip.start_file(*name, options).is_ok());
            assert!(zip.write_all(bytes).is_ok());
        }
        match zip.finish() {
            Ok(cursor) => cursor.into_inner(),
            Err(e) => panic!("zip: {e}"),
        }
    }

    /// `bytes` with the first `from` replaced by `to` (same length).
    fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        if let Some(at) = bytes.windows(from.len()).position(|w| w == from) {
            out[at..at + to.len()].copy_from_slice(to);
        }
        out
    }

    #[test]
    fn parses_f4_and_f8_arrays() -> Result<()> {
        let data = [0.0f32, 1.5, -2.0, 3.25, 4.0, 5.0];
        let a = parse_npy(&npy_bytes(2, 3, &data))?;
        assert_eq!((a.rows, a.cols), (2, 3));
        assert_eq!(a.data, data);

        let mut f8 = replace(&npy_bytes(2, 3, &[]), b"<f4", b"<f8");
        for v in data {
            f8.extend_from_slice(&f64::from(v).to_le_bytes());
        }
        assert_eq!(parse_npy(&f8)?.data, data);
        Ok(())
    }

    #[test]
    fn rejects_bad_npy() {
        assert!(
            matches!(parse_npy(b"PK\x03\x04 not npy"), Err(Error::MelFilters(m)) if m.contains("magic"))
        );
        let fortran = replace(&npy_bytes(1, 1, &[1.0]), b"False", b"True ");
        assert!(matches!(parse_npy(&fortran), Err(Error::MelFilters(m)) if m.contains("Fortran")));
        let ints = replace(&npy_bytes(1, 1, &[1.0]), b"<f4", b"<i4");
        assert!(matches!(parse_npy(&ints), Err(Error::MelFilters(m)) if m.contains("<i4")));
        let short = npy_bytes(2, 2, &[1.0, 2.0, 3.0]);
        assert!(matches!(parse_npy(&short), Err(Error::MelFilters(m)) if m.contains("3 values")));
    }

    #[test]
    fn reads_deflated_npz_members() -> Result<()> {
        let bytes = npz(&[
            ("mel_4.npy", npy_bytes(4, 3, &[0.25; 12])),
            ("mel_2.npy", npy_bytes(2, 3, &[1.0; 6])),
        ]);
        let a = read_npz_array(Cursor::new(bytes.clone()), "mel_4")?;
        assert_eq!((a.rows, a.cols), (4, 3));
        assert_eq!(a.data, [0.25; 12]);
        let err = read_npz_array(Cursor::new(bytes), "mel_80");
        assert!(
            matches!(&err, Err(Error::MelFilters(m)) if m.contains("no `mel_80.npy`") && m.contains("mel_2.npy")),
            "{err:?}"
        );
        let err = read_npz_array(Cursor::new(b"not a zip".to_vec()), "mel_80");
        assert!(matches!(err, Err(Error::MelFilters(m)) if m.contains("zip")));
        Ok(())
    }
}
