//! Products of Q4_1, Q5_0, Q5_1 and Q8_0 weights with activations on CPUs
//! with AVX-512 VNNI, for matrices of any width that is a whole number of
//! 32-value blocks.
//!
//! candle 0.11 multiplies Q4_1 with scalar code and runs its int8 tiles
//! (Q8_0, Q4_K, Q6_K) only on rows of whole 256-value blocks, which
//! SmolLM2 (576 wide) and Qwen2.5-0.5B (896) miss; re-quantising to Q8_0
//! and padding the hidden state to whole 256-blocks made them fast but
//! moved twice the weight bytes per generated token. These kernels read
//! the 4- and 5-bit types as they are and take 32-value blocks (`tiles`),
//! with the activations quantized as llama.cpp does (`activations`); the
//! arithmetic is in `avx512`. Several matrices sharing an input (q/k/v, gate/up) are one
//! product with their outputs side by side.

mod activations;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod tiles;

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::quantized::QTensor;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};

use self::tiles::{TILE_ROWS, Tiles};

/// One or more matrices `[n_i, k]` tiled for the kernels; their product
/// with `x` (`[.., k]`) is `[.., Σ n_i]`.
pub(crate) struct TiledMatMul {
    matrices: Vec<Tiles>,
    /// The threads' work items: (matrix, tile row), in output order.
    units: Vec<(usize, usize)>,
    k: usize,
    n: usize,
}

impl TiledMatMul {
    /// Whether the kernels run on this CPU.
    pub(crate) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        return avx512::supported();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Tiles `matrices` (sharing their input width) side by side, or `None`
    /// when the kernels cannot run them (not on this CPU, on another
    /// device, another type than Q4_1/Q5_0/Q5_1/Q8_0, rows not a multiple
    /// of 16).
    pub(crate) fn new(matrices: &[&QTensor]) -> Result<Option<Self>> {
        let Some(first) = matrices.first() else {
            return Ok(None);
        };
        if !Self::available() {
            return Ok(None);
        }
        let (_, k) = first.shape().dims2()?;
        let mut n = 0;
        let mut units = Vec::new();
        for (index, matrix) in matrices.iter().enumerate() {
            let (rows, columns) = matrix.shape().dims2()?;
            if !matrix.device().is_cpu()
                || columns != k
                || !Tiles::fits(matrix.dtype(), rows, columns)
            {
                return Ok(None);
            }
            n += rows;
            units.extend((0..rows / TILE_ROWS).map(|tile_row| (index, tile_row)));
        }
        let matrices = matrices
            .iter()
            .map(|matrix| Tiles::pack(matrix))
            .collect::<Result<_>>()?;
        Ok(Some(Self {
            matrices,
            units,
            k,
            n,
        }))
    }

    /// `x · Wᵀ` for `x` of shape `[.., k]` (f32, on the CPU).
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.apply_op1_no_bwd(self)
    }

    /// The product of `rows` quantized activation rows into `out`
    /// (`[rows, n]`).
    fn product(&self, acts: &[activations::ActivationBlock], rows: usize, out: &mut [f32]) {
        if rows == 1 {
            // One row: tile-major is row-major.
            self.product_by_tile(acts, 1, out);
            return;
        }
        let mut by_tile = vec![0f32; rows * self.n];
        self.product_by_tile(acts, rows, &mut by_tile);
        for (tile, slice) in by_tile.chunks_exact(rows * TILE_ROWS).enumerate() {
            for (row, values) in slice.chunks_exact(TILE_ROWS).enumerate() {
                let at = row * self.n + tile * TILE_ROWS;
                out[at..at + TILE_ROWS].copy_from_slice(values);
            }
        }
    }

    /// The product into `by_tile`, tile-major (each 16-column slice of all
    /// rows contiguous), so the threads write disjoint slices.
    fn product_by_tile(
        &self,
        acts: &[activations::ActivationBlock],
        rows: usize,
        by_tile: &mut [f32],
    ) {
        let slices: Vec<Mutex<&mut [f32]>> = by_tile
            .chunks_mut(rows * TILE_ROWS)
            .map(Mutex::new)
            .collect();
        let blocks = self.k / tiles::BLOCK;
        candle_core::utils::barrier_pool().execute_chunked(self.units.len(), |range| {
            for unit in range {
                let (matrix, tile_row) = self.units[unit];
                let mut slice = slices[unit].lock().unwrap_or_else(|e| e.into_inner());
                let tiles = tile_row * blocks..(tile_row + 1) * blocks;
                kernel(&self.matrices[matrix], tiles, acts, &mut slice);
            }
        });
    }
}

#[cfg(target_arch = "x86_64")]
fn kernel(
    matrix: &Tiles,
    tiles: std::ops::Range<usize>,
    acts: &[activations::ActivationBlock],
    out: &mut [f32],
) {
    // The offset terms' factors, per type (see `tiles::Tile`).
    match matrix {
        Tiles::Q4_1(all) => avx512::tile_row(&all[tiles], acts, 1.0, out),
        Tiles::Q5_0(all) => avx512::tile_row(&all[tiles], acts, -16.0, out),
        Tiles::Q5_1(all) => avx512::tile_row(&all[tiles], acts, 1.0, out),
        Tiles::Q8_0(all) => avx512::tile_row(&all[tiles], acts, -128.0, out),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn kernel(_: &Tiles, _: std::ops::Range<usize>, _: &[activations::ActivationBlock], _: &mut [f32]) {
    unreachable!("TiledMatMul::new builds none where the kernels do not run")
}

impl CustomOp1 for TiledMatMul {
    fn name(&self) -> &'static str {
        "tiled-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(values) = storage else {
            bail!(
                "tiled-matmul takes f32 activations, not {:?}",
                storage.dtype()
            );
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("tiled-matmul takes contiguous activations");
        };
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&self.k) {
            bail!("tiled-matmul of width {} given {dims:?}", self.k);
        }
        let values = &values[start..end];
        let rows = values.len() / self.k;
        let acts = activations::quantize_rows(values, self.k);
        let mut out = vec![0f32; rows * self.n];
        self.product(&acts, rows, &mut out);
        if let Some(last) = dims.last_mut() {
            *last = self.n;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

#[cfg(test)]
mod tests;
