//! Quantized weights rearranged into tiles of 16 rows by one 32-value
//! block, the layout the kernels read with one 64-byte load per four
//! columns of all 16 rows.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Result, bail};

/// Values per quantization block (Q4_1 and Q8_0 alike).
pub(super) const BLOCK: usize = 32;
/// Weight rows (output columns) per tile.
pub(super) const TILE_ROWS: usize = 16;

/// Bytes of one GGML Q4_1 block: `d`, `m` (f16), 16 bytes of nibbles.
const Q4_1_BYTES: usize = 20;
/// Bytes of one GGML Q8_0 block: `d` (f16), 32 signed bytes.
const Q8_0_BYTES: usize = 34;

/// One 32-column block of 16 rows: row `r`'s value at column `c` is
/// `d[r] · q + m[r]`, the unsigned `q` stored in `qs` as four-column groups,
/// row after row (`qs[(group · 16 + r) · 4 ..]`), which is what `vpdpbusd`
/// multiplies with four activations broadcast to every row.
#[repr(C, align(64))]
pub(super) struct Tile<const BYTES: usize> {
    /// The quantized values (see the type's description).
    pub(super) qs: [u8; BYTES],
    /// Per-row scales (f16 bits).
    pub(super) d: [u16; TILE_ROWS],
    /// Per-row offsets (f16 bits).
    pub(super) m: [u16; TILE_ROWS],
}

/// Q4_1 weights: two columns per byte, column `4g + j` in the low nibble of
/// group `g`'s byte `j` and column `16 + 4g + j` in its high nibble, as in
/// GGML's own block (whose byte `i` holds columns `i` and `16 + i`).
pub(super) type Q4Tile = Tile<{ BLOCK / 2 * TILE_ROWS }>;

/// Q8_0 weights: the signed values stored plus 128 (unsigned, as `vpdpbusd`
/// needs), with `m = d`: the kernel takes `128 · d` per value away again.
pub(super) type Q8Tile = Tile<{ BLOCK * TILE_ROWS }>;

/// A matrix in tiles: `[row tile][column block]`, so one tile row of the
/// matrix is contiguous in memory.
pub(super) enum Tiles {
    /// From Q4_1.
    Q4(Vec<Q4Tile>),
    /// From Q8_0.
    Q8(Vec<Q8Tile>),
}

impl Tiles {
    /// Whether a matrix of this type and shape `[n, k]` can be tiled.
    pub(super) fn fits(dtype: GgmlDType, n: usize, k: usize) -> bool {
        matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q8_0)
            && n > 0
            && n.is_multiple_of(TILE_ROWS)
            && k > 0
            && k.is_multiple_of(BLOCK)
    }

    /// Rearranges `matrix` (`[n, k]`, Q4_1 or Q8_0; see [`Tiles::fits`]).
    pub(super) fn pack(matrix: &QTensor) -> Result<Self> {
        let (n, k) = matrix.shape().dims2()?;
        let dtype = matrix.dtype();
        if !Self::fits(dtype, n, k) {
            bail!("a {dtype:?} matrix of {n}x{k} cannot be tiled");
        }
        let data = matrix.data()?;
        match dtype {
            GgmlDType::Q4_1 => Ok(Self::Q4(pack_with(&data, n, k, Q4_1_BYTES, q4_1_row))),
            _ => Ok(Self::Q8(pack_with(&data, n, k, Q8_0_BYTES, q8_0_row))),
        }
    }

    /// Tiles in all (row tiles times column blocks).
    pub(super) fn tile_count(&self) -> usize {
        match self {
            Self::Q4(tiles) => tiles.len(),
            Self::Q8(tiles) => tiles.len(),
        }
    }
}

/// Tiles `data` (`n` rows of `k / 32` GGML blocks of `block_bytes`), filling
/// each tile's row `r` from one block with `fill`.
fn pack_with<const BYTES: usize>(
    data: &[u8],
    n: usize,
    k: usize,
    block_bytes: usize,
    fill: fn(&mut Tile<BYTES>, usize, &[u8]),
) -> Vec<Tile<BYTES>> {
    let blocks = k / BLOCK;
    let mut tiles = Vec::with_capacity(n / TILE_ROWS * blocks);
    for tile_row in 0..n / TILE_ROWS {
        for block in 0..blocks {
            let mut tile = Tile {
                qs: [0; BYTES],
                d: [0; TILE_ROWS],
                m: [0; TILE_ROWS],
            };
            for r in 0..TILE_ROWS {
                let start = ((tile_row * TILE_ROWS + r) * blocks + block) * block_bytes;
                fill(&mut tile, r, &data[start..start + block_bytes]);
            }
            tiles.push(tile);
        }
    }
    tiles
}

fn q4_1_row(tile: &mut Q4Tile, r: usize, block: &[u8]) {
    tile.d[r] = u16::from_le_bytes([block[0], block[1]]);
    tile.m[r] = u16::from_le_bytes([block[2], block[3]]);
    for (group, bytes) in block[4..].chunks_exact(4).enumerate() {
        let at = (group * TILE_ROWS + r) * 4;
        tile.qs[at..at + 4].copy_from_slice(bytes);
    }
}

fn q8_0_row(tile: &mut Q8Tile, r: usize, block: &[u8]) {
    let d = u16::from_le_bytes([block[0], block[1]]);
    tile.d[r] = d;
    tile.m[r] = d;
    for (group, bytes) in block[2..].chunks_exact(4).enumerate() {
        let at = (group * TILE_ROWS + r) * 4;
        for (out, &q) in tile.qs[at..at + 4].iter_mut().zip(bytes) {
            // Signed to unsigned plus 128: flipping the top bit.
            *out = q ^ 0x80;
        }
    }
}
