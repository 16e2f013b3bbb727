//! The products of tiled weights with quantized activations on AVX-512
//! VNNI: `vpdpbusd` multiplies four unsigned weight bytes of each of 16
//! rows with four activation bytes broadcast to all of them, summing into
//! 16 integers; per 32-value block the sums are scaled into floats.
//!
//! The unsafe code here (the workspace's only other is setting the thread
//! variables first thing in `main`): the loads from the tiles and the
//! calls into the `#[target_feature]` functions, made only after
//! [`supported`] saw the features on this CPU.
#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::activations::ActivationBlock;
use super::tiles::{BLOCK, LOAD, TILE_ROWS, Tile};

/// Activation rows multiplied per pass over a tile row.
const MAX_ROWS: usize = 4;

/// Whether this CPU has the instructions the kernels use.
pub(super) fn supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    })
}

/// `out[row · 16 + c] = Σ_j w[c][j] · x[row][j]` for one tile row of
/// weights (`tiles`, one per block) and `acts` (rows of as many blocks),
/// the tiles' offset term multiplied by `offset_scale` (see [`Tile`]).
pub(super) fn tile_row<const BYTES: usize, const HIGH: usize>(
    tiles: &[Tile<BYTES, HIGH>],
    acts: &[ActivationBlock],
    offset_scale: f32,
    out: &mut [f32],
) {
    assert!(supported(), "the AVX-512 VNNI kernels need AVX-512 VNNI");
    let blocks = tiles.len();
    assert_eq!(acts.len() % blocks, 0, "activations of a different width");
    assert_eq!(out.len(), acts.len() / blocks * TILE_ROWS);
    for (acts, out) in acts
        .chunks(blocks * MAX_ROWS)
        .zip(out.chunks_mut(TILE_ROWS * MAX_ROWS))
    {
        let row = |i: usize| &acts[i * blocks..(i + 1) * blocks];
        // SAFETY: `supported` checked the target features above.
        unsafe {
            match acts.len() / blocks {
                1 => rows::<1, BYTES, HIGH>(tiles, [row(0)], offset_scale, out),
                2 => rows::<2, BYTES, HIGH>(tiles, [row(0), row(1)], offset_scale, out),
                3 => rows::<3, BYTES, HIGH>(tiles, [row(0), row(1), row(2)], offset_scale, out),
                _ => rows::<4, BYTES, HIGH>(
                    tiles,
                    [row(0), row(1), row(2), row(3)],
                    offset_scale,
                    out,
                ),
            }
        }
    }
}

/// `M` activation rows against one tile row.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn rows<const M: usize, const BYTES: usize, const HIGH: usize>(
    tiles: &[Tile<BYTES, HIGH>],
    acts: [&[ActivationBlock]; M],
    offset_scale: f32,
    out: &mut [f32],
) {
    let nibble = _mm512_set1_epi8(0x0F);
    let fifth = _mm512_set1_epi8(0x10);
    let mut scaled = [_mm512_setzero_ps(); M];
    let mut offsets = [_mm512_setzero_ps(); M];
    for (b, tile) in tiles.iter().enumerate() {
        // Columns 0..16 and 16..32 of the block, in two dependency chains.
        let mut low = [_mm512_setzero_si512(); M];
        let mut high = [_mm512_setzero_si512(); M];
        for group in 0..BLOCK / 2 / 4 {
            let (mut w_low, mut w_high) = if BYTES == BLOCK * TILE_ROWS {
                (load(tile, group), load(tile, group + 4))
            } else {
                let w = load(tile, group);
                (
                    _mm512_and_si512(w, nibble),
                    _mm512_and_si512(_mm512_srli_epi16::<4>(w), nibble),
                )
            };
            if HIGH > 0 {
                w_low = _mm512_mask_add_epi8(w_low, tile.high[2 * group], w_low, fifth);
                w_high = _mm512_mask_add_epi8(w_high, tile.high[2 * group + 1], w_high, fifth);
            }
            for i in 0..M {
                let qs = &acts[i][b].qs;
                low[i] = _mm512_dpbusd_epi32(low[i], w_low, broadcast4(qs, 4 * group));
                high[i] = _mm512_dpbusd_epi32(high[i], w_high, broadcast4(qs, 16 + 4 * group));
            }
        }
        let d = f16x16(&tile.d);
        let m = f16x16(&tile.m);
        for i in 0..M {
            let act = &acts[i][b];
            let sums = _mm512_cvtepi32_ps(_mm512_add_epi32(low[i], high[i]));
            scaled[i] = _mm512_fmadd_ps(sums, _mm512_mul_ps(d, _mm512_set1_ps(act.d)), scaled[i]);
            offsets[i] = _mm512_fmadd_ps(m, _mm512_set1_ps(act.s * offset_scale), offsets[i]);
        }
    }
    for i in 0..M {
        let row: &mut [f32; TILE_ROWS] = (&mut out[i * TILE_ROWS..(i + 1) * TILE_ROWS])
            .try_into()
            .unwrap_or_else(|_| unreachable!("out holds 16 values per row"));
        // SAFETY: `row` is 16 writable floats.
        unsafe { _mm512_storeu_ps(row.as_mut_ptr(), _mm512_add_ps(scaled[i], offsets[i])) };
    }
}

/// The 64 bytes of load `index` of a tile.
#[target_feature(enable = "avx512f")]
fn load<const BYTES: usize, const HIGH: usize>(tile: &Tile<BYTES, HIGH>, index: usize) -> __m512i {
    let bytes: &[u8; LOAD] = tile.qs[index * LOAD..(index + 1) * LOAD]
        .try_into()
        .unwrap_or_else(|_| unreachable!("a load is 64 bytes"));
    // SAFETY: `bytes` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}

/// 16 f16 values (bits) as floats.
#[target_feature(enable = "avx512f")]
fn f16x16(bits: &[u16; TILE_ROWS]) -> __m512 {
    // SAFETY: `bits` is 32 readable bytes; the load is unaligned.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(bits.as_ptr().cast()) })
}

/// Four activation bytes from `at`, in every 32-bit lane.
#[target_feature(enable = "avx512f")]
fn broadcast4(qs: &[i8; BLOCK], at: usize) -> __m512i {
    let bytes = [qs[at], qs[at + 1], qs[at + 2], qs[at + 3]];
    _mm512_set1_epi32(i32::from_le_bytes(bytes.map(|b| b as u8)))
}
