use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Result, Tensor, bail};

use super::TiledMatMul;

/// The types the kernels take.
const TYPES: [GgmlDType; 4] = [
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
];

/// A `[n, k]` matrix of varied values in `dtype`.
fn matrix(n: usize, k: usize, dtype: GgmlDType, seed: usize) -> Result<QTensor> {
    let values: Vec<f32> = (0..n * k)
        .map(|i| (((i * 7919 + seed * 104_729) % 1_000) as f32 / 500.0 - 1.0) * 0.3)
        .collect();
    QTensor::quantize(&Tensor::from_vec(values, (n, k), &Device::Cpu)?, dtype)
}

fn activations(rows: usize, k: usize) -> Result<Tensor> {
    let values: Vec<f32> = (0..rows * k)
        .map(|i| ((i * 31 % 97) as f32 - 48.0) / 17.0)
        .collect();
    Tensor::from_vec(values, (rows, k), &Device::Cpu)
}

fn tiled(matrices: &[&QTensor]) -> Result<TiledMatMul> {
    match TiledMatMul::new(matrices)? {
        Some(tiled) => Ok(tiled),
        None => bail!("the kernels refused {} matrices", matrices.len()),
    }
}

fn values(tensor: &Tensor) -> Result<Vec<f32>> {
    tensor.flatten_all()?.to_vec1()
}

/// Asserts `ours` is within `tolerance` (relative to the largest value)
/// of `reference`.
fn assert_close(ours: &Tensor, reference: &Tensor, tolerance: f32) -> Result<()> {
    let (ours, reference) = (values(ours)?, values(reference)?);
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
        assert!((a - b).abs() <= tolerance * scale, "value {i}: {a} vs {b}");
    }
    Ok(())
}

/// Mean absolute difference.
fn mean_error(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

/// Skips (loudly) on CPUs without the kernels' instructions.
fn kernels_run_here() -> bool {
    let available = TiledMatMul::available();
    if !available {
        eprintln!("no AVX-512 VNNI on this CPU: the tiled kernels are not used here");
    }
    available
}

#[test]
fn products_match_candle_for_every_row_count() -> Result<()> {
    if !kernels_run_here() {
        return Ok(());
    }
    for dtype in TYPES {
        let weights = matrix(48, 128, dtype, 1)?;
        let ours = tiled(&[&weights])?;
        let candle = QMatMul::from_qtensor(matrix(48, 128, dtype, 1)?)?;
        for rows in 1..=9 {
            let x = activations(rows, 128)?;
            let product = ours.forward(&x)?;
            assert_eq!(product.dims(), [rows, 48]);
            // candle, as ggml, rounds the activations' scales to f16.
            assert_close(&product, &candle.forward(&x)?, 2e-3)?;
        }
    }
    Ok(())
}

#[test]
fn products_are_as_close_to_the_exact_ones_as_candles() -> Result<()> {
    if !kernels_run_here() {
        return Ok(());
    }
    for dtype in TYPES {
        let weights = matrix(32, 576, dtype, 2)?;
        let x = activations(5, 576)?;
        let exact = values(&x.matmul(&weights.dequantize(&Device::Cpu)?.t()?)?)?;
        let ours = values(&tiled(&[&weights])?.forward(&x)?)?;
        let candle = values(&QMatMul::from_qtensor(matrix(32, 576, dtype, 2)?)?.forward(&x)?)?;
        // Only the activations' 8-bit quantization separates them, the same
        // in both but for the rounding of its scales.
        let (ours_error, candle_error) = (mean_error(&ours, &exact), mean_error(&candle, &exact));
        assert!(
            ours_error > 0.0 && ours_error <= candle_error * 1.05,
            "{dtype:?}: mean error {ours_error}, candle's {candle_error}"
        );
    }
    Ok(())
}

#[test]
fn matrices_side_by_side_give_their_products_side_by_side() -> Result<()> {
    if !kernels_run_here() {
        return Ok(());
    }
    let q = matrix(64, 128, GgmlDType::Q4_1, 3)?;
    let k = matrix(16, 128, GgmlDType::Q8_0, 4)?;
    let v = matrix(32, 128, GgmlDType::Q5_0, 5)?;
    let x = activations(3, 128)?.reshape((1, 3, 128))?;
    let fused = tiled(&[&q, &k, &v])?.forward(&x)?;
    assert_eq!(fused.dims(), [1, 3, 112]);
    let mut offset = 0;
    for matrix in [&q, &k, &v] {
        let n = matrix.shape().dims2()?.0;
        let alone = tiled(&[matrix])?.forward(&x)?;
        assert_close(&fused.narrow(2, offset, n)?, &alone, 1e-6)?;
        offset += n;
    }
    Ok(())
}

#[test]
fn unsupported_matrices_are_left_to_candle() -> Result<()> {
    let q4_k = matrix(16, 256, GgmlDType::Q4K, 6)?;
    let odd_rows = matrix(24, 64, GgmlDType::Q4_1, 7)?;
    let q8 = matrix(16, 64, GgmlDType::Q8_0, 8)?;
    for matrices in [vec![&q4_k], vec![&odd_rows], vec![&q8, &odd_rows]] {
        assert!(TiledMatMul::new(&matrices)?.is_none());
    }
    Ok(())
}

#[test]
fn a_product_of_the_wrong_width_is_an_error() -> Result<()> {
    if !kernels_run_here() {
        return Ok(());
    }
    let ours = tiled(&[&matrix(16, 64, GgmlDType::Q4_1, 9)?])?;
    let Err(error) = ours.forward(&activations(2, 32)?) else {
        bail!("a product of the wrong width succeeded");
    };
    assert!(error.to_string().contains("width 64"), "{error}");
    Ok(())
}
