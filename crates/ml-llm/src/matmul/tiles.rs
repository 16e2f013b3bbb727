//! Quantized weights rearranged into tiles of 16 rows by one 32-value
//! block, the layout the kernels read with one 64-byte load per four
//! columns of all 16 rows.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Result, bail};

/// Values per quantization block (every type tiled here).
pub(super) const BLOCK: usize = 32;
/// Weight rows (output columns) per tile.
pub(super) const TILE_ROWS: usize = 16;
/// Bytes of four columns of a tile's 16 rows: one load.
pub(super) const LOAD: usize = 64;

/// One 32-column block of 16 rows: row `r`'s value at column `c` is
/// `d[r] · q + m[r] · offset` (the offset a constant of the type), the
/// unsigned `q` stored in `qs` as four-column groups, row after row
/// (`qs[(group · 16 + r) · 4 ..]`), which is what `vpdpbusd` multiplies
/// with four activations broadcast to every row.
///
/// Four-bit and five-bit types hold two columns per byte, column `4g + j`
/// in the low nibble of group `g`'s byte `j` and column `16 + 4g + j` in
/// its high nibble, as in GGML's own blocks (whose byte `i` holds columns
/// `i` and `16 + i`); five-bit types add the fifth bits as byte masks
/// (`HIGH` = 8: low and high nibbles of each group).
#[repr(C, align(64))]
pub(super) struct Tile<const BYTES: usize, const HIGH: usize> {
    /// The quantized values (see the type's description).
    pub(super) qs: [u8; BYTES],
    /// Five-bit types: bit `r · 4 + j` of mask `2g` (`2g + 1`) is the fifth
    /// bit of row `r`'s column `4g + j` (`16 + 4g + j`).
    pub(super) high: [u64; HIGH],
    /// Per-row scales (f16 bits).
    pub(super) d: [u16; TILE_ROWS],
    /// Per-row offsets (f16 bits).
    pub(super) m: [u16; TILE_ROWS],
}

/// Q4_1: `d · q + m`.
pub(super) type Q4Tile = Tile<{ BLOCK / 2 * TILE_ROWS }, 0>;
/// Q5_0 (`d · (q - 16)`, `m = d`) and Q5_1 (`d · q + m`).
pub(super) type Q5Tile = Tile<{ BLOCK / 2 * TILE_ROWS }, 8>;
/// Q8_0 (`d · q` for signed `q`): stored plus 128 (unsigned, as
/// `vpdpbusd` needs), with `m = d`: the kernel takes `128 · d` away again.
pub(super) type Q8Tile = Tile<{ BLOCK * TILE_ROWS }, 0>;

/// A matrix in tiles: `[row tile][column block]`, so one tile row of the
/// matrix is contiguous in memory.
pub(super) enum Tiles {
    /// From Q4_1.
    Q4_1(Vec<Q4Tile>),
    /// From Q5_0.
    Q5_0(Vec<Q5Tile>),
    /// From Q5_1.
    Q5_1(Vec<Q5Tile>),
    /// From Q8_0.
    Q8_0(Vec<Q8Tile>),
}

impl Tiles {
    /// Whether a matrix of this type and shape `[n, k]` can be tiled.
    pub(super) fn fits(dtype: GgmlDType, n: usize, k: usize) -> bool {
        use GgmlDType as T;
        matches!(dtype, T::Q4_1 | T::Q5_0 | T::Q5_1 | T::Q8_0)
            && n > 0
            && n.is_multiple_of(TILE_ROWS)
            && k > 0
            && k.is_multiple_of(BLOCK)
    }

    /// Rearranges `matrix` (`[n, k]`; see [`Tiles::fits`]).
    pub(super) fn pack(matrix: &QTensor) -> Result<Self> {
        let (n, k) = matrix.shape().dims2()?;
        let dtype = matrix.dtype();
        if !Self::fits(dtype, n, k) {
            bail!("a {dtype:?} matrix of {n}x{k} cannot be tiled");
        }
        let data = matrix.data()?;
        Ok(match dtype {
            GgmlDType::Q4_1 => Self::Q4_1(pack_with(&data, n, k, 20, q4_1_row)),
            GgmlDType::Q5_0 => Self::Q5_0(pack_with(&data, n, k, 22, q5_0_row)),
            GgmlDType::Q5_1 => Self::Q5_1(pack_with(&data, n, k, 24, q5_1_row)),
            _ => Self::Q8_0(pack_with(&data, n, k, 34, q8_0_row)),
        })
    }
}

/// Tiles `data` (`n` rows of `k / 32` GGML blocks of `block_bytes`),
/// filling each tile's row `r` from one block with `fill`.
fn pack_with<const BYTES: usize, const HIGH: usize>(
    data: &[u8],
    n: usize,
    k: usize,
    block_bytes: usize,
    fill: fn(&mut Tile<BYTES, HIGH>, usize, &[u8]),
) -> Vec<Tile<BYTES, HIGH>> {
    let blocks = k / BLOCK;
    let mut tiles = Vec::with_capacity(n / TILE_ROWS * blocks);
    for tile_row in 0..n / TILE_ROWS {
        for block in 0..blocks {
            let mut tile = Tile {
                qs: [0; BYTES],
                high: [0; HIGH],
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

fn f16_at(block: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([block[at], block[at + 1]])
}

/// Copies 16 bytes of nibbles (GGML order) into row `r` of a tile.
fn nibbles<const HIGH: usize>(
    tile: &mut Tile<{ BLOCK / 2 * TILE_ROWS }, HIGH>,
    r: usize,
    qs: &[u8],
) {
    for (group, bytes) in qs.chunks_exact(4).enumerate() {
        let at = (group * TILE_ROWS + r) * 4;
        tile.qs[at..at + 4].copy_from_slice(bytes);
    }
}

/// Spreads a block's fifth bits (`qh`, bit `c` for column `c`) into the
/// masks of row `r`.
fn fifth_bits(tile: &mut Q5Tile, r: usize, qh: u32) {
    for group in 0..4 {
        for (half, first) in [(0, 4 * group), (1, 16 + 4 * group)] {
            let bits = u64::from((qh >> first) & 0xF);
            tile.high[2 * group + half] |= bits << (r * 4);
        }
    }
}

fn q4_1_row(tile: &mut Q4Tile, r: usize, block: &[u8]) {
    tile.d[r] = f16_at(block, 0);
    tile.m[r] = f16_at(block, 2);
    nibbles(tile, r, &block[4..]);
}

fn q5_0_row(tile: &mut Q5Tile, r: usize, block: &[u8]) {
    // `d · (q - 16)`: the offset's factor is `d` itself.
    q5_row(tile, r, block, f16_at(block, 0), 2);
}

fn q5_1_row(tile: &mut Q5Tile, r: usize, block: &[u8]) {
    q5_row(tile, r, block, f16_at(block, 2), 4);
}

/// Fills row `r` from a five-bit block: `d` first, the offset `m`, then
/// from `bits` four bytes of fifth bits and 16 of nibbles.
fn q5_row(tile: &mut Q5Tile, r: usize, block: &[u8], m: u16, bits: usize) {
    tile.d[r] = f16_at(block, 0);
    tile.m[r] = m;
    let qh = u32::from_le_bytes([
        block[bits],
        block[bits + 1],
        block[bits + 2],
        block[bits + 3],
    ]);
    fifth_bits(tile, r, qh);
    nibbles(tile, r, &block[bits + 4..]);
}

fn q8_0_row(tile: &mut Q8Tile, r: usize, block: &[u8]) {
    tile.d[r] = f16_at(block, 0);
    tile.m[r] = tile.d[r];
    for (group, bytes) in block[2..].chunks_exact(4).enumerate() {
        let at = (group * TILE_ROWS + r) * 4;
        for (out, &q) in tile.qs[at..at + 4].iter_mut().zip(bytes) {
            // Signed to unsigned plus 128: flipping the top bit.
            *out = q ^ 0x80;
        }
    }
}
